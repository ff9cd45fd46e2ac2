"""Honest back-dating (node.domain.backdating) and what counts from a step's real time, at the pure core."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from govnet.node.domain.backdating import DEPENDS_ON, backdating_refusal
from govnet.node.domain.calendar import CHINA_TZ, WorkCalendar
from govnet.node.domain.deadlines import SupervisionSettings, Watched, due_alarms
from govnet.node.domain.lifecycle import Action, Status

CAL = WorkCalendar.load()
T0 = datetime(2026, 3, 9, 9, 0, tzinfo=CHINA_TZ)  # Monday


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


HISTORY = (("submit", h(0)), ("accept", h(1)), ("review", h(2)), ("start_joint", h(26)))


@pytest.mark.parametrize("step, happened, refused", [
    ("opinion", h(27), None),  # after the joint review started
    ("opinion", h(26), None),  # at the same instant is not before
    ("opinion", h(25), "before the start_joint it follows"),
    ("approve", h(0.5), "before the accept it follows"),  # a decision not before acceptance
    ("supplement", h(3), "before the case's last event (start_joint"),  # after accept, but before the last event
    ("withdraw", h(25), "before the case's last event"),  # no dependency of its own: the previous event
    ("withdraw", h(26.5), None),
])
def test_a_step_may_not_precede_the_step_it_depends_on_nor_the_previous_event(
        step: str, happened: datetime, refused: str | None) -> None:
    answer = backdating_refusal(step, happened, HISTORY)
    if refused is None:
        assert answer is None
    else:
        assert answer is not None and refused in answer and answer.startswith("happened_at ")


def test_the_dependency_is_the_latest_of_its_kind() -> None:
    # Two suspensions: a resume follows the latest one.
    past = (("submit", h(0)), ("suspend", h(1)), ("resume", h(2)), ("suspend", h(30)), ("opinion", h(31)))
    answer = backdating_refusal("resume", h(29), past)
    assert answer is not None and "before the suspend it follows" in answer


def test_a_case_without_history_refuses_nothing() -> None:
    assert backdating_refusal("accept", h(-100), ()) is None


def test_every_dependency_names_a_real_step() -> None:
    steps = {a.value for a in Action} | {"deem_accept"}
    assert set(DEPENDS_ON) <= {a.value for a in Action}
    assert all(set(deps) <= steps for deps in DEPENDS_ON.values())


def test_timeout_default_counts_from_when_the_joint_review_really_started() -> None:
    """Started (really) on Mon Mar 9 and entered on Mon Mar 16: each reviewer's share of 5 working
    days ends Mon Mar 16, so a silent one is taken as agreeing from Tue Mar 17 — counted from
    the real start, whenever it was recorded."""
    settings = SupervisionSettings(joint_opinion_days=5)
    watched = Watched(receipt="r", status=Status.JOINT_REVIEW, department="住房和城乡建设局", due=date(2026, 5, 11),
                      joint=(("自然资源和规划局", "pending", ""),), joint_started=date(2026, 3, 9),
                      timeout_default=True)
    assert [a.action for a in due_alarms(watched, CAL, settings, date(2026, 3, 16))] == []
    assert [a.action for a in due_alarms(watched, CAL, settings, date(2026, 3, 17))] == ["step_overdue",
                                                                                       "timeout_agree"]
