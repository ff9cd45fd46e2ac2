"""The console's pages over one node: routes for Starlette, each a thin adapter from a form or a
query to the desk, the accounts, the statistics and the store (see the package docstring)."""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from govnet.federation.tree import in_subtree, parent_id
from govnet.node.app.accounts import Accounts
from govnet.node.app.complaints import ComplaintDesk
from govnet.node.app.desk import CaseDesk, DeskError, ErrorKind, SubmitCommand, payment
from govnet.node.app.links import UpLink, link_reports
from govnet.node.app.statistics_ledger import StatsAnswer, StatsQueryError, answer, check_drill
from govnet.node.app.supervision import Supervisor
from govnet.node.app.tracking import AskParent, Tracker
from govnet.node.console import codes, sessions, text
from govnet.node.domain.calendar import WorkCalendar, local_date
from govnet.node.domain.catalog import ServiceItem
from govnet.node.domain.clock import Clock
from govnet.node.domain.fees import PaymentMethod, yuan
from govnet.node.domain.lifecycle import FINISHED, RATINGS, Action, ActParams, Status, allowed_actions, fees_outstanding
from govnet.node.domain.notice import render_html
from govnet.node.domain.people import WINDOW_ROLES, Facts, Op, Person, Role, authorize
from govnet.node.domain.progress import Stage
from govnet.node.domain.statistics import COUNTERS, rates
from govnet.node.store import cases as case_rows
from govnet.node.store.cases import CaseRecord, StoredEvent
from govnet.node.store.engine import Store

T = TypeVar("T")

READ_THREADS = 4  # the console's own store readers (not the loop's default executor: gRPC's work runs there)
QUEUE_ROWS = 50  # a queue page shows the most urgent this many (a page under 60 KB); filters narrow it
CATALOG_ROWS = 200
# The rates a supervisor ranks the children by (``statistics.RANKINGS`` has them all; these three the page offers).
DASHBOARD_RANKS = ("on_time", "immediate", "satisfaction")
TREND_DAYS = 30  # the dashboard's trend: cases received and completed a day, this many days back
_HTTP_STATUS = {ErrorKind.INVALID: 400, ErrorKind.NOT_FOUND: 404, ErrorKind.PRECONDITION: 409,
                ErrorKind.CONFLICT: 409, ErrorKind.UNAUTHENTICATED: 401, ErrorKind.DENIED: 403}


@dataclass(frozen=True)
class Nav:
    path: str
    key: str  # its label in text.MESSAGES
    op: str  # what the person must be allowed to see it (people.authorize); "" for everyone


NAV = (Nav("/intake", "intake", Op.SUBMIT), Nav("/queue", "queue", Op.READ_CASES), Nav("/track", "track", ""),
       Nav("/dashboard", "dashboard", Op.READ_SUPERVISION))


class Refused(Exception):
    """A page the person may not see, or a request it cannot take: shown as a page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def may(person: Person | None, op: str, department: str = "") -> bool:
    return person is not None and (not op or authorize(person, op, Facts(department=department)) is None)


@dataclass(frozen=True)
class Urgency:
    """How a queued case shows: red past its due date, amber within a working day of it."""

    css: str  # "overdue" | "warning" | ""
    key: str  # its label in text.MESSAGES ("" for none)


def urgency(due: date | None, today: date, warn_until: date) -> Urgency:
    if due is None:
        return Urgency("", "")
    if due < today:
        return Urgency("overdue", "overdue")
    if due <= warn_until:
        return Urgency("warning", "warning")
    return Urgency("", "")


class Console:
    """The pages of one node. ``secure``: served over HTTPS (the session cookie is then Secure)."""

    def __init__(self, store: Store, desk: CaseDesk, accounts: Accounts, supervisor: Supervisor,
                 uplink: UpLink | None, calendar: WorkCalendar, clock: Clock, flush_interval: timedelta,
                 secure: bool, complaints: ComplaintDesk, parent: AskParent | None = None) -> None:
        self.store, self.desk, self.accounts, self.supervisor = store, desk, accounts, supervisor
        self.uplink, self.calendar, self.clock, self.flush_interval = uplink, calendar, clock, flush_interval
        self.secure = secure
        self.here = store.meta.node_id
        self.complaints = complaints
        self.tracker, self.parent = Tracker(desk), parent  # a receipt held nowhere here is asked up the tree
        self._readers = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="govnet-console")
        self.templates = Environment(loader=PackageLoader("govnet.node.console", "templates"),
                                     autoescape=select_autoescape(default=True, default_for_string=True),
                                     trim_blocks=True, lstrip_blocks=True)

    def close(self) -> None:
        self._readers.shutdown(wait=False, cancel_futures=True)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, functools.partial(fn, *args))

    def routes(self) -> list[BaseRoute]:
        page = self._page
        return [
            Route("/", page(self.home), methods=["GET"]),
            Route("/login", page(self.login_form), methods=["GET"]),
            Route("/login", page(self.login), methods=["POST"]),
            Route("/logout", page(self.logout), methods=["POST"]),
            Route("/lang", page(self.switch_language), methods=["GET"]),
            Route("/intake", page(self.catalog), methods=["GET"]),
            Route("/intake/{code}", page(self.item_form), methods=["GET"]),
            Route("/intake/{code}", page(self.submit), methods=["POST"]),
            Route("/receipt/{receipt}", page(self.receipt), methods=["GET"]),
            Route("/notice/{receipt}", page(self.notice), methods=["GET"]),
            Route("/queue", page(self.queue), methods=["GET"]),
            Route("/cases/{receipt}/act", page(self.act), methods=["POST"]),
            Route("/track", page(self.track), methods=["GET"]),
            Route("/track/rate", page(self.rate), methods=["POST"]),
            Route("/dashboard", page(self.dashboard), methods=["GET"]),
            Route("/dashboard.csv", page(self.dashboard_csv), methods=["GET"]),
            Route("/dashboard.xlsx", page(self.dashboard_xlsx), methods=["GET"]),
            Mount("/static", StaticFiles(packages=[("govnet.node.console", "static")]), name="static"),
            Route("/{path:path}", page(self.not_found), methods=["GET", "POST"]),
        ]

    # --- the frame every page shares -------------------------------------------------------------

    def _page(self, handler: Callable[[Request, Context], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            response = await respond(request)
            # The server's own time for the page (what `govnet bench console` reads), per the Server-Timing header.
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            return response

        async def respond(request: Request) -> Response:
            ctx = await self._context(request)
            try:
                return await handler(request, ctx)
            except _SignIn as exc:
                return _redirect("/login?next=" + quote(str(exc)))
            except Refused as exc:
                return self.render(ctx, "error.html", exc.status, message=str(exc))
            except DeskError as exc:
                return self.render(ctx, "error.html", _HTTP_STATUS.get(exc.kind, 400), message=str(exc))
        return endpoint

    async def _context(self, request: Request) -> Context:
        lang = text.language(request.cookies.get(sessions.LANG_COOKIE))
        token = request.cookies.get(sessions.SESSION_COOKIE, "")
        person = None
        if token:
            try:
                person = self.accounts.cached(token) or await self._read(self.accounts.person, token)
            except DeskError:
                token = ""
        offline = await self._read(self._offline)
        return Context(request, lang, token, person, offline)

    def _offline(self) -> dict[str, Any] | None:
        """The banner's facts when the link up is not connected (None: all is well, or the city)."""
        if self.uplink is None:
            return None
        now = self.clock.now()
        for report in link_reports(self.store, self.uplink, now, self.flush_interval):
            if report.direction == "up" and report.health in ("offline", "retrying", "never"):
                since = report.last_success or report.since
                return {"since": since, "waiting": report.outbox_depth}
        return None

    def render(self, ctx: Context, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        lang = ctx.lang
        nav = [(n.path, text.say(lang, n.key)) for n in NAV if (not n.op or may(ctx.person, n.op))]
        body = self.templates.get_template(name).render(
            t=functools.partial(text.say, lang), lang=lang, here=self.here, person=ctx.person, nav=nav,
            path=ctx.request.url.path, query=ctx.request.url.query, offline=ctx.offline,
            csrf=sessions.csrf_for(ctx.token) if ctx.token else "",
            status_label=functools.partial(text.label, text.STATUS, lang),
            action_label=functools.partial(text.label, text.ACTION, lang),
            type_label=functools.partial(text.label, text.CASE_TYPE, lang),
            day=functools.partial(text.day, lang), moment=functools.partial(text.moment, lang),
            **values)
        return HTMLResponse(body, status, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                                   "Content-Language": "en" if lang == "en" else "zh-CN"})

    def _require(self, ctx: Context, op: str) -> Person:
        """The signed-in person if ``op`` is theirs; a redirect to the login page or a 403 page otherwise."""
        if ctx.person is None:
            raise _SignIn(ctx.request.url.path)
        refusal = authorize(ctx.person, op) if op else None
        if refusal is not None:
            raise Refused(403, text.say(ctx.lang, "forbidden_text") + f" ({refusal})")
        return ctx.person

    async def _form(self, ctx: Context) -> dict[str, list[str]]:
        """The POSTed form (urlencoded), its CSRF field checked against the session."""
        body = await ctx.request.body()
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=200)
        if ctx.token and not sessions.csrf_ok(ctx.token, _one(form, "csrf")):
            raise Refused(403, text.say(ctx.lang, "csrf"))
        return form

    # --- signing in and out, the language ------------------------------------------------------

    async def home(self, request: Request, ctx: Context) -> Response:
        if ctx.person is None:
            return _redirect("/login")
        for n in NAV:
            if n.op and may(ctx.person, n.op):
                return _redirect(n.path)
        return _redirect("/track")

    async def login_form(self, request: Request, ctx: Context, error: str = "", status: int = 200) -> Response:
        nonce = sessions.login_nonce()
        response = self.render(ctx, "login.html", status, nonce=nonce, error=error,
                               next=sessions.safe_next(request.query_params.get("next", "/")))
        response.set_cookie(sessions.LOGIN_COOKIE, nonce, max_age=3600, httponly=True, secure=self.secure,
                            samesite="strict")
        return response

    async def login(self, request: Request, ctx: Context) -> Response:
        form = await self._form(ctx)
        if not sessions.same(request.cookies.get(sessions.LOGIN_COOKIE, ""), _one(form, "nonce")):
            return await self.login_form(request, ctx, text.say(ctx.lang, "csrf"), 403)
        try:
            done = await self._read(self.accounts.login, _one(form, "login"), _one(form, "password"))
        except DeskError:
            return await self.login_form(request, ctx, text.say(ctx.lang, "login_refused"), 401)
        response = _redirect(sessions.safe_next(_one(form, "next") or "/"))
        life = int((done.expires_at - self.accounts.clock.now()).total_seconds())
        response.set_cookie(sessions.SESSION_COOKIE, done.token, max_age=max(60, life), httponly=True,
                            secure=self.secure, samesite="strict")
        response.delete_cookie(sessions.LOGIN_COOKIE)
        return response

    async def logout(self, request: Request, ctx: Context) -> Response:
        await self._form(ctx)
        if ctx.token:
            await self._read(self.accounts.logout, ctx.token)
        response = _redirect("/login")
        response.delete_cookie(sessions.SESSION_COOKIE, secure=self.secure, httponly=True, samesite="strict")
        return response

    async def switch_language(self, request: Request, ctx: Context) -> Response:
        lang = text.language(request.query_params.get("to"))
        response = _redirect(sessions.safe_next(request.query_params.get("next", "/")))
        response.set_cookie(sessions.LANG_COOKIE, lang, max_age=365 * 86400, secure=self.secure, samesite="strict")
        return response

    async def not_found(self, request: Request, ctx: Context) -> Response:
        raise Refused(404, text.say(ctx.lang, "not_found") + f": {request.url.path[:60]}")

    # --- intake ---------------------------------------------------------------------------------

    async def _catalog(self) -> Any:
        return self.store.cached_catalog or await self._read(self.store.catalog)

    async def catalog(self, request: Request, ctx: Context) -> Response:
        self._require(ctx, Op.SUBMIT)
        catalog = await self._catalog()
        q = request.query_params.get("q", "").strip()[:50]
        department = request.query_params.get("department", "").strip()[:50]
        items = sorted(catalog.items.values(), key=lambda i: i.code)
        departments = sorted({i.department for i in items})
        chosen = [i for i in items if (not department or i.department == department)
                  and (not q or q.lower() in i.code.lower() or q in i.name)][:CATALOG_ROWS]
        return self.render(ctx, "catalog.html", items=chosen, departments=departments, q=q, department=department)

    async def _item(self, code: str) -> ServiceItem:
        item = (await self._catalog()).items.get(code)
        if item is None:
            raise DeskError(ErrorKind.NOT_FOUND, f"no item {code[:30]} in this node's catalog")
        return item

    async def item_form(self, request: Request, ctx: Context, *, values: dict[str, Any] | None = None,
                        problems: list[str] | None = None, status: int = 200) -> Response:
        person = self._require(ctx, Op.SUBMIT)
        item = await self._item(request.path_params["code"])
        values = values or {"key": uuid.uuid4().hex, "materials": []}
        return self.render(ctx, "item.html", status, item=item, values=values, problems=problems or [],
                           can_return=may(person, "return", item.department),
                           can_accept=may(person, "accept", item.department))

    async def submit(self, request: Request, ctx: Context) -> Response:
        person = self._require(ctx, Op.SUBMIT)
        item = await self._item(request.path_params["code"])
        form = await self._form(ctx)
        provided = [m.name for m in item.materials if m.name in form.get("material", [])]
        values = {"key": _one(form, "key") or uuid.uuid4().hex, "materials": provided, "name": _one(form, "name"),
                  "id_number": _one(form, "id_number"), "phone": _one(form, "phone"), "note": _one(form, "note"),
                  "tolerance": bool(_one(form, "tolerance"))}
        then = _one(form, "then")  # "" | "return"
        missing_core, missing_other = item.missing(provided)
        problems = []
        if then != "return":
            if missing_core:
                problems.append(text.say(ctx.lang, "missing_core") + "、".join(missing_core))
            if missing_other and not item.tolerance:
                problems.append(text.say(ctx.lang, "missing_other") + "、".join(missing_other) + "；"
                                + text.say(ctx.lang, "no_tolerance"))
            elif missing_other and not values["tolerance"]:
                problems.append(text.say(ctx.lang, "missing_other") + "、".join(missing_other) + "；"
                                + text.say(ctx.lang, "tolerance_promise"))
        elif not may(person, "return", item.department):
            raise Refused(403, text.say(ctx.lang, "forbidden_text"))
        if problems:
            return await self.item_form(request, ctx, values=values, problems=problems, status=400)
        cmd = SubmitCommand(
            idempotency_key=str(values["key"]), item_code=item.code, applicant_name=str(values["name"]),
            applicant_id=str(values["id_number"]), applicant_phone=str(values["phone"]), materials=tuple(provided),
            agent=person.actor if not person.roles & WINDOW_ROLES else "", note=str(values["note"]),
            actor=person.actor, person=person)
        try:
            done = await self.desk.submit(cmd)
        except DeskError as exc:
            if exc.kind is not ErrorKind.INVALID:
                raise
            return await self.item_form(request, ctx, values=values, problems=[str(exc)], status=400)
        receipt = done.record.state.receipt
        record = done.record
        if not done.replayed:
            follow = "return" if then == "return" else "accept" if may(person, "accept", item.department) else ""
            if follow:
                reason = "" if follow == "accept" else "材料不齐（一次性告知）"
                acted = await self.desk.act(receipt, follow, ActParams(actor=person.actor, reason=reason),
                                            None, person=person)
                record = acted.record
        return self._receipt_page(ctx, record, item, done.rating_code)

    def _receipt_page(self, ctx: Context, record: CaseRecord, item: ServiceItem | None, rating_code: str) -> Response:
        st = record.state
        nxt = {Status.RECEIVED: "next_received", Status.RETURNED: "next_returned",
               Status.ESCALATED: "next_escalated"}.get(st.status, "next_accepted")
        return self.render(ctx, "receipt.html", record=record, st=st, item=item, rating_code=rating_code,
                           barcode=codes.code128_svg(st.receipt), qr=codes.qr_svg(st.receipt), next_key=nxt)

    async def receipt(self, request: Request, ctx: Context) -> Response:
        self._require(ctx, Op.READ_CASES)
        record, _ = await self._read(self.desk.get, request.path_params["receipt"])
        item = (await self._catalog()).items.get(record.state.item_code)
        return self._receipt_page(ctx, record, item, "")

    async def notice(self, request: Request, ctx: Context) -> Response:
        """The case's one-time notice (一次性告知书) as the printable page ``node.domain.notice`` renders
        (the same text ``govnet case notice --html`` gives), to hand to the applicant."""
        self._require(ctx, Op.READ_CASES)
        facts = await self._read(self.desk.notice, request.path_params["receipt"])
        return HTMLResponse(render_html(facts))

    # --- the work queue -------------------------------------------------------------------------

    async def queue(self, request: Request, ctx: Context) -> Response:
        person = self._require(ctx, Op.READ_CASES)
        status = request.query_params.get("status", "")
        if status and status not in {s.value for s in Status}:
            raise Refused(400, f"status {status[:30]!r}?")
        department = request.query_params.get("department", "").strip()[:50]
        due_text = request.query_params.get("due_before", "")
        try:
            due_before = date.fromisoformat(due_text) if due_text else None
        except ValueError:
            raise Refused(400, f"due_before {due_text[:30]!r}: YYYY-MM-DD") from None
        rows, waiting = await self._read(self._queue_rows, status, department, due_before)
        today = local_date(self.clock.now())
        warn_until = self.calendar.add_working_days(today, 1)
        shown = []
        for r in rows:
            actions = [a for a in allowed_actions(r.state) if a != Action.PAY and may(person, a, r.department)]
            shown.append((r, urgency(r.state.due, today, warn_until), actions, self._fee(person, r)))
        deliverable = [(r, [a for a in allowed_actions(r.state) if a == Action.DELIVER and may(person, a, r.department)
                            and not fees_outstanding(r.state)], self._fee(person, r)) for r in waiting]
        catalog = await self._catalog()
        departments = sorted({i.department for i in catalog.items.values()})
        return self.render(ctx, "queue.html", rows=shown, waiting=deliverable, methods=list(PaymentMethod), statuses=[s.value for s in Status if s not in FINISHED],
                           departments=departments, chosen_status=status, department=department, due_before=due_text,
                           message=request.query_params.get("done", "")[:120])

    def _fee(self, person: Person, record: CaseRecord) -> Fee | None:
        """What a case still owes, and whether this window may take the payment (the owner records
        it): None when nothing is due."""
        owed = fees_outstanding(record.state)
        if not owed:
            return None
        here = record.state.owner == self.here and Action.PAY in allowed_actions(record.state)
        return Fee(yuan(owed), here and may(person, Action.PAY, record.department))

    def _queue_rows(self, status: str, department: str,
                    due_before: date | None) -> tuple[list[CaseRecord], list[CaseRecord]]:
        """The cases this node works on, and the results waiting to be handed over at its window."""
        with self.store.reading() as s:
            working = case_rows.work_queue(s, self.here, tuple(sorted(FINISHED)), status=status,
                                           department=department, due_before=due_before, limit=QUEUE_ROWS)
            return working, case_rows.awaiting_delivery(s, self.here, limit=QUEUE_ROWS)

    async def act(self, request: Request, ctx: Context) -> Response:
        person = self._require(ctx, Op.READ_CASES)
        form = await self._form(ctx)
        receipt, action = request.path_params["receipt"], _one(form, "action")
        if action == Action.PAY:  # 统一收费: the payment as the collection point records it
            params = payment(person.actor, _one(form, "amount"), _one(form, "method"), _one(form, "number"))
        else:
            params = ActParams(actor=person.actor, reason=_one(form, "reason"),
                               materials=tuple(m for m in form.get("material", []) if m))
        await self.desk.act(receipt, action, params, None, person=person)
        back = sessions.safe_next(_one(form, "next") or "/queue")
        sep = "&" if "?" in back else "?"
        return _redirect(f"{back}{sep}done={quote(receipt + ' ' + text.label(text.ACTION, ctx.lang, action))}")

    # --- self-service tracking ------------------------------------------------------------------

    async def track(self, request: Request, ctx: Context) -> Response:
        """The public progress of a receipt, from any node: this node's own, or asked up the tree
        (``Tracker.progress``, the path the gRPC Track takes); rating where the case was delivered."""
        wanted = request.query_params.get("receipt", "").strip()[:40]
        view = held = None
        error = ""
        if wanted:
            try:
                receipt = self.desk.parse_receipt(wanted)
                view = await self.tracker.progress(receipt, self.parent)
                held = await self._read(self._held, receipt)
            except DeskError as exc:
                error = str(exc)
        record, events = held if held is not None else (None, [])
        rated = request.query_params.get("rated") == "1"
        # Rated here: the owner records it (and refuses a second one); until its event comes back,
        # the page that says "rated" offers no second form.
        rateable = record is not None and view is not None and view.stage is Stage.DELIVERED and not rated and not any(
            e.action == "evaluate" for e in events)
        return self.render(ctx, "track.html", 404 if error else 200, wanted=wanted, error=error, view=view,
                           record=record, rateable=rateable, ratings=RATINGS,
                           rating_label=functools.partial(text.label, text.RATING, ctx.lang),
                           terminal=ctx.person is not None and Role.TERMINAL in ctx.person.roles, rated=rated)

    def _held(self, receipt: str) -> tuple[CaseRecord, list[StoredEvent]] | None:
        """The case and its history if this node holds it (where it may be rated), else None."""
        try:
            return self.desk.get(receipt)
        except DeskError:
            return None

    async def rate(self, request: Request, ctx: Context) -> Response:
        """The applicant's rating at the terminal: with the receipt's one-time code (no staff login),
        or from a self-service terminal's account, as the gRPC Evaluate takes it."""
        form = await self._form(ctx)
        receipt, code = _one(form, "receipt").strip()[:40], _one(form, "code").strip()[:20]
        person = ctx.person
        use_code = None
        if code:
            if person is not None and Role.TERMINAL not in person.roles:
                raise Refused(403, text.say(ctx.lang, "forbidden_text") + f" ({person.login})")
            use_code = await asyncio.to_thread(self.accounts.check_rating_code, receipt, code)
            actor = person.actor if person is not None else "applicant (rating code)"
        elif person is None:
            raise Refused(400, text.say(ctx.lang, "rating_code_field"))
        else:
            refusal = authorize(person, Op.RATE)
            if refusal is not None:
                raise Refused(403, text.say(ctx.lang, "forbidden_text") + f" ({refusal})")
            actor = person.actor
        await asyncio.to_thread(self.supervisor.evaluate, receipt, _one(form, "rating"), _one(form, "comment"),
                                actor, use_code)
        return _redirect(f"/track?receipt={quote(receipt)}&rated=1")

    # --- the supervision dashboard --------------------------------------------------------------

    def _question(self, request: Request) -> tuple[str, str]:
        """The dashboard's drill-down (``subtree``: this node or one below it) and ranking
        (``rank``: one of ``DASHBOARD_RANKS``), as the address asks; checked by the ledger's rule."""
        subtree = request.query_params.get("subtree", "").strip()[:20]
        rank = request.query_params.get("rank", "on_time")
        if rank not in DASHBOARD_RANKS:
            raise Refused(400, f"rank {rank[:30]!r}: {', '.join(DASHBOARD_RANKS)}")
        try:
            root, _ = check_drill(self.here, subtree, rank)
        except StatsQueryError as exc:
            raise Refused(400, str(exc)) from None
        return root, rank

    async def _figures(self, root: str, rank: str) -> StatsAnswer:
        return await self._read(answer, self.store, "child", "", "", self.clock.now(), root, rank)

    async def dashboard(self, request: Request, ctx: Context) -> Response:
        self._require(ctx, Op.READ_SUPERVISION)
        root, rank = self._question(request)
        got = await self._figures(root, rank)
        now = self.clock.now()
        first = (local_date(now) - timedelta(days=TREND_DAYS - 1)).isoformat()
        by_department = await self._read(answer, self.store, "department", "", "", now, root)
        by_day = await self._read(answer, self.store, "day", first, "", now, root)
        alarms = [a for a in await self._read(self.supervisor.alarms) if a.open and in_subtree(a.owner, root)]
        complaints = await self._read(self.complaints.list, "open", root)
        # Children in the ledger's rank order (a child with no figure to rank by comes last).
        groups = [(k, v, rates(v)) for k, v in got.groups.items()]
        departments = [(k, v, rates(v)) for k, v in sorted(by_department.groups.items())]
        days = sorted(by_day.groups.items())
        peak = max([v.get("received", 0) for _, v in days] or [0]) or 1
        trend = [(k, v.get("received", 0), v.get("completed", 0), round(100 * v.get("received", 0) / peak)) for k, v in days]
        return self.render(ctx, "dashboard.html", got=got, total=got.total, total_rates=rates(got.total), groups=groups,
                           departments=departments, trend=trend, counters=COUNTERS, alarms=alarms[:100],
                           counter_label=functools.partial(text.label, text.COUNTER, ctx.lang),
                           alarm_count=len(alarms), complaints=complaints[:100], complaint_count=len(complaints),
                           root=root, rank=rank, ranks=DASHBOARD_RANKS,
                           up=parent_id(root) if root != self.here else None,
                           drill=f"?subtree={quote(root)}&rank={rank}")

    def _table(self, got: StatsAnswer) -> list[list[Any]]:
        head = ["group", *COUNTERS, "on_time_rate", "immediate_rate", "satisfaction_rate"]
        rows: list[list[Any]] = [head]
        for key, counts in [*got.groups.items(), ("total", got.total)]:
            r = rates(counts)
            rows.append([key, *(counts.get(c, 0) for c in COUNTERS),
                         *("" if v is None else round(v, 4) for v in (r.on_time, r.immediate, r.satisfaction))])
        return rows

    async def dashboard_csv(self, request: Request, ctx: Context) -> Response:
        self._require(ctx, Op.READ_SUPERVISION)
        got = await self._figures(*self._question(request))
        out = io.StringIO()
        csv.writer(out).writerows(self._table(got))
        return Response(out.getvalue().encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="govnet-{got.node}.csv"'})

    async def dashboard_xlsx(self, request: Request, ctx: Context) -> Response:
        self._require(ctx, Op.READ_SUPERVISION)
        got = await self._figures(*self._question(request))
        body = await self._read(_xlsx, self._table(got), got.node)
        return Response(body, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="govnet-{got.node}.xlsx"'})


@dataclass(frozen=True)
class Fee:
    """A fee still due on a queued case: the amount (yuan, as the form takes it) and whether the
    person may record its payment here."""

    outstanding: str
    payable: bool


@dataclass(frozen=True)
class Context:
    """Who asks, in which language, and the node's link state: what every page shows in its frame."""

    request: Request
    lang: str
    token: str
    person: Person | None
    offline: dict[str, Any] | None


class _SignIn(Refused):
    def __init__(self, path: str) -> None:
        super().__init__(401, path)


def _one(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


def _redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def _xlsx(rows: list[list[Any]], node: str) -> bytes:
    from openpyxl import Workbook  # only an export pays for importing it

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = node
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


__all__ = ["Console", "Urgency", "urgency"]
