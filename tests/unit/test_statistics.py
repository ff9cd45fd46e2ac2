"""What one fact adds to its bucket, and the derived rates: pure, table-driven."""

from __future__ import annotations

from datetime import date

import pytest

from govnet.node.domain.calendar import WorkCalendar
from govnet.node.domain.statistics import (
    COUNTERS,
    ComplaintFact,
    EventFact,
    Rates,
    contributions,
    rates,
    tally,
)

CAL = WorkCalendar.load()
TUE, WED = date(2026, 3, 10), date(2026, 3, 11)
ITEM, DEPT = "SJ-0001", "市场监督管理局"


def fact(action: str, **kw) -> EventFact:
    return EventFact(action=action, happened_on=kw.pop("on", TUE), item_code=ITEM, department=DEPT, **kw)


@pytest.mark.parametrize("event, expected", [
    (fact("submit"), {"received": 1}),
    (fact("accept"), {"accepted": 1}),
    (fact("deem_accept"), {"accepted": 1}),  # accepted by the law's deadline (art. 32) counts as accepted
    (fact("return"), {"returned": 1}),
    (fact("escalate"), {"escalated": 1}),
    (fact("request_supplement"), {"supplement_requests": 1}),
    (fact("warn"), {"warnings": 1}),
    (fact("overdue"), {"overdue": 1}),
    # Decided the day this node accepted it: immediate. Another day, or accepted elsewhere: not.
    (fact("approve", accepted_here_on=TUE), {"immediate": 1}),
    (fact("reject", accepted_here_on=TUE), {"immediate": 1}),
    (fact("approve", on=WED, accepted_here_on=TUE), {}),
    (fact("approve", accepted_here_on=None), {}),
    (fact("evaluate", rating="very_satisfied"), {"eval_very_satisfied": 1}),
    (fact("evaluate", rating="dissatisfied"), {"eval_dissatisfied": 1}),
    (fact("evaluate", rating="so-so"), {}),
    # Completed on time, with fees and the working days from acceptance to decision.
    (fact("complete", on=WED, accepted_on=date(2026, 3, 2), decided_on=TUE, due=TUE, decision="approved",
          fees_fen=5000), {"completed": 1, "on_time": 1, "processing_days": 6, "fees_fen": 5000}),
    # Late, rejected (no fee), and 2 working days of supplement pause taken off.
    (fact("complete", accepted_on=date(2026, 3, 2), decided_on=TUE, due=date(2026, 3, 9), paused_days=2,
          decision="rejected", fees_fen=5000), {"completed": 1, "processing_days": 4}),
    # Across the Spring Festival 2026 holiday (Feb 15-23): only working days count.
    (fact("complete", accepted_on=date(2026, 2, 13), decided_on=date(2026, 2, 25), due=date(2026, 3, 1),
          decision="approved"), {"completed": 1, "on_time": 1, "processing_days": 3}),
    (fact("hand_over"), {}),
    (fact("take_over"), {}),
])
def test_contributions(event: EventFact, expected: dict[str, int]) -> None:
    assert contributions(event, CAL) == expected
    assert set(expected) <= set(COUNTERS)


def test_spring_festival_working_days_are_what_the_calendar_says() -> None:
    # The case above: Feb 14 (adjusted working Saturday), 24, 25 — the holiday week does not count.
    assert CAL.working_days_between(date(2026, 2, 13), date(2026, 2, 25)) == 3


def test_tally_groups_by_day_item_and_department() -> None:
    events = [fact("submit"), fact("submit"), fact("accept", on=WED),
              EventFact("submit", TUE, "MZ-0005", "民政局")]
    complaints = [ComplaintFact(WED, ITEM, DEPT), ComplaintFact(WED, "", DEPT)]
    assert tally(events, complaints, CAL) == {
        ("2026-03-10", ITEM, DEPT): {"received": 2},
        ("2026-03-11", ITEM, DEPT): {"accepted": 1, "complaints": 1},
        ("2026-03-10", "MZ-0005", "民政局"): {"received": 1},
        ("2026-03-11", "", DEPT): {"complaints": 1},
    }


def test_rates() -> None:
    counts = {"accepted": 8, "immediate": 6, "completed": 5, "on_time": 4, "processing_days": 12,
              "eval_very_satisfied": 2, "eval_satisfied": 1, "eval_basically_satisfied": 1, "eval_dissatisfied": 1,
              "eval_very_dissatisfied": 0}
    assert rates(counts) == Rates(on_time=0.8, immediate=0.75, satisfaction=0.8, average_processing_days=2.4)


def test_rates_without_a_denominator_are_unknown_not_zero() -> None:
    assert rates({}) == Rates(None, None, None, None)


def test_every_counter_has_its_column_and_its_field_on_the_wire() -> None:
    from govnet.node.store.models import StatRow
    from govnet.v1 import stats_pb2

    assert [f.name for f in stats_pb2.Counters.DESCRIPTOR.fields] == list(COUNTERS)
    columns = set(StatRow.model_fields) - {"node", "day", "item_code", "department", "version", "computed_at"}
    assert columns == set(COUNTERS)


def test_statistics_settings_come_from_the_configuration_and_are_checked(tmp_path) -> None:
    from govnet.node.process.config import ConfigError, build_config, load_config, write_config

    config = build_config(tmp_path, node_id="371102", level="county", listen="127.0.0.1:0", parent="127.0.0.1:1",
                          statistics={"flush_interval_s": 0.2, "heartbeat_s": 30})
    write_config(config)
    loaded = load_config(tmp_path, environ={})
    assert (loaded.statistics.flush_interval_s, loaded.statistics.heartbeat_s) == (0.2, 30.0)
    assert load_config(tmp_path, environ={"GOVNET_STATISTICS_HEARTBEAT_S": "5"}).statistics.heartbeat_s == 5.0
    with pytest.raises(ConfigError, match=r"statistics.flush_interval_s: 0 is outside 0.01 … 60.0"):
        build_config(tmp_path, node_id="371102", level="county", listen="127.0.0.1:0", parent="127.0.0.1:1",
                     statistics={"flush_interval_s": 0})
    with pytest.raises(ConfigError, match=r"statistics.heartbeat_s: 'often' is not a number"):
        build_config(tmp_path, node_id="371102", level="county", listen="127.0.0.1:0", parent="127.0.0.1:1",
                     statistics={"heartbeat_s": "often"})
