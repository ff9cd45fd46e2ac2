"""The rate-limit buckets (node.domain.ratelimit): pure, time passed in."""

from __future__ import annotations

from pathlib import Path

import pytest

from govnet.node.domain.ratelimit import (
    ACCOUNT,
    API,
    META,
    PEER,
    SYNC,
    Charge,
    Rate,
    RateLimiter,
    RateSettings,
    charges_for,
)
from govnet.node.process.config import ConfigError, build_config, build_settings, env_overrides, load_config, write_config

TEN_BURST_THREE = Rate(10.0, 3)  # one call every 0.1 s on average, three at once


def calls(limiter: RateLimiter, times: list[float], rate: Rate = TEN_BURST_THREE, key: str = "a") -> list[str]:
    """Each call's outcome: "ok", or "wait X" with the hint rounded to the millisecond."""
    out = []
    for now in times:
        verdict = limiter.admit([Charge(PEER, key, rate)], now)
        out.append("ok" if verdict.admitted else f"wait {verdict.retry_after_s:.3f}")
    return out


@pytest.mark.parametrize(("times", "expected"), [
    # a burst of three at once, the fourth waits exactly one interval
    ([0, 0, 0, 0], ["ok", "ok", "ok", "wait 0.100"]),
    # after the burst, one call per interval is admitted, each as soon as its interval has passed
    ([0, 0, 0, 0.1, 0.2, 0.2], ["ok", "ok", "ok", "ok", "ok", "wait 0.100"]),
    # half an interval later the wait is the other half
    ([0, 0, 0, 0.05], ["ok", "ok", "ok", "wait 0.050"]),
    # a quiet spell refills the bucket, but never above the burst
    ([0, 0, 0, 10, 10, 10, 10], ["ok", "ok", "ok", "ok", "ok", "ok", "wait 0.100"]),
    # a steady client at the rate is never refused
    ([i * 0.1 for i in range(20)], ["ok"] * 20),
    # refused calls change nothing: hammering does not push the client further back
    ([0, 0, 0, 0.01, 0.02, 0.03, 0.1], ["ok", "ok", "ok", "wait 0.090", "wait 0.080", "wait 0.070", "ok"]),
])
def test_a_bucket_admits_a_burst_then_the_rate_and_says_how_long_to_wait(times: list[float], expected: list[str]) -> None:
    assert calls(RateLimiter(), times) == expected


def test_keys_and_kinds_have_buckets_of_their_own() -> None:
    limiter = RateLimiter()
    assert calls(limiter, [0, 0, 0, 0], key="noisy")[-1].startswith("wait")
    assert calls(limiter, [0, 0, 0], key="quiet") == ["ok", "ok", "ok"]
    # the same key under the other kind is another bucket
    assert limiter.admit([Charge(ACCOUNT, "noisy", TEN_BURST_THREE)], 0).admitted


def test_a_call_is_admitted_only_if_every_bucket_admits_it_and_a_refusal_costs_none() -> None:
    limiter = RateLimiter()
    peer = Charge(PEER, "office", Rate(100.0, 100))
    person = Charge(ACCOUNT, "clerk", Rate(1.0, 1))
    assert limiter.admit([peer, person], 0).admitted
    refused = limiter.admit([peer, person], 0)
    assert (refused.admitted, refused.refused_by, round(refused.retry_after_s, 3)) == (False, ACCOUNT, 1.0)
    # the refused call took nothing from the office's bucket: 99 more of the burst remain for others
    assert all(limiter.admit([peer], 0).admitted for _ in range(99))
    assert not limiter.admit([peer], 0).admitted


def test_the_longest_wait_of_the_refusing_buckets_is_the_hint() -> None:
    limiter = RateLimiter()
    fast, slow = Charge(PEER, "p", Rate(10.0, 1)), Charge(ACCOUNT, "a", Rate(0.5, 1))
    assert limiter.admit([fast, slow], 0).admitted
    refused = limiter.admit([fast, slow], 0)
    assert (refused.refused_by, round(refused.retry_after_s, 3)) == (ACCOUNT, 2.0)


def test_a_rate_of_zero_is_no_limit() -> None:
    limiter = RateLimiter()
    assert all(limiter.admit([Charge(PEER, "x", Rate(0.0, 1))], 0).admitted for _ in range(10_000))
    assert len(limiter) == 0  # nothing remembered for an unlimited bucket


def test_the_table_is_bounded_least_recently_used_first_out() -> None:
    limiter = RateLimiter(capacity=100)
    rate = Rate(1.0, 1)
    assert limiter.admit([Charge(PEER, "regular", rate)], 0).admitted
    for i in range(10_000):  # a flood of throw-away keys
        limiter.admit([Charge(PEER, f"spoofed-{i}", rate)], 0.5)
        if i % 50 == 0:  # the regular client keeps calling (refused: it is over its rate)
            limiter.admit([Charge(PEER, "regular", rate)], 0.5)
    assert len(limiter) == 100
    assert not limiter.knows(PEER, "spoofed-0")
    assert limiter.knows(PEER, "spoofed-9999")
    # refused calls keep a key in use: the regular client was not pushed out and handed a full bucket
    assert limiter.knows(PEER, "regular")
    assert not limiter.admit([Charge(PEER, "regular", rate)], 0.5).admitted


def test_a_key_in_use_stays_while_the_flood_passes_by() -> None:
    limiter = RateLimiter(capacity=10)
    rate = Rate(1000.0, 10)
    for i in range(1000):
        assert limiter.admit([Charge(PEER, "regular", rate)], i / 1000).admitted
        limiter.admit([Charge(PEER, f"spoofed-{i}", rate)], i / 1000)
    assert limiter.knows(PEER, "regular")
    assert len(limiter) == 10


def test_a_limiter_remembers_at_least_one_key() -> None:
    with pytest.raises(ValueError):
        RateLimiter(capacity=0)


def test_each_class_of_call_has_its_own_limits() -> None:
    settings = RateSettings(peer_per_s=200, peer_burst=400, account_per_s=50, account_burst=100,
                            sync_per_s=1000, sync_burst=2000, meta_per_s=0, meta_burst=1)
    limits = settings.limits()
    api = charges_for(limits, API, "ipv4:10.0.0.7", "token:ab")
    assert [(c.kind, c.key, c.rate) for c in api] == [(PEER, "api:ipv4:10.0.0.7", Rate(200, 400)),
                                                      (ACCOUNT, "api:token:ab", Rate(50, 100))]
    assert [(c.kind, c.rate) for c in charges_for(limits, API, "ipv4:10.0.0.7", None)] == [(PEER, Rate(200, 400))]
    # a child's sync calls: generous, per peer only; health and reflection: unlimited here
    assert [(c.kind, c.rate) for c in charges_for(limits, SYNC, "cn:371102001", "token:ab")] == [(PEER, Rate(1000, 2000))]
    limiter = RateLimiter()
    assert all(limiter.admit(charges_for(limits, META, "p", None), 0).admitted for _ in range(1000))


# --- [rate] in govnet.toml ---


@pytest.mark.parametrize(("raw", "error"), [
    ({"peer_per_s": -1}, "rate.peer_per_s: -1 is outside 0.0 … 1000000.0"),
    ({"peer_burst": 0}, "rate.peer_burst: 0 is outside 1 … 1000000"),
    ({"account_burst": 2.5}, "rate.account_burst: 2.5 is not a whole number"),
    ({"sync_per_s": "fast"}, "rate.sync_per_s: 'fast' is not a number"),
    ({"max_keys": 10}, "rate.max_keys: 10 is outside 100 … 1000000"),
])
def test_the_rate_section_is_validated_with_one_line_naming_the_key(raw: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_settings("rate", raw)
    assert str(info.value) == error


def test_the_rate_section_defaults_and_overrides(tmp_path: Path) -> None:
    assert build_settings("rate", {}) == RateSettings()
    assert build_settings("rate", {"peer_per_s": 20, "meta_per_s": 0}) == RateSettings(peer_per_s=20.0, meta_per_s=0.0)
    assert env_overrides({"GOVNET_RATE_ACCOUNT_PER_S": "5"}) == {"rate": {"account_per_s": 5.0}}
    config = build_config(tmp_path, node_id="371102", level="county", listen="127.0.0.1:0", parent="127.0.0.1:1",
                          rate={"account_per_s": 5.0, "account_burst": 10})
    write_config(config)
    assert load_config(tmp_path, environ={}).rate == RateSettings(account_per_s=5.0, account_burst=10)
