"""Per-token rate limits: one token bucket per bearer token (per client IP for requests without one).

Each role has a sustained rate (requests per second) and a burst. A kiosk sends frames at 5-10 per second and a
few passages, so it gets the most; people (police, ecology, enterprises) far less. Over the limit the answer is
429 with ``Retry-After`` (whole seconds) and ``{"error": {"code": "rate_limited", ...}}``.

Configured by ``CLEANGATE_RATE_LIMITS``: ``"kiosk=30/60,enterprise=2/20"`` overrides those roles (``rate/burst``;
``anonymous`` is the per-IP bucket for requests without a token; ``auth_failures`` the per-IP budget of
wrong tokens, see ``FailedAuth``); ``off`` disables limiting. The buckets live in
the process: with N replicas behind nginx a token may get up to N times its rate (nginx's ``limit_req`` is the
cluster-wide backstop, see deploy/nginx).

The middleware runs after authentication (it needs the principal) and before the endpoint. A WebSocket stream
counts once, at the upgrade; frames inside it are paced by the gate's own queue (stale frames are dropped).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gate_service import keys
from gate_service.errors import ApiError


@dataclass(frozen=True)
class Limit:
    rate: float  # tokens added per second
    burst: float  # bucket size


DEFAULT_LIMITS: dict[str, Limit] = {
    "kiosk": Limit(30, 60),
    "admin": Limit(20, 200),
    "ecology": Limit(10, 60),
    "police": Limit(10, 60),
    "enterprise": Limit(5, 30),
    "anonymous": Limit(10, 30),
    # Wrong or revoked tokens per client address: 20 at once (a console left open with an old token retries a
    # few times), then one per 5 s. Tokens carry 256 random bits, so this is about noise and load, not odds.
    "auth_failures": Limit(0.2, 20),
    # A site box (issue 14): a heartbeat per 5 s, one long-poll, and back-to-back batches while catching up.
    "site": Limit(20, 200),
}


def parse_limits(spec: str) -> dict[str, Limit] | None:
    """``""`` → defaults; ``"off"`` → None (no limiting); ``"kiosk=30/60,police=2/10"`` → defaults overridden."""
    spec = (spec or "").strip()
    if spec.lower() in ("off", "none", "0", "false"):
        return None
    limits = dict(DEFAULT_LIMITS)
    for item in filter(None, (p.strip() for p in spec.split(","))):
        role, sep, value = item.partition("=")
        rate, _, burst = value.partition("/")
        try:
            limit = Limit(float(rate), float(burst or rate))
        except ValueError:
            limit = None
        if not sep or limit is None or limit.rate <= 0 or limit.burst < 1:
            raise ValueError(f"CLEANGATE_RATE_LIMITS: {item!r} should read role=rate/burst, e.g. kiosk=30/60")
        limits[role.strip()] = limit
    return limits


class RateLimiter:
    """Token buckets keyed by anything hashable. ``take`` returns 0 when allowed, else seconds to wait."""

    def __init__(self, limits: dict[str, Limit], clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 50_000) -> None:
        self.limits = limits
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[Any, tuple[float, float]] = {}  # key → (tokens, last refill time)

    def take(self, key: Any, role: str) -> float:
        limit = self.limits.get(role) or self.limits["anonymous"]
        now = self.clock()
        tokens, stamp = self._buckets.get(key, (limit.burst, now))
        tokens = min(limit.burst, tokens + (now - stamp) * limit.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > self.max_keys:
                self._prune(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / limit.rate

    def peek(self, key: Any, role: str) -> float:
        """Like ``take`` without taking: 0 when a token is there, else seconds until one is."""
        limit = self.limits.get(role) or self.limits["anonymous"]
        tokens, stamp = self._buckets.get(key, (limit.burst, self.clock()))
        tokens = min(limit.burst, tokens + (self.clock() - stamp) * limit.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / limit.rate

    def _prune(self, now: float) -> None:
        # A bucket idle long enough to be full again carries no information: forget it.
        idle = max(lim.burst / lim.rate for lim in self.limits.values())
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < idle}
        if len(self._buckets) > self.max_keys:  # a flood of distinct keys: forgetting errs on the lenient side
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)


class FailedAuth:
    """Failed authentications per client address (``request.remote``: the client behind trusted proxies).

    An address that used up its budget gets 429 ``rate_limited`` for every token this replica has not seen
    valid, without the token being looked up, until the budget refills.
    """

    ROLE = "auth_failures"

    def __init__(self, limits: dict[str, Limit] | None) -> None:
        self.limit = (limits or {}).get(self.ROLE) if limits is not None else None
        self._limiter = RateLimiter({self.ROLE: self.limit, "anonymous": self.limit}) if self.limit else None

    @classmethod
    def from_spec(cls, spec: str) -> FailedAuth:
        return cls(parse_limits(spec))

    def check(self, address: str | None) -> None:
        """Raise 429 when the address has no failures left."""
        if self._limiter is None:
            return
        wait = self._limiter.peek(address, self.ROLE)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise ApiError(
                429, "rate_limited",
                f"令牌错误次数过多,请 {retry} 秒后重试 / too many failed authentications, retry in {retry} s",
                retry_after_s=retry, headers={"Retry-After": str(retry)},
            )

    def failed(self, address: str | None) -> None:
        if self._limiter is not None:
            self._limiter.take(address, self.ROLE)


def middleware() -> Any:
    """A fresh middleware with its own buckets (one per application), configured from the app's settings."""
    state: dict[str, Any] = {}

    @web.middleware
    async def ratelimit_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if "limiter" not in state:
            settings = request.app.get(keys.SETTINGS)
            limits = parse_limits(getattr(settings, "rate_limits", "") or "")
            state["limiter"] = RateLimiter(limits) if limits is not None else None
            metrics = request.app.get(keys.METRICS)
            state["counter"] = metrics.registry.counter(
                "cleangate_rate_limited_total", "Requests refused with 429, by role"
            ) if metrics is not None else None
        limiter: RateLimiter | None = state["limiter"]
        if limiter is None:
            return await handler(request)
        principal = request.get(keys.PRINCIPAL)
        if principal is not None:
            key, role = ("token", principal.token_id), principal.role
        else:
            key, role = ("ip", request.remote), "anonymous"
        wait = limiter.take(key, role)
        if wait > 0:
            if state["counter"] is not None:
                state["counter"].inc(role=role)
            retry = max(1, math.ceil(wait))
            raise ApiError(
                429, "rate_limited",
                f"请求过于频繁,请 {retry} 秒后重试 / too many requests, retry in {retry} s",
                retry_after_s=retry, headers={"Retry-After": str(retry)},
            )
        return await handler(request)

    ratelimit_middleware.state = state  # type: ignore[attr-defined]
    return ratelimit_middleware
