"""The real client address behind a reverse proxy (nginx), believed only from proxies we trust.

``request.remote`` is the TCP peer. Behind nginx that is nginx itself, so the audit log would record
127.0.0.1 for every change. nginx passes the client in ``X-Forwarded-For`` (and ``X-Real-IP``), but anyone can
send those headers, so they are read only when the peer is listed in ``CLEANGATE_TRUSTED_PROXIES``
(comma-separated IPs or CIDRs; default: none, headers ignored).

``X-Forwarded-For`` is ``client, proxy1, proxy2``: each proxy appends the address it received the request from.
Only the entries appended by our own proxies can be believed, so the client is the **rightmost address that is
not a trusted proxy** (a client that forges a leftmost entry cannot push itself past our proxies). When every
hop is trusted the leftmost is taken; without ``X-Forwarded-For``, ``X-Real-IP``. A malformed entry stops the
walk: the request keeps the last address we could trust.

The request is replaced by ``request.clone(remote=...)`` (and ``scheme=`` from ``X-Forwarded-Proto``), so
everything downstream - access log, audit log, per-IP rate limits - sees the client.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from gate_service import keys

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

def parse_networks(spec: str | Iterable[str]) -> tuple[Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8, ::1"`` → networks; raises ValueError naming a bad entry."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    nets: list[Network] = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"CLEANGATE_TRUSTED_PROXIES: {item!r} is not an IP address or CIDR") from exc
    return tuple(nets)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip().strip('"')
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:5123"
        value = value.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: Any, nets: tuple[Network, ...]) -> bool:
    return addr is not None and any(addr.version == n.version and addr in n for n in nets)


def client_address(peer: str | None, forwarded_for: Iterable[str], real_ip: str | None,
                   nets: tuple[Network, ...]) -> str | None:
    """The client's address given the TCP peer and the proxy headers (pure; see the module docstring)."""
    if not nets or not _trusted(_ip(peer or ""), nets):
        return peer
    hops = [h for header in forwarded_for for h in header.split(",") if h.strip()]
    if not hops:
        addr = _ip(real_ip or "")
        return str(addr) if addr is not None else peer
    client = peer
    for hop in reversed(hops):
        addr = _ip(hop)
        if addr is None:
            break
        client = str(addr)
        if not _trusted(addr, nets):
            break
    return client


@functools.lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...] | str) -> tuple[Network, ...]:
    return parse_networks(spec)


@web.middleware
async def proxy_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    settings = request.app.get(keys.SETTINGS)
    nets = _networks(getattr(settings, "trusted_proxies", ()) or ())
    if not nets or not _trusted(_ip(request.remote or ""), nets):
        return await handler(request)
    changes: dict[str, Any] = {}
    remote = client_address(
        request.remote, request.headers.getall("X-Forwarded-For", ()), request.headers.get("X-Real-IP"), nets
    )
    if remote != request.remote:
        changes["remote"] = remote
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    if proto in ("http", "https") and proto != request.scheme:
        changes["scheme"] = proto
    return await handler(request.clone(**changes) if changes else request)
