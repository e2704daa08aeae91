/* 执法检查工作台 — the bureau's inspection workbench (issue 17): the anomaly list with its evidence, the alert-day
   comparison of one enterprise, and the audit packet (检查材料) as XLSX or PDF. Its own file beside bureau.js. */
"use strict";
(() => {
  const { api, guard, showNotice, el, label, fmtTime, pct } = CG;
  const $ = (id) => document.getElementById(id);
  const RULES = { alert_traffic_drop: "预警日车流骤降", clean_ratio_jump: "清洁比例跃升", gate_silent: "门岗停报",
                  ledger_gap: "台账缺号" };
  const WEEK = "一二三四五六日";
  const num = (x) => (x === null || x === undefined) ? "—" : String(x);
  const ratio = (x) => (x === null || x === undefined) ? "—" : pct(x);

  function defaults() {
    const last = CG.today();
    const d = new Date(last + "T00:00:00+08:00");
    d.setUTCDate(d.getUTCDate() - 30);
    $("wb-to").value = last;
    $("wb-from").value = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(d);
  }
  const period = () => ({ from: $("wb-from").value, to: $("wb-to").value });

  // ---- anomaly list -------------------------------------------------------------------------------------------
  let seq = 0;
  async function loadAnomalies() {
    const mine = ++seq;
    await guard("wb-error", async () => {
      const data = await api("/api/v1/inspection/anomalies", { query: { ...period(), enterprise_id: $("wb-enterprise").value } });
      if (mine !== seq) return;
      $("wb-anomalies-title").textContent = `${data.from} 至 ${data.to} · ${data.count} 条异常 / anomalies`;
      CG.sortableTable($("wb-anomalies"), [
        { key: "rule", title: "类型", render: (r) => el("span", { class: "tag flag rule-" + r.rule, title: r.title }, RULES[r.rule] || r.rule) },
        { key: "enterprise_id", title: "企业", render: (r) => `${r.enterprise_name || ""} (${r.enterprise_id})` },
        { key: "gate_id", title: "门岗" },
        { key: "detail", title: "说明" },
        { key: "evidence", title: "证据 evidence", sort: () => null, render: (r) => el("span", {},
          r.evidence.map((ev) => el("button", { type: "button", class: "secondary small evidence", "data-kind": ev.kind,
                                                onclick: (e) => { e.stopPropagation(); showEvidence(ev); } }, ev.label.split(" / ")[0]))) },
      ], data.anomalies, {});
    });
  }

  // ---- evidence: each kind of link drawn as a table ---------------------------------------------------------------
  async function showEvidence(ev) {
    $("wb-evidence-title").textContent = ev.label;
    await guard("wb-error", async () => {
      const data = await api(ev.href);
      const box = $("wb-evidence");
      if (ev.kind === "comparison") { drawComparison(data, box); return; }
      if (ev.kind === "ledger") {
        CG.sortableTable(box, [
          { key: "at", title: "时间", render: (r) => fmtTime(r.at) },
          { key: "gate_id", title: "门岗" }, { key: "gate_seq", title: "序号", num: true },
          { key: "plate", title: "车牌", render: (r) => CG.plateBadge(r.plate, r.plate_color) },
          { key: "direction", title: "方向", render: (r) => label("direction", r.direction) },
          { key: "decision", title: "判定", render: (r) => label("decision", r.decision) },
          { key: "emission_stage", title: "排放", render: (r) => CG.stage(r.emission_stage) },
          { key: "source", title: "来源", render: (r) => label("source", r.source) },
        ], data.passages, { sortKey: "gate_seq", sortDir: 1 });
      } else if (ev.kind === "report") {
        CG.sortableTable(box, [
          { key: "month", title: "月份" }, { key: "trips", title: "车次", num: true },
          { key: "clean_trips", title: "清洁车次", num: true },
          { key: "ratio_trips", title: "车次清洁比例", num: true, render: (r) => ratio(r.ratio_trips) },
        ], data.months || [], { sortKey: "month" });
      } else if (ev.kind === "volumes") {
        CG.sortableTable(box, [
          { key: "month", title: "月份" }, { key: "rail_tonnes", title: "铁路(吨)", num: true },
          { key: "conveyor_tonnes", title: "皮带(吨)", num: true }, { key: "total_tonnes", title: "合计(吨)", num: true },
        ], data.volumes || [], { sortKey: "month" });
      } else if (ev.kind === "video") {
        CG.sortableTable(box, [
          { key: "gate_id", title: "门岗" }, { key: "started_at", title: "开始", render: (r) => fmtTime(r.started_at) },
          { key: "ended_at", title: "结束", render: (r) => fmtTime(r.ended_at) }, { key: "status", title: "状态" },
          { key: "sha256", title: "sha256" },
        ], data.segments || [], { sortKey: "started_at" });
      } else {
        box.textContent = JSON.stringify(data, null, 2);
      }
    });
  }

  // ---- alert-day comparison -----------------------------------------------------------------------------------
  function drawComparison(c, box) {
    box.textContent = "";
    $("wb-comparison-title").textContent = `${c.enterprise_name || ""} (${c.enterprise_id})`;
    const s = c.summary;
    box.append(el("p", { class: "muted", id: s === undefined ? undefined : "wb-summary" },
      `${s.days} 天 · 进厂 ${s.trips_in} · 出厂 ${s.trips_out} · 预警期间放行国四及以下重型货车 ${s.heavy_low_stage_admitted} 辆 · ` +
      `人工放行 ${s.overrides} 次 · 门岗静默 ${s.silent_gate_days} 门岗日`));
    const days = el("div", { class: "scroll" });
    box.append(days);
    CG.sortableTable(days, [
      { key: "day", title: "日期", render: (r) => `${r.day} 周${WEEK[r.weekday - 1]}` },
      { key: "alert_levels", title: "预警", render: (r) => r.alert_levels.map((x) => label("level", x)).join("、") || "—" },
      { key: "trips_in", title: "进厂", num: true }, { key: "baseline_in", title: "基准进厂", num: true, render: (r) => num(r.baseline_in) },
      { key: "in_vs_baseline", title: "进厂/基准", num: true, render: (r) => ratio(r.in_vs_baseline) },
      { key: "trips_out", title: "出厂", num: true }, { key: "baseline_out", title: "基准出厂", num: true, render: (r) => num(r.baseline_out) },
      { key: "out_vs_baseline", title: "出厂/基准", num: true, render: (r) => ratio(r.out_vs_baseline) },
      { key: "denied", title: "禁止通行", num: true },
    ], c.days, { sortKey: "day" });
    box.append(el("h4", {}, "橙色/红色预警期间放行的国四及以下重型货车（应为零） / heavy China IV-or-older admitted"));
    const heavy = el("div", { class: "scroll", id: "wb-heavy" });
    box.append(heavy);
    CG.sortableTable(heavy, [
      { key: "at", title: "时间", render: (r) => fmtTime(r.at) }, { key: "gate_id", title: "门岗" },
      { key: "plate", title: "车牌" }, { key: "emission_stage", title: "排放", render: (r) => CG.stage(r.emission_stage) },
      { key: "source", title: "来源", render: (r) => label("source", r.source) },
      { key: "passage_id", title: "记录编号" },
    ], c.heavy_low_stage_admitted, { sortKey: "at", rowClass: () => "deny" });
    box.append(el("h4", {}, "人工放行 / overrides"));
    const ov = el("div", { class: "scroll" });
    box.append(ov);
    CG.sortableTable(ov, [
      { key: "at", title: "时间", render: (r) => fmtTime(r.at) }, { key: "gate_id", title: "门岗" }, { key: "plate", title: "车牌" },
      { key: "override_reason", title: "原因" }, { key: "actor", title: "操作人" },
      { key: "overridden", title: "原判定", render: (r) => `${label("decision", r.overridden.decision)} ${r.overridden.rules.join("、")}` },
    ], c.overrides, { sortKey: "at" });
    box.append(el("h4", {}, "门岗静默与录像缺口 / silent gates, video gaps"));
    const gates = el("div", { class: "scroll" });
    box.append(gates);
    const gateDays = c.gates.flatMap((g) => g.days.map((d) => ({ gate_id: g.gate_id, ...d })));
    CG.sortableTable(gates, [
      { key: "gate_id", title: "门岗" }, { key: "day", title: "日期" }, { key: "passages", title: "记录", num: true },
      { key: "baseline_passages", title: "基准", num: true, render: (r) => num(r.baseline_passages) },
      { key: "video", title: "录像", render: (r) => !r.video ? "无录像设备" : (r.video.gaps.length
        ? r.video.gaps.map((g) => `缺 ${fmtTime(g.from).slice(-8, -3)}–${fmtTime(g.to).slice(-8, -3)} (${g.minutes} 分钟)`).join("；")
        : `完整 ${r.video.covered_minutes} 分钟`) },
      { key: "silent", title: "静默", render: (r) => r.silent ? el("span", { class: "tag met-false" }, "静默") : "—" },
    ], gateDays, { sortKey: "gate_id" });
  }

  function enterpriseOrFail() {
    const id = $("wb-enterprise").value || (CG.principal() || {}).enterprise_id;
    if (!id) throw new CG.ApiFailure(0, "enterprise_required", "请先选择企业 / choose an enterprise first");
    return id;
  }

  async function compare() {
    await guard("wb-error", async () => {
      const query = { enterprise_id: enterpriseOrFail() };
      if ($("wb-alert").value) query.alert_id = $("wb-alert").value;
      else Object.assign(query, period());
      drawComparison(await api("/api/v1/inspection/comparison", { query }), $("wb-comparison"));
    });
  }

  async function packet(fmt) {
    let id;
    try { id = enterpriseOrFail(); } catch (e) { CG.showError("wb-error", e); return; }
    const query = { ...period(), enterprise_id: id, n: $("wb-n").value, seed: $("wb-seed").value.trim(), format: fmt };
    const name = await CG.download("/api/v1/inspection/packet", query, `inspection.${fmt}`, "wb-error");
    if (name) {
      const m = /seed(\d+)/.exec(name);
      if (m) $("wb-seed").value = m[1];  // the seed it was drawn with: the same packet again on the next click
      showNotice("wb-msg", `已下载 ${name}（抽样种子 seed ${m ? m[1] : "?"}，以此 seed 可重新生成相同材料）`);
    }
  }

  $("wb-form").addEventListener("submit", (e) => { e.preventDefault(); loadAnomalies(); });
  $("wb-compare-btn").addEventListener("click", compare);
  $("wb-packet-xlsx").addEventListener("click", () => packet("xlsx"));
  $("wb-packet-pdf").addEventListener("click", () => packet("pdf"));

  CG.onLogin(async (me) => {
    if (!me || !["ecology", "admin", "enterprise"].includes(me.role)) return;
    defaults();
    await guard("wb-error", async () => {
      const [{ enterprises }, { alerts }] = await Promise.all([api("/api/v1/enterprises"), api("/api/v1/alerts")]);
      const sel = $("wb-enterprise");
      sel.textContent = "";
      if (me.role !== "enterprise") sel.append(el("option", { value: "" }, "全部 (异常清单)"));
      for (const x of enterprises) sel.append(el("option", { value: x.id }, x.name || x.id));
      if (me.role === "enterprise") sel.value = me.enterprise_id;
      for (const a of alerts.filter((x) => ["orange", "red"].includes(x.level) && !x.cancelled_at)) {
        $("wb-alert").append(el("option", { value: a.id }, `${label("level", a.level)} ${fmtTime(a.starts_at)} 起`));
      }
    });
    loadAnomalies();
  });
})();
