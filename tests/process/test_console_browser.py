"""The console in a real browser (Debian's chromium through playwright), against real nodes served
in-process with TLS (the console over HTTPS with the node's certificate) and real SQLite files.

Each test is a person's errand: a village agent's intake to the printed receipt, a township
clerk's action on a queued case, a supervisor's dashboard against ``govnet stats --json``, a clerk
kept out of the supervisor's page. Every page visited is saved as a screenshot under
build/screenshots/ and weighed against the 200 KB budget; fields are reached by the keyboard and
every one has a label.
"""

from __future__ import annotations

import json

import httpx
import pytest
from playwright.sync_api import Browser, Page

from govnet.node.domain.people import Role

from support.accounts import PASSWORD, add_account, start_in_process
from support.browser import PAGE_BUDGET, Visit, browser, open_visit, visit  # noqa: F401 (fixtures)
from support.helpers import CHIEF, CLERK, ID_NUMBER, NAME, PHONE, govnet, statistics_settled, submit, wait_for
from support.inprocess import in_process_nodes

pytestmark = pytest.mark.slow

CONSOLE = {"listen": "127.0.0.1:0"}


def _unlabelled(page: Page) -> list[str]:
    """Every visible form field without a label (the accessibility tree names a field by its label)."""
    return page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter(e => e.labels.length === 0).map(e => e.outerHTML)""")


def _light(tab: Visit) -> None:
    heavy = {url: size for url, size in tab.sizes.items() if size > PAGE_BUDGET}
    assert not heavy, f"pages over {PAGE_BUDGET} bytes: {heavy}"


def test_intake_to_printed_receipt_at_a_village(make_node, browser: Browser, visit: list[Visit],  # noqa: F811
                                                request: pytest.FixtureRequest) -> None:
    node, client = make_node("371102001201", "village", console=CONSOLE)
    add_account(node.data_dir, "lida", [Role.VILLAGE_AGENT], name="李代办")
    url = node.node.console_url
    assert url is not None and url.startswith("https://")
    tab = open_visit(browser, visit, url, request.node.name, "agent")
    tab.sign_in("lida", PASSWORD)
    page = tab.page
    assert page.url.endswith("/intake") and "李代办" in page.inner_text("header")
    # Its township does not exist: the banner says the link is down and intake goes on.
    assert "与上级节点的连接已中断" in page.inner_text("[role=alert]")

    # Search the catalog by keyword, open the item: its publics and the form.
    page.fill("#q", "居住情况")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    tab.shot()
    with page.expect_navigation():
        page.click("text=村（社区）居住情况证明出具")
    tab.shot()
    publics = page.inner_text("section.publics")
    for heading in ("设定依据", "办理流程", "受理条件", "申请材料", "承诺时限", "办理进度", "收费项目", "收费标准", "收费依据"):
        assert heading in publics
    assert _unlabelled(page) == []

    # Keyboard only: the applicant, then submit with the core material unticked: stopped, nothing stored.
    page.focus("#name")
    page.keyboard.type(NAME)
    page.keyboard.press("Tab")
    page.keyboard.type(ID_NUMBER)
    page.keyboard.press("Tab")
    page.keyboard.type(PHONE)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    tab.shot("core-missing")
    assert "缺少核心材料" in page.inner_text(".problem") and "居民身份证" in page.inner_text(".problem")
    assert list(client.list().cases) == []

    # The core material ticked (Space on a focused checkbox), the non-core one owed under tolerance acceptance.
    page.focus("#m1")
    page.keyboard.press("Space")
    page.focus("#tolerance")
    page.keyboard.press("Space")
    with page.expect_navigation():
        page.click("button[name=then][value='']")
    tab.shot("receipt")
    number = page.inner_text("#receipt-number")
    assert number.startswith("371102001201-")
    assert page.locator(".barcode svg").count() == 1 and page.locator(".qr svg").count() == 1
    assert len(page.inner_text("#rating-code")) == 8
    assert "下一步" in page.inner_text("article") and "即办，当日办结" in page.inner_text("article")
    case = client.get(number)
    assert case.status == "received" and list(case.materials) == ["居民身份证"]
    assert case.applicant.name == NAME

    # As printed: the navigation and the print button are not on paper.
    page.emulate_media(media="print")
    tab.shot("receipt-printed")
    assert not page.locator("header.top").is_visible()
    _light(tab)


def test_an_action_on_a_queued_case_at_a_township(make_node, browser: Browser, visit: list[Visit],  # noqa: F811
                                                  request: pytest.FixtureRequest) -> None:
    node, client = make_node("371102001", "township", console=CONSOLE)
    receipt = submit(client, "MZ-0002").case.receipt  # a promised township item, every material
    add_account(node.data_dir, "wangmin", [Role.WINDOW_CLERK], ["民政局"], name="王敏")
    tab = open_visit(browser, visit, node.node.console_url, request.node.name, "clerk")
    tab.sign_in("wangmin", PASSWORD)
    page = tab.go("/queue")
    row = page.locator(f"#case-{receipt}")
    assert "已收件" in row.inner_text()
    offered = row.locator("select[name=action] option").evaluate_all("os => os.map(o => o.value)")
    assert offered == ["accept", "return", "withdraw"]  # the state's actions this clerk's role allows
    assert _unlabelled(page) == []
    row.locator("select[name=action]").select_option("accept")
    with page.expect_navigation():
        row.locator("button[type=submit]").click()
    tab.shot("accepted")
    assert "已办理" in page.inner_text("[role=status]")
    assert client.get(receipt).status == "accepted"
    assert "已受理" in page.locator(f"#case-{receipt}").inner_text()
    _light(tab)


def test_the_window_takes_a_fee_and_green_channel_cases_come_first(
        make_node, browser: Browser, visit: list[Visit], request: pytest.FixtureRequest) -> None:  # noqa: F811
    node, client = make_node("371102", "county", console=CONSOLE)
    owed = submit(client, "ZR-0003").case.receipt  # transfer registration: 80.00 yuan (the first certificate free)
    for action in ("accept", "review", "approve"):
        client.act(owed, action)
    first = submit(client, "MZ-0004", key="later-due").case.receipt
    urgent = submit(client, "MZ-0004", key="flagged").case.receipt
    client.green_channel(urgent, "市重点项目配套")  # received last, worked on first
    add_account(node.data_dir, "sunli", [Role.WINDOW_CLERK], ["自然资源和规划局", "民政局"], name="孙丽")
    tab = open_visit(browser, visit, node.node.console_url, request.node.name, "clerk")
    tab.sign_in("sunli", PASSWORD)
    page = tab.go("/queue")
    ids = page.locator("table.queue").first.locator("tbody tr").evaluate_all("rs => rs.map(r => r.id)")
    assert ids[0] == f"case-{urgent}" and f"case-{first}" in ids[1:]
    assert "绿色通道" in page.locator(f"#case-{urgent}").inner_text()
    row = page.locator(f"#case-{owed}")
    assert row.locator("input[name=amount]").input_value() == "80.00"
    assert "pay" not in row.locator("select[name=action] option").evaluate_all("os => os.map(o => o.value)")
    assert _unlabelled(page) == []
    row.locator("select[name=method]").select_option("wechat")
    row.locator("input[name=number]").fill("WX20261203-0001")
    with page.expect_navigation():
        row.locator("form.pay button").click()
    tab.shot("paid")
    assert "已办理" in page.inner_text("[role=status]")
    paid = client.get(owed)
    assert (paid.fees_paid_fen, paid.fees_outstanding_fen) == (8000, 0)
    assert page.locator(f"#case-{owed} form.pay").count() == 0
    _light(tab)


def test_the_dashboard_shows_what_govnet_stats_says(make_node, browser: Browser, visit: list[Visit],  # noqa: F811
                                                    request: pytest.FixtureRequest) -> None:
    node, client = make_node("371102", "county", console=CONSOLE)
    for code in ("SJ-0001", "GA-0003", "HB-0002"):
        submit(client, code)
    statistics_settled(node.data_dir)
    add_account(node.data_dir, "zhao", [Role.SUPERVISOR], name="赵监察")
    tab = open_visit(browser, visit, node.node.console_url, request.node.name, "supervisor")
    tab.sign_in("zhao", PASSWORD)
    page = tab.go("/dashboard")
    shown = {c: int(page.inner_text(f"#totals [data-counter={c}]"))
             for c in page.locator("#totals [data-counter]").evaluate_all("ts => ts.map(t => t.dataset.counter)")}
    done = govnet("stats", "--by", "child", "--json", "--node", node.address)
    assert done.returncode == 0, done.stderr
    said = {k: int(v) for k, v in json.loads(done.stdout)["total"]["counters"].items()}
    assert shown == said and shown["received"] == 3
    # The export carries the same totals.
    cookies = {c["name"]: c["value"] for c in tab.context.cookies()}
    got = httpx.get(node.node.console_url + "/dashboard.csv", cookies=cookies, verify=False)
    assert got.status_code == 200
    lines = got.content.decode("utf-8-sig").splitlines()
    total = dict(zip(lines[0].split(","), lines[-1].split(","), strict=True))
    assert int(total["received"]) == 3
    xlsx = httpx.get(node.node.console_url + "/dashboard.xlsx", cookies=cookies, verify=False)
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    _light(tab)


def test_the_dashboard_drills_into_a_township_and_shows_the_complaints_below(
        linked, sample_catalog, browser: Browser, visit: list[Visit],  # noqa: F811
        request: pytest.FixtureRequest) -> None:
    from govnet.node.rpc.client import GovnetClient

    county = linked("371102", "county", "127.0.0.1:1", console=CONSOLE)
    first = linked("371102001", "township", county.address)
    second = linked("371102002", "township", county.address)
    with GovnetClient(county.address) as k, GovnetClient(first.address) as a, GovnetClient(second.address) as b:
        k.put_catalog(sample_catalog)
        for c in (a, b):
            wait_for(lambda c=c: bool(c.list_items().items), 30, lambda: "the catalog did not reach a township")
        for c, n in ((a, 2), (b, 1)):
            for i in range(n):
                submit(c, "SJ-0002", key=f"dash-{c.address}-{i}")  # decided at the township
        a.file_complaint("窗口态度差，办事拖延", about_node="371102001", department="市场监督管理局")

        def stats(*extra: str) -> dict:
            done = govnet("stats", "--by", "child", "--json", "--node", county.address, *extra)
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)

        wait_for(lambda: int(stats()["total"]["counters"].get("received", 0)) == 3, 60, lambda: str(stats()["total"]))
        wait_for(lambda: bool(k.complaints(status="open").complaints), 30, lambda: "the complaint did not reach the county")

        add_account(county.data_dir, "zhao", [Role.SUPERVISOR], name="赵监察")
        tab = open_visit(browser, visit, county.node.console_url, request.node.name, "supervisor")
        tab.sign_in("zhao", PASSWORD)
        page = tab.go("/dashboard")
        assert "窗口态度差" in page.inner_text("#complaints")
        with page.expect_navigation():
            page.click("#children a:text('371102001')")
        tab.shot("drilled")
        assert "371102001" in page.inner_text("#root")
        shown = {c: int(page.inner_text(f"#totals [data-counter={c}]"))
                 for c in page.locator("#totals [data-counter]").evaluate_all("ts => ts.map(t => t.dataset.counter)")}
        said = {k: int(v) for k, v in stats("--subtree", "371102001")["total"]["counters"].items()}
        assert shown == said and shown["received"] == 2
        assert "窗口态度差" in page.inner_text("#complaints")  # about this township: shown in its drill-down
        with page.expect_navigation():
            page.click("#up")
        assert int(page.inner_text("#totals [data-counter=received]")) == 3
        _light(tab)


def test_a_clerk_cannot_reach_the_supervisors_page_and_english_is_a_click_away(
        make_node, browser: Browser, visit: list[Visit], request: pytest.FixtureRequest) -> None:  # noqa: F811
    node, _ = make_node("371102", "county", console=CONSOLE)
    add_account(node.data_dir, "liuqing", [Role.WINDOW_CLERK], ["公安局"], name="刘青")
    tab = open_visit(browser, visit, node.node.console_url, request.node.name, "clerk")
    page = tab.go("/dashboard")
    assert page.url.endswith("/login?next=/dashboard")  # not signed in: to the login page first
    tab.sign_in("liuqing", PASSWORD)
    assert "监察" not in page.inner_text("nav")  # not offered
    response = page.goto("/dashboard")
    tab.shot("forbidden")
    assert response is not None and response.status == 403
    assert "无权访问" in page.inner_text("h1") and "监察员" in page.inner_text(".problem")
    with page.expect_navigation():
        page.click("text=English")
    tab.shot("forbidden-en")
    assert page.inner_text("h1") == "Not allowed" and "Sign out" in page.inner_text("header")
    # A form POST without the session's CSRF field changes nothing.
    cookies = {c["name"]: c["value"] for c in tab.context.cookies()}
    forged = httpx.post(node.node.console_url + "/logout", cookies=cookies, verify=False)
    assert forged.status_code == 403
    assert httpx.get(node.node.console_url + "/queue", cookies=cookies, verify=False).status_code == 200
    _light(tab)


def test_the_applicant_tracks_a_delivered_case_and_rates_it_once_at_the_terminal(
        make_node, browser: Browser, visit: list[Visit], request: pytest.FixtureRequest) -> None:  # noqa: F811
    node, client = make_node("371102", "county", console=CONSOLE)
    done = submit(client, "SJ-0001")
    receipt, code = done.case.receipt, done.rating_code
    for action in ("accept", "approve", "complete", "deliver"):
        client.act(receipt, action)
    tab = open_visit(browser, visit, node.node.console_url, request.node.name, "applicant")  # nobody signed in
    page = tab.go("/track")
    page.keyboard.type(receipt)  # the receipt field has the focus: a scanner types and presses Enter
    with page.expect_navigation():
        page.keyboard.press("Enter")
    tab.shot()
    assert page.inner_text("#status") == "已办结，结果已领取"  # the applicant's words (node.domain.progress)
    assert [li for li in page.locator("ol.progress li").all_inner_texts() if li.endswith("结果已领取")]
    assert _unlabelled(page) == []
    page.select_option("#rating", "satisfied")
    page.fill("#code", code)
    with page.expect_navigation():
        page.click("form[action='/track/rate'] button")
    tab.shot("rated")
    assert "评价已提交" in page.inner_text("[role=status]")
    assert page.locator("form[action='/track/rate']").count() == 0  # one case, one evaluation
    again = httpx.post(node.node.console_url + "/track/rate", verify=False,
                       data={"receipt": receipt, "rating": "very_dissatisfied", "code": code})
    assert again.status_code in (400, 403, 409) and "problem" in again.text
    _light(tab)


@pytest.fixture
def linked(loop, tmp_path):  # type: ignore[no-untyped-def]
    """Nodes on the real clock, each linked to its parent (the sync driver runs)."""
    yield from in_process_nodes(loop, tmp_path, {"flush_interval_s": 0.1, "digest_interval_s": 5.0},
                                start=start_in_process)


def test_the_village_delivers_a_county_decision_and_the_applicant_rates_it_there(
        linked, sample_catalog, browser: Browser, visit: list[Visit],  # noqa: F811
        request: pytest.FixtureRequest) -> None:
    from govnet.node.rpc.client import GovnetClient

    county = linked("371102", "county", "127.0.0.1:1")
    town = linked("371102001", "township", county.address)
    village = linked("371102001201", "village", town.address, console=CONSOLE)
    with GovnetClient(county.address) as k, GovnetClient(village.address) as v:
        k.put_catalog(sample_catalog)
        wait_for(lambda: bool(v.list_items().items), 30, lambda: "the catalog did not reach the village")
        submitted = submit(v, "WL-0001", agent="村代办员-李四")  # decided at the county
        receipt, code = submitted.case.receipt, submitted.rating_code
        wait_for(lambda: bool(k.list(limit=10).cases), 30, lambda: "the case did not reach the county")
        for action, actor in (("accept", CLERK), ("approve", CHIEF), ("complete", CLERK)):
            k.act(receipt, action, actor=actor)
        wait_for(lambda: v.get(receipt).status == "completed", 30, lambda: v.get(receipt).status)

        add_account(village.data_dir, "lida", [Role.VILLAGE_AGENT], name="李代办")
        tab = open_visit(browser, visit, village.node.console_url, request.node.name, "agent")
        tab.sign_in("lida", PASSWORD)
        page = tab.go("/queue")
        row = page.locator(f"#deliver-{receipt}")
        assert row.count() == 1, "the county's decision waits at the village window"
        with page.expect_navigation():
            row.locator("button").click()
        tab.shot("delivered")
        assert page.locator(f"#deliver-{receipt}").count() == 0

        desk = open_visit(browser, visit, village.node.console_url, request.node.name, "applicant")
        page = desk.go(f"/track?receipt={receipt}")
        assert page.inner_text("#status") == "已办结，结果已领取"
        page.select_option("#rating", "very_satisfied")
        page.fill("#code", code)
        with page.expect_navigation():
            page.click("form[action='/track/rate'] button")
        desk.shot("rated")
        assert "评价已提交" in page.inner_text("[role=status]")
        assert page.locator("form[action='/track/rate']").count() == 0

        def recorded() -> list[str]:
            return [e.action for e in k.get(receipt).events][-2:]

        wait_for(lambda: recorded() == ["deliver", "evaluate"], 30, lambda: str(recorded()))
        _light(tab)


def test_a_console_configured_plaintext_serves_plain_http_and_says_so_in_its_cookies(make_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("371100", "city", console={"listen": "127.0.0.1:0", "plaintext": True})
    url = node.node.console_url
    assert url is not None and url.startswith("http://")
    form = httpx.get(url + "/login")
    assert form.status_code == 200 and "Secure" not in form.headers["set-cookie"]
    assert "HttpOnly" in form.headers["set-cookie"] and "SameSite=strict" in form.headers["set-cookie"]
    assert float(form.headers["server-timing"].split("dur=")[1]) >= 0
    # The city has no parent: no banner.
    assert 'role="alert"' not in form.text


def test_a_window_returns_an_application_missing_a_core_material_with_its_one_time_notice(
        make_node, browser: Browser, visit: list[Visit], request: pytest.FixtureRequest) -> None:  # noqa: F811
    node, client = make_node("371102", "county", console=CONSOLE)
    add_account(node.data_dir, "sunli", [Role.WINDOW_CLERK], ["市场监督管理局"], name="孙丽")
    tab = open_visit(browser, visit, node.node.console_url, request.node.name, "clerk")
    tab.sign_in("sunli", PASSWORD)
    page = tab.go("/intake/SJ-0001")
    page.fill("#name", NAME)
    page.fill("#id_number", ID_NUMBER)
    page.fill("#phone", PHONE)
    page.check("#m1")  # the application form only: three core materials missing
    with page.expect_navigation():
        page.click("button[name=then][value=return]")
    tab.shot("returned")
    number = page.inner_text("#receipt-number")
    notice = page.inner_text(".notice")
    for material in ("公司章程", "股东主体资格证明", "住所使用证明"):
        assert material in notice  # every missing one at once
    assert page.inner_text("#status") == "已退回"
    assert client.get(number).status == "returned"
    # Printed again from the queue's link, the notice is there (the rating code is not: it is shown once).
    page = tab.go(f"/receipt/{number}")
    assert "公司章程" in page.inner_text(".notice") and page.locator("#rating-code").count() == 0
    # The printable notice: every missing material at once, the item's legal basis.
    with page.expect_navigation():
        page.click("#notice-link")
    tab.shot("notice")
    printed = page.inner_text("body")
    assert "一次性告知书" in printed and "公司章程" in printed and "住所使用证明" in printed and "依据" in printed
    _light(tab)
