"""A real browser for the console's tests: Debian's chromium (``make browser`` installs it and the
CJK fonts) driven by the pinned playwright, never a browser playwright downloads.

``browser`` (a fixture, one chromium per test module) and ``Visit``: a page at a console's
address that saves a screenshot of every page it shows into ``build/screenshots/<test>/``
(an artifact of the run, not committed), and checks that each page stays under the console's
size budget. Test modules import the fixtures by name: ``from support.browser import browser``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response, sync_playwright

CHROMIUM = os.environ.get("GOVNET_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
PAGE_BUDGET = 200 * 1024  # bytes of HTML a console page may weigh (issue: under 200 KB)
VIEWPORT = {"width": 1366, "height": 768}  # the old PC at the window


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One chromium per test module: playwright's sync API keeps an event loop running in this
    thread while it is open, so it is closed before the next module (whose tests may run their
    own loop with asyncio.run)."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run 'make browser' (Debian's chromium and fonts-noto-cjk)")
    with sync_playwright() as p:
        # --no-sandbox: the tests run as root in CI, where chromium's sandbox refuses to start.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Visit:
    """One person's browser tab on a console (its own cookies), screenshotting every page it shows."""

    def __init__(self, browser: Browser, base_url: str, folder: Path, lang: str = "zh-CN") -> None:
        # The node's certificate is issued by the city's own CA, which this browser does not know.
        self.context = browser.new_context(base_url=base_url, ignore_https_errors=True, viewport=VIEWPORT,  # type: ignore[arg-type]
                                           locale=lang, timezone_id="Asia/Shanghai")
        self.page: Page = self.context.new_page()
        self.folder = folder
        self.count = 0
        self.sizes: dict[str, int] = {}
        self.page.on("response", self._weigh)

    def _weigh(self, response: Response) -> None:
        if response.request.resource_type == "document" and not 300 <= response.status < 400:
            self.sizes[response.url] = len(response.body())

    def go(self, path: str) -> Page:
        self.page.goto(path)
        self.shot()
        return self.page

    def shot(self, name: str = "") -> Path:
        """Save what the page shows now (called after every navigation the test makes)."""
        self.page.wait_for_load_state()
        self.count += 1
        slug = name or re.sub(r"[^A-Za-z0-9]+", "-", self.page.url.split("//", 1)[-1].split("/", 1)[-1]).strip("-")
        path = self.folder / f"{self.count:02d}-{slug or 'home'}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def sign_in(self, login: str, password: str) -> None:
        """Sign in with the keyboard alone: type, Tab to the password, Enter submits."""
        self.go("/login")
        self.page.keyboard.type(login)  # the login field has the focus when the page opens
        self.page.keyboard.press("Tab")
        self.page.keyboard.type(password)
        with self.page.expect_navigation():
            self.page.keyboard.press("Enter")
        self.shot()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Browser, request: pytest.FixtureRequest) -> Iterator[list[Visit]]:
    """Open tabs with ``tabs.append(Visit(...))`` through ``open_visit``; all are closed at the end."""
    opened: list[Visit] = []
    yield opened
    for v in opened:
        v.close()


def open_visit(browser: Browser, tabs: list[Visit], base_url: str, test_name: str, who: str) -> Visit:
    folder = SCREENSHOTS / re.sub(r"[^A-Za-z0-9_]+", "_", test_name) / who
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    v = Visit(browser, base_url, folder)
    tabs.append(v)
    return v
