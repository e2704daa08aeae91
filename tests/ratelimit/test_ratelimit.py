"""Per-token rate limits: token buckets per token / per client IP, per-role limits, 429 + Retry-After."""

from __future__ import annotations

import dataclasses

import pytest

from gate_service.ratelimit import DEFAULT_LIMITS, Limit, RateLimiter, parse_limits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_burst_then_refills_at_rate() -> None:
    clock = Clock()
    rl = RateLimiter({"kiosk": Limit(10, 5), "anonymous": Limit(1, 1)}, clock=clock)
    assert [rl.take("k", "kiosk") for _ in range(5)] == [0.0] * 5
    wait = rl.take("k", "kiosk")
    assert wait == pytest.approx(0.1)
    clock.now += 0.1
    assert rl.take("k", "kiosk") == 0.0
    assert rl.take("k", "kiosk") > 0
    clock.now += 10  # never more than the burst after a long pause
    assert [rl.take("k", "kiosk") for _ in range(6)].count(0.0) == 5


def test_buckets_are_per_key_and_unknown_roles_fall_back_to_anonymous() -> None:
    clock = Clock()
    rl = RateLimiter({"kiosk": Limit(1, 1), "anonymous": Limit(1, 2)}, clock=clock)
    assert rl.take("a", "kiosk") == 0.0 and rl.take("a", "kiosk") > 0
    assert rl.take("b", "kiosk") == 0.0
    assert rl.take("c", "martian") == 0.0 and rl.take("c", "martian") == 0.0 and rl.take("c", "martian") > 0


def test_idle_buckets_are_pruned() -> None:
    clock = Clock()
    rl = RateLimiter({"anonymous": Limit(10, 10)}, clock=clock, max_keys=100)
    for i in range(100):
        rl.take(i, "anonymous")
    clock.now += 5
    rl.take("new", "anonymous")
    assert len(rl) == 1


def test_parse_limits() -> None:
    assert parse_limits("") == DEFAULT_LIMITS
    assert parse_limits("off") is None
    limits = parse_limits("kiosk=5/10, enterprise=0.5/3")
    assert limits is not None
    assert limits["kiosk"] == Limit(5, 10) and limits["enterprise"] == Limit(0.5, 3)
    assert limits["police"] == DEFAULT_LIMITS["police"]
    for bad in ("kiosk", "kiosk=x/2", "kiosk=0/1", "kiosk=1/0"):
        with pytest.raises(ValueError):
            parse_limits(bad)


def test_kiosks_get_more_than_people() -> None:
    assert DEFAULT_LIMITS["kiosk"].rate >= 10  # frames at 5-10/s, plus passages
    assert DEFAULT_LIMITS["police"].rate < DEFAULT_LIMITS["kiosk"].rate
    assert DEFAULT_LIMITS["enterprise"].rate < DEFAULT_LIMITS["kiosk"].rate


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, rate_limits="enterprise=0.2/3,ecology=0.2/5,anonymous=0.2/4")


async def _enterprise(client, admin) -> None:  # type: ignore[no-untyped-def]
    body = {"name": "某钢铁", "industry": "steel", "county": "襄汾县", "zone_id": "xiangfen"}
    resp = await client.put("/api/v1/enterprises/e-a", json=body, headers=admin)
    assert resp.status == 201, await resp.text()


async def test_token_over_its_limit_gets_429_with_retry_after(client, admin, token) -> None:  # type: ignore[no-untyped-def]
    await _enterprise(client, admin)
    ent = await token("enterprise", enterprise_id="e-a")
    statuses = [(await client.get("/api/v1/enterprises", headers=ent)).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    resp = await client.get("/api/v1/enterprises", headers=ent)
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 5
    body = await resp.json()
    assert body["error"]["code"] == "rate_limited" and body["error"]["message"]
    # Another token of the same role has its own bucket; admins have theirs.
    other = await token("enterprise", enterprise_id="e-a")
    assert (await client.get("/api/v1/enterprises", headers=other)).status == 200
    assert (await client.get("/api/v1/enterprises", headers=admin)).status == 200
    # Per role: ecology here has a burst of 5.
    eco = await token("ecology")
    assert [(await client.get("/api/v1/enterprises", headers=eco)).status for _ in range(6)] == [200] * 5 + [429]
    metrics = await (await client.get("/metrics", headers=admin)).text()
    assert 'cleangate_rate_limited_total{role="enterprise"} 1' in metrics


async def test_requests_without_token_are_limited_per_ip(client) -> None:  # type: ignore[no-untyped-def]
    statuses = [(await client.get("/healthz")).status for _ in range(5)]
    assert statuses[:4] == [200] * 4 and statuses[4] == 429
