/* 交警黑名单 — search, add, revoke, import, export the blacklist; per-plate history. */
"use strict";
(() => {
  const { api, raw, guard, showError, showNotice, el, label, fmtTime } = CG;
  const $ = (id) => document.getElementById(id);
  for (const [v, t] of Object.entries(CG.LABELS.blReason)) {
    $("a-reason").append(el("option", { value: v }, `${t} (${v})`));
    $("s-reason").append(el("option", { value: v }, t));
  }
  const STATUS = { active: "有效", expired: "已到期", revoked: "已撤销" };

  function query() {
    return { plate: $("s-plate").value.trim(), status: $("s-status").value, reason: $("s-reason").value,
             added_from: $("s-from").value, added_to: $("s-to").value };
  }

  async function search() {
    await guard("search-error", async () => {
      const { entries, count } = await api("/api/v1/blacklist", { query: query() });
      $("search-count").textContent = `共 ${count} 条 / ${count} entries`;
      CG.sortableTable($("bl-table"), [
        { key: "plate", title: "车牌", render: (r) => el("b", {}, r.plate) },
        { key: "reason", title: "原因", render: (r) => r.reason_label || label("blReason", r.reason) },
        { key: "valid_until", title: "有效期至", render: (r) => r.valid_until || "撤销前有效" },
        { key: "status", title: "状态", render: (r) => el("span", { class: "tag " + (r.status === "active" ? "deny" : "flag") }, r.status_label || STATUS[r.status] || r.status) },
        { key: "case_ref", title: "案件编号" },
        { key: "checkpoint", title: "查处地点" },
        { key: "note", title: "备注" },
        { key: "added_at", title: "列入时间", render: (r) => fmtTime(r.added_at) },
        { key: "added_by", title: "列入人" },
        { key: "close_reason", title: "撤销原因" },
        { key: "actions", title: "操作", render: (r) => el("span", {},
            r.status === "active" ? el("button", { type: "button", class: "danger", onclick: (e) => { e.stopPropagation(); startRevoke(r.plate); } }, "撤销") : null, " ",
            el("button", { type: "button", class: "secondary", onclick: (e) => { e.stopPropagation(); showHistory(r.plate); } }, "历史")) },
      ], entries, { sortKey: "added_at", sortDir: -1 });
    });
  }
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); search(); });

  $("add-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { plate: $("a-plate").value.trim(), reason: $("a-reason").value };
    const opt = { valid_until: "a-until", note: "a-note", case_ref: "a-case", checkpoint: "a-checkpoint" };
    for (const [k, id] of Object.entries(opt)) if ($(id).value.trim()) body[k] = $(id).value.trim();
    await guard("add-msg", async () => {
      const row = await api("/api/v1/blacklist", { method: "POST", body });
      showNotice("add-msg", (row.result === "merged" ? `已合并到现有记录 ${row.plate}` : `已列入 ${row.plate}`) +
        ` · ${row.reason_label || row.reason} · 有效期至 ${row.valid_until || "撤销前"} / ${row.result}`);
      $("add-form").reset();
      search();
    });
  });

  function startRevoke(plate) {
    $("rv-plate").value = plate;
    $("rv-reason").focus();
    $("revoke-panel").scrollIntoView({ behavior: "smooth", block: "center" });
  }
  $("revoke-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const plate = $("rv-plate").value.trim();
    await guard("revoke-msg", async () => {
      const row = await api(`/api/v1/blacklist/${encodeURIComponent(plate)}`, { method: "DELETE", body: { reason: $("rv-reason").value.trim() } });
      showNotice("revoke-msg", `已撤销 ${row.plate} / revoked`);
      $("revoke-form").reset();
      search();
    });
  });

  $("import-btn").addEventListener("click", async () => {
    const file = $("import-file").files[0];
    if (!file) return showError("import-msg", { message: "请选择 CSV 或 XLSX 文件 / choose a file" });
    const ctype = /\.xlsx$/i.test(file.name) ? "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" :
      /\.csv$/i.test(file.name) ? "text/csv" : (file.type || "application/octet-stream");
    $("import-report").textContent = "";
    await guard("import-msg", async () => {
      const resp = await raw("/api/v1/blacklist/import", { method: "POST", body: file, headers: { "Content-Type": ctype } });
      const rep = await resp.json();
      showNotice("import-msg", `导入完成 / imported — 列入 added ${rep.added} · 合并 merged ${rep.merged} · 未导入 rejected ${rep.rejected}`);
      const RESULT = { added: "列入", merged: "合并", rejected: "未导入" };
      CG.sortableTable($("import-report"), [
        { key: "line", title: "行号", num: true }, { key: "plate", title: "车牌" },
        { key: "result", title: "结果", render: (r) => el("span", { class: "tag " + (r.result === "rejected" ? "deny" : "allow") }, RESULT[r.result] || r.result) },
        { key: "valid_until", title: "有效期至" }, { key: "message", title: "说明", render: (r) => (r.field ? `[${r.field}] ` : "") + (r.message || "") },
      ], rep.rows || [], { sortKey: "line" });
      search();
    });
  });

  const exporter = (fmt) => () => CG.download("/api/v1/blacklist", { ...query(), format: fmt }, `blacklist.${fmt}`, "export-msg")
    .then((name) => { if (name) showNotice("export-msg", `已下载 ${name} / downloaded`); });
  $("export-csv").addEventListener("click", exporter("csv"));
  $("export-xlsx").addEventListener("click", exporter("xlsx"));

  const KIND = { add: "列入", added: "列入", merge: "合并", merged: "合并", revoke: "撤销", revoked: "撤销", expire: "到期", expired: "到期" };
  async function showHistory(plate) {
    $("h-plate").value = plate;
    $("history").textContent = "";
    await guard("history-error", async () => {
      const h = await api(`/api/v1/blacklist/${encodeURIComponent(plate)}/history`);
      const box = $("history");
      box.append(el("p", {}, el("b", {}, h.plate), ` 共 ${h.events.length} 条事件 / events`));
      const div = el("div", { class: "scroll" });
      box.append(div);
      CG.sortableTable(div, [
        { key: "at", title: "时间", render: (r) => fmtTime(r.at) },
        { key: "kind", title: "事件", render: (r) => KIND[r.kind] || r.kind },
        { key: "reason", title: "原因", render: (r) => r.reason_label || (r.reason ? label("blReason", r.reason) : null) },
        { key: "valid_until", title: "有效期至" },
        { key: "why", title: "撤销/说明" },
        { key: "actor", title: "操作人", render: (r) => `${r.actor || ""} (${r.role || ""})` },
        { key: "source", title: "来源", render: (r) => ({ api: "手工录入", import: "批量导入", job: "系统" }[r.source] || r.source) + (r.import_line ? ` 第${r.import_line}行` : "") },
        { key: "case_ref", title: "案件编号" },
        { key: "note", title: "备注" },
      ], h.events, { sortKey: "at", sortDir: 1 });
      $("history").scrollIntoView({ behavior: "smooth", block: "nearest" });
    });
  }
  $("history-form").addEventListener("submit", (e) => { e.preventDefault(); showHistory($("h-plate").value.trim()); });

  CG.onLogin((me) => {
    if (!me) return;
    if (!["police", "admin", "ecology", "kiosk", "enterprise"].includes(me.role)) return;
    if (me.role !== "police" && me.role !== "admin")
      showError("search-error", { code: "read_only", message: `当前角色 ${me.role} 只能查询,列入/撤销/导入需交警令牌 / read only for this role` });
    search();
  });
  CG.initHeader("police");
})();
