"""Hostile imports (issue 15 item 3): a zip bomb, a giant cell, a sheet that claims a million columns — each
refused with a code, quickly, without holding up the event loop."""

from __future__ import annotations

import asyncio
import io
import re
import time
import zipfile

import pytest

from benchmarks._fixtures import rewrite_member, workbook, zip_bomb

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ROUTES = {"registry": ("/api/v1/vehicles/import", "admin"), "blacklist": ("/api/v1/blacklist/import", "police")}


async def _post(client, token, route: str, data: bytes, ctype: str = XLSX):  # type: ignore[no-untyped-def]
    path, role = ROUTES[route]
    return await client.post(path, data=data, headers={**await token(role), "Content-Type": ctype})


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_zip_bomb_is_refused_at_once(client, token, route):
    bomb = zip_bomb(80)
    assert len(bomb) < 1024 * 1024  # under the request body cap: only the inflated size can catch it
    started = time.perf_counter()
    resp = await _post(client, token, route, bomb)
    assert resp.status == 413, await resp.text()
    assert (await resp.json())["error"]["code"] == "import_too_large"
    assert time.perf_counter() - started < 3
    assert (await client.get("/healthz")).status == 200


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_high_ratio_member_is_refused(client, token, route):
    # 20 MiB: under the total limit, but a thousand to one is no spreadsheet.
    resp = await _post(client, token, route, zip_bomb(20))
    assert resp.status == 413
    body = (await resp.json())["error"]
    assert body["code"] == "import_too_large" and "sheet1.xml" in body["message"]


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_a_giant_cell_is_422_with_its_line(client, token, route):
    data = workbook([["车牌号", "原因", "备注"], ["晋LA1234", "超标排放", "路检"], ["晋LB2222", "超标排放", "长" * 5000]])
    resp = await _post(client, token, route, data)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "import_cell_too_long" and "3" in error["message"]
    csv_data = ("车牌号,原因,备注\r\n晋LA1234,超标排放," + "x" * 5000 + "\r\n").encode()
    resp = await _post(client, token, route, csv_data, "text/csv")
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "import_cell_too_long"
    # Past csv's own field limit (128 KiB) too: a coded answer, not a 500.
    csv_data = ('车牌号,原因,备注\r\n晋LA1234,超标排放,"' + "x" * 200_000 + '"\r\n').encode()
    resp = await _post(client, token, route, csv_data, "text/csv")
    assert resp.status == 422 and (await resp.json())["error"]["code"] in ("import_cell_too_long", "bad_csv")


async def test_a_claimed_million_columns_is_not_padded_out(client, token):
    rows = [["车牌号", "原因"]] + [[f"晋LA{i:04d}", "超标排放"] for i in range(2000)]
    data = rewrite_member(workbook(rows), "xl/worksheets/sheet1.xml",
                    lambda body: re.sub(rb"<(sheetViews|sheetFormatPr|sheetData)", rb'<dimension ref="A1:XFD1048576"/><\1',
                                           body, count=1))
    assert b"XFD1048576" in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    started = time.perf_counter()
    resp = await _post(client, token, "blacklist", data)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["added"] == 2000
    assert time.perf_counter() - started < 30


async def test_import_parses_off_the_loop(client, token):
    # A legitimate 20k-row registry file takes a while to parse; the loop keeps turning meanwhile.
    rows = [["车牌号", "燃料类型", "车辆类型", "排放阶段"]] + \
        [[f"晋L{i:05d}", "柴油", "重型货车", "国六"] for i in range(20_000)]
    data = workbook(rows)

    async def post():
        resp = await _post(client, token, "registry", data)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    task = asyncio.create_task(post())
    worst, started = 0.0, time.perf_counter()
    last = started
    while not task.done():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        worst, last = max(worst, now - last - 0.01), now
    assert (await task)["created"] == 20_000
    took = time.perf_counter() - started
    # Against the duration: on a shared machine any process loses the CPU now and then; parsing on the loop
    # held it for most of the import (1.4 s of ~3 s before the parse and the row checks moved to a thread).
    assert worst < max(1.0, 0.25 * took), f"event loop held for {worst:.2f} s of {took:.2f} s"
