"""The RPC boundary around servicers that misbehave: a small grpc.aio server on loopback with the
node's two interceptors (metrics outside, the boundary inside) and handlers written to fail in
the ways a servicer can: a bug, a method left unimplemented, a refusal that echoes 100 KB, a
huge trailer. No servicer of govnet does these on purpose; the boundary makes them safe anyway."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from govnet.node.process.metrics import RpcMetrics
from govnet.node.rpc.boundary import Boundary
from govnet.node.rpc.errors import INTERNAL_MESSAGE, MAX_MESSAGE_CHARS
from govnet.v1 import cases_pb2

S = grpc.StatusCode
Request = cases_pb2.GetCaseRequest


async def bug(request: Request, context: Any) -> cases_pb2.Case:
    raise ZeroDivisionError("a bug")


def unimplemented(request: Request, context: Any) -> cases_pb2.Case:  # as a generated servicer base does it
    context.set_code(grpc.StatusCode.UNIMPLEMENTED)
    context.set_details("Method not implemented!")
    raise NotImplementedError("Method not implemented!")


async def echoes(request: Request, context: Any) -> cases_pb2.Case:
    await context.abort(S.INVALID_ARGUMENT, f"receipt {request.receipt!r} is not a receipt")
    raise AssertionError("unreachable")


async def huge_trailer(request: Request, context: Any) -> cases_pb2.Case:
    context.set_trailing_metadata((("x-echo", request.receipt), ("x-small", "kept")))
    return cases_pb2.Case(receipt="R1")


async def stream_bug(request: Request, context: Any) -> Any:
    yield cases_pb2.Case(receipt="first")
    raise KeyError("a bug in a stream")


HANDLERS = {
    "Bug": grpc.unary_unary_rpc_method_handler(bug, Request.FromString, cases_pb2.Case.SerializeToString),
    "Unimplemented": grpc.unary_unary_rpc_method_handler(unimplemented, Request.FromString,
                                                         cases_pb2.Case.SerializeToString),
    "Echoes": grpc.unary_unary_rpc_method_handler(echoes, Request.FromString, cases_pb2.Case.SerializeToString),
    "HugeTrailer": grpc.unary_unary_rpc_method_handler(huge_trailer, Request.FromString,
                                                       cases_pb2.Case.SerializeToString),
    "StreamBug": grpc.unary_stream_rpc_method_handler(stream_bug, Request.FromString,
                                                      cases_pb2.Case.SerializeToString),
}


async def exercise() -> tuple[dict[str, tuple[grpc.StatusCode, str, Any]], CollectorRegistry]:
    registry = CollectorRegistry()
    server = grpc.aio.server(interceptors=[RpcMetrics(registry), Boundary()])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Misbehaving", HANDLERS),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    big = Request(receipt="号" * 40_000).SerializeToString()
    got: dict[str, tuple[grpc.StatusCode, str, Any]] = {}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for name in HANDLERS:
                streamed = name == "StreamBug"
                path = f"/test.Misbehaving/{name}"
                call: Any = (channel.unary_stream(path) if streamed else channel.unary_unary(path))(big, timeout=5)
                try:
                    if streamed:
                        async for _ in call:
                            pass
                    else:
                        await call
                except grpc.aio.AioRpcError:
                    pass
                got[name] = (await call.code(), await call.details() or "", await call.trailing_metadata())
    finally:
        await server.stop(0)
    return got, registry


def test_the_boundary_makes_a_misbehaving_servicer_safe(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    got, registry = asyncio.run(asyncio.wait_for(exercise(), 20))

    assert got["Bug"][:2] == (S.INTERNAL, INTERNAL_MESSAGE)
    assert got["StreamBug"][:2] == (S.INTERNAL, INTERNAL_MESSAGE)
    assert got["Unimplemented"][0] is S.UNIMPLEMENTED and "Unimplemented is not implemented" in got["Unimplemented"][1]
    code, message, _ = got["Echoes"]
    assert code is S.INVALID_ARGUMENT and message.startswith("receipt '号号") and len(message) <= MAX_MESSAGE_CHARS
    code, _, trailers = got["HugeTrailer"]
    assert code is S.OK and ("x-small", "kept") in tuple(trailers) and "x-echo" not in dict(tuple(trailers))

    # The two bugs logged once each, with their trace; nothing else above a warning.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert sorted(r.getMessage() for r in errors) == ["unexpected error in /test.Misbehaving/Bug",
                                                      "unexpected error in /test.Misbehaving/StreamBug"]
    assert all(r.exc_info for r in errors)
    for name in HANDLERS:
        method = f"/test.Misbehaving/{name}"
        assert registry.get_sample_value("govnet_rpc_requests_total", {"method": method, "code": got[name][0].name}) == 1
