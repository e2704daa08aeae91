"""The one seam between a site and whatever platform it reports to.

``PlatformAdapter`` is everything the uplink and downlink loops ask of the far side. ``CleangateHttp`` speaks
cleangate's own protocol (docs/PROTOCOL.md) to a cleangate platform. A province's platform with its own wire
format (TCP + JSON with heartbeats, say) is one more class implementing these methods, chosen by
``CLEANGATE_PLATFORM_ADAPTER`` (see ``adapter_for``); the loops, the ledger and the signing do not change.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any, Protocol

import aiohttp

from gate_service.web import dumps


class LinkDown(Exception):
    """The platform could not be reached or did not answer sensibly: retry later with backoff."""


class Refused(Exception):
    """The platform answered and said no (4xx): retrying the same request will not help."""

    def __init__(self, status: int, code: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.detail = detail or {}  # the error object's other fields (e.g. "received" of a video upload)


class PlatformAdapter(Protocol):
    async def enrol(self, public_key_b64: str, software: str) -> dict[str, Any]: ...

    async def sync(self, statement: dict[str, Any], signature: bytes) -> dict[str, Any]: ...

    async def send_batch(self, rows: list[dict[str, Any]], statement: dict[str, Any], signature: bytes) -> dict[str, Any]: ...

    async def checkpoints(self, gate_id: str) -> list[tuple[int, bytes]]: ...

    async def put_media(self, ref: str, data: bytes) -> None: ...

    async def send_records(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def downlink(self, since: dict[str, str], wait: int) -> dict[str, Any]: ...

    async def put_document(self, meta: dict[str, Any], data: bytes, content_type: str) -> dict[str, Any]: ...

    async def video_offset(self, segment_id: int) -> dict[str, Any]: ...

    async def put_video_chunk(self, segment_id: int, offset: int, data: bytes,
                              request_id: int | None = None) -> dict[str, Any]: ...

    async def report_video(self, request_id: int, body: dict[str, Any]) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class CleangateHttp:
    """cleangate's own protocol: HTTPS + bearer token, gzip JSON batches, long-poll downlink."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self.headers)
        return self._session

    async def _call(self, method: str, path: str, *, json_body: Any = None, data: bytes | None = None,
                    content_type: str | None = None, params: dict[str, str] | None = None,
                    timeout: float | None = None) -> Any:
        headers = {"Content-Type": content_type} if content_type else {}
        if json_body is not None:
            data, headers = dumps(json_body).encode(), {"Content-Type": "application/json"}
        try:
            async with self._client().request(
                    method, self.base + path, data=data, headers=headers, params=params,
                    timeout=aiohttp.ClientTimeout(total=timeout or self.timeout)) as resp:
                raw = await resp.read()
                if resp.status >= 500 or resp.status == 429:
                    raise LinkDown(f"platform answered {resp.status}")
                body = json.loads(raw) if raw else {}
                if resp.status >= 400:
                    err = body.get("error", {}) if isinstance(body, dict) else {}
                    raise Refused(resp.status, err.get("code", "refused"), err.get("message", ""), err)
                return body
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError, OSError) as exc:
            raise LinkDown(f"{type(exc).__name__}: {exc}") from None

    async def enrol(self, public_key_b64: str, software: str) -> dict[str, Any]:
        return await self._call("POST", "/api/v1/link/enrol", json_body={"public_key": public_key_b64,
                                                                         "software": software})

    async def sync(self, statement: dict[str, Any], signature: bytes) -> dict[str, Any]:
        return await self._call("POST", "/api/v1/link/sync", json_body={
            "statement": statement, "signature": base64.b64encode(signature).decode()})

    async def send_batch(self, rows: list[dict[str, Any]], statement: dict[str, Any], signature: bytes) -> dict[str, Any]:
        body = dumps({"statement": statement, "signature": base64.b64encode(signature).decode(), "rows": rows})
        return await self._call("POST", "/api/v1/link/batches", data=gzip.compress(body.encode(), 6),
                                content_type="application/gzip")

    async def checkpoints(self, gate_id: str) -> list[tuple[int, bytes]]:
        body = await self._call("GET", f"/api/v1/link/gates/{gate_id}/checkpoints")
        return [(int(s), bytes.fromhex(h)) for s, h in body.get("checkpoints", [])]

    async def put_media(self, ref: str, data: bytes) -> None:
        await self._call("PUT", f"/api/v1/link/media/{ref}", data=data, content_type="image/jpeg")

    async def send_records(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/api/v1/link/records", data=gzip.compress(dumps(body).encode(), 6),
                                content_type="application/gzip")

    async def downlink(self, since: dict[str, str], wait: int) -> dict[str, Any]:
        return await self._call("GET", "/api/v1/link/downlink", params={"since": json.dumps(since), "wait": str(wait)},
                                timeout=wait + 15)

    async def put_document(self, meta: dict[str, Any], data: bytes, content_type: str) -> dict[str, Any]:
        params = {k: str(v) for k, v in meta.items() if k != "id" and v is not None}
        return await self._call("PUT", f"/api/v1/link/documents/{meta['id']}", data=data, content_type=content_type,
                                params=params)

    async def video_offset(self, segment_id: int) -> dict[str, Any]:
        return await self._call("GET", f"/api/v1/link/video/{segment_id}")

    async def put_video_chunk(self, segment_id: int, offset: int, data: bytes,
                              request_id: int | None = None) -> dict[str, Any]:
        params = {"offset": str(offset), **({"request_id": str(request_id)} if request_id else {})}
        return await self._call("PUT", f"/api/v1/link/video/{segment_id}", data=data,
                                content_type="application/octet-stream", params=params, timeout=self.timeout * 4)

    async def report_video(self, request_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", f"/api/v1/link/video-requests/{request_id}/report", json_body=body)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def adapter_for(name: str, url: str, token: str) -> PlatformAdapter:
    """The adapter a site uses. A province format registers here: ``"shanxi": ShanxiTcp`` and its module."""
    adapters: dict[str, type] = {"cleangate": CleangateHttp}
    if name not in adapters:
        raise SystemExit(f"CLEANGATE_PLATFORM_ADAPTER: unknown adapter {name!r} ({', '.join(adapters)})")
    return adapters[name](url, token)
