"""Table-driven walk of every rule of the 2024–25 plan across its edges."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from gate_service.policy import BlacklistEntry, Enterprise, Gate, Vehicle, decide, read_policy_data

from .conftest import local, utc

DZ_ZONES = ["linfen-edz", "hongtong", "xiangfen", "quwo", "houma", "huozhou", "yaodu-hitech"]

# --- places ---------------------------------------------------------------------------------------
E_DZ = Enterprise("e-dz", "other", "襄汾县", "xiangfen", None, "B")  # not retrofitted
G_DZ = Gate("g-dz", "xiangfen", "e-dz")
E_STEEL = Enterprise("e-steel", "steel", "洪洞县", "other", date(2024, 9, 1), "B")
G_STEEL = Gate("g-steel", "other", "e-steel")
E_A = Enterprise("e-a", "cement", "尧都区", "other", date(2024, 9, 1), "A")
G_A = Gate("g-a", "other", "e-a")
E_CITY = Enterprise("e-city", "other", "尧都区", "city", date(2024, 9, 1), "C")
G_CITY_ENT = Gate("g-city-ent", "city", "e-city")
CP_CITY = Gate("cp-city", "city", None)
CP_OTHER = Gate("cp-other", "other", None)


# --- vehicles: plates consistent with their fuel, so no evidence flag unless a case wants one ------
def fuel_truck(fuel="diesel", stage=6, cls="heavy_truck", plate="晋LA1234", color="yellow"):
    return Vehicle(plate, color, stage, fuel, cls)


def nev_truck(fuel="electric", cls="heavy_truck", stage=None):
    plate = "晋L12345D" if fuel == "electric" else "晋L12345F"
    return Vehicle(plate, "yellow-green", stage, fuel, cls)


def veh(fuel, cls="heavy_truck", stage=6):
    return nev_truck(fuel, cls) if fuel in ("electric", "phev", "hydrogen") else fuel_truck(fuel, stage, cls)


IN = local("2024-11-15")
OUT = local("2025-06-01")  # inside the plan's effective dates, after the campaign
BL = BlacklistEntry("晋LA1234", "obd_tampering", None)

# (id, vehicle, gate, enterprise, blacklist entry, alert, moment, decision, rule ids in order)
CASES = [
    # 1. development zones: campaign edges (local days; the 2nd/5th also checks the UTC conversion)
    ("dz-day-before", veh("diesel"), G_DZ, E_DZ, None, None, local("2024-09-30", "23:59:59"), "allow", []),
    ("dz-day-before-utc", veh("diesel"), G_DZ, E_DZ, None, None, utc("2024-09-30T15:59:59"), "allow", []),
    ("dz-first-day", veh("diesel"), G_DZ, E_DZ, None, None, local("2024-10-01", "00:00"), "deny",
     ["dz-unretrofitted-fuel-gas"]),
    ("dz-first-day-utc", veh("diesel"), G_DZ, E_DZ, None, None, utc("2024-09-30T16:00:00"), "deny",
     ["dz-unretrofitted-fuel-gas"]),
    ("dz-last-day", veh("diesel"), G_DZ, E_DZ, None, None, local("2025-03-31", "23:59:59"), "deny",
     ["dz-unretrofitted-fuel-gas"]),
    ("dz-day-after", veh("diesel"), G_DZ, E_DZ, None, None, local("2025-04-01", "00:00"), "allow", []),
    ("dz-day-after-utc", veh("diesel"), G_DZ, E_DZ, None, None, utc("2025-03-31T16:00:00"), "allow", []),
    # each fuel
    *[(f"dz-fuel-{f}", veh(f), G_DZ, E_DZ, None, None, IN, "deny", ["dz-unretrofitted-fuel-gas"])
      for f in ("diesel", "petrol", "gas", "methanol", "hybrid")],
    *[(f"dz-fuel-{f}", veh(f), G_DZ, E_DZ, None, None, IN, "allow", []) for f in ("electric", "phev", "hydrogen")],
    # each class: cars, buses and machinery do not haul
    *[(f"dz-class-{c}", veh("diesel", c), G_DZ, E_DZ, None, None, IN, "deny", ["dz-unretrofitted-fuel-gas"])
      for c in ("heavy_truck", "medium_truck", "light_truck", "concrete_mixer", "muck_truck", "logistics", "other")],
    *[(f"dz-class-{c}", veh("diesel", c), G_DZ, E_DZ, None, None, IN, "allow", []) for c in ("car", "bus", "nonroad")],
    # retrofit date: completed by 2024-09-30 exempts; a day late does not; None never completed
    ("dz-retrofit-none", veh("diesel"), G_DZ, E_DZ, None, None, IN, "deny", ["dz-unretrofitted-fuel-gas"]),
    ("dz-retrofit-on-time", veh("diesel"), G_DZ, replace(E_DZ, retrofit_completed_on=date(2024, 9, 30)), None, None,
     IN, "allow", []),
    ("dz-retrofit-earlier", veh("diesel"), G_DZ, replace(E_DZ, retrofit_completed_on=date(2024, 6, 1)), None, None,
     IN, "allow", []),
    ("dz-retrofit-late", veh("diesel"), G_DZ, replace(E_DZ, retrofit_completed_on=date(2024, 10, 1)), None, None,
     IN, "deny", ["dz-unretrofitted-fuel-gas"]),
    *[(f"dz-zone-{z}", veh("gas"), Gate("g", z, "e"), replace(E_DZ, zone_id=z), None, None, IN, "deny",
       ["dz-unretrofitted-fuel-gas"]) for z in DZ_ZONES],
    ("dz-zone-other", veh("gas"), G_STEEL, replace(E_DZ, zone_id="other"), None, None, IN, "allow", []),
    ("dz-enterprise-unknown", veh("gas"), G_DZ, None, None, None, IN, "allow", []),

    # 2. 国3-and-below diesel trucks, at every gate, in and out of campaign, and in the base policy
    *[(f"guo{s}-diesel-{g.id}", veh("diesel", stage=s), g, e, None, None, OUT, "deny", ["retired-guo3-diesel-truck"])
      for s in (0, 3) for g, e in ((CP_OTHER, None), (G_STEEL, E_STEEL))],
    ("guo4-diesel", veh("diesel", stage=4), CP_OTHER, None, None, None, OUT, "allow", []),
    ("guo3-petrol-light", veh("petrol", "light_truck", 3), CP_OTHER, None, None, None, OUT, "allow", []),
    ("guo3-diesel-car", veh("diesel", "car", 3), CP_OTHER, None, None, None, OUT, "allow", []),
    ("guo3-diesel-mixer-city", veh("diesel", "concrete_mixer", 3), CP_CITY, None, None, None, OUT, "deny",
     ["retired-guo3-diesel-truck", "city-mixer-non-electric"]),

    # 3. city planning area
    *[(f"city-logistics-{f}", veh(f, "logistics"), CP_CITY, None, None, None, OUT, "deny", ["city-logistics-non-nev"])
      for f in ("diesel", "petrol", "gas", "methanol", "hybrid")],
    *[(f"city-logistics-{f}", veh(f, "logistics"), CP_CITY, None, None, None, OUT, "allow", [])
      for f in ("electric", "phev", "hydrogen")],
    *[(f"city-mixer-{f}", veh(f, "concrete_mixer"), CP_CITY, None, None, None, IN, "deny", ["city-mixer-non-electric"])
      for f in ("diesel", "gas", "hybrid", "phev", "hydrogen")],
    ("city-mixer-electric", veh("electric", "concrete_mixer"), CP_CITY, None, None, None, IN, "allow", []),
    *[(f"city-muck-{f}", veh(f, "muck_truck"), CP_CITY, None, None, None, IN, "deny", ["city-muck-non-nev"])
      for f in ("diesel", "petrol", "gas", "methanol")],
    *[(f"city-muck-{f}", veh(f, "muck_truck"), CP_CITY, None, None, None, IN, "allow", [])
      for f in ("electric", "phev", "hydrogen")],
    *[(f"city-class-{c}", veh("diesel", c), CP_CITY, None, None, None, IN, "allow", [])
      for c in ("heavy_truck", "medium_truck", "light_truck", "bus", "car", "other")],
    ("city-enterprise-gate", veh("diesel", "logistics"), G_CITY_ENT, E_CITY, None, None, IN, "deny",
     ["city-logistics-non-nev"]),
    ("logistics-outside-city", veh("diesel", "logistics"), CP_OTHER, None, None, None, IN, "allow", []),

    # 4. blacklist
    ("bl-city-first-day", veh("diesel"), CP_CITY, None, BL, None, local("2024-10-01", "00:00"), "deny",
     ["blacklist-city"]),
    ("bl-city-day-before", veh("diesel"), CP_CITY, None, BL, None, local("2024-09-30", "23:59"), "allow", []),
    ("bl-city-last-day", veh("diesel"), CP_CITY, None, BL, None, local("2025-03-31", "23:59"), "deny",
     ["blacklist-city"]),
    ("bl-city-day-after", veh("diesel"), CP_CITY, None, BL, None, local("2025-04-01", "00:00"), "allow", []),
    ("bl-valid-until-future", veh("diesel"), CP_CITY, None, replace(BL, valid_until=date(2024, 12, 31)), None,
     local("2024-12-31", "23:59"), "deny", ["blacklist-city"]),
    ("bl-valid-until-past", veh("diesel"), CP_CITY, None, replace(BL, valid_until=date(2024, 12, 31)), None,
     local("2025-01-01", "00:00"), "allow", []),
    ("bl-enterprise-gate", veh("diesel"), G_STEEL, E_STEEL, BL, None, IN, "deny", ["blacklist-enterprise"]),
    ("bl-enterprise-gate-in-city", veh("diesel"), G_CITY_ENT, E_CITY, BL, None, IN, "deny", ["blacklist-city"]),
    ("bl-other-checkpoint", veh("diesel"), CP_OTHER, None, BL, None, IN, "allow", []),
    ("bl-electric", veh("electric"), CP_CITY, None, BL, None, IN, "deny", ["blacklist-city"]),

    # 5. heavy-pollution alerts at key-industry gates
    *[(f"alert-{a}-guo4", veh("diesel", stage=4), G_STEEL, E_STEEL, None, a, OUT, "allow", []) for a in (None, "yellow")],
    *[(f"alert-{a}-guo4", veh("diesel", stage=4), G_STEEL, E_STEEL, None, a, OUT, "deny", ["alert-key-industry-guo4"])
      for a in ("orange", "red")],
    *[(f"alert-{a}-guo5", veh("diesel", stage=5), G_STEEL, E_STEEL, None, a, OUT, "allow", [])
      for a in (None, "yellow", "orange", "red")],
    ("alert-red-gas-guo4", veh("gas", stage=4), G_STEEL, E_STEEL, None, "red", OUT, "deny", ["alert-key-industry-guo4"]),
    ("alert-red-petrol-guo4", veh("petrol", stage=4), G_STEEL, E_STEEL, None, "red", OUT, "allow", []),
    *[(f"alert-red-{f}", veh(f), G_STEEL, E_STEEL, None, "red", OUT, "allow", []) for f in ("electric", "phev", "hydrogen")],
    *[(f"alert-red-{c}", veh("diesel", c, 4), G_STEEL, E_STEEL, None, "red", OUT, "deny", ["alert-key-industry-guo4"])
      for c in ("heavy_truck", "concrete_mixer", "muck_truck")],
    *[(f"alert-red-{c}", veh("diesel", c, 4), G_STEEL, E_STEEL, None, "red", OUT, "allow", [])
      for c in ("medium_truck", "light_truck", "car")],
    *[(f"alert-red-industry-{i}", veh("diesel", stage=4), G_STEEL, replace(E_STEEL, industry=i), None, "red", OUT,
       "deny", ["alert-key-industry-guo4"])
      for i in ("steel", "foundry_iron", "coking", "cement", "coal", "non_ferrous", "carbon")],
    ("alert-red-industry-other", veh("diesel", stage=4), G_STEEL, replace(E_STEEL, industry="other"), None, "red", OUT,
     "allow", []),
    ("alert-red-checkpoint", veh("diesel", stage=4), CP_OTHER, None, None, "red", OUT, "allow", []),

    # 6. grade A
    ("grade-a-guo4", veh("diesel", stage=4), G_A, E_A, None, None, OUT, "deny", ["grade-a-guo5-or-nev"]),
    ("grade-a-guo5", veh("diesel", stage=5), G_A, E_A, None, None, OUT, "allow", []),
    ("grade-a-gas-guo4", veh("gas", stage=4), G_A, E_A, None, None, OUT, "deny", ["grade-a-guo5-or-nev"]),
    ("grade-a-electric", veh("electric"), G_A, E_A, None, None, OUT, "allow", []),
    ("grade-a-car-guo4", veh("petrol", "car", 4), G_A, E_A, None, None, OUT, "allow", []),
    ("grade-b-guo4", veh("diesel", stage=4), G_A, replace(E_A, grade="B"), None, None, OUT, "allow", []),
    ("grade-leading-guo4", veh("diesel", stage=4), G_A, replace(E_A, grade="leading"), None, None, OUT, "deny",
     ["grade-a-guo5-or-nev"]),
    ("grade-none-guo4", veh("diesel", stage=4), G_A, replace(E_A, grade=None), None, None, OUT, "allow", []),

    # 7. unregistered
    ("unreg-enterprise", Vehicle("晋LA1234", "yellow", registered=False), G_STEEL, E_STEEL, None, None, IN, "deny",
     ["unregistered-enterprise-gate"]),
    ("unreg-enterprise-none", None, G_STEEL, E_STEEL, None, None, IN, "deny", ["unregistered-enterprise-gate"]),
    ("unreg-enterprise-nev", Vehicle("晋LD12345", "green", registered=False), G_DZ, E_DZ, None, None, IN, "deny",
     ["unregistered-enterprise-gate"]),
    ("unreg-city-yellow", Vehicle("晋LA1234", "yellow", registered=False), CP_CITY, None, None, None, IN, "deny",
     ["unregistered-checkpoint", "unregistered-city-large-fuel"]),
    ("unreg-city-blue", Vehicle("晋LA1234", "blue", registered=False), CP_CITY, None, None, None, IN, "allow",
     ["unregistered-checkpoint"]),
    ("unreg-city-green", Vehicle("晋LD12345", "green", registered=False), CP_CITY, None, None, None, IN, "allow",
     ["unregistered-checkpoint"]),
    ("unreg-city-yellow-green", Vehicle("晋L12345D", "yellow-green", registered=False), CP_CITY, None, None, None, IN,
     "allow", ["unregistered-checkpoint"]),
    ("unreg-city-trailer", Vehicle("晋L1234挂", "yellow", registered=False), CP_CITY, None, None, None, IN, "deny",
     ["unregistered-checkpoint", "unregistered-city-large-fuel"]),
    ("unreg-city-nothing", None, CP_CITY, None, None, None, IN, "allow", ["unregistered-checkpoint"]),
    ("unreg-other-checkpoint", Vehicle("晋LA1234", "yellow", registered=False), CP_OTHER, None, None, None, IN,
     "allow", ["unregistered-checkpoint"]),
    ("unreg-city-blacklisted", Vehicle("晋LA1234", "blue", registered=False), CP_CITY, None, BL, None, IN, "deny",
     ["blacklist-city", "unregistered-checkpoint"]),

    # 8. plate evidence against the registry: flags, never a denial by themselves
    ("green-plate-diesel", fuel_truck(plate="晋LD12345", color="green"), CP_OTHER, None, None, None, IN, "allow",
     ["plate-fuel-mismatch"]),
    ("nev-letters-diesel-no-color", fuel_truck(plate="晋L12345D", color=None), CP_OTHER, None, None, None, IN, "allow",
     ["plate-fuel-mismatch"]),
    ("blue-plate-electric", Vehicle("晋LA1234", "blue", None, "electric", "car"), CP_OTHER, None, None, None, IN,
     "allow", ["plate-fuel-mismatch"]),
    ("yellow-plate-electric", Vehicle("晋LA1234", "yellow", None, "electric", "heavy_truck"), CP_OTHER, None, None, None,
     IN, "allow", ["plate-fuel-mismatch"]),
    ("not-pure-plate-electric", Vehicle("晋LF12345", "green", None, "electric", "car"), CP_OTHER, None, None, None, IN,
     "allow", ["plate-fuel-mismatch"]),
    ("pure-plate-phev", Vehicle("晋LD12345", "green", None, "phev", "car"), CP_OTHER, None, None, None, IN, "allow",
     ["plate-fuel-mismatch"]),
    ("green-plate-hybrid", Vehicle("晋LF12345", "green", 6, "hybrid", "car"), CP_OTHER, None, None, None, IN, "allow",
     ["plate-fuel-mismatch"]),
    ("ordinary-plate-green-color", Vehicle("晋LA1234", "green", 6, "diesel", "heavy_truck"), CP_OTHER, None, None, None,
     IN, "allow", ["plate-fuel-mismatch", "plate-color-mismatch"]),
    ("invalid-plate", fuel_truck(plate="晋LI1234"), CP_OTHER, None, None, None, IN, "allow", ["plate-unreadable"]),
    ("consistent-electric", veh("electric"), CP_OTHER, None, None, None, IN, "allow", []),

    # non-road machinery below 国3 (三(三)16) and the missing-stage flag
    ("nonroad-guo2", veh("diesel", "nonroad", 2), G_STEEL, E_STEEL, None, None, OUT, "deny", ["nonroad-below-guo3"]),
    ("nonroad-guo3", veh("diesel", "nonroad", 3), G_STEEL, E_STEEL, None, None, OUT, "allow", []),
    ("nonroad-electric", veh("electric", "nonroad"), G_STEEL, E_STEEL, None, None, OUT, "allow", []),
    ("stage-missing", fuel_truck(stage=None), G_STEEL, E_STEEL, None, "red", OUT, "allow", ["emission-stage-missing"]),
    ("stage-missing-checkpoint", fuel_truck(stage=None), CP_OTHER, None, None, None, OUT, "allow", []),

    # several reasons at once, in file order
    ("everything", veh("diesel", stage=3), G_DZ, replace(E_DZ, industry="steel", grade="A"), BL, "red", IN, "deny",
     ["dz-unretrofitted-fuel-gas", "retired-guo3-diesel-truck", "blacklist-enterprise", "alert-key-industry-guo4",
      "grade-a-guo5-or-nev"]),
    ("city-everything", Vehicle("晋LD12345", "green", 3, "diesel", "muck_truck"), CP_CITY, None, BL, "red", IN, "deny",
     ["retired-guo3-diesel-truck", "city-muck-non-nev", "blacklist-city", "plate-fuel-mismatch"]),
]


@pytest.mark.parametrize(
    "vehicle,gate,enterprise,entry,alert,moment,expected,rules", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decide_table(plan, vehicle, gate, enterprise, entry, alert, moment, expected, rules):
    d = decide(vehicle, gate, enterprise, entry, alert, moment, plan)
    assert (d.decision, list(d.rule_ids)) == (expected, rules)
    assert d.policy_id == "linfen-2024-25"
    assert d.denied == (expected == "deny") == bool(d.denials)


def test_case_ids_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


def test_every_rule_is_exercised(plan):
    fired = set()
    for c in CASES:
        fired.update(decide(*c[1:7], plan).rule_ids)
    assert {r.id for r in plan.rules} <= fired


def test_every_denial_cites_a_clause_and_chinese_message(plan):
    for c in CASES:
        for r in decide(*c[1:7], plan).reasons:
            assert r.clause and r.document and r.message_en
            assert any("\u4e00" <= ch <= "\u9fff" for ch in r.message)


def test_reason_json_shape(plan):
    d = decide(veh("diesel", stage=3), CP_CITY, None, None, None, IN, plan)
    j = d.to_json()
    assert j["decision"] == "deny" and j["policy_id"] == "linfen-2024-25"
    assert j["reasons"][0]["rule"] == "retired-guo3-diesel-truck"
    assert j["reasons"][0]["clause"] == "三(一)3"
    assert j["reasons"][0]["effect"] == "deny"
    assert {"rule", "clause", "message"} <= set(j["reasons"][0])
    assert "国三" in d.to_json_text()  # not \u-escaped


def test_flags_are_listed_separately(plan):
    d = decide(Vehicle("晋LA1234", "yellow", registered=False), CP_CITY, None, None, None, IN, plan)
    assert [r.rule for r in d.flags] == ["unregistered-checkpoint"]
    assert [r.rule for r in d.denials] == ["unregistered-city-large-fuel"]
    assert d.to_json()["flags"] == ["unregistered-checkpoint"]


def test_observed_colour_beats_registry(plan):
    v = Vehicle("晋LD12345", "green", None, "electric", "car")
    assert decide(v, CP_OTHER, None, None, None, IN, plan).reasons == ()
    d = decide(v, CP_OTHER, None, None, None, IN, plan, observed_plate_color="blue")
    assert d.rule_ids == ("plate-fuel-mismatch", "plate-color-mismatch")
    assert decide(v, CP_OTHER, None, None, None, IN, plan, observed_plate_color="unknown").reasons == ()


def test_unregistered_fuel_inferred_from_plate(plan):
    # An unregistered green plate at a development-zone gate is refused for not being registered only.
    d = decide(Vehicle("晋LD12345", "green", registered=False), G_DZ, E_DZ, None, None, IN, plan)
    assert d.rule_ids == ("unregistered-enterprise-gate",)


def test_registered_fuel_unknown_uses_plate(plan):
    # Registry lacks the fuel: the ordinary yellow plate says it is not new energy.
    v = Vehicle("晋LA1234", "yellow", 6, None, "heavy_truck")
    assert decide(v, G_DZ, E_DZ, None, None, IN, plan).rule_ids == ("dz-unretrofitted-fuel-gas",)
    v = Vehicle("晋L12345D", "yellow-green", None, None, "heavy_truck")
    assert decide(v, G_DZ, E_DZ, None, None, IN, plan).rule_ids == ()


def test_setting_switches_blacklist_at_enterprise_gates(plan):
    from gate_service.policy import PLANS_DIR
    from gate_service.policy.loader import tomllib

    data = tomllib.loads((PLANS_DIR / "linfen-2024-25.toml").read_text("utf-8"))
    data["settings"]["blacklist_applies_at_enterprise_gates"] = False
    relaxed, problems = read_policy_data(data, "relaxed")
    assert relaxed is not None, problems
    assert decide(veh("diesel"), G_STEEL, E_STEEL, BL, None, IN, relaxed).decision == "allow"
    assert decide(veh("diesel"), CP_CITY, None, BL, None, IN, relaxed).decision == "deny"


def test_naive_moment_rejected(plan):
    from datetime import datetime

    with pytest.raises(ValueError, match="timezone-aware"):
        decide(veh("diesel"), CP_CITY, None, None, None, datetime(2024, 11, 1, 12), plan)


def test_bad_alert_level_rejected(plan):
    with pytest.raises(ValueError, match="alert_level"):
        decide(veh("diesel"), CP_CITY, None, None, "purple", IN, plan)


def test_base_policy_keeps_only_standing_rules(base):
    # No campaign: development zones, city entry and blacklist bans are off; 国3 retirement stays.
    at = local("2026-11-29")
    assert decide(veh("diesel"), G_DZ, E_DZ, None, None, at, base).decision == "allow"
    assert decide(veh("diesel", "logistics"), CP_CITY, None, None, None, at, base).decision == "allow"
    assert decide(veh("diesel"), CP_CITY, None, BL, None, at, base).decision == "allow"
    d = decide(veh("diesel", stage=3), CP_OTHER, None, None, None, at, base)
    assert (d.decision, d.rule_ids, d.policy_id) == ("deny", ("retired-guo3-diesel-truck",), "base")
    assert decide(veh("diesel", stage=4), G_STEEL, E_STEEL, None, "red", at, base).decision == "deny"
    assert decide(None, G_STEEL, E_STEEL, None, None, at, base).rule_ids == ("unregistered-enterprise-gate",)


def test_draft_is_stricter_at_alerts(plan, draft):
    at = local("2025-12-01")
    v = veh("diesel", stage=5)
    assert decide(v, G_STEEL, E_STEEL, None, "red", at, plan).decision == "allow"
    d = decide(v, G_STEEL, E_STEEL, None, "red", at, draft)
    assert (d.decision, d.rule_ids) == ("deny", ("alert-key-industry-guo5",))
    assert decide(veh("diesel", stage=4), G_STEEL, E_STEEL, None, "yellow", at, draft).rule_ids == (
        "alert-yellow-key-industry-guo4",
    )
