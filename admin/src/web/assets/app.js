// svi console: the few scripts of the server-rendered pages (no inline script: the CSP
// allows this file only). Login through the API's session route; live pages fetch their
// <main> again when the API's event feed says something changed; the agents' and the
// calls' buttons and the flows page (upload, activate, roll back, simulate) send the API's
// writes with the session's CSRF token; the language switch sets a cookie.
"use strict";

function csrf() {
  const m = document.querySelector('meta[name="csrf-token"]');
  return m ? m.content : "";
}

function say(text) {
  const s = document.getElementById("status");
  if (s) s.textContent = text;
}

function setupLogin() {
  const form = document.getElementById("login");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const error = document.getElementById("login-error");
    error.textContent = "";
    const body = JSON.stringify({ user: form.user.value, password: form.password.value });
    try {
      const r = await fetch("/api/v1/session", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body,
        credentials: "same-origin",
      });
      if (r.ok) {
        window.location.assign("/ui/");
        return;
      }
      error.textContent = r.status === 429 ? form.dataset.throttled
        : r.status === 401 ? form.dataset.failed : form.dataset.error;
    } catch (e) {
      error.textContent = form.dataset.error;
    }
  });
}

function setupChrome() {
  document.querySelectorAll("button[data-lang]").forEach((b) => {
    b.addEventListener("click", async () => {
      document.cookie = "svi_lang=" + b.dataset.lang +
        "; Path=/; Max-Age=31536000; SameSite=Strict; Secure";
      // Signed in: the choice is stored with the account too (the login sets it again).
      if (csrf()) {
        await fetch("/api/v1/me/language", {
          method: "PUT",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify({ language: b.dataset.lang }),
          credentials: "same-origin",
        }).catch(() => {});
      }
      window.location.reload();
    });
  });
  const out = document.getElementById("logout");
  if (out) {
    out.addEventListener("click", async () => {
      await fetch("/api/v1/session", {
        method: "DELETE",
        headers: { "X-CSRF-Token": csrf() },
        credentials: "same-origin",
      });
      window.location.assign("/ui/login");
    });
  }
}

// Live pages: one fetch at a time; an event arriving meanwhile asks for one more.
function setupLive() {
  const main = document.getElementById("main");
  if (!main || !main.dataset.live) return;
  const status = document.getElementById("status");
  let busy = false;
  let again = false;
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do {
        again = false;
        const r = await fetch(main.dataset.live, { credentials: "same-origin" });
        if (r.status === 401) { window.location.assign("/ui/login"); return; }
        if (r.ok) {
          const kept = keepInputs(main);
          main.innerHTML = await r.text();
          restoreInputs(main, kept);
          const now = new Date();
          document.body.dataset.renderedAt = String(now.getTime());
          const time = now.toLocaleTimeString(document.documentElement.lang,
            { timeZone: status.dataset.zone, hour12: false });
          say(status.dataset.updated + " " + time);
          bindFullscreen();
        }
      } while (again);
    } finally {
      busy = false;
    }
  }
  const feed = new EventSource("/api/v1/events");
  for (const name of ["ready", "acd", "call", "lagged"]) {
    feed.addEventListener(name, refresh);
  }
  feed.onerror = () => say(status.dataset.offline);
  // The clocks (time in state, longest wait) move on their own: a fresh view every 5 s.
  setInterval(refresh, 5000);
}

// Inputs marked data-keep survive a live refresh and a reload (the browser keeps them).
function keepInputs(root) {
  const kept = {};
  root.querySelectorAll("input[data-keep]").forEach((i) => {
    kept[i.id] = { value: i.value, focused: document.activeElement === i };
  });
  return kept;
}

function restoreInputs(root, kept) {
  root.querySelectorAll("input[data-keep]").forEach((i) => {
    const k = kept && kept[i.id];
    if (k) {
      i.value = k.value;
      if (k.focused) i.focus();
    } else {
      i.value = localStorage.getItem(i.dataset.keep) || "";
    }
  });
}

async function send(method, url, body) {
  const r = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  let json = null;
  try { json = await r.json(); } catch (e) { /* not JSON */ }
  return { ok: r.ok, status: r.status, json: json || {} };
}

function refused(answer) {
  const s = document.getElementById("status");
  const message = answer.json.message || String(answer.status);
  document.body.dataset.refused = message;
  say(s.dataset.failed + " " + message);
}

async function callAction(button) {
  const id = button.dataset.call;
  let answer;
  if (button.dataset.supervise) {
    const mode = button.dataset.supervise;
    const body = mode === "stop" ? {} : { mode };
    const phone = document.getElementById("supervisor-phone");
    if (mode !== "stop" && phone && phone.value.trim()) body.target = phone.value.trim();
    answer = await send("POST", "/api/v1/calls/" + encodeURIComponent(id) + "/supervise", body);
  } else {
    answer = await send("POST", "/api/v1/calls/" + encodeURIComponent(id) + "/recording",
      { pause: button.dataset.recording === "pause" });
  }
  if (!answer.ok) { refused(answer); return; }
  document.body.dataset.callOutcome = answer.json.outcome || "";
  const done = document.getElementById("supervision");
  say((done ? done.dataset.done + " " : "") + (answer.json.outcome || ""));
}

// The flow editor: a gutter of line numbers beside the textarea, kept in step with it;
// the checker's refusals listed with their line and column and marked in the gutter.
function setupEditor() {
  const form = document.getElementById("flow-editor");
  if (!form) return;
  const source = document.getElementById("source");
  const gutter = document.getElementById("gutter");
  const result = document.getElementById("editor-result");
  const list = document.getElementById("diagnostics");
  let bad = new Set();
  function numbers() {
    const n = source.value.split("\n").length;
    const out = [];
    for (let i = 1; i <= n; i++) {
      out.push('<span data-line="' + i + '"' + (bad.has(i) ? ' class="bad"' : "") + ">" + i +
        "</span>");
    }
    gutter.innerHTML = out.join("\n");
    gutter.scrollTop = source.scrollTop;
  }
  function goTo(line, column) {
    const lines = source.value.split("\n");
    let at = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) at += lines[i].length + 1;
    at += Math.max(0, column - 1);
    source.focus();
    source.setSelectionRange(at, at + 1);
    // The line in view, a few lines from the top (the gutter follows the scroll).
    const height = parseFloat(getComputedStyle(source).lineHeight) || 20;
    source.scrollTop = Math.max(0, (line - 4) * height);
    gutter.scrollTop = source.scrollTop;
  }
  source.addEventListener("input", () => { bad = new Set(); list.innerHTML = ""; numbers(); });
  source.addEventListener("scroll", () => { gutter.scrollTop = source.scrollTop; });
  numbers();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    result.textContent = "";
    list.innerHTML = "";
    bad = new Set();
    const activate = document.getElementById("activate").checked;
    const answer = await send("POST", "/api/v1/flows", { source: source.value, activate });
    if (answer.ok) {
      result.textContent = form.dataset.installed + " " + answer.json.version;
      window.location.assign("/ui/flows/" + encodeURIComponent(answer.json.name) +
        "?version=" + encodeURIComponent(answer.json.version));
      return;
    }
    const diagnostics = answer.json.diagnostics || [];
    result.textContent = diagnostics.length ? form.dataset.refused
      : (answer.json.message || String(answer.status));
    for (const d of diagnostics) {
      if (d.severity === "error") bad.add(d.line);
      const li = document.createElement("li");
      li.dataset.line = d.line;
      li.dataset.column = d.column;
      li.className = d.severity;
      const where = document.createElement("button");
      where.type = "button";
      where.className = "link";
      where.textContent = form.dataset.at.replace("{line}", d.line).replace("{column}", d.column);
      where.addEventListener("click", () => goTo(d.line, d.column));
      li.append(where, " " + d.message + (d.hint ? " (" + d.hint + ")" : ""));
      list.append(li);
    }
    numbers();
    if (diagnostics.length) goTo(diagnostics[0].line, diagnostics[0].column);
  });
}

async function flowAction(button) {
  const name = encodeURIComponent(button.dataset.flow);
  const answer = button.dataset.flowAction === "rollback"
    ? await send("POST", "/api/v1/flows/" + name + "/rollback", {})
    : await send("POST", "/api/v1/flows/" + name + "/activate", { version: button.dataset.version });
  if (!answer.ok) { refused(answer); return; }
  window.location.assign("/ui/flows/" + name);
}

// A simulated call: the steps taken listed, and marked on the drawing.
function setupSimulator() {
  const form = document.getElementById("simulate");
  if (!form) return;
  const result = document.getElementById("sim-result");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { version: form.dataset.version, inputs: form.inputs.value };
    if (form.caller.value.trim()) body.caller = form.caller.value.trim();
    if (form.at.value) body.at = new Date(form.at.value).toISOString();
    const answer = await send("POST", "/api/v1/flows/" + encodeURIComponent(form.dataset.flow) +
      "/simulate", body);
    document.querySelectorAll("#drawing .taken").forEach((e) => e.classList.remove("taken"));
    result.innerHTML = "";
    if (!answer.ok) { result.textContent = answer.json.message || String(answer.status); return; }
    const path = answer.json.path || [];
    const ol = document.createElement("ol");
    ol.id = "sim-path";
    path.forEach((step, i) => {
      const li = document.createElement("li");
      li.textContent = step;
      li.dataset.step = step;
      ol.append(li);
      document.querySelectorAll('#drawing g.step[data-step="' + CSS.escape(step) + '"]')
        .forEach((g) => g.classList.add("taken"));
      if (i > 0) {
        document.querySelectorAll('#drawing g.edge[data-from="' + CSS.escape(path[i - 1]) +
          '"][data-to="' + CSS.escape(step) + '"]').forEach((g) => g.classList.add("taken"));
      }
    });
    const endings = form.dataset.endings.split("|");
    const ending = { finished: endings[0], routed: endings[1], endless: endings[2] };
    const p = document.createElement("p");
    p.id = "sim-ending";
    p.dataset.ending = answer.json.ending;
    p.textContent = ending[answer.json.ending] || answer.json.ending;
    result.append(ol, p);
  });
}

async function agentAction(button) {
  const id = button.dataset.agent;
  const action = button.dataset.action;
  const body = { action };
  if (action === "pause") {
    const select = document.querySelector('select[data-reason-for="' + CSS.escape(id) + '"]');
    body.reason = select ? select.value : "break";
  }
  const r = await fetch("/api/v1/agents/" + encodeURIComponent(id) + "/state", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  if (!r.ok) {
    let message = String(r.status);
    try { message = (await r.json()).message || message; } catch (e) { /* not JSON */ }
    say(document.getElementById("status").dataset.failed + " " + message);
  }
}

function setupActions() {
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-agent][data-action]");
    if (b) agentAction(b);
    const c = ev.target.closest("button[data-call]");
    if (c) callAction(c);
    const f = ev.target.closest("button[data-flow-action]");
    if (f) flowAction(f);
  });
}

function bindFullscreen() {
  const b = document.getElementById("fullscreen");
  if (b && !b.dataset.bound) {
    b.dataset.bound = "1";
    b.addEventListener("click", () => document.documentElement.requestFullscreen());
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupLogin();
  setupChrome();
  setupLive();
  setupActions();
  setupEditor();
  setupSimulator();
  restoreInputs(document, null);
  document.addEventListener("input", (ev) => {
    const i = ev.target;
    if (i.matches && i.matches("input[data-keep]")) localStorage.setItem(i.dataset.keep, i.value);
  });
  bindFullscreen();
});

// Reports, HA, users and keys, agent desk: the admin's and the agent's writes through the
// API with the session's CSRF token; the answer's message shown in the page on refusal.
async function apiWrite(method, url, body) {
  const r = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = null;
  try { data = await r.json(); } catch (e) { /* not JSON */ }
  return { ok: r.ok, status: r.status, data };
}

function refusal(answer) {
  return (answer.data && answer.data.message) || String(answer.status);
}

// Fetches the page's content again (`data-part` or `data-refresh` on its first element).
async function reloadMain() {
  const main = document.getElementById("main");
  const holder = main && main.querySelector("[data-part], [data-refresh]");
  if (!holder) return;
  const url = holder.dataset.part || holder.dataset.refresh;
  const r = await fetch(url, { credentials: "same-origin" });
  if (r.status === 401) { window.location.assign("/ui/login"); return; }
  if (r.ok) {
    main.innerHTML = await r.text();
    document.body.dataset.renderedAt = String(Date.now());
  }
}

function setupAdminForms() {
  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (form.id === "user-add") {
      ev.preventDefault();
      const body = { name: form.name.value, role: form.role.value, password: form.password.value };
      if (form.agent.value) body.agent = form.agent.value;
      const a = await apiWrite("POST", "/api/v1/users", body);
      if (a.ok) { await reloadMain(); return; }
      document.getElementById("user-error").textContent = refusal(a);
    } else if (form.id === "key-add") {
      ev.preventDefault();
      const a = await apiWrite("POST", "/api/v1/apikeys", { name: form.name.value, role: form.role.value });
      if (!a.ok) { document.getElementById("key-error").textContent = refusal(a); return; }
      await reloadMain();
      document.getElementById("new-key-value").textContent = a.data.key;
      document.getElementById("new-key").hidden = false;
    } else if (form.id === "promote") {
      ev.preventDefault();
      const a = await apiWrite("POST", "/api/v1/ha/promote", { force: false });
      if (a.ok) { window.location.reload(); return; }
      document.getElementById("promote-result").textContent = refusal(a);
    }
  });
  document.addEventListener("change", (ev) => {
    if (ev.target.id === "promote-confirm") {
      document.getElementById("promote-button").disabled = !ev.target.checked;
    }
  });
  document.addEventListener("click", async (ev) => {
    const disable = ev.target.closest("button[data-user-disable]");
    const revoke = ev.target.closest("button[data-key-revoke]");
    const desk = ev.target.closest("button[data-desk-action]");
    let a = null;
    if (disable) {
      a = await apiWrite("POST", "/api/v1/users/" + encodeURIComponent(disable.dataset.userDisable) + "/disable");
    } else if (revoke) {
      a = await apiWrite("DELETE", "/api/v1/apikeys/" + encodeURIComponent(revoke.dataset.keyRevoke));
    } else if (desk) {
      const body = { action: desk.dataset.deskAction };
      if (body.action === "pause") body.reason = document.getElementById("desk-reason").value;
      a = await apiWrite("POST", "/api/v1/me/agent/state", body);
    }
    if (!a) return;
    if (a.ok) { await reloadMain(); return; }
    const error = document.getElementById(desk ? "desk-error" : "user-error");
    if (error) error.textContent = refusal(a);
  });
  // The agent role has no event feed: the desk is fetched again every 2 s.
  if (document.querySelector("#main [data-refresh]")) setInterval(reloadMain, 2000);
}

document.addEventListener("DOMContentLoaded", setupAdminForms);
