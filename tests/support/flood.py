"""A flooding client, run as its own process (``python flood.py ADDRESS RECEIPT IN_FLIGHT [TOKEN]``).

It keeps IN_FLIGHT Track calls in flight at once, as fast as the node answers, until its
standard input closes (or 30 s pass); it prints one line "flooding" once the node has
refused some of its calls, and at the end one JSON line: calls admitted, refused,
anything else, how many seconds it flooded, and what one refusal carried (message,
trailing metadata, RetryInfo).

Its own process, so its Python does not share the test's interpreter lock with the node
under test: what the test measures is the node's work under the flood, not two event
loops' threads taking turns.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from govnet.node.rpc.client import CERTS_ENV, aio_channel
from govnet.v1 import cases_pb2, cases_pb2_grpc

LIMIT_S = 30.0
ANNOUNCE_AFTER_REFUSALS = 50


async def flood(address: str, receipt: str, in_flight: int, token: str, stop: threading.Event) -> dict[str, Any]:
    seen: dict[str, Any] = {"ok": 0, "refused": 0, "other": [], "message": "", "trailers": {}, "retry_info_s": None}
    started = time.monotonic()
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    request = cases_pb2.TrackCaseRequest(receipt=receipt)
    # mutual TLS with the session's client certificate ($GOVNET_CERTS, inherited from the test)
    async with aio_channel(address, Path(os.environ[CERTS_ENV]) if os.environ.get(CERTS_ENV) else None) as channel:
        stub = cases_pb2_grpc.CaseServiceStub(channel)

        async def worker() -> None:
            while not stop.is_set():
                try:
                    await stub.Track(request, timeout=5, metadata=metadata)
                    seen["ok"] += 1
                except grpc.aio.AioRpcError as exc:
                    if exc.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED:
                        seen["other"].append(f"{exc.code().name}: {exc.details()}")
                        return
                    seen["refused"] += 1
                    if seen["refused"] == 1:
                        remember(seen, exc)
                    if seen["refused"] == ANNOUNCE_AFTER_REFUSALS:
                        print("flooding", flush=True)

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    seen["seconds"] = time.monotonic() - started  # from the first call to the last answer
    return seen


def remember(seen: dict[str, Any], exc: grpc.aio.AioRpcError) -> None:
    seen["message"] = exc.details() or ""
    seen["trailers"] = {k: v for k, v in exc.trailing_metadata() or () if isinstance(v, str)}
    status = rpc_status.from_call(exc)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            seen["retry_info_s"] = info.retry_delay.ToTimedelta().total_seconds()


def main() -> None:
    address, receipt, in_flight = sys.argv[1], sys.argv[2], int(sys.argv[3])
    token = sys.argv[4] if len(sys.argv) > 4 else ""
    stop = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    limit = threading.Timer(LIMIT_S, stop.set)
    limit.daemon = True
    limit.start()
    seen = asyncio.run(flood(address, receipt, in_flight, token, stop))
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    main()
