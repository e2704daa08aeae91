"""HTTP endpoints of the registry (API.md "Registry")."""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from gate_service import keys
from gate_service.auth import audit, enterprise_scope, require_gate
from gate_service.errors import ApiError, not_found
from gate_service.registry import schemas, store
from gate_service.registry.importer import ALIASES, judge_rows
from gate_service.web import Api, json_response
from plate_reader import plates
from sheets import SheetError, read_table_async

api = Api()
READERS = ("admin", "ecology")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TABLE_TYPES = ("text/csv", XLSX, "application/octet-stream")


def _ident(request: web.Request, name: str = "id") -> str:
    value = request.match_info[name]
    if not re.match(schemas.ID_PATTERN, value):
        raise ApiError(400, "bad_id", f"编号格式无效: {value} / ids are letters, digits, '-', '_' and '.'", field=name)
    return value


def normalise_plate(raw: str, field: str = "plate") -> str:
    try:
        return plates.parse(raw).text
    except plates.InvalidPlate as exc:
        raise ApiError(422, "invalid_plate", str(exc), field=field) from None


@api.route("PUT", "/api/v1/enterprises/{id}", roles=("admin",), summary="Create or update an enterprise",
           body=schemas.ENTERPRISE, tag="registry")
async def put_enterprise(request: web.Request) -> web.Response:
    ident = _ident(request)
    pool = request.app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        row, created = await store.upsert_enterprise(conn, ident, request[keys.BODY])
        await audit(conn, request, "enterprise.put", ident, request[keys.BODY])
    return json_response(row, status=201 if created else 200)


@api.route("GET", "/api/v1/enterprises", roles=("admin", "ecology", "enterprise"), summary="List enterprises",
           tag="registry", query={"zone_id": {"type": "string"}, "industry": {"type": "string"},
                                  "county": {"type": "string"}})
async def list_enterprises(request: web.Request) -> web.Response:
    q = request.query
    rows = await store.list_enterprises(
        request.app[keys.POOL], id=enterprise_scope(request, None), zone_id=q.get("zone_id"),
        industry=q.get("industry"), county=q.get("county"),
    )
    return json_response({"enterprises": rows})


@api.route("GET", "/api/v1/enterprises/{id}", roles=("admin", "ecology", "enterprise"), summary="One enterprise",
           tag="registry")
async def get_enterprise(request: web.Request) -> web.Response:
    ident = enterprise_scope(request, _ident(request))
    row = await store.get_enterprise(request.app[keys.POOL], ident)
    if row is None:
        raise not_found("企业 enterprise", ident)
    return json_response(row)


@api.route("PUT", "/api/v1/gates/{id}", roles=("admin",), summary="Create or update a gate (no enterprise: a city checkpoint)",
           body=schemas.GATE, tag="registry")
async def put_gate(request: web.Request) -> web.Response:
    ident = _ident(request)
    body = request[keys.BODY]
    pool = request.app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        if body.get("enterprise_id") and await store.get_enterprise(conn, body["enterprise_id"]) is None:
            raise ApiError(422, "unknown_enterprise", f"企业不存在: {body['enterprise_id']} / unknown enterprise",
                           field="enterprise_id")
        row, created = await store.upsert_gate(conn, ident, body)
        await audit(conn, request, "gate.put", ident, body)
    return json_response(row, status=201 if created else 200)


@api.route("GET", "/api/v1/gates", roles=("admin", "ecology", "enterprise"), summary="List gates", tag="registry")
async def list_gates(request: web.Request) -> web.Response:
    rows = await store.list_gates(request.app[keys.POOL], enterprise_scope(request, request.query.get("enterprise_id")))
    return json_response({"gates": rows})


@api.route("GET", "/api/v1/gates/{id}", roles=("admin", "ecology", "kiosk", "enterprise"), summary="One gate",
           tag="registry")
async def get_gate(request: web.Request) -> web.Response:
    ident = _ident(request)
    require_gate(request, ident)
    row = await store.get_gate(request.app[keys.POOL], ident)
    if row is None:
        raise not_found("门岗 gate", ident)
    enterprise_scope(request, row["enterprise_id"] or "")
    return json_response(row)


@api.route("PUT", "/api/v1/vehicles/{plate}", roles=("admin", "enterprise", "kiosk"),
           summary="Register or update a vehicle (kiosk: registers an unknown vehicle only, 409 vehicle_exists "
                   "otherwise; enterprise: registers, and changes the vehicles it owns, 403 not_vehicle_owner)",
           body=schemas.VEHICLE, tag="registry")
async def put_vehicle(request: web.Request) -> web.Response:
    plate = normalise_plate(request.match_info["plate"])
    body = dict(request[keys.BODY])
    if "plate" in body and normalise_plate(body.pop("plate")) != plate:
        raise ApiError(422, "plate_mismatch", "请求体中的车牌与路径不一致 / body plate differs from the path", field="plate")
    names_owner = "owner_enterprise_id" in body
    named_owner = body.pop("owner_enterprise_id", None)
    extra = dict(body.pop("extra", None) or {})
    extra.update({k: v for k, v in body.items() if k not in schemas.VEHICLE_FIELDS})
    for key in extra:
        if key.startswith(schemas.SERVER_EXTRA_PREFIX):
            # Made by the server when a photo is uploaded (console document route): a client-made key could
            # point at any file of the media store.
            raise ApiError(422, "reserved_field", f"{key} 由系统在上传照片时生成 / {key} is set by the server on "
                           "upload", field=f"extra.{key}")
    fields = {k: v for k, v in body.items() if k in schemas.VEHICLE_FIELDS}
    fields["extra"] = extra
    principal = request[keys.PRINCIPAL]
    if names_owner and principal.role != "admin" and named_owner != principal.enterprise_id:
        raise ApiError(403, "owner_admin_only", "只有管理员可以指定车辆所属企业 / only the admin names a vehicle's "
                       "owner", field="owner_enterprise_id")
    pool = request.app[keys.POOL]
    refused: ApiError | None = None
    async with pool.acquire() as conn:
        async with conn.transaction():
            if principal.role == "kiosk":
                # A guard registers a vehicle the gate does not know; what the registry already says about a
                # vehicle (fuel, emission stage) is not a guard's to change, or a kiosk could wave any lorry
                # through. What a guard registers belongs to the gate's enterprise (a checkpoint's: nobody's).
                gate = await store.get_gate(conn, principal.gate_id or "")
                row = await store.insert_vehicle(conn, plate, fields, owner=(gate or {}).get("enterprise_id"))
                before = None
                if row is None:
                    refused = ApiError(409, "vehicle_exists",
                                       f"车辆 {plate} 已登记,门岗终端不能修改已登记车辆,请联系管理员 / {plate} is "
                                       "already registered: a kiosk registers unknown vehicles only; changes are "
                                       "the admin's or the owning enterprise's", field="plate")
            elif principal.role == "enterprise":
                before = await store.get_vehicle(conn, plate, for_update=True)
                if before is None or before["owner_enterprise_id"] == principal.enterprise_id:
                    row, _ = await store.upsert_vehicle(conn, plate, fields, owner=principal.enterprise_id,
                                                        set_owner=True)
                else:
                    row = None
                    refused = ApiError(403, "not_vehicle_owner",
                                       f"车辆 {plate} 不属于本企业,请联系所属企业或管理员 / {plate} is not this "
                                       "enterprise's vehicle: its owner or the admin changes it", field="plate")
            else:
                if names_owner and named_owner is not None and await store.get_enterprise(conn, named_owner) is None:
                    raise ApiError(422, "unknown_enterprise", f"企业不存在: {named_owner} / unknown enterprise",
                                   field="owner_enterprise_id")
                before = await store.get_vehicle(conn, plate, for_update=True)
                row, _ = await store.upsert_vehicle(conn, plate, fields, owner=named_owner, set_owner=names_owner)
            if row is not None:
                await audit(conn, request, "vehicle.put", plate,
                            {"before": store.vehicle_snapshot(before), "after": store.vehicle_snapshot(row)})
        if refused is not None:
            async with conn.transaction():
                await audit(conn, request, "vehicle.put_refused", plate,
                            {"attempted": store.vehicle_snapshot({**fields, "plate": plate}), "code": refused.code})
            raise refused
    return json_response(row, status=200 if before is not None else 201)


@api.route("GET", "/api/v1/vehicles/{plate}", roles=("admin", "ecology", "kiosk", "police", "enterprise"),
           summary="One vehicle (an enterprise: its own vehicles)", tag="registry")
async def get_vehicle(request: web.Request) -> web.Response:
    plate = normalise_plate(request.match_info["plate"])
    row = await store.get_vehicle(request.app[keys.POOL], plate)
    if row is None:
        raise not_found("车辆 vehicle", plate)
    if request[keys.PRINCIPAL].role == "enterprise":
        enterprise_scope(request, row["owner_enterprise_id"] or "")
    return json_response(row)


@api.route("GET", "/api/v1/vehicles", roles=("admin", "ecology", "police", "enterprise"),
           summary="List vehicles (paged by plate; an enterprise: its own)", tag="registry", query={
               "fuel_type": {"type": "string"}, "vehicle_class": {"type": "string"}, "haulier": {"type": "string"},
               "owner_enterprise_id": {"type": "string"},
               "after": {"type": "string"}, "limit": {"type": "string", "pattern": r"^[0-9]{1,5}$"}})
async def list_vehicles(request: web.Request) -> web.Response:
    q = request.query
    limit = max(1, min(int(q.get("limit", "500")), 5000))
    rows = await store.list_vehicles(
        request.app[keys.POOL], fuel_type=q.get("fuel_type"), vehicle_class=q.get("vehicle_class"),
        haulier=q.get("haulier"), limit=limit, after=q.get("after"),
        owner=enterprise_scope(request, q.get("owner_enterprise_id")),
    )
    return json_response({"vehicles": rows, "next_after": rows[-1]["plate"] if len(rows) == limit else None})


@api.route("POST", "/api/v1/vehicles/import", roles=("admin",), summary="Import vehicles from CSV or XLSX",
           content_types=TABLE_TYPES, tag="registry")
async def import_vehicles(request: web.Request) -> web.Response:
    data = await request.read()
    try:
        _, rows = await read_table_async(data, aliases=ALIASES, required=("plate",))
    except SheetError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    # Judging 100k rows is seconds of Python: in the thread too, not on the loop the gates share.
    report, accepted = await asyncio.to_thread(judge_rows, rows)
    pool = request.app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        for plate, fields in accepted:
            _, created = await store.upsert_vehicle(conn, plate, fields)
            if created:
                report.created += 1
            else:
                report.updated += 1
        await audit(conn, request, "vehicle.import", "vehicles", {
            "created": report.created, "updated": report.updated, "rejected": len(report.rejected_rows)})
    return json_response(report.as_json())
