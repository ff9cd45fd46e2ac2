"""The applicant's view crosses a hop unchanged: what a parent's Track answers is what the
child's console shows (``track_to_proto`` there, ``progress_from_proto`` here)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from govnet.node.app.tracking import Known, Source
from govnet.node.domain.progress import CaseFacts, Happened, progress
from govnet.node.rpc.cases import progress_from_proto, track_to_proto, unknown_to_proto

VILLAGE, COUNTY = "371102001201", "371102"
SUBMITTED = datetime(2026, 3, 10, 1, 30, tzinfo=UTC)


def known(status: str, source: Source = Source.CASE, **changes: object) -> Known:
    facts = CaseFacts(**{
        "receipt": "371102001201-01-000001-5", "item_name": "音像制品零售单位许可证换证", "department": "文化和旅游局",
        "status": status, "origin": VILLAGE, "owner": COUNTY, "submitted_at": SUBMITTED, "due": date(2026, 3, 24),
        "history": (Happened("submit", SUBMITTED, VILLAGE), Happened("accept", SUBMITTED, COUNTY)),
        **changes})
    view = progress(facts)
    return Known(view, source, status, "2026-03-24", COUNTY, facts.item_name, facts.department)


@pytest.mark.parametrize("case", [
    known("under_review"),
    known("awaiting_supplement", requested_materials=("营业执照", "换证申请书")),
    known("completed", decision="approved"),
    known("returned", missing_core=("营业执照",)),
    known("accepted", Source.SUMMARY, history=(), from_summary=True, accepted_on=date(2026, 3, 10)),
], ids=["reviewing", "waiting", "ready", "returned", "summary"])
def test_a_parents_answer_is_the_view_the_child_shows(case: Known) -> None:
    assert progress_from_proto(track_to_proto(case, COUNTY)) == case.progress


def test_nobody_reachable_reads_as_not_known_with_the_link_down() -> None:
    view = progress_from_proto(unknown_to_proto("371102001201-01-000001-5", VILLAGE, link_down=True))
    assert not view.known and "链路" in view.headline and view.steps == ()
