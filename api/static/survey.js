// The survey page: log in, download a template, upload it, see every problem per row; reviewers approve or reject.
(function () {
  "use strict";
  let token = sessionStorage.getItem("citygrid-token") || "";
  const $ = (id) => document.getElementById(id);
  const say = (id, text) => { $(id).textContent = text; };
  const auth = () => (token ? { Authorization: "Bearer " + token } : {});
  const problem = (body) => (body && body.message_zh ? body.message_zh + " / " + body.message_en : "出错了");

  async function api(method, url, body) {
    const init = { method: method, headers: auth() };
    if (body instanceof FormData) { init.body = body; }
    else if (body) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
    const r = await fetch(url, init);
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { throw new Error(problem(data)); }
    return data;
  }

  $("upload-class").addEventListener("change", (e) => {
    $("template-link").href = "/templates/" + e.target.value + ".xlsx";
  });

  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = new URLSearchParams({ username: $("login-user").value, password: $("login-pass").value });
    const r = await fetch("/auth/token", { method: "POST", body: form });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { say("login-msg", problem(data)); return; }
    token = data.access_token;
    sessionStorage.setItem("citygrid-token", token);
    say("login-msg", "已登录 / logged in");
    refresh();
  });

  $("upload-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    say("upload-msg", "上传中…");
    try {
      const s = await api("POST", "/submissions", new FormData(e.target));
      say("upload-msg", "已收到：" + s.rows + " 行，" + s.invalid + " 行有问题");
      await refresh();
      show(s.id);
    } catch (err) { say("upload-msg", err.message); }
  });

  function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }

  async function refresh() {
    const body = $("submissions").querySelector("tbody");
    body.textContent = "";
    try {
      const list = await api("GET", "/submissions");
      for (const s of list.items) {
        const tr = document.createElement("tr");
        tr.className = "clickable " + s.status;
        [s.created_at.slice(0, 16).replace("T", " "), s.class_code, s.village_code, s.status, s.rows, s.invalid]
          .forEach((v) => cell(tr, String(v)));
        tr.addEventListener("click", () => show(s.id));
        body.appendChild(tr);
      }
    } catch (err) { say("upload-msg", err.message); }
  }

  async function decide(id, row, decision) {
    const reason = decision === "reject" ? window.prompt("退回原因 / reason") : null;
    if (decision === "reject" && !reason) { return; }
    try {
      await api("POST", "/submissions/" + id + "/review", { decisions: [{ row: row, decision: decision, reason: reason }] });
      say("review-msg", "第 " + row + " 行已" + (decision === "approve" ? "通过" : "退回"));
      show(id);
    } catch (err) { say("review-msg", err.message); }
  }

  async function show(id) {
    const d = await api("GET", "/submissions/" + id);
    $("detail").hidden = false;
    say("detail-id", d.id);
    const body = $("rows").querySelector("tbody");
    body.textContent = "";
    for (const r of d.items) {
      const tr = document.createElement("tr");
      tr.className = r.status;
      cell(tr, String(r.row));
      cell(tr, r.name || "");
      cell(tr, r.status);
      const notes = r.errors.map((e) => e.message_zh);
      if (r.object_code) { notes.push("编码 " + r.object_code); }
      if (r.reason) { notes.push("退回：" + r.reason); }
      r.duplicates.forEach((x) => notes.push("疑似重复 " + x.code + "（" + x.distance_m + " 米）"));
      cell(tr, notes.join("；"));
      const act = cell(tr, "");
      if (r.status === "valid") {
        for (const [decision, label] of [["approve", "通过"], ["reject", "退回"]]) {
          const b = document.createElement("button");
          b.type = "button";
          b.textContent = label;
          b.addEventListener("click", () => decide(d.id, r.row, decision));
          act.appendChild(b);
        }
      }
      body.appendChild(tr);
    }
  }

  $("refresh").addEventListener("click", refresh);
  if (token) { refresh(); }
})();
