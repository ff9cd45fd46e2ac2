"""What the console says, in Chinese (the default) and English: a small message catalog, the
labels of statuses, actions and roles, and dates and times as people write them (Beijing time).

A tiny table instead of gettext: a few dozen phrases, two languages, and a missing English
phrase falls back to the Chinese one rather than to a message id."""

from __future__ import annotations

from datetime import date, datetime

from govnet.node.domain.calendar import CHINA_TZ

LANGUAGES = ("zh", "en")
DEFAULT = "zh"

# key -> (Chinese, English)
MESSAGES: dict[str, tuple[str, str]] = {
    "title": ("政务服务窗口", "Government service window"),
    "node": ("节点", "Node"),
    "login": ("登录", "Sign in"),
    "logout": ("退出", "Sign out"),
    "login_name": ("账号", "Login"),
    "password": ("密码", "Password"),
    "login_refused": ("账号或密码错误，或账号已停用", "Wrong login or password, or the account is disabled"),
    "intake": ("受理", "Intake"),
    "queue": ("待办", "Work queue"),
    "track": ("进度查询", "Track a case"),
    "dashboard": ("监察", "Supervision"),
    "search": ("查询", "Search"),
    "keyword": ("关键词（事项名称或编码）", "Keyword (item name or code)"),
    "department": ("部门", "Department"),
    "all": ("全部", "All"),
    "code": ("编码", "Code"),
    "item": ("事项", "Item"),
    "item_type": ("办件类型", "Case type"),
    "promised_limit": ("承诺时限", "Promised limit"),
    "statutory_limit": ("法定时限", "Statutory limit"),
    "working_days": ("个工作日", " working days"),
    "same_day": ("即办，当日办结", "decided the same day"),
    "legal_basis": ("设定依据", "Legal basis"),
    "procedure": ("办理流程", "Procedure"),
    "conditions": ("受理条件", "Conditions"),
    "materials": ("申请材料", "Materials"),
    "core": ("核心材料", "core"),
    "non_core": ("非核心材料", "non-core"),
    "fees": ("收费项目", "Fees"),
    "fee_standard": ("收费标准", "Fee standard"),
    "fee_basis": ("收费依据", "Fee basis"),
    "no_fee": ("不收费", "No fee"),
    "progress_public": ("办理进度", "Progress"),
    "progress_public_yes": ("凭受理编号公开查询", "public by receipt number"),
    "applicant": ("申请人", "Applicant"),
    "applicant_name": ("申请人姓名", "Applicant's name"),
    "id_number": ("身份证号码", "ID number"),
    "phone": ("联系电话", "Phone"),
    "note": ("备注", "Note"),
    "provided": ("已提交的材料（勾选）", "Materials provided (tick)"),
    "submit": ("提交受理", "Submit"),
    "submit_return": ("退回并出具一次性告知书", "Return with the one-time notice"),
    "tolerance_promise": ("申请人书面承诺后补缺少的非核心材料（容缺受理）",
                          "The applicant promises in writing to supply the missing non-core materials (tolerance acceptance)"),
    "missing_core": ("缺少核心材料，不能受理：", "Core materials missing, cannot be accepted: "),
    "missing_other": ("缺少非核心材料：", "Non-core materials missing: "),
    "no_tolerance": ("本事项不适用容缺受理", "This item does not allow tolerance acceptance"),
    "receipt": ("受理回执", "Receipt"),
    "receipt_number": ("受理编号", "Receipt number"),
    "submitted_at": ("申请时间", "Submitted"),
    "due": ("办结期限", "Due"),
    "status": ("状态", "Status"),
    "rating_code": ("评价码（办结后凭此评价，仅可使用一次）", "Rating code (rate the case once it is delivered; works once)"),
    "next": ("下一步", "What happens next"),
    "next_received": ("窗口审核材料后受理；受理后在承诺时限内办结。", "The window checks the materials and accepts; then it is decided within the promised limit."),
    "next_accepted": ("已受理，将在承诺时限内办结；可凭受理编号在任一服务中心或自助终端查询进度。",
                      "Accepted: it will be decided within the promised limit; track it by the receipt number at any center or terminal."),
    "next_returned": ("材料不齐，已退回。请按一次性告知书补齐全部材料后重新申请。",
                      "Returned: bring every material the one-time notice lists and apply again."),
    "next_escalated": ("已报上级审批，办理进度可凭受理编号查询。", "Sent up for decision; track it by the receipt number."),
    "notice": ("一次性告知", "One-time notice"),
    "print": ("打印", "Print"),
    "filter": ("筛选", "Filter"),
    "due_before": ("到期日不晚于", "Due on or before"),
    "actions": ("可办理操作", "Actions"),
    "reason": ("理由/说明", "Reason"),
    "do": ("执行", "Do"),
    "no_cases": ("没有待办件", "No cases"),
    "overdue": ("已超期", "overdue"),
    "warning": ("即将到期", "due soon"),
    "done": ("已办理", "Done"),
    "track_prompt": ("扫描或输入受理编号", "Scan or type the receipt number"),
    "progress": ("办理进度", "Progress"),
    "owner": ("承办节点", "Handled at"),
    "fee_amount": ("收费金额（元）", "Amount (yuan)"),
    "fee_method": ("缴费方式", "Paid by"),
    "fee_number": ("缴费单号", "Payment number"),
    "fee_due_elsewhere": ("待缴费（在承办窗口缴纳）", "Fees due (paid at the deciding window)"),
    "pay_cash": ("现金", "cash"),
    "pay_card": ("银行卡", "bank card"),
    "pay_wechat": ("微信", "WeChat Pay"),
    "pay_alipay": ("支付宝", "Alipay"),
    "pay_bank": ("银行转账", "bank transfer"),
    "green_channel": ("绿色通道", "green channel"),
    "notice_page": ("一次性告知书", "One-time notice"),
    "awaiting_delivery": ("待领取（在本窗口出件）", "Results waiting to be handed over here"),
    "missing_materials": ("尚缺材料", "Materials still missing"),
    "collect_at": ("领取地点", "Collect the result at"),
    "from_summary": ("以上为上级掌握的办理概况，详细过程请到受理窗口查询。",
                     "This is the summary held above; ask at the window where you applied for the details."),
    "forbidden": ("无权访问", "Not allowed"),
    "forbidden_text": ("您的角色不能使用此页面。", "Your roles do not allow this page."),
    "not_found": ("页面不存在", "No such page"),
    "error": ("出错了", "Something is wrong"),
    "offline": ("与上级节点的连接已中断", "The link to the parent node is down"),
    "offline_since": ("自", "since"),
    "offline_waiting": ("条消息待发送；受理和本地办件照常进行。", "messages wait to be sent; intake and local work go on."),
    "totals": ("本辖区合计", "Totals of the subtree"),
    "rates": ("指标", "Rates"),
    "on_time_rate": ("按时办结率", "On-time rate"),
    "immediate_rate": ("即办率", "Immediate rate"),
    "satisfaction_rate": ("满意率", "Satisfaction rate"),
    "children": ("下级节点", "Children"),
    "last_heard": ("最后联系", "Last heard"),
    "never": ("从未", "never"),
    "coverage": ("统计覆盖", "Coverage"),
    "coverage_text": ("个已知节点中已上报：", " known nodes, reported: "),
    "alarms": ("未结预警（含整改）", "Open alarms (rectifications included)"),
    "up_level": ("返回上一级", "Up one level"),
    "rank_by": ("排名依据", "Rank by"),
    "complaints": ("未办结投诉", "Open complaints"),
    "complaint_about": ("被投诉节点", "About node"),
    "complaint_text": ("投诉内容", "Complaint"),
    "no_complaints": ("没有未办结投诉", "No open complaints"),
    "own": ("本节点", "this node"),
    "by_department": ("各部门", "By department"),
    "trend": ("近30天趋势（收件/办结）", "The last 30 days (received / completed)"),
    "received": ("收件", "received"),
    "completed": ("办结", "completed"),
    "no_alarms": ("没有未结预警", "No open alarms"),
    "export": ("导出", "Export"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "language": ("English", "中文"),
    "bad_request": ("请求有误", "Bad request"),
    "rate": ("评价", "Rate"),
    "rate_intro": ("办结送达后，申请人可在此评价（一件一评，仅一次）。", "Once delivered, the applicant rates the case here (one case, one evaluation)."),
    "rating": ("评价等级", "Rating"),
    "comment": ("意见建议", "Comment"),
    "rating_code_field": ("评价码（回执上的8位数字）", "Rating code (8 digits on the receipt)"),
    "rated": ("评价已提交，感谢您的评价。", "Thank you: the rating is recorded."),
    "csrf": ("表单已过期，请刷新页面后重试", "The form has expired; reload the page and try again"),
}

STATUS: dict[str, tuple[str, str]] = {
    "received": ("已收件", "received"),
    "returned": ("已退回", "returned"),
    "accepted": ("已受理", "accepted"),
    "under_review": ("审查中", "under review"),
    "awaiting_supplement": ("待补正", "awaiting supplement"),
    "joint_review": ("联合审查中", "joint review"),
    "escalated": ("已上报", "escalated"),
    "approved": ("已批准", "approved"),
    "rejected": ("不予批准", "rejected"),
    "completed": ("已办结", "completed"),
    "delivered": ("已送达", "delivered"),
    "withdrawn": ("已撤回", "withdrawn"),
}

ACTION: dict[str, tuple[str, str]] = {
    "accept": ("受理", "accept"),
    "return": ("退回", "return"),
    "review": ("审查", "review"),
    "request_supplement": ("要求补正", "request supplement"),
    "supplement": ("补正材料", "supplement"),
    "start_joint": ("发起联办", "start joint review"),
    "opinion": ("会签意见", "opinion"),
    "approve": ("批准", "approve"),
    "reject": ("不予批准", "reject"),
    "escalate": ("上报", "escalate"),
    "extend": ("延期", "extend"),
    "complete": ("办结", "complete"),
    "deliver": ("送达", "deliver"),
    "withdraw": ("撤回", "withdraw"),
    "suspend": ("中止计时", "suspend"),
    "resume": ("恢复计时", "resume"),
    "evaluate": ("评价", "rated"),
    "pay": ("收费", "pay"),
    "waive_fee": ("费用减免", "waive fee"),
    "green_channel": ("绿色通道", "green channel"),
}

RATING: dict[str, tuple[str, str]] = {
    "very_satisfied": ("非常满意", "very satisfied"),
    "satisfied": ("满意", "satisfied"),
    "basically_satisfied": ("基本满意", "basically satisfied"),
    "dissatisfied": ("不满意", "dissatisfied"),
    "very_dissatisfied": ("非常不满意", "very dissatisfied"),
}

# The statistics counters (node.domain.statistics.COUNTERS), as the dashboard names them.
COUNTER: dict[str, tuple[str, str]] = {
    "received": ("收件", "received"),
    "accepted": ("受理", "accepted"),
    "immediate": ("即办", "immediate"),
    "completed": ("办结", "completed"),
    "on_time": ("按时办结", "on time"),
    "overdue": ("超期", "overdue"),
    "warnings": ("黄牌预警", "warnings"),
    "returned": ("退件", "returned"),
    "escalated": ("上报", "escalated"),
    "supplement_requests": ("补正", "supplement requests"),
    "eval_very_satisfied": ("非常满意", "very satisfied"),
    "eval_satisfied": ("满意", "satisfied"),
    "eval_basically_satisfied": ("基本满意", "basically satisfied"),
    "eval_dissatisfied": ("不满意", "dissatisfied"),
    "eval_very_dissatisfied": ("非常不满意", "very dissatisfied"),
    "complaints": ("投诉", "complaints"),
    "fees_fen": ("应收（分）", "fees due (fen)"),
    "processing_days": ("办理工作日合计", "processing days (sum)"),
    "carried": ("代办", "carried by an agent"),
    "kind_immediate": ("即办件收件", "received immediate"),
    "kind_promised": ("承诺件收件", "received promised"),
    "kind_joint": ("联办件收件", "received joint"),
    "kind_escalated": ("上报件收件", "received escalated"),
    "fees_collected_fen": ("实收（分）", "fees collected (fen)"),
    "fees_waived_fen": ("减免（分）", "fees waived (fen)"),
    "green_channel": ("绿色通道", "green channel"),
}

CASE_TYPE: dict[str, tuple[str, str]] = {
    "immediate": ("即办件", "immediate"),
    "promised": ("承诺件", "promised"),
    "joint": ("联办件", "joint"),
    "escalated": ("上报件", "escalated"),
    "returned": ("退办件", "returned"),
    "proxy": ("代办件", "proxy"),  # an older node's kind for a carried case (now: carried, apart from the kind)
}


def language(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT


def say(lang: str, key: str) -> str:
    """The phrase ``key`` in ``lang`` (the key itself if the catalog lacks it: a bug shows, never a blank)."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" and pair[1] else pair[0]


def label(table: dict[str, tuple[str, str]], lang: str, value: str) -> str:
    pair = table.get(value)
    return value if pair is None else pair[1] if lang == "en" else pair[0]


def day(lang: str, d: date | None) -> str:
    """A date as people write it: 2026年12月3日 (English: 2026-12-03)."""
    if d is None:
        return "-"
    return d.isoformat() if lang == "en" else f"{d.year}年{d.month}月{d.day}日"


def moment(lang: str, at: datetime | str | None) -> str:
    """An instant in Beijing time: 2026年12月3日 14:05 (English: 2026-12-03 14:05 Beijing time)."""
    if not at:
        return "-"
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    local = when.astimezone(CHINA_TZ)
    clock = local.strftime("%H:%M")
    return f"{local.date().isoformat()} {clock} Beijing time" if lang == "en" else f"{day(lang, local.date())} {clock}"
