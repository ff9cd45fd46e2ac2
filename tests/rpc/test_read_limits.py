"""The filters of the reads and the people's fields are bounded like every other field a client
sends (node.domain.limits): an over-long one is INVALID_ARGUMENT naming the field, and a
password is compared as typed, never normalised."""

from __future__ import annotations

import grpc
import pytest

from govnet.node.domain import limits
from govnet.node.domain.text import clean
from govnet.node.rpc.client import ClientError, GovnetClient

S = grpc.StatusCode


def test_over_long_filters_and_account_fields_are_refused_naming_the_field(make_node) -> None:
    node, client = make_node()
    calls = [
        (lambda: client.list(department="局" * 101), "department"),
        (lambda: client.list(status="x" * 33), "status"),
        (lambda: client.list_items(department="局" * 101), "department"),
        (lambda: client.get_item("H" * 65), "code"),
        (lambda: client.get_item(""), "code"),
    ]
    with GovnetClient(node.address, token="") as anonymous:
        calls.append((lambda: anonymous.login("wangfang", "p" * (limits.PASSWORD + 1)), "password"))
        calls.append((lambda: anonymous.login("w" * (limits.LOGIN + 1), "secret-password"), "login"))
        for call, field in calls:
            with pytest.raises(ClientError) as refused:
                call()
            assert refused.value.code is S.INVALID_ARGUMENT, refused.value
            assert refused.value.field == field and len(str(refused.value)) < 200, str(refused.value)


def test_a_password_is_kept_as_typed_and_only_its_length_is_bounded() -> None:
    typed = " ｐａｓｓ\u200bword\u202e "  # full-width, invisible and bidi characters, spaces around
    assert clean(typed, limits.Kind.SECRET, limits.PASSWORD, "password") == typed
    with pytest.raises(ValueError, match="at most 128"):
        clean("p" * 129, limits.Kind.SECRET, limits.PASSWORD, "password")
