// fusebox dashboard: reads the coordinator's API with the operator's
// token and follows every transition live over Server-Sent Events. The
// token goes in an Authorization header (never a URL) and stays in this
// tab's sessionStorage.
"use strict";

const $ = (id) => document.getElementById(id);
const rows = new Map(); // breaker name -> {tr, data}
let token = sessionStorage.getItem("fusebox.token") || "";
let lastEventId = "";
let streamAbort = null;
let retryDelay = 500;
const refetchTimers = new Map();
const PAGE = 200; // breakers per request of the list

function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token }, opts.headers || {});
  return fetch(path, Object.assign({}, opts, { headers }));
}

async function problem(resp) {
  try {
    const p = await resp.json();
    return p.detail || p.title || resp.statusText;
  } catch (e) {
    return resp.status + " " + resp.statusText;
  }
}

function showError(msg) {
  $("error").textContent = msg;
  $("error").hidden = !msg;
}

function setStatus(text, cls) {
  $("status").textContent = text;
  $("status").className = "status " + cls;
}

function ago(iso) {
  if (!iso) return "";
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  return Math.round(s / 3600) + "h ago";
}

function until(b) {
  const t = b.override_until || b.open_until;
  if (!t) return b.effective === "forced_open" ? "until released" : "";
  const s = Math.max(0, Math.round((new Date(t).getTime() - Date.now()) / 1000));
  return "in " + s + "s";
}

function cell(tr, i, text, cls) {
  const td = tr.children[i];
  td.textContent = text;
  if (cls !== undefined) td.className = cls;
}

function render(b, flash) {
  let r = rows.get(b.name);
  if (!r) {
    const tr = document.createElement("tr");
    tr.dataset.name = b.name;
    for (let i = 0; i < 6; i++) tr.appendChild(document.createElement("td"));
    const actions = tr.children[5];
    actions.className = "actions";
    for (const [label, action] of [["force open", "force-open"], ["force closed", "force-closed"], ["release", "release"]]) {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = label;
      btn.dataset.action = action;
      btn.addEventListener("click", () => askOverride(b.name, action));
      actions.appendChild(btn);
    }
    r = { tr, data: b };
    rows.set(b.name, r);
    insertSorted(tr, b.name);
  }
  r.data = b;
  const tr = r.tr;
  tr.dataset.state = b.effective;
  tr.children[0].textContent = b.name;
  const badge = document.createElement("span");
  badge.className = "badge " + b.effective;
  badge.textContent = b.effective;
  tr.children[1].replaceChildren(badge);
  cell(tr, 2, b.failure_count != null ? String(b.failure_count) : "");
  cell(tr, 3, until(b));
  const lt = b.last_transition || {};
  const when = document.createElement("div");
  when.textContent = [lt.reason, lt.actor ? "by " + lt.actor : ""].filter(Boolean).join(" ");
  const small = document.createElement("div");
  small.className = "small";
  small.textContent = [ago(lt.at), lt.last_error].filter(Boolean).join(" · ");
  tr.children[4].replaceChildren(when, small);
  if (flash) {
    tr.classList.remove("flash");
    void tr.offsetWidth;
    tr.classList.add("flash");
  }
  applyFilter(tr);
  summarize();
}

function insertSorted(tr, name) {
  const body = $("rows");
  for (const other of body.children) {
    if (other.dataset.name > name) {
      body.insertBefore(tr, other);
      return;
    }
  }
  body.appendChild(tr);
}

function applyFilter(tr) {
  const q = $("filter").value.trim().toLowerCase();
  const st = $("stateFilter").value;
  const s = tr.dataset.state || "";
  const stateOK = !st || (st === "forced" ? s.startsWith("forced_") : s === st);
  tr.classList.toggle("hidden", !(tr.dataset.name.includes(q) && stateOK));
}

function summarize() {
  const n = { closed: 0, open: 0, half_open: 0, forced: 0 };
  for (const { data } of rows.values()) {
    if (data.effective.startsWith("forced_")) n.forced++;
    else n[data.effective] = (n[data.effective] || 0) + 1;
  }
  $("summary").textContent = rows.size + " breakers: " + n.closed + " closed, " + n.open + " open, " + n.half_open + " half-open, " + n.forced + " forced";
}

function addEvent(e) {
  const li = document.createElement("li");
  const t = new Date(e.timestamp).toLocaleTimeString();
  li.textContent = t + "  " + e.breaker + ": " + e.old_state + " → " + e.new_state + "  (" + e.event + ", " + e.reason + (e.actor ? ", by " + e.actor : "") + ")" + (e.last_error && e.event !== "reset" ? "  " + e.last_error : "");
  const list = $("events");
  list.insertBefore(li, list.firstChild);
  while (list.children.length > 100) list.removeChild(list.lastChild);
}

// A transition shows at once from the event itself; the breaker's counts
// follow with one request, coalesced per breaker.
function onEvent(e) {
  addEvent(e);
  if (e.event === "deleted" || e.event === "expired") {
    remove(e.breaker);
    return;
  }
  const r = rows.get(e.breaker);
  if (r && e.version >= (r.data.version || 0) && e.event !== "probe_started") {
    render(Object.assign({}, r.data, { effective: e.new_state, version: e.version, failure_count: e.failure_count,
      last_transition: { reason: e.reason, actor: e.actor, at: e.timestamp, last_error: e.last_error } }), true);
  }
  if (refetchTimers.has(e.breaker)) return;
  refetchTimers.set(e.breaker, setTimeout(async () => {
    refetchTimers.delete(e.breaker);
    const resp = await api("/v1/breakers/" + encodeURIComponent(e.breaker));
    if (resp.ok) render(await resp.json(), false);
  }, 150));
}

// loadAll reads every breaker, a page at a time (the API pages its list
// by name: next_cursor is empty on the last page).
async function loadAll() {
  let cursor = "";
  for (let pages = 0; pages < 1000; pages++) {
    const q = "?limit=" + PAGE + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    const resp = await api("/v1/breakers" + q);
    if (!resp.ok) throw new Error(await problem(resp));
    const body = await resp.json();
    for (const b of body.breakers) render(b, false);
    cursor = body.next_cursor || "";
    if (!cursor) return;
  }
}

// remove drops a deleted or expired breaker's row.
function remove(name) {
  const r = rows.get(name);
  if (!r) return;
  r.tr.remove();
  rows.delete(name);
  summarize();
}

// follow reads the event stream with fetch, so the token travels in a
// header; it reconnects from the last event id when the stream drops.
async function follow() {
  streamAbort = new AbortController();
  const q = lastEventId ? "?last_event_id=" + encodeURIComponent(lastEventId) : "?replay=50";
  let resp;
  try {
    resp = await api("/v1/events/stream" + q, { signal: streamAbort.signal });
  } catch (e) {
    return reconnect();
  }
  if (resp.status === 401 || resp.status === 403) {
    setStatus("refused", "off");
    showError("The coordinator refused this token: " + (await problem(resp)));
    return;
  }
  if (!resp.ok) return reconnect();
  setStatus("live", "on");
  retryDelay = 500;
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let sep;
      while ((sep = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, sep);
        buf = buf.slice(sep + 2);
        let id = "", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("id: ")) id = line.slice(4);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (!data) continue;
        if (id) lastEventId = id;
        onEvent(JSON.parse(data));
      }
    }
  } catch (e) {
    if (streamAbort.signal.aborted) return;
  }
  reconnect();
}

function reconnect() {
  if (!token) return;
  setStatus("reconnecting", "retry");
  setTimeout(follow, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 10000);
}

async function connect() {
  showError("");
  try {
    await loadAll();
  } catch (e) {
    setStatus("refused", "off");
    showError("Could not list breakers: " + e.message);
    return;
  }
  sessionStorage.setItem("fusebox.token", token);
  $("hint").hidden = true;
  $("board").hidden = false;
  $("logout").hidden = false;
  follow();
}

let pending = null;
function askOverride(name, action) {
  pending = { name, action };
  $("overrideTitle").textContent = action.replace("-", " ") + ": " + name;
  $("reason").value = "";
  $("ttl").value = "";
  $("reason").required = action !== "release";
  $("ttlLabel").hidden = action === "release";
  $("override").showModal();
}

async function submitOverride() {
  if (!pending) return;
  const { name, action } = pending;
  pending = null;
  const body = { reason: $("reason").value.trim() };
  const ttl = $("ttl").value.trim();
  if (ttl && action !== "release") body.ttl = ttl;
  const resp = await api("/v1/breakers/" + encodeURIComponent(name) + "/" + action, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (!resp.ok) {
    showError(action + " " + name + ": " + (await problem(resp)));
    return;
  }
  showError("");
  render(await resp.json(), true);
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value.trim();
    if (token) connect();
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem("fusebox.token");
    location.reload();
  });
  $("filter").addEventListener("input", () => rows.forEach(({ tr }) => applyFilter(tr)));
  $("stateFilter").addEventListener("change", () => rows.forEach(({ tr }) => applyFilter(tr)));
  $("override").addEventListener("close", () => {
    if ($("override").returnValue === "confirm") submitOverride();
    else pending = null;
  });
  setInterval(() => rows.forEach((r) => { r.tr.children[3].textContent = until(r.data); }), 1000);
  if (token) {
    $("token").value = token;
    connect();
  }
});
