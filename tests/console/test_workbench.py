"""The /bureau inspection workbench in headless Chromium: the anomaly list of tests/inspection's December month,
an evidence link, the alert-day comparison and the packet's XLSX download; then the same page as the enterprise.
Screenshots go to tests/artifacts/ (bureau-workbench*.png)."""

from __future__ import annotations

import asyncio
import io
import time

from tests.inspection.conftest import D4, build_month


def _wait_file(folder, suffix, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {suffix} downloaded into {folder}: {[p.name for p in folder.iterdir()]}")


def test_bureau_workbench(live, page, downloads):
    admin = live.token("admin")

    async def put(path, body):
        status, answer = await asyncio.to_thread(live.call, "PUT", path, admin, body)
        assert status in (200, 201), answer

    async def post(path, body):
        return await asyncio.to_thread(live.call, "POST", path, admin, body)

    month = live.run(build_month(live.app, put, post), 600)
    ecology = live.token("ecology")
    page.open("/bureau", ecology)
    page.wait_text("#who", "生态环境局")
    page.wait(lambda: len(page.qa("#wb-enterprise option")) == 3, what="the enterprise list")
    page.set("#wb-from", "2024-12-01")
    page.set("#wb-to", "2024-12-31")
    page.click("#wb-anomalies-btn")
    page.wait_text("#wb-anomalies-title", "5 条异常")
    rows = [r.text for r in page.qa("#wb-anomalies tbody tr")]
    assert "预警日车流骤降" in rows[0] and "台账缺号" in rows[4] and "g-b1" in rows[4] and "末尾缺 1 条" in rows[3]
    # The first line's comparison evidence: 12-19 against its baseline of 6.
    page.click("#wb-anomalies tbody tr:first-child button.evidence[data-kind='comparison']")
    page.wait_text("#wb-evidence", "2024-12-19")
    assert "600.0%" not in page.text("#wb-evidence") and "0.0%" in page.text("#wb-evidence")
    # The ledger gap's evidence: the rows either side of the hole.
    page.click("#wb-anomalies tbody tr:nth-child(5) button.evidence[data-kind='ledger']")
    page.wait_text("#wb-evidence-title", "缺口前后的台账")
    page.wait_text("#wb-evidence", "g-b1")

    # The orange alert's comparison for e-a.
    page.select("#wb-enterprise", "e-a")
    page.select("#wb-alert", str(month["alerts"]["orange"]))
    page.click("#wb-compare-btn")
    page.wait_text("#wb-comparison", D4)
    summary = page.text("#wb-summary")
    assert "进厂 3" in summary and "国四及以下重型货车 1 辆" in summary and "人工放行 1 次" in summary
    assert "应急保供物资" in page.text("#wb-comparison") and "缺 10:00–10:20 (20 分钟)" in page.text("#wb-comparison")
    page.screenshot("bureau-workbench.png")

    # The packet: XLSX with the seed typed in; the file name and the notice carry it.
    page.type("#wb-seed", "2024")
    page.set("#wb-n", "5")
    page.click("#wb-packet-xlsx")
    path = _wait_file(downloads, "seed2024.xlsx")
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()))
    assert len(list(book["抽样记录"].iter_rows(min_row=3))) == 5
    path.unlink()
    page.wait_text("#wb-msg", "seed 2024")

    # The enterprise sees only its own lines.
    page.open("/bureau", live.token("enterprise", enterprise_id="e-a"))
    page.wait_text("#who", "企业")
    page.wait_text("#report-table", "襄汾某钢铁")  # its own report line, not a script error
    assert not page.errors()
    page.wait(lambda: [o.get_attribute("value") for o in page.qa("#wb-enterprise option")] == ["e-a"],
              what="only its own enterprise")
    page.set("#wb-from", "2024-12-01")
    page.set("#wb-to", "2024-12-31")
    page.click("#wb-anomalies-btn")
    page.wait_text("#wb-anomalies-title", "4 条异常")
    assert "e-b" not in page.text("#wb-anomalies")
    page.screenshot("bureau-workbench-enterprise.png")
