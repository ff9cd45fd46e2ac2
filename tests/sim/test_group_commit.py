"""Group commit: units committed together still succeed or fail one by one."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from govnet.federation.tree import Level
from govnet.node.store.engine import Store
from govnet.node.store.models import Meta
from govnet.node.store.unit import next_value

NOW = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)


class Refused(Exception):
    pass


def test_a_failing_unit_leaves_nothing_and_its_group_commits(tmp_path: Path) -> None:
    store = Store.create(tmp_path, "371102", Level.COUNTY, NOW)
    results: dict[int, object] = {}

    def unit(i: int):
        def work(s):
            # Both kinds of write a unit does: an ORM object and plain SQL on the connection.
            s.add(Meta(key=f"k{i}", value=str(i)))
            n = next_value(s, "shared")
            if i % 3 == 0:
                raise Refused(f"unit {i} refused after writing")
            return n
        return work

    async def all_at_once() -> None:  # every unit in flight at once, as concurrent calls are
        outcomes = await asyncio.gather(*(store.run_unit(unit(i)) for i in range(24)), return_exceptions=True)
        results.update(enumerate(outcomes))

    asyncio.run(all_at_once())
    store.close()

    reopened = Store.open(tmp_path)
    with reopened.reading() as s:
        keys = {m.key for m in s.exec(select(Meta)).all()} - {"node_id", "level", "incarnation", "created_at"}
    refused = {i for i, r in results.items() if isinstance(r, Refused)}
    assert refused == {i for i in range(24) if i % 3 == 0}
    assert keys == {f"k{i}" for i in range(24) if i % 3}
    # The counter is gapless: the refused units' increments were rolled back with them.
    committed = sorted(r for r in results.values() if isinstance(r, int))
    assert committed == list(range(1, 17))
    reopened.close()


def test_a_unit_cannot_see_a_failed_neighbours_objects(tmp_path: Path) -> None:
    store = Store.create(tmp_path, "371102", Level.COUNTY, NOW)

    def failing(s):
        s.add(Meta(key="ghost", value="1"))
        s.flush()
        raise Refused("no")

    with pytest.raises(Refused):
        asyncio.run(store.run_unit(failing))
    assert asyncio.run(store.run_unit(lambda s: s.get(Meta, "ghost"))) is None
    store.close()


def test_a_catalog_load_racing_a_publish_does_not_leave_a_stale_cache(tmp_path: Path) -> None:
    """A load that read the store before a publish committed must not be cached after it."""
    from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path

    store = Store.create(tmp_path, "371102", Level.COUNTY, NOW)
    loaded_old = threading.Event()
    publish_done = threading.Event()
    original = store.reading

    def slow_reading():  # the racing reader: reads, then waits until the publish committed
        ctx = original()
        class Wrapped:
            def __enter__(self_inner):
                return ctx.__enter__()
            def __exit__(self_inner, *exc):
                out = ctx.__exit__(*exc)
                loaded_old.set()
                publish_done.wait(5)
                return out
        return Wrapped()

    store.reading = slow_reading  # type: ignore[method-assign]
    racer = threading.Thread(target=store.catalog)
    racer.start()
    loaded_old.wait(5)
    store.reading = original  # type: ignore[method-assign]
    store.publish_catalog(load_catalog_file(sample_catalog_path()), NOW)
    publish_done.set()
    racer.join(5)
    assert store.catalog().releases == {"371100": 1}
    store.close()
