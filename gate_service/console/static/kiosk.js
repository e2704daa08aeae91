/* 门岗值守 — the guard's screen: live frame, read, decision, register, manual entry, override, today's list. */
"use strict";
(() => {
  const { api, raw, guard, showError, showNotice, el, label, stage, fmtTime, today, localToIso } = CG;
  const $ = (id) => document.getElementById(id);
  let gate = null, me = null, watch = null, watchGen = 0, current = null, cameraUrl = null, lastFrameAt = 0;

  // ---- select options ------------------------------------------------------------------------------
  const fill = (sel, dict, withBlank) => {
    if (!withBlank) sel.textContent = "";
    for (const [v, t] of Object.entries(dict)) sel.append(el("option", { value: v }, `${t} (${v})`));
  };
  fill($("m-color"), CG.LABELS.color, true);
  fill($("r-color"), CG.LABELS.color, true);
  fill($("r-fuel"), CG.LABELS.fuel);
  fill($("r-class"), CG.LABELS.vclass);
  for (let s = 0; s <= 6; s++) $("r-stage").append(el("option", { value: s }, stage(s)));

  setInterval(() => { $("clock").textContent = "北京时间 " + fmtTime(new Date().toISOString()); }, 1000);

  // ---- login and gate ------------------------------------------------------------------------------
  CG.onLogin(async (principal) => {
    me = principal;
    const sel = $("gate-select");
    sel.textContent = "";
    closeWatch();
    if (!me) { sel.disabled = true; sel.append(el("option", { value: "" }, "—")); return; }
    if (me.role === "kiosk") {
      sel.append(el("option", { value: me.gate_id }, me.gate_id));
      sel.disabled = true;
      return selectGate(me.gate_id);
    }
    if (me.role !== "admin" && me.role !== "ecology") {
      showError("kiosk-error", { code: "wrong_role", message: `本页面需要门岗终端(kiosk)或管理员令牌,当前角色 ${me.role} / this page needs a kiosk token` });
      return;
    }
    await guard("kiosk-error", async () => {
      const { gates } = await api("/api/v1/gates");
      for (const g of gates) sel.append(el("option", { value: g.id }, `${g.name || g.id} (${g.id})`));
      sel.disabled = false;
      const wanted = new URLSearchParams(location.search).get("gate") || sessionStorage.getItem("cleangate.gate");
      const pick = gates.find((g) => g.id === wanted) || gates[0];
      if (pick) { sel.value = pick.id; selectGate(pick.id); }
      else showError("kiosk-error", { code: "no_gates", message: "尚未登记任何门岗 / no gate registered yet" });
    });
  });
  $("gate-select").addEventListener("change", (e) => {
    sessionStorage.setItem("cleangate.gate", e.target.value);
    selectGate(e.target.value);
  });

  function selectGate(id) {
    gate = id;
    document.body.dataset.gate = id;
    current = null;
    showPassage(null);
    openWatch();
    refreshStatus();
    refreshCamera();
    refreshToday();
  }

  // ---- the watch WebSocket: reads and passages of this gate --------------------------------------------
  // The token travels as a subprotocol, not in the URL: URLs end up in proxy logs and browser history.
  function wsUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }
  function wsOpen(url) { return new WebSocket(url, ["cleangate.v1", "bearer." + CG.token()]); }
  function setWs(on, text) { const s = $("ws-state"); s.className = "wsstate " + (on ? "on" : "off"); s.textContent = "● " + text; }
  function closeWatch() { watchGen++; if (watch) { watch.onclose = null; watch.close(); watch = null; } setWs(false, "未连接"); }
  function openWatch() {
    closeWatch();
    const gen = watchGen;
    const ws = wsOpen(wsUrl(`/api/v1/gates/${encodeURIComponent(gate)}/watch`));
    watch = ws;
    ws.onmessage = (ev) => {
      let msg; try { msg = JSON.parse(ev.data); } catch (_) { return; }
      if (msg.type === "hello") { setWs(true, "实时连接 live"); document.body.dataset.watching = "1"; }
      else if (msg.type === "read") onRead(msg);
      else if (msg.type === "passage") { showPassage(msg.passage); refreshToday(); refreshCamera(); }
    };
    ws.onclose = () => {
      if (gen !== watchGen) return;
      setWs(false, "连接断开,重连中… reconnecting");
      document.body.dataset.watching = "";
      setTimeout(() => { if (gen === watchGen && CG.token()) openWatch(); }, 3000);
    };
  }

  function onRead(msg) {
    const r = msg.read;
    if (r && r.plate) {
      const p = $("read-plate");
      p.textContent = r.plate; p.className = "plate " + (r.color || "unknown");
      $("read-color").textContent = label("color", r.color);
      // The calibrated chance the read is exactly right, when the reader gives one; else its raw score.
      const sure = r.probability != null ? `识别正确率约 ${(r.probability * 100).toFixed(0)}%`
                                         : `置信度 ${(r.confidence * 100).toFixed(0)}%`;
      $("read-conf").textContent = `${sure} · ${fmtTime(msg.at, false)}`;
    }
    refreshCamera();
  }

  // ---- camera frame: latest.jpg through fetch (the token rides in a header) ---------------------------------
  async function refreshCamera() {
    if (!gate || !CG.token()) return;
    const now = Date.now();
    if (now - lastFrameAt < 300) return;
    lastFrameAt = now;
    try {
      const resp = await raw(`/api/v1/gates/${encodeURIComponent(gate)}/latest.jpg`);
      const url = URL.createObjectURL(await resp.blob());
      const img = $("camera-img");
      img.src = url; img.classList.remove("hidden");
      img.title = "画面时间 " + fmtTime(resp.headers.get("X-Frame-Time"));
      $("camera-empty").classList.add("hidden");
      if (cameraUrl) URL.revokeObjectURL(cameraUrl);
      cameraUrl = url;
    } catch (e) {
      if (e.code !== "no_frame") showError("kiosk-error", e);
    }
  }
  setInterval(() => { if (document.visibilityState === "visible") refreshCamera(); }, 2000);

  // ---- the gate's RTSP cameras: connected, fps, last frame, errors --------------------------------------------
  async function refreshCameras() {
    if (!gate || !CG.token()) return;
    try {
      const { cameras } = await api(`/api/v1/gates/${encodeURIComponent(gate)}/cameras`);
      $("cam-state").textContent = cameras.map((c) => {
        const s = c.state || {};
        const on = s.connected ? "● 在线 online" : (c.enabled ? "○ 离线 offline" : "○ 停用 disabled");
        const last = s.last_frame_at ? ` · 最后画面 ${fmtTime(s.last_frame_at)}` : "";
        return `摄像机 ${c.id} (${c.roles.join("+")}): ${on} · ${(s.fps || 0).toFixed(1)} fps${last} · 错误 errors ${s.errors || 0}`;
      }).join("  |  ");
    } catch (e) {
      $("cam-state").textContent = "";
    }
  }
  setInterval(() => { if (document.visibilityState === "visible") refreshCameras(); }, 5000);

  // ---- control status ---------------------------------------------------------------------------------------------------------------------------------
  async function refreshStatus() {
    if (!CG.token()) return;
    await guard("kiosk-error", async () => {
      const s = await api("/api/v1/console/status");
      $("policy-title").textContent = (s.campaign ? "秋冬季攻坚 " : "常态管控 ") + (s.policy.document || s.policy.id);
      $("policy-title").title = s.policy.title;
      const lv = $("alert-level");
      lv.className = "level " + (s.alert_level || "");
      lv.textContent = s.alert_level ? label("level", s.alert_level) + ` (${s.alert_level})` : "无预警 no alert";
    });
  }
  setInterval(refreshStatus, 60000);

  // ---- the decision panel ---------------------------------------------------------------------------------------------------------------------------------
  function showPassage(p) {
    current = p;
    const v = $("verdict");
    if (!p) {
      v.className = "verdict"; v.innerHTML = "等待车辆<small>waiting for a vehicle</small>";
      $("passage-detail").classList.add("hidden");
      return;
    }
    v.className = "verdict " + p.decision;
    v.dataset.passageId = p.passage_id;
    v.textContent = p.decision === "allow" ? "放行" : "禁止通行";
    v.append(el("small", {}, (p.decision === "allow" ? "ALLOW · " : "DENY · ") + p.plate + " · " +
      label("direction", p.direction) + " · " + fmtTime(p.at) + (p.overrides ? " · 人工放行 override" : "")));
    $("passage-detail").classList.remove("hidden");
    const vh = p.vehicle || {};
    const badge = $("v-plate");
    badge.textContent = p.plate; badge.className = "plate " + (vh.plate_color || p.plate_color || "unknown");
    $("v-meta").textContent = p.vehicle ? [label("color", vh.plate_color), "VIN " + (vh.vin || "—"), vh.engine_no ? "发动机号 " + vh.engine_no : null, vh.haulier].filter(Boolean).join(" · ") :
      "未登记车辆 / not registered";
    $("v-stage").textContent = p.vehicle ? stage(vh.emission_stage) : "—";
    $("v-fuel").textContent = p.vehicle ? label("fuel", vh.fuel_type) : "—";
    $("v-class").textContent = p.vehicle ? label("vclass", vh.vehicle_class) : "—";
    $("v-policy").textContent = (p.policy_document ? `${p.policy_document} (${p.policy_id})` : (p.policy_id || "—")) + (p.alert_level ? " · " + label("level", p.alert_level) : "") +
      (p.blacklisted ? " · 黑名单车辆" : "");
    const box = $("v-reasons");
    box.textContent = "";
    // A live answer lists every reason (denials and flags, each with its effect) and `flags` as rule ids; a row of
    // today's list comes split already. Sort by effect so a flag is never drawn as a red denial.
    const all = [...(p.reasons || []), ...(p.flags || []).filter((f) => f && typeof f === "object")];
    const denials = all.filter((x) => x.effect !== "flag"), flags = all.filter((x) => x.effect === "flag");
    if (denials.length || flags.length) box.append(CG.reasonList(denials, flags));
    const canOverride = p.decision === "deny" && me && (me.role === "kiosk" || me.role === "admin");
    $("override-form").classList.toggle("hidden", !canOverride);
    showError("override-error", null);
  }

  $("override-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!current) return;
    const p = current;
    await guard("override-error", async () => {
      const answer = await api(`/api/v1/gates/${encodeURIComponent(gate)}/passages`, {
        method: "POST",
        body: { plate: p.plate, direction: p.direction, overrides: p.passage_id,
                override_reason: $("override-reason").value.trim(), client_ref: "console-ovr-" + p.passage_id },
      });
      $("override-reason").value = "";
      showPassage(answer);
      refreshToday();
    });
  });

  // ---- manual passage --------------------------------------------------------------------------------------------------------------------------------------
  $("manual-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!gate) return showError("manual-error", { message: "请先选择门岗 / choose a gate first" });
    const body = { plate: $("m-plate").value.trim(), direction: $("m-direction").value,
                   client_ref: "console-" + (crypto.randomUUID ? crypto.randomUUID() : Date.now() + "-" + Math.random()) };
    if ($("m-color").value) body.plate_color = $("m-color").value;
    if ($("m-at").value) body.at = localToIso($("m-at").value);
    if ($("m-cargo").value.trim()) body.cargo = $("m-cargo").value.trim();
    if ($("m-tonnes").value !== "") body.tonnes = Number($("m-tonnes").value);
    await guard("manual-error", async () => {
      const answer = await api(`/api/v1/gates/${encodeURIComponent(gate)}/passages`, { method: "POST", body });
      showPassage(answer);
      refreshToday();
    });
  });

  // ---- register a vehicle -------------------------------------------------------------------------------------------------------------------------------------
  $("register-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const plate = $("r-plate").value.trim();
    const body = { fuel_type: $("r-fuel").value, vehicle_class: $("r-class").value,
                   emission_stage: $("r-stage").value === "" ? null : Number($("r-stage").value) };
    const opt = { plate_color: "r-color", vin: "r-vin", engine_no: "r-engine", registered_on: "r-registered", haulier: "r-haulier" };
    for (const [k, id] of Object.entries(opt)) if ($(id).value.trim()) body[k] = $(id).value.trim();
    await guard("register-error", async () => {
      const row = await api(`/api/v1/vehicles/${encodeURIComponent(plate)}`, { method: "PUT", body });
      let note = `已登记 ${row.plate}: ${stage(row.emission_stage)} ${label("fuel", row.fuel_type)} ${label("vclass", row.vehicle_class)}`;
      const file = $("r-photo").files[0];
      if (file) {
        const resp = await raw(`/api/v1/console/vehicles/${encodeURIComponent(row.plate)}/document`, {
          method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
        const doc = await resp.json();
        note += ` · 照片已保存 (${Math.round(doc.document_bytes / 1024)} KB)`;
      }
      showNotice("register-error", note + " / registered");
    });
  });

  // ---- today's passages ---------------------------------------------------------------------------------------------------------------------------------------
  let todayTimer = null;
  function refreshToday() { clearTimeout(todayTimer); todayTimer = setTimeout(loadToday, 150); }
  async function loadToday() {
    if (!gate || !CG.token()) return;
    await guard("today-error", async () => {
      const { passages } = await api("/api/v1/passages", { query: { gate_id: gate, from: today(), limit: 300 } });
      CG.sortableTable($("today-table"), [
        { key: "at", title: "时间", render: (r) => fmtTime(r.at, false) },
        { key: "plate", title: "车牌", render: (r) => el("b", {}, r.plate) },
        { key: "direction", title: "方向", render: (r) => label("direction", r.direction) },
        { key: "decision", title: "判定", render: (r) => el("span", { class: "tag " + r.decision }, label("decision", r.decision)) },
        { key: "vehicle", title: "车辆", render: (r) => r.registered ? `${stage(r.emission_stage)} ${label("fuel", r.fuel_type)} ${label("vclass", r.vehicle_class)}` : "未登记" },
        { key: "rules", title: "依据", render: (r) => (r.reasons || []).map((x) => x.clause + " " + (x.message || "")).join(";") || "—" },
        { key: "source", title: "来源", render: (r) => label("source", r.source) + (r.override_reason ? ":" + r.override_reason : "") },
      ], passages, { sortKey: "at", sortDir: -1, onRow: (r) => showPassage(rowToPassage(r)) });
    });
  }
  $("today-refresh").addEventListener("click", loadToday);

  function rowToPassage(r) {
    const reasons = (r.reasons || []).filter((x) => x.effect !== "flag");
    const flags = (r.reasons || []).filter((x) => x.effect === "flag");
    return { passage_id: r.id, gate_id: r.gate_id, plate: r.plate, direction: r.direction, at: r.at, decision: r.decision,
             reasons, flags, policy_id: r.policy_id, alert_level: r.alert_level, blacklisted: r.blacklisted,
             vehicle: r.vehicle, plate_color: r.plate_color, overrides: r.overrides };
  }

  // ---- camera simulator: chosen JPEGs as frames over the stream WebSocket ----------------------------------------------------------------------
  async function reencode(file, quality) {
    const bmp = await createImageBitmap(file);
    const c = document.createElement("canvas");
    c.width = bmp.width; c.height = bmp.height;
    c.getContext("2d").drawImage(bmp, 0, 0);
    return new Promise((resolve) => c.toBlob(resolve, "image/jpeg", quality));
  }
  $("sim-send").addEventListener("click", async () => {
    const files = Array.from($("sim-files").files);
    const status = $("sim-status");
    if (!gate) return showError("kiosk-error", { message: "请先选择门岗 / choose a gate first" });
    if (!files.length) { status.textContent = "请选择图片 / choose JPEG files"; return; }
    const repeat = Math.max(1, Math.min(20, Number($("sim-repeat").value) || 1));
    const ws = wsOpen(wsUrl(`/api/v1/gates/${encodeURIComponent(gate)}/stream`) + "?direction=" + $("sim-direction").value);
    ws.binaryType = "arraybuffer";
    let sent = 0, errors = 0;
    const done = new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error("WebSocket 连接失败 / stream connection failed"));
    });
    ws.onmessage = (ev) => {
      let m; try { m = JSON.parse(ev.data); } catch (_) { return; }
      if (m.type === "error") { errors++; showError("kiosk-error", { code: m.error.code, message: m.error.message }); }
    };
    try {
      await done;
      for (const f of files) {
        for (let i = 0; i < repeat; i++) {
          // Re-encoded at a slightly different quality each time: identical bytes would count as a duplicate frame.
          const blob = await reencode(f, 0.93 - i * 0.01);
          ws.send(await blob.arrayBuffer());
          sent++;
          status.textContent = `已发送 ${sent} 帧 / frames sent`;
          await new Promise((r) => setTimeout(r, 350));
        }
      }
      status.textContent = `已发送 ${sent} 帧` + (errors ? `,${errors} 帧无法识别` : "") + " / done";
      status.dataset.sent = String(sent);
      setTimeout(() => ws.close(), 5000);
    } catch (e) {
      showError("kiosk-error", e);
      ws.close();
    }
  });

  CG.initHeader("kiosk");
})();
