"""Resolving a broken chain at the platform (an admin's decision, made with both histories in view).

What an auditor expects, and so what this does:

- nothing the platform received is changed or dropped: the rows it accepted before the break stay in
  ``passages`` (the old epoch) with the site's signed heads over them, because they are what the site itself
  reported at the time — the cut or rewritten rows are the evidence;
- the site's new history is accepted from a given seq as a **new epoch** of the gate's chain: its rows join
  ``passages`` (so the bureau's reports count the passages that really happened after the break) with
  ``chain_epoch`` set, and ``ledger_epochs`` records where the epoch starts, the hash it links to, and where the
  old epoch ended, so ``ledger verify`` checks both stretches and would notice any later loss in the old one;
- a quarantined row that is another copy of a passage the platform already holds (same passage id: a row
  rewritten at the site) is never merged — two versions of one passage would count it twice; it stays in
  ``link_quarantine`` marked ``kept_apart``, beside the original;
- the break itself is recorded for good: ``link_chain_resolutions`` (append-only) keeps the break as flagged
  (first bad seq, problem, when), the old and new heads, who resolved it, when and why; the audit log has it
  too; ``GET /api/v1/sites`` lists a site's resolved breaks.
"""

from __future__ import annotations

from datetime import timezone
from typing import Any

import asyncpg
from aiohttp import web

from gate_service import keys
from gate_service.auth import audit
from gate_service.errors import ApiError, not_found
from gate_service.ledger.chain import link
from gate_service.ledger.store import ensure_partition
from gate_service.link.store import _COLUMNS, RULE_ERRORS, rule_of
from gate_service.link.wire import BadRow, decode_row
from gate_service.web import Api, json_response

api = Api()
TAG = "link"
_SUMMARY = ("id", "at", "plate", "direction", "decision", "enterprise_id", "client_ref")
RESOLVE = {
    "type": "object", "required": ["reason"], "additionalProperties": False,
    "properties": {"reason": {"type": "string", "minLength": 5, "maxLength": 1000},
                   "from_seq": {"type": "integer", "minimum": 1}},
}


def _ids(request: web.Request) -> tuple[int, str]:
    try:
        return int(request.match_info["site_id"]), request.match_info["gate_id"]
    except ValueError:
        raise ApiError(422, "invalid_site_id", "站点编号应为整数 / site_id must be an integer", field="site_id") from None


async def _head(conn: Any, site_id: int, gate_id: str, *, lock: bool = False) -> Any:
    head = await conn.fetchrow(
        "SELECT * FROM link_gate_heads WHERE gate_id = $1 AND site_id = $2" + (" FOR UPDATE" if lock else ""),
        gate_id, site_id)
    if head is None:
        raise not_found("站点门岗 site gate", f"{site_id}/{gate_id}")
    return head


def _resolution_json(r: Any) -> dict[str, Any]:
    out = dict(r)
    for k in ("old_head_hash", "new_head_hash"):
        out[k] = bytes(out[k]).hex()
    return out


@api.route("GET", "/api/v1/sites/{site_id}/gates/{gate_id}/chain", roles=("admin", "ecology"), tag=TAG,
           query={"from_seq": {"type": "string", "pattern": "^[0-9]{1,15}$"},
                  "limit": {"type": "string", "pattern": "^[0-9]{1,4}$"}},
           summary="A site gate's chain side by side from the first differing seq: what the platform holds, the "
                   "site's quarantined rows, the signed heads, and past resolutions")
async def chain_view(request: web.Request) -> web.Response:
    site_id, gate_id = _ids(request)
    pool = request.app[keys.READ_POOL]
    head = await _head(pool, site_id, gate_id)
    resolutions = await pool.fetch("SELECT * FROM link_chain_resolutions WHERE gate_id = $1 ORDER BY id", gate_id)
    default = head["first_bad_seq"] or (resolutions[-1]["first_bad_seq"] if resolutions else 1)
    start = int(request.query.get("from_seq", default))
    limit = min(int(request.query.get("limit", "100")), 1000)
    held = await pool.fetch(
        f"""SELECT gate_seq, chain_epoch, {', '.join(_SUMMARY)}, prev_hash, hash, uploaded_at FROM passages
            WHERE gate_id = $1 AND gate_seq >= $2 AND gate_seq < $3 ORDER BY gate_seq, chain_epoch""",
        gate_id, start, start + limit)
    apart = await pool.fetch(
        """SELECT gate_seq, hash, prev_hash, row_data, received_at, outcome, resolution_id FROM link_quarantine
           WHERE site_id = $1 AND gate_id = $2 AND gate_seq >= $3 AND gate_seq < $4 ORDER BY gate_seq, received_at""",
        site_id, gate_id, start, start + limit)
    signed = await pool.fetch(
        """SELECT seq, hash, received_at, statement->>'kind' AS kind FROM link_signed_heads
           WHERE site_id = $1 AND gate_id = $2 AND seq >= $3 - 1 ORDER BY seq, id LIMIT 200""", site_id, gate_id, start)
    rows: dict[int, dict[str, Any]] = {}
    for r in held:
        rows.setdefault(r["gate_seq"], {"seq": r["gate_seq"], "platform": [], "site": []})["platform"].append({
            **{k: r[k] for k in _SUMMARY}, "id": str(r["id"]), "chain_epoch": r["chain_epoch"],
            "hash": bytes(r["hash"]).hex(),
            "prev_hash": bytes(r["prev_hash"]).hex(), "uploaded_at": r["uploaded_at"]})
    for r in apart:
        data = r["row_data"]
        rows.setdefault(r["gate_seq"], {"seq": r["gate_seq"], "platform": [], "site": []})["site"].append({
            **{k: data.get(k) for k in _SUMMARY}, "hash": bytes(r["hash"]).hex(),
            "prev_hash": bytes(r["prev_hash"]).hex(), "received_at": r["received_at"], "outcome": r["outcome"],
            "resolution_id": r["resolution_id"]})
    for row in rows.values():
        mine = {p["hash"] for p in row["platform"]}
        row["differs"] = bool(row["site"]) and any(s["hash"] not in mine for s in row["site"])
    return json_response({
        "site_id": site_id, "gate_id": gate_id, "chain": head["chain"], "epoch": head["epoch"],
        "first_bad_seq": head["first_bad_seq"], "problem": head["problem"], "broken_at": head["broken_at"],
        "acked_seq": head["seq"], "acked_hash": bytes(head["hash"]).hex(), "quarantine_seq": head["quarantine_seq"],
        "from_seq": start, "rows": [rows[k] for k in sorted(rows)],
        "signed_heads": [{"seq": s["seq"], "hash": bytes(s["hash"]).hex(), "kind": s["kind"],
                          "received_at": s["received_at"]} for s in signed],
        "resolutions": [_resolution_json(r) for r in resolutions]})


async def _site_history(conn: asyncpg.Connection, site_id: int, gate_id: str, first_bad: int) -> list[Any]:
    """The site's current history from the break: per seq the row received last (an earlier copy of a seq came
    from a history the site has since changed again)."""
    return await conn.fetch(
        """SELECT DISTINCT ON (gate_seq) gate_seq, hash, prev_hash, row_data, received_at FROM link_quarantine
           WHERE site_id = $1 AND gate_id = $2 AND gate_seq >= $3 AND resolution_id IS NULL
           ORDER BY gate_seq, received_at DESC""", site_id, gate_id, first_bad)


def _check_chain(history: list[Any], start: int) -> list[dict[str, Any]]:
    rows = []
    for i, q in enumerate(h for h in history if h["gate_seq"] >= start):
        try:
            row = decode_row(q["row_data"])
        except BadRow as exc:
            raise ApiError(409, "quarantine_not_one_chain", f"隔离行 {q['gate_seq']} 无法解析 / {exc}",
                           seq=q["gate_seq"]) from None
        if row["gate_seq"] != start + i or (rows and row["prev_hash"] != rows[-1]["hash"]) \
                or link(row["prev_hash"], row) != row["hash"]:
            raise ApiError(409, "quarantine_not_one_chain",
                           f"站点的新历史在 seq {row['gate_seq']} 处不连续 / the site's new history is not one chain "
                           f"at seq {row['gate_seq']}: choose a later from_seq", seq=row["gate_seq"])
        row["uploaded_at"] = q["received_at"]
        rows.append(row)
    return rows


@api.route("POST", "/api/v1/sites/{site_id}/gates/{gate_id}/resolve", roles=("admin",), body=RESOLVE, tag=TAG,
           summary="Resolve a broken chain: accept the site's new history from from_seq as a new epoch (old rows, "
                   "quarantined copies and signed heads kept; audited with who and why)")
async def resolve(request: web.Request) -> web.Response:
    site_id, gate_id = _ids(request)
    body = request[keys.BODY]
    principal = request[keys.PRINCIPAL]
    pool = request.app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        head = await _head(conn, site_id, gate_id, lock=True)
        if head["chain"] != "broken":
            raise ApiError(409, "chain_not_broken", "该门岗的链未断裂 / this gate's chain is not broken")
        first_bad = head["first_bad_seq"]
        history = await _site_history(conn, site_id, gate_id, first_bad)
        held = {r["id"] for r in await conn.fetch(
            "SELECT id FROM passages WHERE gate_id = $1 AND id = ANY($2::uuid[])", gate_id,
            [h["row_data"].get("id") for h in history])}
        # By default the new epoch begins at the first row that is not another copy of a passage held here.
        start = body.get("from_seq") or next(
            (h["gate_seq"] for h in history if h["row_data"].get("id") not in {str(i) for i in held}),
            (history[-1]["gate_seq"] + 1) if history else first_bad)
        end = history[-1]["gate_seq"] + 1 if history else first_bad
        if not first_bad <= start <= end:
            raise ApiError(422, "invalid_from_seq", f"from_seq 应在 {first_bad} 与 {end} 之间 / from_seq must lie between "
                           "the break and the site's newest row + 1", field="from_seq")
        accepted = _check_chain(history, start)
        again = [r for r in accepted if r["id"] in held]
        if again:
            raise ApiError(409, "row_already_held", f"seq {again[0]['gate_seq']} 是平台已有通行记录的另一版本,不能合并 / "
                           "that row is another copy of a passage the platform holds: choose a later from_seq",
                           seq=again[0]["gate_seq"])
        before = [h for h in history if h["gate_seq"] < start]
        if accepted:
            anchor, new_head = accepted[0]["prev_hash"], (accepted[-1]["gate_seq"], accepted[-1]["hash"])
        elif before:  # every row the site sent is another copy of one held here: its next row links to the last
            anchor = bytes(before[-1]["hash"])
            new_head = (before[-1]["gate_seq"], anchor)
            start = new_head[0] + 1
        else:
            # Nothing new came from the site (a cut tail only): it goes on from its reported head.
            reported = await conn.fetchval("SELECT reported->'heads'->$2 FROM link_sites WHERE site_id = $1",
                                           site_id, gate_id)
            if not reported:
                raise ApiError(409, "site_head_unknown", "尚不知道站点当前的链头 / the site's head is not known yet")
            new_head = (int(reported[0]), bytes.fromhex(reported[1]))
            anchor = new_head[1]
            start = new_head[0] + 1
        epoch = head["epoch"] + 1
        await conn.execute(
            """INSERT INTO ledger_epochs (gate_id, epoch, start_seq, anchor_prev_hash, previous_end_seq,
                                          previous_end_hash) VALUES ($1, $2, $3, $4, $5, $6)""",
            gate_id, epoch, start, anchor, head["seq"], bytes(head["hash"]))
        if accepted:
            for month in sorted({r["at"].astimezone(timezone.utc).date().replace(day=1) for r in accepted}):
                await ensure_partition(conn, month)
            insert = (f"INSERT INTO passages ({', '.join(_COLUMNS)}) VALUES "
                      f"({', '.join(f'${i}' for i in range(1, len(_COLUMNS) + 1))})")
            try:
                await conn.executemany(insert, [[r.get(c) for c in _COLUMNS[:-3]] + [site_id, r["uploaded_at"], epoch]
                                                for r in accepted])
            except RULE_ERRORS as exc:
                # A row the platform's database refused (row_refused) still breaks the rule: nothing is resolved;
                # the admin starts after it (it stays kept apart) or the rule is changed first.
                raise ApiError(422, "row_refused", f"平台数据库拒收其中一行({rule_of(exc)}),未作处理;请从其后一行开始 / "
                               "a row still breaks a platform database rule: nothing resolved, start after it",
                               field="from_seq", rule=rule_of(exc)) from None
        resolution = await conn.fetchrow(
            """INSERT INTO link_chain_resolutions (site_id, gate_id, epoch, first_bad_seq, problem, broken_at,
                   old_head_seq, old_head_hash, accepted_from_seq, new_head_seq, new_head_hash, merged, kept_apart,
                   reason, resolved_by, resolved_role, token_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING *""",
            site_id, gate_id, epoch, first_bad, head["problem"], head["broken_at"], head["seq"], bytes(head["hash"]),
            start, new_head[0], new_head[1], len(accepted), len(before), body["reason"], principal.actor,
            principal.role, principal.token_id)
        # One statement for the whole quarantine, however long the site was broken.
        await conn.execute(
            """UPDATE link_quarantine q SET resolution_id = $3, outcome = CASE
                   WHEN (q.gate_seq, q.hash) IN (SELECT * FROM unnest($4::bigint[], $5::bytea[])) THEN 'merged'
                   WHEN (q.gate_seq, q.hash) IN (SELECT * FROM unnest($6::bigint[], $7::bytea[])) THEN 'kept_apart'
                   ELSE 'superseded' END
               WHERE q.site_id = $1 AND q.gate_id = $2 AND q.resolution_id IS NULL""",
            site_id, gate_id, resolution["id"], [r["gate_seq"] for r in accepted], [r["hash"] for r in accepted],
            [h["gate_seq"] for h in before], [bytes(h["hash"]) for h in before])
        await conn.execute(
            """UPDATE link_gate_heads SET seq = $2, hash = $3, acked_at = now(), chain = 'ok', first_bad_seq = NULL,
                      problem = NULL, broken_at = NULL, quarantine_seq = 0, epoch = $4 WHERE gate_id = $1""",
            gate_id, new_head[0], new_head[1], epoch)
        last_at = accepted[-1]["at"] if accepted else await conn.fetchval(
            "SELECT at FROM gate_chain_heads WHERE gate_id = $1", gate_id)
        await conn.execute(
            """INSERT INTO gate_chain_heads (gate_id, seq, hash, at) VALUES ($1, $2, $3, $4)
               ON CONFLICT (gate_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, at = EXCLUDED.at""",
            gate_id, new_head[0], new_head[1], last_at)
        await audit(conn, request, "site.chain_resolve", f"{site_id}/{gate_id}",
                    {"resolution_id": resolution["id"], "epoch": epoch, "from_seq": start, "merged": len(accepted),
                     "kept_apart": len(before), "reason": body["reason"]})
    return json_response(_resolution_json(resolution))
