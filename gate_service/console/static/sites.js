/* 联网: the bureau's 联网状态 table (GET /api/v1/sites) and, on a site's kiosk, how old its platform copy is. */
"use strict";
(() => {
  const { api, guard, el, fmtTime, pct } = CG;
  const $ = (id) => document.getElementById(id);
  const ago = (s) => s === null || s === undefined ? "—" : s < 120 ? `${s} 秒` : s < 7200 ? `${Math.round(s / 60)} 分钟` :
    `${(s / 3600).toFixed(1)} 小时`;

  async function loadSites() {
    if (!$("sites-table")) return;
    await guard("sites-error", async () => {
      const data = await api("/api/v1/sites");
      const online = data.sites.filter((s) => s.online).length;
      const broken = data.sites.filter((s) => s.chain === "broken").length;
      $("sites-summary").textContent = `${data.count} 个站点 · 在线 ${online} · 离线 ${data.count - online}` +
        (broken ? ` · 台账链断裂 ${broken}` : "") + ` · 上传率目标 ${pct(data.upload_rate_target)}`;
      CG.sortableTable($("sites-table"), [
        { key: "name", title: "站点", render: (s) => `${s.name || ""} (#${s.site_id})` },
        { key: "enterprise_id", title: "企业" },
        { key: "online", title: "在线", render: (s) => el("span", { class: "tag " + (s.online ? "allow" : "deny") },
            s.online ? "在线" : "离线"), sort: (s) => Number(s.online) },
        { key: "last_seen", title: "最后心跳", render: (s) => s.last_seen ? fmtTime(s.last_seen) : "从未" },
        { key: "uploaded", title: "已上传", num: true },
        { key: "pending", title: "待上传", num: true },
        { key: "upload_rate", title: "上传率(当日)", num: true, render: (s) => el("span", {
            class: "tag " + (s.upload_rate === null ? "met-null" : s.upload_rate >= data.upload_rate_target ? "met-true" : "met-false") },
            pct(s.upload_rate)) },
        { key: "lag_s", title: "延迟(秒)", num: true },
        { key: "chain", title: "台账链", render: (s) => el("span", { class: "tag " + (s.chain === "ok" ? "allow" : s.chain === "broken" ? "deny" : "met-null") },
            s.chain === "ok" ? "完整" : s.chain === "broken" ? "断裂" : "未知") },
        { key: "last_passage", title: "最近通行", render: (s) => s.last_passage ? fmtTime(s.last_passage) : "—" },
        { key: "problems", title: "问题", render: (s) => s.problems.map((p) => p.message +
            (p.first_bad_seq ? ` (门岗 ${p.gate_id} 第 ${p.first_bad_seq} 条起)` : "")).join(";") || "—",
          sort: (s) => s.problems.length },
      ], data.sites, { sortKey: "online", sortDir: 1, rowClass: (s) => s.online && s.chain !== "broken" ? "" : "bad" });
    });
  }

  // 调取录像: requests to sites and their state; a stored segment downloads with the token.
  async function loadRequests() {
    if (!$("vr-table")) return;
    await guard("vr-error", async () => {
      const data = await api("/api/v1/video-requests", { query: { limit: 100 } });
      CG.sortableTable($("vr-table"), [
        { key: "id", title: "编号", num: true },
        { key: "gate_id", title: "门岗" },
        { key: "from", title: "时段", render: (q) => `${fmtTime(q.from)} – ${fmtTime(q.to)}` },
        { key: "source", title: "来源", render: (q) => q.source === "site_hold" ? "站点保全" : `${q.requested_by}` },
        { key: "reason", title: "原因" },
        { key: "state", title: "状态", render: (q) => el("span", { class: "tag " + ({ done: "allow", failed: "deny",
            gone: "deny" }[q.state] || "met-null"), title: q.state_reason || "" }, q.state_zh) },
        { key: "video", title: "录像", render: (q) => q.state === "pending" || q.state === "uploading" ? "—" :
            el("button", { type: "button", onclick: () => showSegments(q.id) }, "查看片段") },
      ], data.requests, { sortKey: "id", sortDir: -1 });
    });
  }

  async function showSegments(id) {
    await guard("vr-error", async () => {
      const q = await api(`/api/v1/video-requests/${id}`);
      for (const s of q.segments.filter((x) => x.video)) {
        await CG.download(s.video, {}, `request-${id}-segment-${s.segment_id}.mp4`, "vr-error");
      }
      if (!q.segments.some((x) => x.video)) CG.showNotice("vr-error", q.segments.some((x) => x.state === "expired")
        ? "平台副本已按保存期限删除 / the platform's copies were deleted by retention"
        : q.state_reason || "没有已上传的片段 / no segment uploaded");
    });
  }

  // The passage detail's clip, when the video is still at the site: one press asks the site for it.
  CG.requestClipButton = (passageId, box) => el("button", { type: "button", onclick: async () => {
    await guard(box, async () => {
      const q = await api("/api/v1/video-requests", { method: "POST",
        body: { passage_id: passageId, reason: "生态环境局核查通行记录 / the bureau checks this passage" } });
      CG.showNotice(box, `已向站点调取(请求 #${q.id},${q.state_zh});上传完成后再打开本记录 / requested`);
      loadRequests();
    });
  } }, "向站点调取录像 / request from the site");

  async function loadLink() {
    const box = $("link-state");
    if (!box || !CG.token()) return;
    try {
      const s = await api("/api/v1/console/status");
      const link = s.link;
      if (!link) { box.classList.add("hidden"); return; }
      box.classList.remove("hidden");
      const bl = link.blacklist_updated_at ? `黑名单更新于 ${fmtTime(link.blacklist_updated_at)}` : "黑名单尚未从平台获取";
      box.className = "wsstate " + (link.connected ? "on" : "off");
      box.textContent = link.connected ? `● 已联网 · ${bl}` :
        `● 与平台断开 ${ago(link.disconnected_s)} · ${bl}` + (link.pending ? ` · 待上传 ${link.pending} 条` : "");
      box.title = link.platform_url + (link.last_error ? " · " + link.last_error : "");
    } catch (_e) { /* the kiosk's own error box already tells about a lost service */ }
  }

  CG.onLogin((me) => {
    if (!me) return;
    if ($("sites-table") && ["admin", "ecology", "enterprise"].includes(me.role)) { loadSites(); setInterval(loadSites, 30000); }
    if ($("vr-table") && ["admin", "ecology", "enterprise"].includes(me.role)) { loadRequests(); setInterval(loadRequests, 10000); }
    if ($("link-state")) { loadLink(); setInterval(loadLink, 10000); }
  });
})();
