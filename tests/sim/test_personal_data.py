"""Personal data travels only between the receiving node and the owner (issue #12 point 6).

A 4-level in-process federation whose nodes are enrolled in a city PKI (each has its own key and
certificate, as ``govnet pki`` makes them). The applicant's name, ID number and phone are looked
for in the raw bytes of every node's SQLite files (database, -wal, -shm) after a checkpoint: the
township relays the case but must hold none of it, the city none until a case is escalated to it.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from govnet.node.app.keyring import Keyring
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.domain.messages import CaseSnapshot, Personal
from govnet.node.domain.sealed import Sealed
from govnet.node.store.applicants import owed
from govnet.node.store.engine import STORE_FILES
from govnet.ops.processes import CA_ENV
from govnet.ops.simulation.harness import Federation, applicant

T = TypeVar("T")
CATALOG = load_catalog_file(sample_catalog_path())
CITY, COUNTY, TOWN, VILLAGE = "371100", "371102", "371102001", "371102001201"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """One federation for the module (each test has its own applicants and cases)."""
    f = Federation(tmp_path_factory.mktemp("fed"), [CITY, COUNTY, TOWN, VILLAGE], seed=5, pki=Path(os.environ[CA_ENV]))
    f.publish(CITY, CATALOG)
    run(f.settle())  # registering carries the ancestors' certificates down
    yield f
    f.close()


def raw_bytes(f: Federation, node: str) -> bytes:
    """Everything the node's store files hold on disk now (after a checkpoint of the WAL)."""
    store = f.core(node).store
    with store.reading() as s:  # no write transaction: a checkpoint cannot run inside one
        s.connection().exec_driver_sql("PRAGMA wal_checkpoint(FULL)")
    return b"".join((store.path.parent / name).read_bytes() for name in STORE_FILES
                    if (store.path.parent / name).exists())


def holders(f: Federation, person: dict[str, str]) -> dict[str, list[str]]:
    """For each of name, ID number and phone: the nodes whose files contain it."""
    files = {n: raw_bytes(f, n) for n in f.nodes}
    return {k: [n for n in f.nodes if v.encode() in files[n]] for k, v in person.items()}


def test_a_village_case_decided_at_the_county_leaves_the_applicant_only_at_the_village_and_the_county(
        fed: Federation) -> None:
    assert all(fed.core(n).store.session_info["keyring"].knows(CITY) for n in (COUNTY, TOWN, VILLAGE))
    person = applicant(41)
    receipt = fed.submit(VILLAGE, "HB-0002", "k-41", agent=f"agent@{VILLAGE}", **person).record.state.receipt
    run(fed.settle())
    for action in ("accept", "review", "approve", "complete"):
        fed.act(COUNTY, receipt, action)
    run(fed.settle())
    assert fed.owner_view(VILLAGE)[receipt] == fed.owner_view(COUNTY)[receipt]
    assert holders(fed, person) == {k: [COUNTY, VILLAGE] for k in person}
    # The owner reads and shows the applicant it decided for.
    held = next(c for c in fed.cases(COUNTY) if c.state.receipt == receipt)
    assert (held.applicant.name, held.applicant.id_number, held.applicant.phone) == (
        person["name"], person["id_number"], person["phone"])


def test_a_case_the_village_decides_itself_is_kept_above_only_as_a_box_the_village_opens(
        fed: Federation, tmp_path: Path) -> None:
    person = applicant(43)
    fed.backup(VILLAGE, tmp_path / "village.db")
    receipt = fed.submit(VILLAGE, "MZ-0005", "k-43", agent=f"agent@{VILLAGE}", **person).record.state.receipt
    run(fed.settle())
    # The township keeps the case in custody, but holds none of the applicant in clear.
    assert holders(fed, person) == {k: [VILLAGE] for k in person}

    fed.restore(VILLAGE, tmp_path / "village.db")
    assert receipt not in fed.owner_view(VILLAGE)
    run(fed.settle())
    held = next(c for c in fed.cases(VILLAGE) if c.state.receipt == receipt)  # back, and opened where it was sealed
    assert (held.state.owner, held.applicant.name, held.applicant.id_number) == (
        VILLAGE, person["name"], person["id_number"])
    assert holders(fed, person) == {k: [VILLAGE] for k in person}


def test_an_escalated_case_is_sealed_again_to_its_new_owner(fed: Federation) -> None:
    person = applicant(42)
    receipt = fed.submit(TOWN, "HB-0001", "k-42", **person).record.state.receipt  # a city item at the township
    fed.act(TOWN, receipt, "accept")
    fed.act(TOWN, receipt, "review")
    fed.act(TOWN, receipt, "escalate", reason="上级审批")
    run(fed.settle())
    assert fed.owner_view(CITY)[receipt][0] == CITY
    # The county relayed it and keeps only the summary; the village never saw it.
    assert holders(fed, person) == {k: [CITY, TOWN] for k in person}
    held = next(c for c in fed.cases(CITY) if c.state.receipt == receipt)
    assert held.applicant.id_number == person["id_number"]


def test_a_village_upgraded_after_registering_gets_the_certificates_and_its_withheld_applicant_follows(
        fed: Federation) -> None:
    # As after the upgrade that brought sealing: the village registered long ago and holds no
    # ancestor's certificate; its parent was restarted on the new version.
    for name in (fed.base_dir / VILLAGE / "tls" / "known").glob("*.pem"):
        name.unlink()
    for node in (VILLAGE, TOWN):
        fed.core(node).store.close()
        fed.open_node(node)
    village: Keyring = fed.core(VILLAGE).store.session_info["keyring"]
    assert not village.knows(COUNTY)
    # Before its next contact it takes a case for the county: the applicant is withheld, and owed.
    person = applicant(45)
    receipt = fed.submit(VILLAGE, "HB-0002", "k-45", agent=f"agent@{VILLAGE}", **person).record.state.receipt
    assert village.withheld == 1
    run(fed.settle())
    # The township's first hello since its start carried its chain and its ancestors' down;
    # the village then sent the applicant sealed to the county, which fills it in.
    assert village.knows(CITY) and (fed.base_dir / VILLAGE / "tls" / "known" / f"{COUNTY}.pem").is_file()
    held = next(c for c in fed.cases(COUNTY) if c.state.receipt == receipt)
    assert (held.applicant.name, held.applicant.id_number, held.applicant.phone) == (
        person["name"], person["id_number"], person["phone"])
    assert holders(fed, person) == {k: [COUNTY, VILLAGE] for k in person}
    with fed.core(VILLAGE).store.reading() as s:
        assert owed(s) == []
    # Sent once: the next hellos carry nothing more.
    town: Keyring = fed.core(TOWN).store.session_info["keyring"]
    assert not town.lacks(VILLAGE)
    run(fed.step(VILLAGE))
    assert fed.outbox(TOWN, VILLAGE) == []


def test_a_box_opens_only_for_its_node_and_its_case(fed: Federation) -> None:
    village = fed.core(VILLAGE).store.session_info["keyring"]
    county: Keyring = fed.core(COUNTY).store.session_info["keyring"]
    town: Keyring = fed.core(TOWN).store.session_info["keyring"]
    person = applicant(43)
    clear = Personal(person["name"], person["id_number"], person["phone"])
    case = CaseSnapshot.from_dict({**_fields(), "receipt": "R-1"}).with_personal(clear)
    sealed = village.seal_for(case, COUNTY)
    assert isinstance(sealed.personal, Sealed) and person["id_number"] not in str(sealed.to_dict())
    assert county.open_case(sealed).personal == clear
    assert town.open_case(sealed).personal is None  # not its box: withheld, never guessed
    moved = CaseSnapshot.from_dict({**sealed.to_dict(), "receipt": "R-2"})
    assert county.open_case(moved).personal is None  # the box is bound to its case
    # A node with no certificate for the target withholds the applicant rather than send it in clear.
    assert village.seal_for(case, "371102001202").personal is None


def test_store_files_are_readable_by_their_owner_only(fed: Federation) -> None:
    fed.submit(VILLAGE, "HB-0002", "k-44", agent=f"agent@{VILLAGE}", **applicant(44))
    folder = fed.core(VILLAGE).store.path.parent
    for name in (*STORE_FILES, "tls/node.key"):
        mode = stat.S_IMODE((folder / name).stat().st_mode)
        assert mode & 0o077 == 0, f"{name} is {oct(mode)}"


def _fields() -> dict[str, Any]:
    from govnet.node.domain.messages import CASE_FIELDS
    values: dict[str, Any] = dict.fromkeys(CASE_FIELDS, "")
    values.update(owner_epoch=1, paused_days=0, extended=False, catalog_version=1, possible_duplicate=False,
                  event_count=1)
    return values
