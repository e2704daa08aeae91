"""The audit packet (检查材料) of e-a for 12-18..12-31 of conftest.py's month: 7 ledger rows (12-18: electric in
and out, the denied 国4 truck, its override, the 国5 truck; 12-30 and 12-31: camera rows with pictures)."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.inspection.conftest import D4

PERIOD = "enterprise_id=e-a&from=2024-12-18&to=2024-12-31"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


async def _packet(client, headers, query, status=200):
    resp = await client.get(f"/api/v1/inspection/packet?{query}", headers=headers)
    assert resp.status == status, await resp.text()
    return resp


async def test_packet_json_rechecks_and_lists(client, month):
    p = await (await _packet(client, month["admin"], f"{PERIOD}&n=7&seed=1")).json()
    assert (p["population"], p["n"], p["seed"], len(p["sample"])) == (7, 7, 1, 7)
    # All seven, in ledger order (time, gate, seq).
    assert [s["index"] for s in p["sample"]] == list(range(7))
    checks = {s["passage_id"]: s["check"] for s in p["sample"]}
    for pid in (month["denied"], month["override"]):
        # Recorded as 国4 at the gate; the registry now says 国3.
        assert checks[pid]["differences"] == ["emission_stage"] and checks[pid]["status"] == "不一致 / differs"
        assert (checks[pid]["recorded"]["emission_stage"], checks[pid]["registry_now"]["emission_stage"]) == (4, 3)
    assert sum(c["status"] == "一致 / same" for c in checks.values()) == 5
    pictures = [s for s in p["sample"] if s["snapshot_available"]]
    assert {s["passage_id"] for s in pictures} == set(month["images"])
    assert all(s["crop_available"] and s["crop_href"].endswith("?kind=crop") for s in pictures)
    assert p["alert_days"] == ["2024-12-18", "2024-12-19"]
    assert p["comparison"]["summary"]["heavy_low_stage_admitted"] == 1
    [ov] = p["overrides"]
    [den] = p["denials"]
    assert ov["passage_id"] == month["override"] and den["passage_id"] == month["denied"] and den["overridden"]
    assert den["plate"] == D4 and den["rules"] == ["alert-key-industry-guo4"]
    # The sampled alert day is drawn after the sample by the same generator: seed 1 draws it reproducibly.
    rng = random.Random(1)
    rng.sample(range(7), 7)
    day = rng.choice(["2024-12-18", "2024-12-19"])
    assert p["sampled_alert_day"] == day
    expected = {"2024-12-18": ["1800" + "a" * 60, "1810" + "a" * 60], "2024-12-19": ["1900" + "a" * 60]}[day]
    assert [s["sha256"] for s in p["segments"]] == expected


async def test_seed_remakes_the_same_sample(client, month):
    a = month["admin"]
    first = await (await _packet(client, a, f"{PERIOD}&n=3&seed=12345")).json()
    again = await (await _packet(client, a, f"{PERIOD}&n=3&seed=12345")).json()
    assert [s["passage_id"] for s in first["sample"]] == [s["passage_id"] for s in again["sample"]]
    assert first["sample_digest"] == again["sample_digest"] and first["sample"] == again["sample"]
    # The documented draw: random.Random(seed).sample over the rows in ledger order.
    assert [s["index"] for s in first["sample"]] == sorted(random.Random(12345).sample(range(7), 3))
    digests = {(await (await _packet(client, a, f"{PERIOD}&n=3&seed={s}")).json())["sample_digest"]
               for s in range(20)}
    assert len(digests) > 1
    # Without a seed one is chosen and recorded; re-making with it gives the same rows.
    unseeded = await (await _packet(client, a, f"{PERIOD}&n=3")).json()
    remade = await (await _packet(client, a, f"{PERIOD}&n=3&seed={unseeded['seed']}")).json()
    assert remade["sample"] == unseeded["sample"]


async def test_packet_xlsx_opens_with_pictures_and_marks(client, month):
    resp = await _packet(client, month["admin"], f"{PERIOD}&n=7&seed=7&format=xlsx")
    assert resp.headers["X-Packet-Seed"] == "7" and "seed7.xlsx" in resp.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(await resp.read()))
    assert wb.sheetnames == ["概要", "抽样记录", "预警日对比", "人工放行", "禁止通行", "录像段"]
    cover = {r[0]: r[1] for r in wb["概要"].iter_rows(min_row=3, max_col=2, values_only=True) if r[0]}
    assert cover["抽样种子 seed"] == "7" and cover["企业名称"] == "襄汾某钢铁"
    ws = wb["抽样记录"]
    headers = [c.value for c in ws[2]]
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=3, max_row=9)]
    assert len(rows) == 7 and len(ws._images) == 4  # snapshot + crop of the two camera rows
    result = headers.index("复核结果")
    marked = [r for r in rows if r[result] == "不一致 / differs"]
    assert len(marked) == 2 and all(r[headers.index("车牌")] == D4 for r in marked)
    assert {r[headers.index("排放阶段(记录)")] for r in marked} == {"国四"}
    assert {r[headers.index("排放阶段(现登记)")] for r in marked} == {"国三"}
    for i, r in enumerate(ws.iter_rows(min_row=3, max_row=9)):
        filled = r[result].fill.fgColor.rgb
        assert (filled == "00FFF2CC") == (rows[i][result] == "不一致 / differs")
    comparison = [[c.value for c in r] for r in wb["预警日对比"].iter_rows(values_only=False)]
    assert ["2024-12-18", "三", "橙色", 3, 1, 1, 6, 6, 0.5, 0.1667] in [[c for c in r[:10]] for r in comparison]
    # Re-made with the seed: the same sample rows, cell for cell.
    again = load_workbook(io.BytesIO(await (await _packet(client, month["admin"],
                                                          f"{PERIOD}&n=7&seed=7&format=xlsx")).read()))
    assert [[c.value for c in r] for r in again["抽样记录"].iter_rows()] == \
        [[c.value for c in r] for r in ws.iter_rows()]


@pytest.mark.skipif(not shutil.which("pdftoppm") or not shutil.which("pdftotext"),
                    reason="poppler-utils (pdftoppm, pdftotext) not installed: scripts/test installs it as root")
async def test_packet_pdf_renders_with_chinese(client, month, tmp_path):
    from gate_service.inspection.packet_pdf import FontMissing, find_font

    try:
        find_font()
    except FontMissing as exc:
        pytest.skip(f"no CJK font: {exc}")
    resp = await _packet(client, month["admin"], f"{PERIOD}&n=7&seed=7&format=pdf")
    assert resp.content_type == "application/pdf"
    pdf = tmp_path / "packet.pdf"
    pdf.write_bytes(await resp.read())
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    compact = "".join(text.split())  # table cells wrap long text over lines
    for needle in ("重点用车单位检查材料", "襄汾某钢铁", "抽样种子seed7", "不一致", "国四", "国三", "人工放行记录",
                   "应急保供物资，值班领导批准", "alert-key-industry-guo4", "2024-12-18", "晋LB4444"):
        assert needle in compact, needle
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    cjk = [line for line in fonts.splitlines() if "CJK" in line or "Zen" in line]
    assert cjk and all(" yes " in line for line in cjk)  # embedded
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "842 x 595" in info.replace(".", " ").replace("  ", " ") or "A4" in info
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3 and all(p.stat().st_size > 5000 for p in pages)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for p in pages:
        shutil.copy(p, ARTIFACTS / f"inspection-packet-{p.name}")


async def test_packet_errors_and_roles(client, month, token):
    err = await (await _packet(client, month["admin"], f"{PERIOD}&n=0", 422)).json()
    assert err["error"]["code"] == "bad_sample_size"
    err = await (await _packet(client, month["admin"], "from=2024-12-01&to=2024-12-31", 422)).json()
    assert err["error"]["code"] == "enterprise_required"
    own = await token("enterprise", enterprise_id="e-b")
    err = await (await _packet(client, own, PERIOD, 403)).json()
    assert err["error"]["code"] == "forbidden_enterprise"
    mine = await (await _packet(client, own, "from=2024-12-01&to=2024-12-31&n=2&seed=3")).json()
    assert mine["enterprise_id"] == "e-b" and len(mine["sample"]) == 2
