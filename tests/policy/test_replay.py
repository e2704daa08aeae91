from __future__ import annotations

from gate_service.policy import Enterprise, Gate, RecordedPassage, Vehicle, decide, replay

from .conftest import local

STEEL = Enterprise("e", "steel", "洪洞县", "other", None, "B")
GATE = Gate("g", "other", "e")


def recorded(policy, vehicle, alert, moment, pid):
    d = decide(vehicle, GATE, STEEL, None, alert, moment, policy)
    return RecordedPassage(vehicle, GATE, STEEL, None, alert, moment, d.decision, d.rule_ids, passage_id=pid)


def test_replay_counts_changes_by_rule(plan, draft):
    at = local("2025-12-01")
    guo5 = Vehicle("晋LA1234", "yellow", 5, "diesel", "heavy_truck")
    guo4 = Vehicle("晋LA1235", "yellow", 4, "diesel", "heavy_truck")
    ev = Vehicle("晋L12345D", "yellow-green", None, "electric", "heavy_truck")
    passages = [
        recorded(plan, guo5, "red", at, 1),      # allow → deny (国5 at red)
        recorded(plan, guo4, "yellow", at, 2),   # allow → deny (国4 at yellow)
        recorded(plan, guo4, "red", at, 3),      # deny stays deny, cited rule renamed
        recorded(plan, ev, "red", at, 4),        # unchanged
        recorded(plan, guo5, None, at, 5),       # unchanged
    ]
    r = replay(passages, draft)
    assert (r.total, r.changed, r.allow_to_deny, r.deny_to_allow, r.reasons_changed) == (5, 2, 2, 0, 1)
    assert r.newly_denied_by == {"alert-key-industry-guo5": 1, "alert-yellow-key-industry-guo4": 1}
    assert [c[0] for c in r.changed_passages] == [1, 2]
    assert r.to_json()["changed"] == 2 and "allow→deny" in r.lines()[0]

    back = replay([recorded(draft, guo5, "red", at, 9)], plan)
    assert (back.deny_to_allow, dict(back.no_longer_denied_by)) == (1, {"alert-key-industry-guo5": 1})
