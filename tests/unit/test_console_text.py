"""The console's pure parts: dates and times as people read them (Beijing time), the message
catalog, how urgent a queued case shows, where a redirect may go, the CSRF field, [console]."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from govnet.node.console import sessions, text
from govnet.node.console.pages import urgency
from govnet.node.process.config import Address, ConfigError, build_config, load_config, write_config


@pytest.mark.parametrize(("lang", "d", "shown"), [
    ("zh", date(2026, 12, 3), "2026年12月3日"),
    ("zh", date(2027, 1, 15), "2027年1月15日"),
    ("en", date(2026, 12, 3), "2026-12-03"),
    ("zh", None, "-"),
])
def test_dates_are_written_as_people_write_them(lang: str, d: date | None, shown: str) -> None:
    assert text.day(lang, d) == shown


def test_instants_are_shown_in_beijing_time() -> None:
    at = datetime(2026, 12, 3, 16, 5, tzinfo=UTC)  # 00:05 the next day in Beijing
    assert text.moment("zh", at) == "2026年12月4日 00:05"
    assert text.moment("en", at.isoformat()) == "2026-12-04 00:05 Beijing time"
    assert text.moment("zh", None) == "-"


def test_the_catalog_speaks_chinese_by_default_and_english_on_request() -> None:
    assert text.language(None) == "zh" and text.language("fr") == "zh" and text.language("en") == "en"
    assert text.say("zh", "forbidden") == "无权访问" and text.say("en", "forbidden") == "Not allowed"
    assert text.say("zh", "no-such-key") == "no-such-key"  # a missing phrase shows its key, never a blank
    assert text.label(text.STATUS, "zh", "accepted") == "已受理"
    assert text.label(text.ACTION, "en", "request_supplement") == "request supplement"
    assert all(zh and en for zh, en in text.MESSAGES.values())


def test_every_status_and_action_has_a_chinese_label() -> None:
    from govnet.node.domain.lifecycle import Action, Status

    assert {s.value for s in Status} <= set(text.STATUS)
    assert {a.value for a in Action} <= set(text.ACTION)
    from govnet.node.domain.statistics import COUNTERS

    assert set(COUNTERS) <= set(text.COUNTER)


@pytest.mark.parametrize(("due", "css"), [
    (None, ""),
    (date(2026, 3, 9), "overdue"),  # yesterday
    (date(2026, 3, 10), "warning"),  # today
    (date(2026, 3, 11), "warning"),  # the next working day
    (date(2026, 3, 12), ""),
])
def test_a_queued_case_shows_red_past_its_due_date_and_amber_within_a_working_day(due: date | None, css: str) -> None:
    assert urgency(due, date(2026, 3, 10), date(2026, 3, 11)).css == css


@pytest.mark.parametrize(("asked", "goes"), [
    ("/queue?status=accepted", "/queue?status=accepted"),
    ("//evil.example/", "/"),
    ("https://evil.example/", "/"),
    ("/\\evil", "/"),
    ("", "/"),
])
def test_a_redirect_stays_on_this_console(asked: str, goes: str) -> None:
    assert sessions.safe_next(asked) == goes


def test_the_csrf_field_belongs_to_its_session() -> None:
    field = sessions.csrf_for("token-a")
    assert sessions.csrf_ok("token-a", field)
    assert not sessions.csrf_ok("token-b", field) and not sessions.csrf_ok("token-a", "") and not sessions.csrf_ok("", "")


def test_the_console_section_of_the_configuration(tmp_path: Path) -> None:
    def config(**console: object):  # type: ignore[no-untyped-def]
        return build_config(tmp_path, node_id="371100", level="city", listen="127.0.0.1:0", parent=None,
                            console=console)

    assert config().console_listen is None
    served = config(listen="0.0.0.0:8443")
    assert served.console_listen == Address("0.0.0.0", 8443) and served.console_plaintext is False
    assert served.to_toml()["console"] == {"listen": "0.0.0.0:8443", "plaintext": False}
    write_config(served)
    assert load_config(tmp_path, {}).console_listen == Address("0.0.0.0", 8443)
    assert load_config(tmp_path, {"GOVNET_CONSOLE_LISTEN": "127.0.0.1:9443"}).console_listen == Address("127.0.0.1", 9443)
    with pytest.raises(ConfigError, match="console.listen"):
        config(listen="nowhere")
    with pytest.raises(ConfigError, match="console.plaintext"):
        config(listen="127.0.0.1:0", plaintext="yes")
