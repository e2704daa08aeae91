/* 生态环境局 — clean-transport ratios, monthly chart, alerts, ledger with snapshot and clip, exports. */
"use strict";
(() => {
  const { api, guard, showError, showNotice, el, label, fmtTime, pct, localToIso } = CG;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  for (const [v, t] of Object.entries(CG.LABELS.zone)) $("f-zone").append(el("option", { value: v }, t));
  for (const [v, t] of Object.entries(CG.LABELS.industry)) $("f-industry").append(el("option", { value: v }, t));
  const year = CG.today().slice(0, 4);
  // ?from=&to= (the demo's links) choose the period; else the calendar year, as the plan's targets are set.
  const wanted = new URLSearchParams(location.search);
  $("f-from").value = wanted.get("from") || `${year}-01-01`;
  $("f-to").value = wanted.get("to") || `${year}-12-31`;

  // ---- report table ---------------------------------------------------------------------------------
  function reportQuery() {
    return { from: $("f-from").value, to: $("f-to").value, county: $("f-county").value.trim(),
             zone_id: $("f-zone").value, industry: $("f-industry").value, met: $("f-met").value };
  }
  const metTag = (m) => el("span", { class: "tag met-" + m }, m === true ? "达标" : m === false ? "未达标" : "无目标/无数据");
  let reportSeq = 0, ledgerSeq = 0;  // a slow earlier answer must not overwrite a later one
  async function loadReport() {
    const seq = ++reportSeq;
    // Until the answer comes, the last period's figures must not stand under the newly chosen dates.
    $("report-totals").textContent = "查询中… / loading";
    $("report-table").textContent = "";
    $("chart-title").textContent = "";
    $("chart").textContent = "";
    const shown = await guard("report-error", async () => {
      let data = await api("/api/v1/reports/clean-transport", { query: { ...reportQuery(), months: "true" } });
      if (!data.rows) data = { from: data.from, to: data.to, count: 1, rows: [data], totals: {} };  // an enterprise token: its own report
      if (seq !== reportSeq) return;
      // An enterprise token gets its own report (one object, API.md), the bureau a list of them with totals.
      const rows = Array.isArray(data.rows) ? data.rows : [data];
      const t = data.totals || {};
      $("report-totals").textContent = `${data.from} 至 ${data.to} · ${rows.length} 家企业` +
        (t.ratio !== undefined ? ` · 全市清洁运输比例 ${pct(t.ratio)}` : "") +
        (t.trips !== undefined ? ` · 进出厂 ${t.trips} 车次,其中清洁 ${t.clean_trips}` : "");
      CG.sortableTable($("report-table"), [
        { key: "enterprise_name", title: "企业", render: (r) => `${r.enterprise_name || ""} (${r.enterprise_id})` },
        { key: "industry", title: "行业", render: (r) => label("industry", r.industry) },
        { key: "county", title: "县(市、区)" },
        { key: "zone_id", title: "园区", render: (r) => label("zone", r.zone_id) },
        { key: "trips", title: "车次", num: true },
        { key: "clean_trips", title: "清洁车次", num: true },
        { key: "tonnes", title: "运量(吨)", num: true, render: (r) => r.tonnes.toLocaleString("zh-CN") },
        { key: "ratio", title: "清洁运输比例", num: true, render: (r) => pct(r.ratio) },
        { key: "target", title: "目标", num: true, render: (r) => pct(r.target) },
        { key: "gap", title: "差距", num: true, sort: (r) => (r.target === null || r.ratio === null) ? null : r.ratio - r.target,
          render: (r) => (r.target === null || r.ratio === null) ? "—" : ((r.ratio - r.target) * 100).toFixed(1) + " 个百分点" },
        { key: "met", title: "达标", render: (r) => metTag(r.met), sort: (r) => r.met === null ? null : Number(r.met) },
      ], rows, { sortKey: "ratio", sortDir: 1, onRow: (r) => drawChart(r) });
      if (rows.length) drawChart(rows[0]);
      else $("chart").append(el("p", { class: "muted" }, "该期间没有符合条件的企业 / no enterprise matches"));
      return true;
    });
    if (!shown && seq === reportSeq) $("report-totals").textContent = "";  // the error box says why
  }
  $("report-form").addEventListener("submit", (e) => { e.preventDefault(); loadReport(); });
  const reportDownload = (fmt, view) => () => CG.download("/api/v1/reports/clean-transport",
    { ...reportQuery(), format: fmt, view }, `clean-transport.${fmt}`, "report-error")
    .then((n) => { if (n) showNotice("download-msg", `已下载 ${n} / downloaded`); });
  $("report-csv").addEventListener("click", reportDownload("csv"));
  $("report-xlsx").addEventListener("click", reportDownload("xlsx"));
  $("report-xlsx-months").addEventListener("click", reportDownload("xlsx", "months"));

  // ---- chart: inline SVG, month bars and the target line ----------------------------------------------------------
  function svg(tag, attrs, text) {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function drawChart(row) {
    $("chart-title").textContent = `— ${row.enterprise_name || ""} (${row.enterprise_id})`;
    const months = row.months || [];
    const box = $("chart");
    box.textContent = "";
    if (!months.length) { box.append(el("p", { class: "muted" }, "该期间没有月度数据 / no months")); return; }
    const W = 760, H = 260, L = 44, R = 12, T = 14, B = 34;
    const pw = W - L - R, ph = H - T - B;
    const s = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "月度清洁运输比例" });
    const y = (v) => T + ph * (1 - Math.max(0, Math.min(1, v)));
    for (const g of [0, 0.25, 0.5, 0.75, 1]) {
      s.append(svg("line", { x1: L, x2: W - R, y1: y(g), y2: y(g), class: "axis", "stroke-opacity": g ? 0.25 : 1 }));
      s.append(svg("text", { x: L - 6, y: y(g) + 4, "text-anchor": "end" }, `${g * 100}%`));
    }
    const step = pw / months.length, bw = Math.max(6, step * 0.6);
    const targetPts = [];
    months.forEach((m, i) => {
      const cx = L + step * (i + 0.5);
      if (m.ratio !== null && m.ratio !== undefined) {
        const cls = m.met === true ? "bar met" : m.met === false ? "bar miss" : "bar";
        const rect = svg("rect", { x: cx - bw / 2, y: Math.min(y(m.ratio), y(0) - 2), width: bw, height: Math.max(2, y(0) - y(m.ratio)), class: cls });
        rect.append(svg("title", {}, `${m.month}: ${pct(m.ratio)} (目标 ${pct(m.target)}) · ${m.trips} 车次`));
        s.append(rect);
        s.append(svg("text", { x: cx, y: y(m.ratio) - 3, "text-anchor": "middle" }, pct(m.ratio)));
      } else {
        s.append(svg("text", { x: cx, y: y(0) - 4, "text-anchor": "middle", fill: "#999" }, "无数据"));
      }
      s.append(svg("text", { x: cx, y: H - B + 16, "text-anchor": "middle" }, m.month.slice(2)));
      if (m.target !== null && m.target !== undefined) targetPts.push(`${L + step * i},${y(m.target)} ${L + step * (i + 1)},${y(m.target)}`);
    });
    if (targetPts.length) s.append(svg("polyline", { points: targetPts.join(" "), class: "target" }));
    const legendY = H - 6;
    s.append(svg("rect", { x: L, y: legendY - 9, width: 10, height: 10, class: "bar met legend" }));
    s.append(svg("text", { x: L + 14, y: legendY }, "当月达标"));
    s.append(svg("rect", { x: L + 80, y: legendY - 9, width: 10, height: 10, class: "bar miss legend" }));
    s.append(svg("text", { x: L + 94, y: legendY }, "当月未达标"));
    s.append(svg("line", { x1: L + 170, x2: L + 196, y1: legendY - 4, y2: legendY - 4, class: "target" }));
    // Which plan set the target: a standing one (base.toml) is a reading, and the bureau should see that.
    const plan = row.target_plan === "base" ? " · 常态目标" : row.target_plan ? ` · ${row.target_plan}` : "";
    s.append(svg("text", { x: L + 200, y: legendY }, `目标 target${row.target !== null ? " " + pct(row.target) + plan : "(无)"}`));
    box.append(s);
  }

  // ---- alerts ---------------------------------------------------------------------------------------------------------------------------
  async function loadAlerts() {
    await guard("alert-msg", async () => {
      const { alerts } = await api("/api/v1/alerts");
      CG.sortableTable($("alert-table"), [
        { key: "level", title: "等级", render: (r) => el("span", { class: "level " + r.level }, label("level", r.level)) },
        { key: "starts_at", title: "开始", render: (r) => fmtTime(r.starts_at) },
        { key: "ends_at", title: "结束", render: (r) => fmtTime(r.ends_at) },
        { key: "note", title: "说明" },
        { key: "declared_by", title: "发布人" },
      ], alerts, { sortKey: "starts_at", sortDir: -1 });
    });
  }
  $("alert-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { level: $("al-level").value, starts_at: localToIso($("al-start").value), ends_at: localToIso($("al-end").value) };
    if ($("al-note").value.trim()) body.note = $("al-note").value.trim();
    await guard("alert-msg", async () => {
      const row = await api("/api/v1/alerts", { method: "POST", body });
      await loadAlerts();
      showNotice("alert-msg", `已发布${label("level", row.level)}:${fmtTime(row.starts_at)} 至 ${fmtTime(row.ends_at)} / declared`);
    });
  });

  // ---- the rules in force: the plan file as loaded, so what is shown is what the gates apply --------------------------------------------
  async function loadPolicy() {
    await guard("policy-error", async () => {
      const { in_force, policies } = await api("/api/v1/policies");
      const p = policies.find((x) => x.id === in_force);
      const dates = p.effective_from ? `${p.effective_from} 至 ${p.effective_until}` : "无攻坚方案期间的常态管控 / standing measures";
      $("policy-title").textContent = `${p.title}(${p.document})· ${dates}`;
      CG.sortableTable($("policy-table"), [
        { key: "clause", title: "条款" },
        { key: "effect", title: "处理", render: (r) => (r.effect === "deny" ? "禁止通行" : "提示") },
        { key: "message", title: "规则" },
        { key: "document", title: "依据" },
      ], p.rules, { sortKey: "clause", sortDir: 1 });
    });
  }

  // ---- ledger ---------------------------------------------------------------------------------------------------------------------------
  function ledgerQuery() {
    return { gate_id: $("l-gate").value, enterprise_id: $("l-enterprise").value, plate: $("l-plate").value.trim(),
             decision: $("l-decision").value, from: $("l-from").value, to: $("l-to").value };
  }
  async function loadLedger() {
    const seq = ++ledgerSeq;
    await guard("ledger-error", async () => {
      const { passages, count } = await api("/api/v1/passages", { query: { ...ledgerQuery(), limit: 500 } });
      if (seq !== ledgerSeq) return;
      $("ledger-count").textContent = `${count} 条` + (count >= 500 ? "(仅显示前 500 条,请缩小范围或下载)" : "");
      CG.sortableTable($("ledger-table"), [
        { key: "at", title: "时间", render: (r) => fmtTime(r.at) },
        { key: "gate_name", title: "门岗", render: (r) => r.gate_name || r.gate_id },
        { key: "enterprise_name", title: "企业", render: (r) => r.enterprise_name || "城市检查站" },
        { key: "plate", title: "车牌", render: (r) => el("b", {}, r.plate) },
        { key: "direction", title: "方向", render: (r) => label("direction", r.direction) },
        { key: "decision", title: "判定", render: (r) => el("span", { class: "tag " + r.decision }, label("decision", r.decision)) },
        { key: "vehicle", title: "车辆", render: (r) => r.registered ? `${CG.stage(r.emission_stage)} ${label("fuel", r.fuel_type)} ${label("vclass", r.vehicle_class)}` : "未登记" },
        { key: "rules", title: "依据", render: (r) => (r.reasons || []).map((x) => x.clause).join(" ") || "—" },
        { key: "clean", title: "清洁", render: (r) => r.clean ? "是" : "否" },
        { key: "source", title: "来源", render: (r) => label("source", r.source) },
        { key: "media", title: "影像", render: (r) => (r.snapshot_ref ? "📷" : "") + (r.video_segment_id ? "🎬" : "") || "—" },
      ], passages, { sortKey: "at", sortDir: -1, onRow: (r) => showDetail(r) });
    });
  }
  $("ledger-form").addEventListener("submit", (e) => { e.preventDefault(); loadLedger(); });
  const ledgerDownload = (fmt) => () => CG.download("/api/v1/passages", { ...ledgerQuery(), format: fmt }, `passages.${fmt}`, "ledger-error")
    .then((n) => { if (n) showNotice("download-msg", `已下载 ${n} / downloaded`); });
  $("ledger-csv").addEventListener("click", ledgerDownload("csv"));
  $("ledger-xlsx").addEventListener("click", ledgerDownload("xlsx"));

  const urls = [];
  async function showDetail(r) {
    urls.splice(0).forEach((u) => URL.revokeObjectURL(u));
    const box = $("detail");
    box.textContent = "";
    box.append(el("p", {}, CG.plateBadge(r.plate, r.plate_color), " ",
      el("span", { class: "tag " + r.decision }, label("decision", r.decision)), ` ${fmtTime(r.at)} · ${r.gate_name || r.gate_id} · ${label("direction", r.direction)}`));
    if ((r.reasons || []).length) box.append(CG.reasonList(r.reasons.filter((x) => x.effect !== "flag"), r.reasons.filter((x) => x.effect === "flag")));
    if (r.override_reason) box.append(el("p", {}, "人工放行原因:" + r.override_reason));
    const media = el("div", { class: "media" });
    const snapErr = el("div", { class: "hidden" }), clipErr = el("div", { class: "hidden" });
    box.append(media, snapErr, clipErr);
    try {
      const u = await CG.blobUrl(`/api/v1/console/passages/${r.id}/snapshot.jpg`);
      urls.push(u);
      media.append(el("figure", {}, el("img", { src: u, alt: "抓拍", id: "detail-snapshot" }), el("figcaption", { class: "muted" }, "抓拍 snapshot")));
    } catch (e) { showError(snapErr, e); snapErr.prepend("抓拍图片:"); }
    try {
      const u = await CG.blobUrl(`/api/v1/passages/${r.id}/clip`);
      urls.push(u);
      media.append(el("figure", {}, el("video", { src: u, controls: true, id: "detail-clip" }),
        el("figcaption", {}, el("a", { href: u, download: `passage-${r.id}.mp4` }, "下载录像 download clip"))));
    } catch (e) {
      showError(clipErr, e); clipErr.prepend("录像:");
      if (e.code === "video_at_site" && CG.requestClipButton) clipErr.append(" ", CG.requestClipButton(r.id, clipErr));
    }
  }

  // ---- start ------------------------------------------------------------------------------------------------------------------------------
  CG.onLogin(async (me) => {
    if (!me) return;
    if (!["ecology", "admin", "enterprise"].includes(me.role)) {
      showError("report-error", { code: "wrong_role", message: `本页面需要生态环境局(ecology)令牌,当前角色 ${me.role} / this page needs an ecology token` });
      return;
    }
    // An enterprise reads its own figures; declaring alerts and the city filters are the bureau's.
    const bureau = me.role !== "enterprise";
    $("alert-form").classList.toggle("hidden", !bureau);
    for (const id of ["f-county", "f-zone", "f-industry", "f-met"]) $(id).closest("label").classList.toggle("hidden", !bureau);
    // 视频核查 is the bureau's inspection tool (its routes admit ecology and admin only).
    $("audit-panel").classList.toggle("hidden", !bureau);
    await guard("ledger-error", async () => {
      const [{ gates }, { enterprises }] = await Promise.all([api("/api/v1/gates"), api("/api/v1/enterprises")]);
      for (const g of gates) $("l-gate").append(el("option", { value: g.id }, g.name || g.id));
      for (const g of gates) $("au-gate").append(el("option", { value: g.id }, g.name || g.id));
      for (const x of enterprises) $("l-enterprise").append(el("option", { value: x.id }, x.name || x.id));
    });
    loadReport();
    if (bureau) loadAudits();
    loadAlerts();
    loadPolicy();
    loadLedger();
  });
  // ---- 视频核查: the reader over recorded video, vehicles not in the ledger are the finding ---------------------
  async function loadAudits() {
    await guard("audit-msg", async () => {
      const { audits } = await api("/api/v1/video/audits");
      const table = el("table", {}, el("tr", {}, ["门岗", "时段", "状态", "车辆", "未入台账", ""].map((h) => el("th", {}, h))));
      for (const a of audits) {
        const status = { running: "核查中", done: "完成", failed: "失败" }[a.status] || a.status;
        table.append(el("tr", {},
          el("td", {}, a.gate_id), el("td", {}, `${fmtTime(a.period_from)} – ${fmtTime(a.period_to)}`),
          el("td", {}, status + (a.error ? ` (${a.error})` : "")), el("td", { class: "num" }, a.vehicles ?? "—"),
          el("td", { class: "num" + (a.findings ? " deny" : "") }, a.findings ?? "—"),
          el("td", {}, a.status === "done" ? el("button", { type: "button", onclick: () => showAudit(a.id) }, "查看 / view") : "")));
      }
      $("audit-table").replaceChildren(table);
      if (audits.some((a) => a.status === "running")) setTimeout(loadAudits, 3000);
    });
  }
  async function showAudit(id) {
    await guard("audit-msg", async () => {
      const a = await api(`/api/v1/video/audits/${id}`);
      const r = a.result || {};
      const list = el("div", { class: "row" });
      for (const v of r.vehicles || []) {
        list.append(el("figure", { class: v.in_ledger ? "" : "deny", style: "margin:4px" },
          el("img", { src: v.thumbnail, alt: v.plate, width: "160" }),
          el("figcaption", {}, `${fmtTime(v.at)} ${v.plate === "unread" ? "未识别 unread" : v.plate} · `,
            v.in_ledger ? "台账已记录 in ledger" : el("b", {}, "未入台账 NOT IN LEDGER"))));
      }
      $("audit-detail").replaceChildren(
        el("p", {}, `门岗 ${a.gate_id} · 录像 ${r.segments ?? 0} 段 ${Math.round(r.video_seconds || 0)} 秒 · 台账 ${r.ledger_rows ?? 0} 条 · 发现 ${a.findings} 辆车不在台账`),
        list);
    });
  }
  $("audit-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    await guard("audit-msg", async () => {
      const body = { gate_id: $("au-gate").value, from: localToIso($("au-from").value), to: localToIso($("au-to").value) };
      const a = await api("/api/v1/video/audits", { method: "POST", body });
      showNotice("audit-msg", `核查已开始 #${a.id} / audit started`);
      loadAudits();
    });
  });

  CG.initHeader("bureau");
})();
