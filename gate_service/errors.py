"""One error shape for every failure: {"error": {"code", "message", ...}} with a stable code."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import asyncpg
from aiohttp import web

from gate_service import keys
from gate_service.db.outage import DB_DOWN, is_db_down

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than 2xx. ``code`` is stable; ``message`` is for people (Chinese / English)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **{k: v for k, v in extra.items() if v is not None}}}


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    headers = extra.pop("headers", None)
    return web.json_response(
        error_body(code, message, **extra),
        status=status,
        headers=headers,
        dumps=lambda o: json.dumps(o, ensure_ascii=False),
    )


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, "not_found", f"未找到{what}: {ident} / {what} not found", id=ident)


# aiohttp's own HTTP errors (routing, body size) keep their status, under codes of ours.
_HTTP_CODES = {
    400: ("bad_request", "请求无效 / bad request"),
    401: ("unauthenticated", "需要有效的令牌 / a valid bearer token is required"),
    403: ("forbidden", "无权访问 / forbidden"),
    404: ("route_not_found", "接口不存在 / no such endpoint"),
    405: ("method_not_allowed", "不支持该请求方法 / method not allowed"),
    413: ("body_too_large", "请求体过大 / request body too large"),
    415: ("unsupported_media_type", "不支持的内容类型 / unsupported content type"),
}


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, **exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _HTTP_CODES.get(exc.status, ("http_error", exc.reason))
        if exc.status == 413:
            return error_response(413, code, message, limit_bytes=request.app.get(keys.MAX_BODY))
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, code, message, headers=headers)
    except asyncpg.DataError as exc:
        # SQLSTATE class 22: the database refused a value the client sent (out of range, bad encoding...).
        log.warning("database refused a value: %s", exc)
        return error_response(422, "invalid_value", f"取值无效 / invalid value: {exc.__class__.__name__}")
    except DB_DOWN as exc:
        if not is_db_down(exc):
            return _internal(exc)
        log.error("database unavailable: %s", exc)
        return error_response(
            503, "database_unavailable", "数据库暂不可用,请稍后重试 / database unavailable, retry later",
            headers={"Retry-After": "5"},
        )
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback ever reaches a client
        # Domain packages (blacklist) raise their own errors carrying http_status/code/message,
        # so they need not import the service.
        status, code = getattr(exc, "http_status", None), getattr(exc, "code", None)
        if isinstance(status, int) and 400 <= status < 600 and isinstance(code, str):
            return error_response(status, code, str(getattr(exc, "message", exc)), field=getattr(exc, "field", None))
        return _internal(exc)


def _internal(exc: BaseException) -> web.Response:
    incident = uuid.uuid4().hex[:12]
    log.error("unhandled error, incident %s", incident, exc_info=exc)
    return error_response(
        500, "internal_error", f"服务器内部错误(编号 {incident})/ internal error (incident {incident})",
        incident=incident,
    )
