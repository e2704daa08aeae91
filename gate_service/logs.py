"""Structured logs: one JSON object per line, one line per request with its latency."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from gate_service import keys


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


access = logging.getLogger("cleangate.access")


@web.middleware
async def access_log_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        elapsed = time.perf_counter() - started
        endpoint = request.get(keys.ENDPOINT)
        route = endpoint.path if endpoint is not None else "unmatched"
        principal = request.get(keys.PRINCIPAL)
        metrics = request.app.get(keys.METRICS)
        if metrics is not None:
            metrics.requests.inc(route=route, method=request.method, status=str(status))
            metrics.request_seconds.observe(elapsed, route=route)
        access.info(
            "request",
            extra={"fields": {
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": status,
                "ms": round(elapsed * 1000, 2),
                "role": principal.role if principal else None,
                "token_id": principal.token_id if principal else None,
                "remote": request.remote,
            }},
        )
