"""Endpoints declared as data: method, path, roles, body schema. Routing, role checks, body parsing
and the OpenAPI description are all derived from the same declarations."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from gate_service import keys
from gate_service.errors import ApiError
from gate_service.validation import loads_json, validate

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

JSON = "application/json"


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_default)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=dumps)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    # Roles allowed to call it; an empty tuple means public (only /healthz is).
    roles: tuple[str, ...]
    summary: str
    body: dict[str, Any] | None = None
    # Accepted request content types when the body is not JSON (imports, frames).
    content_types: tuple[str, ...] = ()
    query: Mapping[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    response: dict[str, Any] | None = None
    tag: str = "cleangate"
    status: int = 200
    produces: tuple[str, ...] = (JSON,)


class Api:
    """Collects endpoints, mounts them on an app and describes them."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def add(self, endpoint: Endpoint | Mapping[str, Any]) -> None:
        if not isinstance(endpoint, Endpoint):
            spec = dict(endpoint)
            spec["roles"] = tuple(spec.get("roles", ()))
            for key in ("content_types", "produces"):
                if key in spec:
                    spec[key] = tuple(spec[key])
            endpoint = Endpoint(**spec)
        self.endpoints.append(endpoint)

    def extend(self, endpoints: Iterable[Endpoint | Mapping[str, Any]]) -> None:
        for endpoint in endpoints:
            self.add(endpoint)

    def route(self, method: str, path: str, *, roles: Iterable[str], summary: str, **kw: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(Endpoint(method=method, path=path, handler=handler, roles=tuple(roles), summary=summary, **kw))
            return handler

        return register

    def mount(self, app: web.Application) -> None:
        for ep in self.endpoints:
            app.router.add_route(ep.method, ep.path, _wrap(ep))
        app[keys.PUBLIC_PATHS] = {ep.path for ep in self.endpoints if not ep.roles}


def _wrap(ep: Endpoint) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        request[keys.ENDPOINT] = ep
        if ep.roles:
            principal = request.get(keys.PRINCIPAL)
            if principal is None:
                raise ApiError(401, "unauthenticated", "需要有效的令牌 / a valid bearer token is required")
            if principal.role not in ep.roles:
                raise ApiError(
                    403,
                    "forbidden_role",
                    f"角色 {principal.role} 无权执行此操作 / role {principal.role} may not do this",
                    allowed_roles=list(ep.roles),
                )
        for where, values in (("path", request.match_info), ("query", request.query)):
            if any("\x00" in v for v in values.values()):
                raise ApiError(400, "invalid_character", f"{where} 中含有空字符 / NUL character in the {where}")
        for name, schema in ep.query.items():
            if name in request.query:
                # Query values are always strings; the schema's enum/format/pattern still apply.
                validate(request.query[name], {**schema, "type": "string"}, name)
        if ep.body is not None and request.method in ("POST", "PUT", "PATCH", "DELETE"):
            ctype = request.content_type
            if ctype == JSON or (not ep.content_types and request.can_read_body):
                request[keys.BODY] = validate(await read_json(request), ep.body)
            elif ctype not in ep.content_types and request.can_read_body:
                raise _unsupported(ep, ctype)
            elif not request.can_read_body and not ep.content_types:
                # No body at all: as an empty object, so a required field is named (422) and handlers never
                # find the body missing.
                request[keys.BODY] = validate({}, ep.body)
        elif ep.content_types and request.can_read_body and request.content_type not in ep.content_types:
            raise _unsupported(ep, request.content_type)
        return await ep.handler(request)

    handler.__name__ = getattr(ep.handler, "__name__", "handler")
    return handler


def _unsupported(ep: Endpoint, ctype: str) -> ApiError:
    accepted = ", ".join((JSON,) * (ep.body is not None) + ep.content_types)
    return ApiError(415, "unsupported_media_type", f"不支持的内容类型 {ctype},可用: {accepted} / unsupported content type")


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        raise ApiError(400, "empty_body", "请求体为空 / the request body is empty")
    return loads_json(raw)


# ---- OpenAPI -------------------------------------------------------------------------------------

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}},
        }
    },
}


def _openapi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if not k.startswith("x-")}


def openapi(api: Api, *, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for ep in api.endpoints:
        path = _PARAM.sub(lambda m: "{" + m.group(1) + "}", ep.path)
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(ep.path)
        ]
        params += [
            {"name": name, "in": "query", "required": False, "schema": _openapi_schema(schema)}
            for name, schema in ep.query.items()
        ]
        error = {"content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
        responses: dict[str, Any] = {
            str(ep.status): {
                "description": "OK",
                "content": {ctype: {"schema": ep.response or {}} for ctype in ep.produces},
            }
        }
        codes = ["400", "422", "404", "413", "415"]
        if ep.roles:
            codes = ["401", "403", *codes]
        for code in codes:
            responses[code] = {"description": "error", **error}
        op: dict[str, Any] = {
            "summary": ep.summary,
            "operationId": f"{ep.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}",
            "tags": [ep.tag],
            "parameters": params,
            "responses": responses,
            "x-roles": list(ep.roles),
        }
        if ep.roles:
            op["security"] = [{"bearer": []}]
        else:
            op["security"] = []
        content: dict[str, Any] = {}
        if ep.body is not None:
            content[JSON] = {"schema": _openapi_schema(ep.body)}
        for ctype in ep.content_types:
            content[ctype] = {"schema": {"type": "string", "format": "binary"}}
        if content:
            op["requestBody"] = {"required": True, "content": content}
        paths.setdefault(path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA},
        },
    }
