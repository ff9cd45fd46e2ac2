"""Catalog releases per issuer: the city publishes the catalog, a county its own items.

Each node works with the newest release of every issuer on its path, a nearer issuer's
item wins on the same code, releases reach every descendant (and no one else), and a
case records the issuer and version of the release its item came from.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from govnet.node.app.replication import Unauthorized
from govnet.node.domain.catalog import Catalog, load_catalog_file, sample_catalog_path
from govnet.ops.simulation.harness import Federation, applicant

CITY, COUNTY, TOWN, VILLAGE = "371100", "371102", "371102001", "371102001201"
OTHER_COUNTY, OTHER_TOWN = "371103", "371103001"
SAMPLE = load_catalog_file(sample_catalog_path())


def county_items() -> Catalog:
    """The county's own release: one item of its own, and its stricter version of a city item."""
    base = SAMPLE.get("HB-0005")
    assert base is not None
    own = dataclasses.replace(base, code="LY-0001", name="县级特色事项：乡村民宿备案", department="文化和旅游局")
    stricter = dataclasses.replace(SAMPLE.get("HB-0002"), promised_days=5)  # type: ignore[arg-type]
    return Catalog(items=(own, stricter), issuer=COUNTY)


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    with Federation(tmp_path, [CITY, COUNTY, TOWN, VILLAGE, OTHER_COUNTY, OTHER_TOWN], seed=3) as f:
        f.publish(CITY, SAMPLE)
        asyncio.run(f.settle())
        yield f


def releases(f: Federation, node: str) -> dict[str, int]:
    return f.core(node).store.catalog().releases


def test_a_county_release_reaches_its_subtree_only_and_the_nearest_item_wins(fed: Federation) -> None:
    assert fed.publish(COUNTY, county_items()) == 1
    asyncio.run(fed.settle())
    for node in (COUNTY, TOWN, VILLAGE):
        assert releases(fed, node) == {CITY: 1, COUNTY: 1}
        catalog = fed.core(node).store.catalog()
        assert "LY-0001" in catalog.items
        assert catalog.items["HB-0002"].promised_days == 5  # the county's version of the city item
        assert catalog.sources["HB-0002"] == (COUNTY, 1) and catalog.sources["HB-0001"] == (CITY, 1)
    for node in (CITY, OTHER_COUNTY, OTHER_TOWN):
        assert releases(fed, node) == {CITY: 1}
        assert "LY-0001" not in fed.core(node).store.catalog().items


def test_a_case_records_the_release_of_its_item_and_a_new_city_release_keeps_the_county_items(fed: Federation) -> None:
    fed.publish(COUNTY, county_items())
    asyncio.run(fed.settle())
    own = fed.submit(VILLAGE, "LY-0001", "k1", materials=list(SAMPLE.get("HB-0005").core_materials),  # type: ignore[union-attr]
                     agent="李四", **applicant(1)).record.state
    city_item = fed.submit(VILLAGE, "HB-0001", "k2", agent="李四", **applicant(2)).record.state
    assert (own.catalog_issuer, own.catalog_version) == (COUNTY, 1)
    assert (city_item.catalog_issuer, city_item.catalog_version) == (CITY, 1)

    fed.publish(CITY, Catalog(items=SAMPLE.items, issuer=CITY))  # the city's version 2
    asyncio.run(fed.settle())
    assert releases(fed, VILLAGE) == {CITY: 2, COUNTY: 1}
    assert "LY-0001" in fed.core(VILLAGE).store.catalog().items
    # The county owns its item's case, and decides it under the release it was accepted with.
    held = fed.core(COUNTY).store.get_case(own.receipt)
    assert held is not None and held.state.owner == COUNTY and held.state.catalog_issuer == COUNTY
    fed.act(COUNTY, own.receipt, "accept", actor="clerk")
    assert fed.core(COUNTY).store.get_case(own.receipt).state.status == "accepted"  # type: ignore[union-attr]


def test_a_release_for_an_issuer_off_the_path_is_refused(fed: Federation) -> None:
    with pytest.raises(Unauthorized, match="under its own name only"):
        fed.publish(TOWN, dataclasses.replace(county_items(), issuer=OTHER_COUNTY))
    assert releases(fed, TOWN) == {CITY: 1}
