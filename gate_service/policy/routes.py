"""``GET /api/v1/policies``: the loaded plans, their rules with clauses and their targets, and which one is in force.

Guards, enterprises and the bureau can see exactly which rules a gate applies and on what authority; the answer is
the plan files as loaded, so it cannot drift from what ``decide`` uses.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gate_service import keys
from gate_service.policy.model import Condition, Policy
from gate_service.validation import moment_or_now
from gate_service.web import Api, json_response

api = Api()


def _conditions(conditions: tuple[Condition, ...]) -> dict[str, Any]:
    return {c.key: list(c.value) if isinstance(c.value, (tuple, frozenset, set)) else c.value for c in conditions}


def policy_json(policy: Policy, in_force: bool) -> dict[str, Any]:
    return {
        "id": policy.id,
        "title": policy.title,
        "document": policy.document,
        "kind": policy.kind,
        "effective_from": policy.effective_from,
        "effective_until": policy.effective_until,
        "in_force": in_force,
        "periods": {name: [{"start": p.start, "end": p.end} for p in spans] for name, spans in policy.periods.items()},
        "targets": [{"ratio": t.ratio, "industries": list(t.industries),
                     "counties": list(t.counties) if t.counties is not None else None,
                     "from": t.start, "to": t.end, "clause": t.clause, "note": t.note} for t in policy.targets],
        "rules": [{"id": r.id, "clause": r.clause, "document": r.document, "effect": r.effect, "message": r.message,
                   "message_en": r.message_en, "scope": _conditions(r.scope), "match": _conditions(r.match),
                   "note": r.note} for r in policy.rules],
    }


@api.route("GET", "/api/v1/policies", roles=("admin", "kiosk", "police", "ecology", "enterprise"), tag="policy",
           query={"at": {"type": "string"}},
           summary="The loaded plans (rules with clauses, targets, dates) and the one in force at a moment (default "
                   "now)")
async def list_policies(request: web.Request) -> web.Response:
    at = moment_or_now(request.query.get("at") or None)
    policies = request.app[keys.POLICIES]
    current = policies.policy_for(at)
    return json_response({
        "at": at.isoformat(),
        "in_force": current.id,
        "policies": [policy_json(p, p is current) for p in policies.policies],
    })
