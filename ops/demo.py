"""``govnet demo``: a real node process and a morning of real cases at a county center.

It initialises a county node in a directory it names, starts it as its own process,
loads the sample catalog and drives cases of all six kinds through the gRPC API the
way window clerks would, then prints the cases and stops the node cleanly.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import Counter
from pathlib import Path

from node.catalog import ItemType, ServiceItem, load_catalog_file, sample_catalog_path
from node.client import GovnetClient
from node.formatting import format_case_list, format_table
from node.testing import init_node, spawn_node

COUNTY = "371102"
TOWNSHIP = "371102001"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛"]


def resident_id(rng: random.Random) -> str:
    """A valid 18-character resident ID (ISO 7064 MOD 11-2 check character) for a demo applicant."""
    body = "371102" + f"{rng.randint(1950, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}" + f"{rng.randint(0, 999):03d}"
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(body))
    return body + "10X98765432"[total % 11]


def _applicant(rng: random.Random) -> dict[str, str]:
    return {
        "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
        "id_number": resident_id(rng),
        "phone": "13" + "".join(rng.choice("0123456789") for _ in range(9)),
    }


def _core(item: ServiceItem) -> list[str]:
    return list(item.core_materials)


def run_demo(directory: Path | None = None, seed: int = 7) -> int:
    rng = random.Random(seed)
    base = directory or Path(tempfile.mkdtemp(prefix="govnet-demo-"))
    data = base / COUNTY
    if not (data / "govnet.toml").exists():
        init_node(data, COUNTY, "county", parent="127.0.0.1:1")
    print(f"data directory: {data}")
    node = spawn_node(data)
    print(f"county node {COUNTY} serving on {node.address} (pid {node.proc.pid})")
    try:
        with GovnetClient(node.address) as client:
            catalog = load_catalog_file(sample_catalog_path())
            put = client.put_catalog(catalog)
            print(f"catalog version {put.version}: {put.item_count} items")
            receipts = _drive(client, catalog.items, rng)
            cases = [client.get(r) for r in receipts]
            up = [link for link in client.sync_status().links if link.direction == "up"]
        print()
        print(format_case_list(cases))
        kinds = Counter(c.case_type for c in cases)
        states = Counter(c.status for c in cases)
        print()
        print(format_table(["case type", "cases"], sorted(kinds.items())))
        print()
        print(format_table(["status", "cases"], sorted(states.items())))
        for link in up:
            print(f"\nlink to the city {link.neighbour}: {link.state}, {link.outbox_depth} messages waiting "
                  "(escalated cases and summaries; this demo runs no city, so they stay in the outbox)")
    finally:
        code = node.terminate()
        print(f"\nnode stopped (exit {code}); its data stays in {data}")
    return 0


def _drive(client: GovnetClient, items: tuple[ServiceItem, ...], rng: random.Random) -> list[str]:
    county = [i for i in items if i.authority_level.value == "county"]
    city = [i for i in items if i.authority_level.value == "city"]
    receipts: list[str] = []
    clerk = "窗口 王敏"
    started = time.monotonic()

    def submit(item: ServiceItem, materials: list[str], agent: str = "") -> str:
        done = client.submit(idempotency_key=f"demo-{len(receipts)}-{rng.random()}", item_code=item.code,
                             materials=materials, agent=agent, actor=clerk, **_applicant(rng))
        receipts.append(done.case.receipt)
        return done.case.receipt

    for item in [i for i in county if i.item_type is ItemType.IMMEDIATE][:4]:
        r = submit(item, _core(item))
        for action in ("accept", "approve", "complete", "deliver"):
            client.act(r, action, actor=clerk)
    for item in [i for i in county if i.item_type is ItemType.PROMISED][:4]:
        r = submit(item, _core(item))
        client.act(r, "accept", actor=clerk)
        client.act(r, "review", actor="科室 审核员")
        if item.core_materials:
            client.act(r, "request_supplement", actor="科室 审核员", materials=[item.core_materials[0]],
                       reason="复印件不清晰")
            client.act(r, "supplement", actor=clerk, materials=[item.core_materials[0]])
        client.act(r, "approve", actor="首席代表")
    for item in [i for i in county if i.item_type is ItemType.JOINT][:2]:
        r = submit(item, _core(item))
        client.act(r, "accept", actor=clerk)
        client.act(r, "review", actor="牵头部门")
        case = client.act(r, "start_joint", actor="牵头部门")
        for opinion in case.joint:
            client.act(r, "opinion", actor="会审", department=opinion.department, agree=True)
        client.act(r, "approve", actor="首席代表")
    for item in city[:2]:
        r = submit(item, _core(item))
        client.act(r, "accept", actor=clerk)
        client.act(r, "review", actor="初审")
        client.act(r, "escalate", actor="初审", reason="市级权限")
    for item in county[:3]:
        r = submit(item, _core(item)[:-1])
        client.act(r, "return", actor=clerk)
    for item in [i for i in county if i.proxy][:3]:
        r = submit(item, _core(item), agent="村代办员 李四")
        client.act(r, "accept", actor=clerk)
    print(f"{len(receipts)} cases submitted and handled in {time.monotonic() - started:.1f} s")
    return receipts
