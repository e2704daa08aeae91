/* cleangate console — shared helpers: token login, API calls with error display, tables, downloads.
   Plain JS, no libraries. Every API call carries the pasted token; the pages themselves hold no data. */
"use strict";

const CG = (() => {
  const TOKEN_KEY = "cleangate.token";
  const listeners = [];
  let me = null;

  const LABELS = {
    role: { admin: "管理员", kiosk: "门岗终端", police: "交警", ecology: "生态环境局", enterprise: "企业" },
    color: { blue: "蓝牌", yellow: "黄牌", green: "绿牌", "yellow-green": "黄绿牌", white: "白牌", black: "黑牌",
             unknown: "未知" },
    fuel: { diesel: "柴油", petrol: "汽油", gas: "燃气", methanol: "甲醇", hybrid: "混合动力", phev: "插电混动",
            electric: "纯电动", hydrogen: "氢燃料" },
    vclass: { heavy_truck: "重型货车", medium_truck: "中型货车", light_truck: "轻型货车",
              concrete_mixer: "混凝土搅拌车", muck_truck: "渣土车", logistics: "物流车", bus: "客车", car: "小汽车",
              nonroad: "非道路移动机械", other: "其他" },
    decision: { allow: "放行", deny: "禁止通行" },
    direction: { in: "进", out: "出" },
    level: { yellow: "黄色预警", orange: "橙色预警", red: "红色预警" },
    industry: { steel: "钢铁", foundry_iron: "铸造(铁)", cement: "水泥", coking: "焦化", coal: "煤炭",
                non_ferrous: "有色", carbon: "炭素", other: "其他" },
    zone: { "linfen-edz": "临汾经济开发区", hongtong: "洪洞", xiangfen: "襄汾", quwo: "曲沃", houma: "侯马",
            huozhou: "霍州", "yaodu-hitech": "尧都高新区", city: "市区规划区", other: "其他" },
    blReason: { obd_tampering: "篡改OBD/排放控制装置", device_removed: "拆除后处理装置", over_limit: "排放超标",
                other: "其他" },
    source: { camera: "摄像头", manual: "人工录入", override: "人工放行" },
  };
  const label = (kind, v) => (v === null || v === undefined || v === "") ? "—" : (LABELS[kind][v] || v);
  const stage = (s) => (s === null || s === undefined) ? "—" : (s === 0 ? "国0" : "国" + s);

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  class ApiFailure extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  async function failure(resp) {
    let code = "http_" + resp.status, message = resp.statusText || "请求失败";
    try {
      const body = await resp.json();
      if (body && body.error) { code = body.error.code; message = body.error.message; }
    } catch (_) { /* not JSON */ }
    return new ApiFailure(resp.status, code, message);
  }

  /* fetch an API path with the token; returns the Response (ok) or throws ApiFailure. */
  async function raw(path, opts = {}) {
    const headers = Object.assign({}, opts.headers || {});
    const t = token();
    if (t) headers["Authorization"] = "Bearer " + t;
    let resp;
    try {
      resp = await fetch(path, Object.assign({}, opts, { headers }));
    } catch (e) {
      throw new ApiFailure(0, "network_error", "无法连接服务 / cannot reach the service: " + e.message);
    }
    if (!resp.ok) throw await failure(resp);
    return resp;
  }

  async function api(path, { method = "GET", body, query } = {}) {
    const url = path + (query ? "?" + qs(query) : "");
    const opts = { method };
    if (body !== undefined) {
      opts.body = JSON.stringify(body);
      opts.headers = { "Content-Type": "application/json" };
    }
    const resp = await raw(url, opts);
    const ctype = resp.headers.get("Content-Type") || "";
    return ctype.includes("json") ? resp.json() : resp;
  }

  function qs(query) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
    return p.toString();
  }

  /* Show an error (ApiFailure or other) in a box element; clear with showError(box, null). */
  function showError(box, err) {
    if (typeof box === "string") box = document.getElementById(box);
    if (!box) return;
    if (!err) { box.className = "hidden"; box.textContent = ""; return; }
    box.className = "error";
    box.textContent = "";
    const code = document.createElement("code");
    code.textContent = err.code ? `${err.status || ""} ${err.code}` : "error";
    box.append("错误 / Error ", code, " " + (err.message || String(err)));
  }
  function showNotice(box, text) {
    if (typeof box === "string") box = document.getElementById(box);
    box.className = "notice"; box.textContent = text;
  }

  /* Run an async action, showing its failure in box; returns the result or undefined. */
  async function guard(box, fn) {
    showError(box, null);
    try { return await fn(); } catch (e) { showError(box, e); if (!(e instanceof ApiFailure)) console.error(e); }
  }

  async function download(path, query, fallbackName, box) {
    return guard(box, async () => {
      const resp = await raw(path + "?" + qs(query));
      const blob = await resp.blob();
      const cd = resp.headers.get("Content-Disposition") || "";
      const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = m ? decodeURIComponent(m[1]) : fallbackName;
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 30000);
      return a.download;
    });
  }

  async function blobUrl(path, query) {
    const resp = await raw(path + (query ? "?" + qs(query) : ""));
    return URL.createObjectURL(await resp.blob());
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
    return node;
  }

  const SHANGHAI = "Asia/Shanghai";
  function fmtTime(iso, withDate = true) {
    if (!iso) return "—";
    const d = new Date(iso);
    const opts = { timeZone: SHANGHAI, hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" };
    if (withDate) Object.assign(opts, { year: "numeric", month: "2-digit", day: "2-digit" });
    return d.toLocaleString("zh-CN", opts);
  }
  function today() {  // the local (Beijing) day as YYYY-MM-DD
    return new Intl.DateTimeFormat("en-CA", { timeZone: SHANGHAI }).format(new Date());
  }
  /* <input type=datetime-local> value (Beijing wall time) → ISO with +08:00 offset */
  function localToIso(v) { return v ? (v.length === 16 ? v + ":00" : v) + "+08:00" : undefined; }
  function pct(x) { return (x === null || x === undefined) ? "—" : (x * 100).toFixed(1) + "%"; }

  function plateBadge(plate, color) {
    return el("span", { class: "plate " + (color || "unknown"), title: label("color", color) }, plate || "—");
  }

  function reasonList(reasons, flags) {
    const ul = el("ul", { class: "reasons" });
    for (const r of reasons || []) {
      ul.append(el("li", { class: "deny" }, el("span", { class: "clause" }, r.clause), r.message,
                   r.message_en ? el("div", { class: "en" }, r.message_en) : null));
    }
    for (const r of flags || []) {
      if (!r || typeof r !== "object") continue;  // a bare rule id carries nothing to show
      ul.append(el("li", { class: "flag" }, el("span", { class: "clause" }, "提示 " + (r.clause || r.rule || "")), r.message,
                   r.message_en ? el("div", { class: "en" }, r.message_en) : null));
    }
    return ul;
  }

  /* A table whose header cells sort the rows client-side. columns: [{key, title, num, render, sort}] */
  function sortableTable(container, columns, rows, { onRow, sortKey, sortDir = 1, rowClass } = {}) {
    let key = sortKey, dir = sortDir;
    const table = el("table", { class: "sortable-table" });
    const thead = el("thead"), tbody = el("tbody");
    table.append(thead, tbody);
    const headRow = el("tr");
    thead.append(headRow);
    const draw = () => {
      headRow.textContent = "";
      for (const c of columns) {
        const th = el("th", { class: "sortable" + (c.key === key ? (dir > 0 ? " sorted-asc" : " sorted-desc") : ""),
                              "data-key": c.key, onclick: () => { dir = (key === c.key) ? -dir : 1; key = c.key; draw(); } },
                      c.title);
        headRow.append(th);
      }
      const sorted = rows.slice();
      if (key) {
        const col = columns.find((c) => c.key === key) || {};
        const val = col.sort || ((r) => r[key]);
        sorted.sort((a, b) => {
          const x = val(a), y = val(b);
          if (x === y) return 0;
          if (x === null || x === undefined) return 1;   // blanks last whichever way
          if (y === null || y === undefined) return -1;
          return (x < y ? -1 : 1) * dir;
        });
      }
      tbody.textContent = "";
      for (const r of sorted) {
        const tr = el("tr", { class: (onRow ? "clickable " : "") + (rowClass ? rowClass(r) : "") });
        if (onRow) tr.addEventListener("click", () => {
          tbody.querySelectorAll("tr.selected").forEach((x) => x.classList.remove("selected"));
          tr.classList.add("selected"); onRow(r, tr);
        });
        for (const c of columns) {
          const v = c.render ? c.render(r) : r[c.key];
          tr.append(el("td", { class: c.num ? "num" : "" }, v === null || v === undefined ? "—" : v));
        }
        tbody.append(tr);
      }
      if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, "没有记录 / no rows")));
    };
    draw();
    container.textContent = "";
    container.append(table);
    return table;
  }

  /* Header: nav + token login. Calls back with the principal (or null) whenever the login changes. */
  function initHeader(page) {
    const header = document.querySelector("header.top");
    const input = header.querySelector("#token-input");
    const who = header.querySelector("#who");
    const err = document.getElementById("login-error");
    header.querySelectorAll("nav a").forEach((a) => { if (a.getAttribute("href") === "/" + page) a.classList.add("here"); });
    header.querySelector("#login-btn").addEventListener("click", () => login(input.value.trim()));
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") login(input.value.trim()); });
    header.querySelector("#logout-btn").addEventListener("click", () => {
      // A fresh page: nothing the previous role saw (tables, charts, open sockets, blob URLs) stays on screen.
      sessionStorage.removeItem(TOKEN_KEY); me = null; listeners.forEach((f) => f(null));
      location.replace(location.pathname + location.search);
    });
    function render() {
      who.textContent = me ? `已登录 ${label("role", me.role)} (${me.role})` + (me.gate_id ? ` · 门岗 ${me.gate_id}` : "") +
        (me.enterprise_id ? ` · 企业 ${me.enterprise_id}` : "") + (me.name ? ` · ${me.name}` : "") : "未登录 / not logged in";
      who.dataset.role = me ? me.role : "";
      input.classList.toggle("hidden", !!me);
      header.querySelector("#login-btn").classList.toggle("hidden", !!me);
      header.querySelector("#logout-btn").classList.toggle("hidden", !me);
      document.body.classList.toggle("logged-in", !!me);
    }
    async function login(t) {
      if (!t) { showError(err, { message: "请粘贴令牌 / paste a token" }); return; }
      sessionStorage.setItem(TOKEN_KEY, t);
      await check();
    }
    async function check() {
      showError(err, null);
      if (!token()) { me = null; render(); listeners.forEach((f) => f(null)); return; }
      try {
        me = await api("/api/v1/console/whoami");
        input.value = "";
      } catch (e) {
        me = null;
        if (e.status === 401) sessionStorage.removeItem(TOKEN_KEY);
        showError(err, e);
      }
      render();
      listeners.forEach((f) => f(me));
    }
    render();
    check();
  }

  function onLogin(f) { listeners.push(f); }
  function principal() { return me; }

  return { api, raw, qs, guard, showError, showNotice, download, blobUrl, el, fmtTime, today, localToIso, pct,
           label, stage, plateBadge, reasonList, sortableTable, initHeader, onLogin, principal, token, LABELS,
           ApiFailure };
})();
