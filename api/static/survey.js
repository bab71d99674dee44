// The survey page. Cadres: choose a class, download its template, upload, see every problem in a table next to
// the map (click a problem: the map shows the row), fix rows in place and resubmit them, or add one object by
// clicking on the map with a form made from the class's attribute table. Reviewers: pending submissions, rows
// with errors and likely duplicates on the map beside the existing object, approve or reject per row or whole.
// States: a cadre's upload is validated (or has problems to fix and resubmit into the same submission: only the
// corrected rows, with their 行标识 row key), then handed in; reviewers see handed-in ones as pending, decide rows,
// and the submission ends coded (or rejected). Everything shown is set as text (never as HTML); the map draws
// from citygrid's own tiles only, on the base map of /map (api/static/basemap.js: outlines, roads, buildings).
// For tests: window.surveyMap, body[data-map-ready="1"], tr[data-row], button[data-act].
(function () {
  "use strict";
  const BASE = window.citygridBase;
  const LOC = { name: "名称", loc_lon: "经度", loc_lat: "纬度", loc_crs: "坐标系", loc_address: "标准地址", loc_geometry: "几何" };
  const STATUS_ZH = { valid: "可审核", invalid: "有错", approved: "已通过", rejected: "已退回", coded: "已赋码",
    received: "已收到", validated: "已通过校验", submitted: "待审核" };
  const KEY_COL = { key: "row_key", label: "行标识", attr: null };  // matches a corrected row to the row it fixes
  const COLORS = { invalid: "#d32f2f", duplicate: "#f9a825", valid: "#2e7d32", approved: "#1565c0",
    rejected: "#9e9e9e", existing: "#6a1b9a" };
  let token = sessionStorage.getItem("citygrid-token") || "";
  const classes = new Map();  // code -> /classes/{code}
  const state = { detail: null, fixes: new Map(), adding: null, addMarker: null, vertices: [], list: [], me: null };
  const $ = (id) => document.getElementById(id);
  const say = (id, text) => { $(id).textContent = text; };
  const auth = () => (token ? { Authorization: "Bearer " + token } : {});
  const problem = (body) => (body && body.message_zh ? body.message_zh + " / " + body.message_en : "出错了");

  function h(tag, props, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") n.className = v;
      else if (k === "dataset") Object.assign(n.dataset, v);
      else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else n[k] = v;
    }
    for (const c of kids.flat()) if (c != null) n.append(c instanceof Node ? c : String(c));
    return n;
  }

  async function api(method, url, body) {
    const init = { method: method, headers: Object.assign({ Accept: "application/json" }, auth()) };
    if (body instanceof FormData) { init.body = body; }
    else if (body) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
    const r = await fetch(url, init);
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { const e = new Error(problem(data)); e.body = data; throw e; }
    return data;
  }

  async function classOf(code) {
    if (!classes.has(code)) classes.set(code, await api("GET", "/classes/" + encodeURIComponent(code)));
    return classes.get(code);
  }

  /** The survey table's columns of a class, in template order: key, label, attribute (or null). */
  function columnsOf(cls) {
    const point = cls.geometry === "Point" || cls.geometry === "MultiPoint";
    const loc = point ? ["loc_lon", "loc_lat", "loc_crs", "loc_address"] : ["loc_geometry", "loc_crs"];
    const cols = [{ key: "name", label: LOC.name, attr: null }].concat(loc.map((k) => ({ key: k, label: LOC[k], attr: null })));
    for (const a of cls.attributes || []) {
      if (a.field === "generated" || a.field === "generator") continue;
      cols.push({ key: a.field, label: a.label, attr: a });
    }
    return cols;
  }

  function csvCell(v) {
    const s = v == null ? "" : String(v);
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  /** A CSV (UTF-8 with BOM, the Chinese labels as header) of rows given as {key: value}. */
  function csvOf(cols, rows) {
    const lines = [cols.map((c) => csvCell(c.label)).join(",")];
    for (const r of rows) lines.push(cols.map((c) => csvCell(r[c.key])).join(","));
    return new Blob(["\ufeff" + lines.join("\r\n") + "\r\n"], { type: "text/csv" });
  }

  /** An input for one column: a list for enums and yes/no, a number or date field, else text. */
  function inputFor(col, value) {
    const a = col.attr;
    const v = value == null ? "" : String(value);
    let el;
    if (a && (a.enum || a.type === "boolean")) {
      const opts = a.enum || ["是", "否"];
      el = h("select", {}, h("option", { value: "" }, "—"), opts.map((o) => h("option", { value: o }, o)));
      if (v && !opts.includes(v)) el.append(h("option", { value: v }, v));
      el.value = v;
    } else if (a && a.type === "date") {
      el = h("input", { type: "text", value: v, placeholder: "2024-03-05" });
    } else if (a && (a.type === "integer" || a.type === "number")) {
      el = h("input", { type: "text", inputMode: "decimal", value: v });
    } else {
      el = h("input", { type: "text", value: v });
    }
    el.dataset.key = col.key;
    el.name = col.key;
    el.required = !!(a && a.required);
    return el;
  }

  const fieldLabel = (col) => col.label + (col.attr && col.attr.required ? " *" : "") + (col.attr && col.attr.unit ? "（" + col.attr.unit + "）" : "");

  // ---------------------------------------------------------------- log in

  async function whoami() {
    if (!token) { $("logout").hidden = true; return; }
    try {
      const me = await api("GET", "/auth/me");
      state.me = me;
      const roles = (me.roles || []).map((g) => g.role + (g.division ? "@" + g.division : "")).join(", ");
      say("login-msg", "已登录 / logged in: " + (me.display_name || me.username || "") + (roles ? "（" + roles + "）" : ""));
      $("logout").hidden = false;
    } catch (err) { token = ""; sessionStorage.removeItem("citygrid-token"); say("login-msg", err.message); }
  }

  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = new URLSearchParams({ username: $("login-user").value, password: $("login-pass").value });
    const r = await fetch("/auth/token", { method: "POST", body: form });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { say("login-msg", problem(data)); return; }
    token = data.access_token;
    sessionStorage.setItem("citygrid-token", token);
    $("login-pass").value = "";
    await whoami();
    await refresh();
  });

  $("logout").addEventListener("click", () => {
    token = "";
    sessionStorage.removeItem("citygrid-token");
    state.detail = null;
    state.me = null;
    $("detail").hidden = true;
    $("rows").querySelector("tbody").textContent = "";
    ["approve-all", "reject-all", "resubmit", "hand-in"].forEach((id) => { $(id).hidden = true; });
    $("submissions").querySelector("tbody").textContent = "";
    ["upload-msg", "review-msg", "map-msg"].forEach((id) => say(id, ""));
    if (state.adding) $("add-cancel").click();
    say("login-msg", "已退出 / logged out");
    $("logout").hidden = true;
    drawRows();
  });

  // ---------------------------------------------------------------- upload, add one

  $("upload-class").addEventListener("change", (e) => {
    $("template-link").href = "/templates/" + encodeURIComponent(e.target.value) + ".xlsx";
    if (state.adding) startAdd();
  });

  async function submit(form, msgId) {
    say(msgId, "上传中… / uploading");
    const s = await api("POST", "/submissions", form);
    say(msgId, "已收到 " + s.rows + " 行，" + s.invalid + " 行有问题 / received " + s.rows + " rows, " + s.invalid + " with problems");
    await refresh();
    await show(s.id);
    return s;
  }

  $("upload-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await submit(new FormData(e.target), "upload-msg"); } catch (err) { say("upload-msg", err.message); }
  });

  async function startAdd() {
    const cls = await classOf($("upload-class").value);
    state.adding = { cls: cls, cols: columnsOf(cls) };
    state.vertices = [];
    const box = $("add-fields");
    box.replaceChildren();
    for (const col of state.adding.cols) {
      if (col.key.startsWith("loc_")) continue;  // the location comes from the map
      box.append(h("label", { htmlFor: "add-" + col.key }, fieldLabel(col)), Object.assign(inputFor(col, ""), { id: "add-" + col.key }));
    }
    say("add-where", cls.geometry === "Point" ? "点击地图放置 / click to place" : "依次点击各个顶点 / click each vertex");
    $("add-form").hidden = false;
  }

  function addClick(lngLat) {
    const a = state.adding;
    if (a.cls.geometry === "Point") state.vertices = [[lngLat.lng, lngLat.lat]];
    else state.vertices.push([lngLat.lng, lngLat.lat]);
    if (state.addMarker) state.addMarker.remove();
    state.addMarker = new maplibregl.Marker({ color: "#1565c0" }).setLngLat(lngLat).addTo(window.surveyMap);
    say("add-where", state.vertices.map((v) => v[0].toFixed(6) + ", " + v[1].toFixed(6)).join(" → "));
  }

  function wktOf(kind, pts) {
    const xy = (p) => p[0].toFixed(7) + " " + p[1].toFixed(7);
    if (kind.endsWith("Polygon")) return "POLYGON((" + pts.concat([pts[0]]).map(xy).join(", ") + "))";
    return "LINESTRING(" + pts.map(xy).join(", ") + ")";
  }

  $("add-start").addEventListener("click", () => { startAdd().catch((err) => say("upload-msg", err.message)); });
  $("add-cancel").addEventListener("click", () => {
    state.adding = null; $("add-form").hidden = true;
    if (state.addMarker) { state.addMarker.remove(); state.addMarker = null; }
  });
  $("add-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const a = state.adding;
    if (!a || !state.vertices.length) { say("upload-msg", "请先在地图上点选位置 / click the map first"); return; }
    const row = { loc_crs: "CGCS2000" };
    for (const el of $("add-fields").querySelectorAll("[data-key]")) row[el.dataset.key] = el.value;
    if (a.cls.geometry === "Point") { row.loc_lon = state.vertices[0][0].toFixed(7); row.loc_lat = state.vertices[0][1].toFixed(7); }
    else row.loc_geometry = wktOf(a.cls.geometry, state.vertices);
    const form = new FormData();
    form.append("class_code", a.cls.code);
    form.append("file", csvOf(a.cols, [row]), "map-" + a.cls.code + ".csv");
    try {
      await submit(form, "upload-msg");
      $("add-cancel").click();
    } catch (err) { say("upload-msg", err.message); }
  });

  // ---------------------------------------------------------------- submissions and rows

  function cell(tr, content) { const td = h("td", {}, content); tr.appendChild(td); return td; }

  async function refresh() {
    const body = $("submissions").querySelector("tbody");
    try {
      const list = await api("GET", "/submissions");
      state.list = list.items;
      body.textContent = "";
      const pending = $("pending-only").checked;
      for (const s of list.items) {
        if (pending && s.status !== "submitted") continue;
        const tr = h("tr", { class: "clickable " + s.status, dataset: { submission: s.id } });
        [s.created_at.slice(0, 16).replace("T", " "), s.class_code, s.village_code, STATUS_ZH[s.status] || s.status,
          s.rows, s.invalid].forEach((v) => cell(tr, String(v)));
        tr.addEventListener("click", () => show(s.id));
        body.appendChild(tr);
      }
    } catch (err) { say("upload-msg", err.message); }
  }
  $("pending-only").addEventListener("change", refresh);

  async function decide(decisions) {
    try {
      const out = await api("POST", "/submissions/" + state.detail.id + "/review", { decisions: decisions });
      const coded = (out.results || []).filter((x) => x.object_code).length;
      await show(state.detail.id);
      await refresh();
      say("review-msg", "已处理 " + decisions.length + " 行，已赋码 " + coded + " 个 / " + decisions.length + " rows decided, " + coded + " coded");
    } catch (err) { say("review-msg", err.message); }
  }

  function askReason() {
    const reason = window.prompt("退回原因 / reason");
    return reason && reason.trim() ? reason.trim() : null;
  }

  function rowState(r) { return r.status === "valid" && r.duplicates.length ? "duplicate" : r.status; }

  /** The fix form of one invalid row: every column, the ones with problems first and marked. */
  function fixForm(r, cols) {
    const bad = new Set(r.errors.map((e) => e.field));
    const grid = h("div", { class: "fix", dataset: { fixRow: String(r.row) } });
    const ordered = cols.filter((c) => bad.has(c.key)).concat(cols.filter((c) => !bad.has(c.key)));
    for (const col of ordered) {
      const el = inputFor(col, (r.cells || {})[col.key]);
      if (bad.has(col.key)) el.classList.add("bad");
      el.addEventListener("input", () => {
        state.fixes.set(r.row, Object.assign(collect(grid), { row_key: r.row }));
        $("resubmit").hidden = false;
      });
      grid.append(h("label", {}, fieldLabel(col)), el);
    }
    return grid;
  }

  function collect(grid) {
    const row = {};
    for (const el of grid.querySelectorAll("[data-key]")) row[el.dataset.key] = el.value;
    return row;
  }

  async function show(id) {
    let d;
    try { d = await api("GET", "/submissions/" + id); } catch (err) { say("review-msg", err.message); return; }
    const cls = await classOf(d.class_code);
    const cols = columnsOf(cls);
    state.detail = d;
    state.fixes = new Map();
    $("detail").hidden = false;
    say("detail-id", d.class_code + " " + cls.name + " · " + d.village_code + " · " + (STATUS_ZH[d.status] || d.status));
    say("review-msg", "");
    say("map-msg", "");
    window.surveyFocus = null;
    $("download-back").href = "#";
    $("download-back").onclick = (ev) => { ev.preventDefault(); downloadBack(d.id); };
    const body = $("rows").querySelector("tbody");
    body.textContent = "";
    const valid = d.items.filter((r) => r.status === "valid");
    const reviewing = d.status === "submitted";
    const mine = !!state.me && state.me.username === d.submitter;
    const fixable = mine && ["validated", "invalid", "coded", "rejected"].includes(d.status);
    $("approve-all").hidden = !(reviewing && valid.length);
    $("reject-all").hidden = !(reviewing && valid.length);
    $("resubmit").hidden = true;
    const handable = mine && valid.length && (d.status === "validated" || d.status === "invalid");
    $("hand-in").hidden = !handable;
    $("hand-in").textContent = d.status === "invalid" ? "只提交无误的行审核 / hand in the valid rows" : "提交审核 / hand in for review";
    for (const r of d.items) {
      const tr = h("tr", { class: rowState(r), dataset: { row: String(r.row) } });
      cell(tr, String(r.row));
      cell(tr, r.name || "");
      cell(tr, STATUS_ZH[r.status] || r.status);
      const notes = h("ul");
      for (const e of r.errors) {
        notes.append(h("li", { class: "error", title: e.message_en, onclick: () => focusRow(r, e) }, e.message_zh));
      }
      if (r.object_code) notes.append(h("li", { class: "code" }, "编码 ", h("code", { class: "object-code" }, r.object_code)));
      if (r.reason) notes.append(h("li", {}, "退回：" + r.reason));
      // a registered object (its code), or a row of another open submission (not coded yet)
      r.duplicates.forEach((x) => notes.append(h("li", { class: "dup", onclick: () => focusRow(r) },
        "疑似重复 " + (x.code ? x.code : "待审提交 " + String(x.submission).slice(0, 8) + " 第 " + x.row + " 行") +
        (x.name ? "（" + x.name + "）" : "") + "，相距 " + Math.round(x.distance_m) + " 米")));
      cell(tr, notes);
      const act = cell(tr, "");
      if (r.status === "valid" && reviewing) {
        act.append(h("button", { type: "button", dataset: { act: "approve" }, onclick: () => decide([{ row: r.row, decision: "approve" }]) }, "通过"),
          h("button", { type: "button", dataset: { act: "reject" }, onclick: () => { const why = askReason(); if (why) decide([{ row: r.row, decision: "reject", reason: why }]); } }, "退回"));
      }
      if (fixable && (r.status === "invalid" || r.status === "rejected")) {
        act.append(h("button", { type: "button", dataset: { act: "fix" }, onclick: (ev) => {
          ev.target.disabled = true;
          tr.after(h("tr", { class: "fixing" }, h("td", { colSpan: 5 }, fixForm(r, cols))));
        } }, "修改 / fix"));
      }
      tr.addEventListener("click", (ev) => { if (ev.target.tagName !== "BUTTON" && ev.target.tagName !== "LI") focusRow(r); });
      body.appendChild(tr);
    }
    await drawRows();
  }

  $("approve-all").addEventListener("click", () => {
    if (!state.detail) return;
    const rows = state.detail.items.filter((r) => r.status === "valid");
    if (rows.length) decide(rows.map((r) => ({ row: r.row, decision: "approve" })));
  });
  $("reject-all").addEventListener("click", () => {
    if (!state.detail) return;
    const why = askReason();
    const rows = state.detail.items.filter((r) => r.status === "valid");
    if (why && rows.length) decide(rows.map((r) => ({ row: r.row, decision: "reject", reason: why })));
  });

  // only the corrected rows, into the same submission, each with its row key: validated again there
  $("resubmit").addEventListener("click", async () => {
    const d = state.detail;
    if (!d || !state.fixes.size) return;
    const cls = await classOf(d.class_code);
    const form = new FormData();
    form.append("file", csvOf(columnsOf(cls).concat([KEY_COL]), [...state.fixes.values()]), "fixed-" + d.id.slice(0, 8) + ".csv");
    try {
      say("review-msg", "上传中… / uploading");
      const s = await api("POST", "/submissions/" + d.id + "/resubmit", form);
      await refresh();
      await show(d.id);
      say("review-msg", "已重新提交，" + s.invalid + " 行有问题 / resubmitted, " + s.invalid + " rows with problems");
    } catch (err) { say("review-msg", err.message); }
  });

  $("hand-in").addEventListener("click", async () => {
    const d = state.detail;
    if (!d) return;
    try {
      const s = await api("POST", "/submissions/" + d.id + "/submit", { partial: d.status === "invalid" });
      await refresh();
      await show(d.id);
      say("review-msg", "已提交审核 / handed in: " + (STATUS_ZH[s.status] || s.status));
    } catch (err) { say("review-msg", err.message); }
  });

  async function downloadBack(id) {
    const r = await fetch("/submissions/" + id + "/file", { headers: auth() });
    if (!r.ok) { say("review-msg", problem(await r.json().catch(() => ({})))); return; }
    const url = URL.createObjectURL(await r.blob());
    const a = h("a", { href: url, download: (r.headers.get("content-disposition") || "").replace(/.*filename="?([^";]+)"?.*/, "$1") || "submission" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // ---------------------------------------------------------------- the map

  function bboxOf(geom) {
    let x0 = Infinity; let y0 = Infinity; let x1 = -Infinity; let y1 = -Infinity;
    const walk = (c) => {
      if (typeof c[0] === "number") { x0 = Math.min(x0, c[0]); y0 = Math.min(y0, c[1]); x1 = Math.max(x1, c[0]); y1 = Math.max(y1, c[1]); }
      else c.forEach(walk);
    };
    walk(geom.coordinates);
    return Number.isFinite(x0) ? [[x0, y0], [x1, y1]] : null;
  }

  function centerOf(geom) {
    const b = bboxOf(geom);
    return b ? [(b[0][0] + b[1][0]) / 2, (b[0][1] + b[1][1]) / 2] : null;
  }

  /** The map shows one row: its place, marked; the row lit in the table. */
  function focusRow(r, err) {
    document.querySelectorAll("#rows tr.focus").forEach((t) => t.classList.remove("focus"));
    const tr = document.querySelector('#rows tr[data-row="' + r.row + '"]');
    if (tr) tr.classList.add("focus");
    const map = window.surveyMap;
    if (!map || !map.getSource("focus")) return;
    if (!r.geometry) {
      map.getSource("focus").setData({ type: "FeatureCollection", features: [] });
      say("map-msg", "第 " + r.row + " 行没有可用的位置" + (err ? "：" + err.message_zh : "") + " / row " + r.row + " has no usable location");
      return;
    }
    map.getSource("focus").setData({ type: "Feature", geometry: r.geometry, properties: { row: r.row } });
    const b = bboxOf(r.geometry);
    if (r.geometry.type === "Point") map.jumpTo({ center: r.geometry.coordinates, zoom: Math.max(map.getZoom(), 16) });
    else if (b) map.fitBounds(b, { padding: 60, maxZoom: 18, duration: 0 });
    window.surveyFocus = r.row;
    say("map-msg", "第 " + r.row + " 行" + (r.name ? "（" + r.name + "）" : "") + (err ? "：" + err.message_zh : ""));
  }

  async function drawRows() {
    const map = window.surveyMap;
    if (!map || !map.getSource("rows")) return;
    const d = state.detail;
    const feats = []; const existing = []; const links = [];
    for (const r of d ? d.items : []) {
      if (!r.geometry) continue;
      feats.push({ type: "Feature", geometry: r.geometry, properties: { row: r.row, state: rowState(r) } });
    }
    if (d) {
      const dups = d.items.filter((r) => r.geometry && r.duplicates.length);
      await Promise.all(dups.flatMap((r) => r.duplicates.filter((x) => x.code).map(async (x) => {
        try {
          const o = await api("GET", "/objects/" + encodeURIComponent(x.code));
          if (!o.geometry) return;
          existing.push({ type: "Feature", geometry: o.geometry, properties: { code: x.code, row: r.row } });
          const a = centerOf(r.geometry); const b = centerOf(o.geometry);
          if (a && b) links.push({ type: "Feature", geometry: { type: "LineString", coordinates: [a, b] }, properties: {} });
        } catch (_) { /* an object the caller may not read: the row says its code */ }
      })));
    }
    const fc = (f) => ({ type: "FeatureCollection", features: f });
    map.getSource("rows").setData(fc(feats));
    map.getSource("existing").setData(fc(existing));
    map.getSource("links").setData(fc(links));
    map.getSource("focus").setData(fc([]));
    const all = feats.concat(existing);
    if (all.length) {
      const b = bboxOf({ type: "GeometryCollection", coordinates: all.map((f) => bboxOf(f.geometry)) });
      if (b) map.fitBounds(b, { padding: 60, maxZoom: 17, duration: 0 });
    }
  }

  function byState(prop) {
    return ["match", ["get", "state"], "invalid", COLORS.invalid, "duplicate", COLORS.duplicate, "valid", COLORS.valid,
      "approved", COLORS.approved, "coded", COLORS.approved, "rejected", COLORS.rejected, prop];
  }

  async function startMap() {
    if (!window.maplibregl) return;
    let boundary = null;
    try { boundary = await api("GET", "/divisions/" + BASE.COUNTY + "/boundary"); } catch (_) { /* drawn without it */ }
    const bounds = (boundary && bboxOf(boundary.geometry)) || BASE.FALLBACK_BOUNDS;
    const empty = { type: "FeatureCollection", features: [] };
    const geo = () => ({ type: "geojson", data: empty });
    // the base map of /map, with this page's rows, existing objects and focus on top
    const style = BASE.style(boundary);
    Object.assign(style.sources, { rows: geo(), existing: geo(), links: geo(), focus: geo() });
    style.layers.push(
      { id: "links", type: "line", source: "links", paint: { "line-color": COLORS.existing, "line-width": 1.5, "line-dasharray": [2, 1] } },
      { id: "existing", type: "circle", source: "existing", filter: ["==", ["geometry-type"], "Point"],
        paint: { "circle-radius": 7, "circle-color": COLORS.existing, "circle-stroke-color": "#fff", "circle-stroke-width": 1.5 } },
      { id: "existing-shape", type: "line", source: "existing", filter: ["!=", ["geometry-type"], "Point"],
        paint: { "line-color": COLORS.existing, "line-width": 2 } },
      { id: "rows-shape", type: "line", source: "rows", filter: ["!=", ["geometry-type"], "Point"],
        paint: { "line-color": byState("#333"), "line-width": 3 } },
      { id: "rows", type: "circle", source: "rows", filter: ["==", ["geometry-type"], "Point"],
        paint: { "circle-radius": 7, "circle-color": byState("#333"), "circle-stroke-color": "#fff", "circle-stroke-width": 1.5 } },
      { id: "rows-label", type: "symbol", source: "rows", layout: { "text-field": ["to-string", ["get", "row"]],
        "text-font": BASE.FONT, "text-size": 11, "text-offset": [0, -1.3], "text-allow-overlap": true },
        paint: { "text-color": "#222", "text-halo-color": "#fff", "text-halo-width": 1.5 } },
      { id: "focus", type: "circle", source: "focus", filter: ["==", ["geometry-type"], "Point"],
        paint: { "circle-radius": 13, "circle-color": "rgba(0,0,0,0)", "circle-stroke-color": "#00b8d4", "circle-stroke-width": 3 } },
      { id: "focus-shape", type: "line", source: "focus", filter: ["!=", ["geometry-type"], "Point"],
        paint: { "line-color": "#00e5ff", "line-width": 4 } });
    const map = new maplibregl.Map({
      container: "survey-map", bounds: bounds, fitBoundsOptions: { padding: 20 }, maxZoom: 20, attributionControl: false,
      localIdeographFontFamily: BASE.LOCAL_CJK, style: style,
    });
    window.surveyMap = map;
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "bottom-right");
    map.on("load", () => {
      map.on("click", (e) => {
        if (state.adding) { addClick(e.lngLat); return; }
        const hit = map.queryRenderedFeatures([[e.point.x - 6, e.point.y - 6], [e.point.x + 6, e.point.y + 6]], { layers: ["rows", "rows-shape"] })[0];
        const r = hit && state.detail ? state.detail.items.find((x) => x.row === hit.properties.row) : null;
        if (r) focusRow(r);
      });
      drawRows();
      // roads and buildings, as /map opens with them (a caller who may not see a layer goes without it)
      Promise.all(BASE.DEFAULT_LAYERS.map((id) => BASE.addLayer(map, id).catch(() => []))).then(() => {
        map.once("idle", () => { document.body.dataset.mapReady = "1"; });
        map.triggerRepaint();
      });
    });
  }

  $("refresh").addEventListener("click", refresh);
  startMap();
  if (token) { whoami(); refresh(); }
})();
