"""Logs never contain personal data (issue #12 point 6): a real node at debug level takes cases
with known names, ID numbers and phones, and refusals that echo a mistyped ID or phone to the
clerk; not one line of its log holds any of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from govnet.node.rpc.client import ClientError, GovnetClient
from govnet.ops.processes import free_port, init_node

from support.accounts import spawn_node
from support.helpers import SAMPLE, resident_id, submit

pytestmark = pytest.mark.slow

NAME, PHONE = "欧阳知秋", "13987654321"
BAD_ID = "11010519491231002X"[:-1] + "5"  # a check character that does not match
BAD_PHONE = "1298765432"


def test_no_log_line_holds_a_name_an_id_number_or_a_phone(tmp_path: Path) -> None:
    good_id = resident_id("37010219800101123")
    port = free_port()
    city = spawn_node(init_node(tmp_path / "city", "371100", "city", listen=f"127.0.0.1:{port}"),
                      env={"GOVNET_LOG_LEVEL": "debug"})
    refused = []
    try:
        with GovnetClient(city.address) as client:
            client.put_catalog(SAMPLE)
            submit(client, "WJ-0001", name=NAME, id_number=good_id, phone=PHONE)
            for kw in ({"id_number": BAD_ID}, {"phone": BAD_PHONE}, {"name": "欧阳\x07知秋"}):
                with pytest.raises(ClientError) as caught:
                    submit(client, "WJ-0001", **{"name": NAME, "id_number": good_id, "phone": PHONE, **kw})
                refused.append(str(caught.value))
    finally:
        assert city.terminate() == 0
    assert BAD_ID in refused[0]  # the clerk is told which number is wrong ...
    log = city.stderr_path.read_text(encoding="utf-8")
    assert "Submit" in log
    for secret in (NAME, good_id, PHONE, BAD_ID, BAD_PHONE, good_id[-6:]):
        assert secret not in log, f"the log holds {secret!r}"  # ... the log is not
