/* 人工放行 — overrides that let through a vehicle the rules deny or a blacklisted one (police and bureau pages). */
"use strict";
(() => {
  const { api, guard, el, fmtTime, plateBadge } = CG;
  const $ = (id) => document.getElementById(id);
  const panel = $("releases-panel");
  if (!panel) return;
  const ROLES = ["police", "ecology", "admin", "enterprise"];

  // The panel's markup lives here, once: the police and bureau pages hold an empty placeholder for it.
  const field = (text, en, input) => el("label", {}, text + " ", el("small", {}, en), input);
  panel.replaceChildren(
    el("h2", {}, "人工放行 ", el("small", {}, "manual releases: overrides that let a denied or blacklisted vehicle through")),
    el("form", { id: "releases-form", class: "row" },
      field("起", "from", el("input", { id: "mr-from", type: "date" })),
      field("止", "to", el("input", { id: "mr-to", type: "date" })),
      field("车牌", "plate", el("input", { id: "mr-plate", style: "width:9em" })),
      el("label", {}, el("input", { id: "mr-all", type: "checkbox" }), " 含全部人工覆盖 ", el("small", {}, "every override")),
      el("button", { type: "submit", id: "releases-btn" }, "查询 / search"),
      el("span", { id: "releases-count", class: "muted" })),
    el("div", { id: "releases-error", class: "hidden" }),
    el("div", { class: "scroll", id: "releases-table" }));

  async function load() {
    await guard("releases-error", async () => {
      const query = { from: $("mr-from").value, to: $("mr-to").value, plate: $("mr-plate").value.trim() };
      if ($("mr-all").checked) query.all = "true";
      const { releases, count } = await api("/api/v1/manual-releases", { query });
      $("releases-count").textContent = `共 ${count} 条 / ${count} releases`;
      CG.sortableTable($("releases-table"), [
        { key: "at", title: "放行时间", render: (r) => fmtTime(r.at) },
        { key: "plate", title: "车牌", render: (r) => plateBadge ? plateBadge(r.plate) : r.plate },
        { key: "gate_name", title: "门岗", render: (r) => `${r.gate_name || r.gate_id}${r.enterprise_name ? " · " + r.enterprise_name : ""}` },
        { key: "why", title: "放行对象", render: (r) => el("span", {},
            r.blacklisted ? el("span", { class: "tag deny" }, "黑名单车辆") : null, " ",
            r.denied_by.length ? el("span", { class: "tag deny" }, "规则禁止 " + r.denied_by.join(", ")) : null,
            !r.manual_release ? el("span", { class: "tag" }, "非违规放行") : null) },
        { key: "cited_plate", title: "原识别", render: (r) => r.plate_corrected ? `${r.cited_plate} → 更正为 ${r.plate}` : r.cited_plate },
        { key: "override_reason", title: "放行原因" },
        { key: "actor", title: "操作人" },
        { key: "cited_at", title: "原通行时间", render: (r) => fmtTime(r.cited_at) },
      ], releases, { sortKey: "at", sortDir: -1 });
    });
  }
  $("releases-form").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  const start = (me) => {
    if (me && ROLES.includes(me.role)) return load();
    $("releases-table").textContent = ""; $("releases-count").textContent = "";  // logged out: nothing stays
  };
  CG.onLogin(start);
  start(CG.principal());
})();
