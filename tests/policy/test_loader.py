"""The loader, the checker's messages on broken files, and choosing the policy in force."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gate_service.policy import (
    PLANS_DIR,
    PolicyError,
    check_policy_file,
    default_policy_set,
    format_problems,
    has_errors,
    load_policy,
    load_policy_set,
)

from .conftest import local, utc

MINIMAL = '''
id = "mini"
title = "测试方案"
document = "临政办发〔2024〕40号"
effective_from = 2024-10-01
effective_until = 2025-03-31

[periods]
campaign = { from = 2024-10-01, until = 2025-03-31 }

[settings]
flag_on = true

[[rules]]
id = "r1"
clause = "三(一)3"
effect = "deny"
message = "禁止通行"
message_en = "Denied"
[rules.scope]
gate_zones = ["city"]
periods = ["campaign"]
[rules.match]
fuel_types = ["diesel"]
'''


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def errors(tmp_path: Path, text: str) -> list[str]:
    return [str(p) for p in check_policy_file(write(tmp_path, text)) if p.severity == "error"]


def test_bundled_files_are_clean():
    for f in [*PLANS_DIR.glob("*.toml"), *PLANS_DIR.glob("examples/*.toml")]:
        assert check_policy_file(f) == [], f


def test_minimal_loads(tmp_path):
    p = load_policy(write(tmp_path, MINIMAL))
    assert p.id == "mini" and [r.id for r in p.rules] == ["r1"]
    assert p.clean_fuels == {"electric", "hydrogen"}  # default definition
    assert format_problems(check_policy_file(write(tmp_path, MINIMAL))) == "OK"


@pytest.mark.parametrize(
    "old,new,expect",
    [
        ('gate_zones = ["city"]', 'gate_zones = ["citi"]', "unknown zone 'citi'"),
        ("effective_from = 2024-10-01", 'effective_from = "2024-10-01"', "bad date '2024-10-01'"),
        ("effective_from = 2024-10-01", "effective_from = 2024-13-01", "not valid TOML"),
        ("effective_until = 2025-03-31", "effective_until = 2024-03-31", "before effective_from"),
        ("effective_from = 2024-10-01\n", "", "effective_from is missing"),
        ('clause = "三(一)3"\n', "", "clause is missing"),
        ('clause = "三(一)3"', 'clause = ""', "clause is missing"),
        ('clause = "三(一)3"', 'clause = "三（一）3"', "full-width brackets; API.md cites with ASCII ones: '三(一)3'"),
        ('clause = "三(一)3"', 'clause = "3.1"', "not in the plan's numbering"),
        ('fuel_types = ["diesel"]', 'fuel_type = ["diesel"]', "unknown match key 'fuel_type' (did you mean 'fuel_types'?)"),
        ('fuel_types = ["diesel"]', 'periods = ["campaign"]', "'periods' belongs in [rules.scope]"),
        ('fuel_types = ["diesel"]', 'fuel_types = ["lng"]', "unknown fuel type 'lng'"),
        ('fuel_types = ["diesel"]', 'vehicle_classes = ["tractor"]', "unknown vehicle class 'tractor'"),
        ('fuel_types = ["diesel"]', "max_emission_stage = 7", "emission stage 0–6"),
        ('fuel_types = ["diesel"]', 'max_emission_stage = "4"', "emission stage 0–6"),
        ('fuel_types = ["diesel"]', "fuel_types = []", "non-empty list of fuel type"),
        ('periods = ["campaign"]', 'periods = ["winter"]', "unknown period 'winter'"),
        ('periods = ["campaign"]', 'alert_levels = ["purple"]', "unknown alert level 'purple'"),
        ('periods = ["campaign"]', 'setting = "nope"', "expected the name of a setting"),
        ('periods = ["campaign"]', 'grades = ["AA"]', "unknown grade 'AA'"),
        ('periods = ["campaign"]', 'gate = "factory"', "'enterprise', 'checkpoint' or 'any'"),
        ('periods = ["campaign"]', "retrofit_not_completed_by = 2024-09-30T00:00:00", "expected a TOML date"),
        ('effect = "deny"', 'effect = "block"', "effect must be 'deny' or 'flag'"),
        ('message = "禁止通行"', 'message = "Denied"', "must be in Chinese"),
        ('id = "r1"', 'id = "R 1"', "rule id 'R 1'"),
        ("campaign = { from = 2024-10-01, until = 2025-03-31 }",
         "campaign = { from = 2025-03-31, until = 2024-10-01 }", "ends (2024-10-01) before it starts"),
        ('title = "测试方案"', 'titel = "测试方案"', "unknown key 'titel' (did you mean 'title'?)"),
        ('[rules.match]', '[rules.matches]', "unknown key 'matches' (did you mean 'match'?)"),
    ],
)
def test_check_reports(tmp_path, old, new, expect):
    assert old in MINIMAL
    found = errors(tmp_path, MINIMAL.replace(old, new, 1))
    assert any(expect in e for e in found), found


def test_duplicate_rule_id(tmp_path):
    rule = MINIMAL[MINIMAL.index("[[rules]]"):]
    found = errors(tmp_path, MINIMAL + "\n" + rule)
    assert any("duplicate rule id 'r1'" in e for e in found), found


def test_unknown_zone_in_zone_table(tmp_path):
    text = MINIMAL + '\n[zones.lingfen-edz]\nname = "临汾经济开发区"\nkind = "development_zone"\n'
    found = errors(tmp_path, text)
    assert any("unknown zone 'lingfen-edz' (did you mean 'linfen-edz'?)" in e for e in found), found
    # once the file lists its zones, rules may only name those
    assert any("unknown zone 'city'" in e for e in found), found


def test_other_document_may_use_its_own_numbering(tmp_path):
    text = MINIMAL.replace('clause = "三(一)3"', 'clause = "HJ 1321-2023"\ndocument = "HJ 1321-2023"')
    assert errors(tmp_path, text) == []


def test_many_problems_reported_at_once(tmp_path):
    text = MINIMAL.replace('clause = "三(一)3"\n', "").replace('["city"]', '["citi"]').replace('"diesel"', '"coal"')
    assert len(errors(tmp_path, text)) == 3


def test_warnings_do_not_stop_loading(tmp_path):
    text = MINIMAL.replace('periods = ["campaign"]', 'industries = ["spaceships"]\ncounties = ["北京市"]')
    problems = check_policy_file(write(tmp_path, text))
    assert not has_errors(problems)
    assert {p.severity for p in problems} == {"warning"}
    assert any("spaceships" in p.message for p in problems) and any("北京市" in p.message for p in problems)
    load_policy(tmp_path / "p.toml")


def test_target_checks(tmp_path):
    text = MINIMAL + '\n[[targets]]\nratio = 60\nindustries = ["steel"]\nclause = "三(一)3"\n'
    assert any("between 0 and 1" in e for e in errors(tmp_path, text))
    text = MINIMAL + '\n[[targets]]\nratio = 0.6\nindustries = ["steel"]\n'
    assert any("clause is missing" in e for e in errors(tmp_path, text))


def test_missing_file_and_load_error(tmp_path):
    assert "cannot read file" in str(check_policy_file(tmp_path / "nope.toml")[0])
    with pytest.raises(PolicyError) as e:
        load_policy(write(tmp_path, MINIMAL.replace('"city"', '"citi"')))
    assert "unknown zone 'citi'" in str(e.value)
    assert e.value.problems


def test_problem_text_names_file_and_rule(tmp_path):
    found = errors(tmp_path, MINIMAL.replace('"city"', '"citi"'))
    assert found[0].startswith(str(tmp_path / "p.toml") + ": rules[0] (r1).scope.gate_zones: error: unknown zone")


# --- PolicySet -----------------------------------------------------------------------------------


def test_default_set_holds_plan_and_base_not_examples():
    ps = default_policy_set()
    assert [p.id for p in ps.plans] == ["linfen-2024-25"]
    assert ps.base.id == "base"


@pytest.mark.parametrize(
    "moment,expected",
    [
        (local("2024-09-30", "23:59:59"), "base"),
        (utc("2024-09-30T16:00:00"), "linfen-2024-25"),
        (local("2024-10-01", "00:00"), "linfen-2024-25"),
        (local("2025-03-31", "23:59"), "linfen-2024-25"),
        (local("2025-12-31", "23:59:59"), "linfen-2024-25"),
        (local("2026-01-01", "00:00"), "base"),
        (local("2026-11-29"), "base"),
    ],
)
def test_policy_for(moment, expected):
    assert default_policy_set().policy_for(moment).id == expected


def test_later_plan_supersedes_from_its_first_day():
    ps = load_policy_set(PLANS_DIR / "examples" / "stricter-2025-26.toml")
    assert ps.policy_for(local("2025-09-30", "23:59")).id == "linfen-2024-25"
    assert ps.policy_for(local("2025-10-01", "00:00")).id == "draft-stricter-2025-26"
    assert ps.policy_for(local("2026-09-30")).id == "draft-stricter-2025-26"
    assert ps.policy_for(local("2026-10-01")).id == "base"
    assert ps.get("draft-stricter-2025-26").is_clean("phev")
    assert not ps.get("linfen-2024-25").is_clean("phev")
    assert ps.is_clean("phev", local("2025-12-01")) and not ps.is_clean("phev", local("2024-12-01"))


def test_directory_loads_non_recursively(tmp_path):
    write(tmp_path, MINIMAL.replace('"mini"', '"extra"').replace("2024-10-01", "2024-11-01", 1))
    ps = load_policy_set(tmp_path)
    assert [p.id for p in ps.plans] == ["linfen-2024-25", "extra"]
    assert ps.policy_for(local("2024-11-02")).id == "extra"
    assert ps.policy_for(local("2025-04-01")).id == "linfen-2024-25"


def test_set_rejects_ambiguity(tmp_path):
    with pytest.raises(PolicyError, match="same day"):
        load_policy_set(write(tmp_path, MINIMAL))  # starts 2024-10-01 like the bundled plan
    with pytest.raises(PolicyError, match="loaded twice"):
        load_policy_set(PLANS_DIR / "linfen-2024-25.toml")
    with pytest.raises(PolicyError, match="more than one base"):
        load_policy_set(write(tmp_path, (PLANS_DIR / "base.toml").read_text("utf-8").replace('"base"', '"base2"', 1),
                              "b.toml"))
    with pytest.raises(PolicyError, match="unknown zone"):
        load_policy_set(write(tmp_path, MINIMAL.replace('"city"', '"citi"'), "bad.toml"))


def test_without_base_everything_passes_outside_plans():
    from gate_service.policy import Gate, Vehicle, decide

    ps = load_policy_set(PLANS_DIR / "linfen-2024-25.toml", include_default=False)
    p = ps.policy_for(local("2026-11-29"))
    assert p.id == "none" and p.rules == ()
    d = decide(Vehicle("晋LA1234", "yellow", 3, "diesel", "heavy_truck"), Gate("c", "city"), None, None, None,
               local("2026-11-29"), p)
    assert d.decision == "allow"


# --- targets and clean fuels (issue 7) ------------------------------------------------------------


@pytest.mark.parametrize(
    "industry,county,start,end,expected,standing",
    [
        # The last column: with base.toml's standing targets (issue 15 item 15), where the plan sets none.
        ("steel", "尧都区", "2024-10-01", "2024-12-31", 0.60, 0.60),
        ("foundry_iron", "霍州市", "2024-12-01", "2024-12-31", 0.60, 0.60),
        ("cement", "侯马市", "2024-01-01", "2024-06-30", 0.60, 0.60),
        ("steel", "吉县", "2024-10-01", "2024-12-31", None, None),  # not a Fen-river county
        ("steel", None, "2024-10-01", "2024-12-31", None, None),
        ("steel", "尧都区", "2024-10-01", "2025-01-31", None, 0.60),  # straddles the end of 2024
        ("steel", "尧都区", "2025-01-01", "2025-03-31", None, 0.60),
        ("coking", "尧都区", "2024-10-01", "2024-12-31", None, None),
        ("coal", "乡宁县", "2025-01-01", "2025-12-31", 0.80, 0.80),
        ("non_ferrous", None, "2025-03-01", "2025-03-31", 0.80, 0.80),
        ("coal", "乡宁县", "2024-10-01", "2024-12-31", None, None),  # 80% is a 2025 obligation
        ("coal", "乡宁县", "2025-12-01", "2026-01-31", None, 0.80),
        ("cement", "尧都区", "2026-01-01", "2026-06-30", None, 0.60),
    ],
)
def test_target_for(plan, industry, county, start, end, expected, standing):
    s, e = date.fromisoformat(start), date.fromisoformat(end)
    assert plan.target_for(industry, county, s, e) == expected
    assert default_policy_set().target_for(industry, county, s, e) == standing


def test_target_for_newer_plan_wins():
    ps = load_policy_set(PLANS_DIR / "examples" / "stricter-2025-26.toml")
    # both files set a 2025 coal/steel figure; the later plan's is used
    assert ps.target_for("steel", "尧都区", date(2025, 1, 1), date(2025, 12, 31)) == 0.70
    assert ps.target_for("coal", None, date(2025, 1, 1), date(2025, 12, 31)) == 0.80
    assert ps.target_for("coal", None, date(2026, 1, 1), date(2026, 6, 30)) == 0.85


@pytest.mark.parametrize(
    "fuel,clean",
    [("electric", True), ("hydrogen", True), ("phev", False), ("gas", False), ("methanol", False),
     ("hybrid", False), ("diesel", False), ("petrol", False), (None, False)],
)
def test_is_clean(plan, fuel, clean):
    assert plan.is_clean(fuel) is clean


def test_clean_definition_is_data(tmp_path):
    p = load_policy(write(tmp_path, MINIMAL + '\n[fuels]\nclean = ["electric", "hydrogen", "phev", "gas"]\n'))
    assert p.is_clean("phev") and p.is_clean("gas") and not p.is_clean("methanol")
    assert any("unknown fuel 'lpg'" in e for e in errors(tmp_path, MINIMAL + '\n[fuels]\nclean = ["lpg"]\n'))
