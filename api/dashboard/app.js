// fusebox dashboard: reads the coordinator's API with the operator's
// token and follows every transition live over Server-Sent Events. The
// token goes in an Authorization header (never a URL) and stays in this
// tab's sessionStorage.
//
// Per breaker: a strip of its states over the last hour (from the
// journal: GET /v1/timelines once a row is on screen, then the event
// stream) and a sparkline of the calls and failures agents reported
// (GET /v1/rates every 2 s, for the rows on screen only: the page stays
// light with hundreds of breakers). Beside them: what the sidecars'
// routes served and their fallback share (GET /v1/routes), the agents by
// service with the degraded ones marked (GET /v1/agents), and a breaker's
// journal when its name is clicked.
//
// Breakers are grouped by the part of their name before the first ".":
// a sidecar's per-model breakers (openai.gpt-4o) sit under a header row
// for their provider (openai), with the provider's own breaker, and the
// header shows the group's worst state and folds its members away. A
// breaker open because the provider refused the callers' credentials
// (misconfigured) shows as its own state.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const HOUR = 3600 * 1000;
const PAGE = 200; // breakers per request of the list
const BATCH = 100; // breakers per request of rates and timelines
const RATES_EVERY = 2000;
const SIDE_EVERY = 3000;

const rows = new Map(); // breaker name -> row (see newRow)
const groups = new Map(); // group name -> group (see newGroup)
let token = sessionStorage.getItem("fusebox.token") || "";
let lastEventId = "";
let streamAbort = null;
let retryDelay = 500;
let connected = false;
let selected = ""; // the breaker whose journal is open
let journalBefore = "";
const refetchTimers = new Map();
const timelineQueue = new Set();
let timelineTimer = null;

function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token }, opts.headers || {});
  return fetch(path, Object.assign({}, opts, { headers }));
}

// getJSON reads a GET endpoint; null when it failed (the next poll tries
// again: a coordinator restarting is no reason for an error on the page).
async function getJSON(path) {
  try {
    const resp = await api(path);
    if (!resp.ok) return null;
    return await resp.json();
  } catch (e) {
    return null;
  }
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

function clock(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function until(b) {
  const t = b.override_until || b.open_until;
  if (!t) return b.effective === "forced_open" ? "until released" : "";
  const s = Math.max(0, Math.round((new Date(t).getTime() - Date.now()) / 1000));
  return "in " + s + "s";
}

function svgEl(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}

// displayState is what a breaker shows: its effective state, or
// "misconfigured" when it is open for the callers' credentials.
function displayState(b) {
  return b.misconfigured ? "misconfigured" : b.effective;
}

function badge(state) {
  const b = document.createElement("span");
  b.className = "badge " + state;
  b.textContent = state;
  return b;
}

// ---- rows ----

const COL = { name: 0, state: 1, strip: 2, spark: 3, failures: 4, until: 5, change: 6, actions: 7 };

const visibility = new IntersectionObserver((entries) => {
  for (const e of entries) {
    const r = rows.get(e.target.dataset.name);
    if (!r) continue;
    r.visible = e.isIntersecting;
    if (r.visible && !r.tl.loaded) queueTimeline(r.name);
    if (r.visible && !r.ratesLoaded) pollRatesSoon();
  }
}, { rootMargin: "200px 0px" });

// pollRatesSoon reads the rates of rows that just came on screen, without
// waiting for the next poll.
let ratesSoon = null;
function pollRatesSoon() {
  if (ratesSoon || !connected) return;
  ratesSoon = setTimeout(() => {
    ratesSoon = null;
    pollRates().catch(() => {});
  }, 100);
}

function sortKey(name, state) {
  if ($("sort").value === "trouble") return (state === "closed" ? "1" : "0") + name;
  return name;
}

// rowKey sorts a row: by itself, or, in a group, after its group's header
// (a group sorts by its name, and by its worst state when trouble comes
// first).
function rowKey(r) {
  const own = sortKey(r.name, displayState(r.data));
  return r.group ? groupKey(r.group) + "\u0001" + own : own;
}

// ---- groups ----

// The worst first: what a group's header shows.
const SEVERITY = { closed: 0, forced_closed: 1, half_open: 2, forced_open: 3, open: 4, misconfigured: 5 };

function groupName(name) {
  return name.split(".")[0];
}

function groupKey(g) {
  return sortKey(g.name, g.worst);
}

function newGroup(name) {
  const tr = document.createElement("tr");
  tr.className = "group";
  tr.dataset.group = name;
  const td = document.createElement("td");
  td.colSpan = 8;
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "toggle";
  toggle.dataset.action = "toggle";
  toggle.title = "fold or unfold its breakers";
  toggle.setAttribute("aria-expanded", "true");
  toggle.textContent = "▾";
  toggle.addEventListener("click", () => toggleGroup(name));
  const label = document.createElement("span");
  label.className = "gname";
  label.textContent = name;
  const state = document.createElement("span");
  state.className = "gstate";
  const counts = document.createElement("span");
  counts.className = "small gcount";
  td.append(toggle, label, state, counts);
  tr.appendChild(td);
  const g = { name, tr, toggle, state, counts, members: new Set(), collapsed: false, worst: "closed" };
  groups.set(name, g);
  tr.dataset.key = groupKey(g) + "\u0000";
  insertSorted(tr);
  return g;
}

// join puts a new row in its group: a per-model breaker's group is made
// with it, and takes in the provider's own breaker if there is one.
function join(r) {
  const name = groupName(r.name);
  let g = groups.get(name);
  if (!g && r.name.includes(".")) {
    g = newGroup(name);
    const own = rows.get(name);
    if (own) addMember(g, own);
  }
  if (g) addMember(g, r);
}

function addMember(g, r) {
  g.members.add(r.name);
  r.group = g;
  r.tr.classList.add("member");
  r.tr.classList.toggle("collapsed", g.collapsed);
  r.tr.dataset.key = rowKey(r);
  insertSorted(r.tr);
}

// leave takes a row out of its group; a group left with no per-model
// breaker goes, and the provider's own breaker stands alone again.
function leave(r) {
  const g = r.group;
  if (!g) return;
  g.members.delete(r.name);
  r.group = null;
  if ([...g.members].some((n) => n.includes("."))) {
    updateGroup(g);
    return;
  }
  for (const n of g.members) {
    const m = rows.get(n);
    if (!m) continue;
    m.group = null;
    m.tr.classList.remove("member", "collapsed");
    m.tr.dataset.key = rowKey(m);
    insertSorted(m.tr);
  }
  g.tr.remove();
  groups.delete(g.name);
}

// updateGroup shows a group's worst state and counts, hides its header
// when the filter hides every member, and moves the group when its worst
// state moves it.
function updateGroup(g) {
  let worst = "closed", trouble = 0, shown = 0;
  for (const n of g.members) {
    const r = rows.get(n);
    if (!r) continue;
    const st = displayState(r.data);
    if (SEVERITY[st] > SEVERITY[worst]) worst = st;
    if (st !== "closed") trouble++;
    if (!r.tr.classList.contains("hidden")) shown++;
  }
  g.tr.dataset.state = worst;
  g.state.replaceChildren(badge(worst));
  g.counts.textContent = g.members.size + (g.members.size === 1 ? " breaker" : " breakers") + (trouble ? ", " + trouble + " not closed" : "");
  g.tr.classList.toggle("hidden", shown === 0);
  if (worst !== g.worst) {
    g.worst = worst;
    rekeyGroup(g);
  }
}

function rekeyGroup(g) {
  const key = groupKey(g) + "\u0000";
  if (key === g.tr.dataset.key) return;
  g.tr.dataset.key = key;
  insertSorted(g.tr);
  const members = [...g.members].map((n) => rows.get(n)).filter(Boolean);
  for (const m of members) m.tr.dataset.key = rowKey(m);
  members.sort((a, b) => (a.tr.dataset.key < b.tr.dataset.key ? -1 : 1));
  g.tr.after(...members.map((m) => m.tr));
}

function toggleGroup(name) {
  const g = groups.get(name);
  if (!g) return;
  g.collapsed = !g.collapsed;
  for (const n of g.members) {
    const r = rows.get(n);
    if (r) r.tr.classList.toggle("collapsed", g.collapsed);
  }
  g.tr.dataset.collapsed = String(g.collapsed);
  g.toggle.textContent = g.collapsed ? "▸" : "▾";
  g.toggle.setAttribute("aria-expanded", String(!g.collapsed));
}

function newRow(b) {
  const tr = document.createElement("tr");
  tr.dataset.name = b.name;
  for (let i = 0; i < 8; i++) tr.appendChild(document.createElement("td"));
  const nameBtn = document.createElement("button");
  nameBtn.type = "button";
  nameBtn.className = "name";
  nameBtn.dataset.action = "journal";
  nameBtn.textContent = b.name;
  nameBtn.title = "show its journal";
  nameBtn.addEventListener("click", () => openJournal(b.name));
  tr.children[COL.name].appendChild(nameBtn);
  const strip = svgEl("svg", { class: "strip", viewBox: "0 0 3600 12", preserveAspectRatio: "none", role: "img", "aria-label": "states over the last hour" });
  tr.children[COL.strip].appendChild(strip);
  const spark = svgEl("svg", { class: "spark", viewBox: "0 0 60 20", preserveAspectRatio: "none", role: "img", "aria-label": "calls and failures per second" });
  spark.append(svgEl("polygon", { class: "area" }), svgEl("polyline", { class: "calls", "vector-effect": "non-scaling-stroke" }),
    svgEl("polyline", { class: "fails", "vector-effect": "non-scaling-stroke" }));
  const rate = document.createElement("span");
  rate.className = "rate small";
  tr.children[COL.spark].append(spark, rate);
  const actions = tr.children[COL.actions];
  actions.className = "actions";
  for (const [label, action] of [["force open", "force-open"], ["force closed", "force-closed"], ["release", "release"]]) {
    const btn = document.createElement("button");
    btn.type = "button";
    btn.textContent = label;
    btn.dataset.action = action;
    btn.addEventListener("click", () => askOverride(b.name, action));
    actions.appendChild(btn);
  }
  const r = { name: b.name, tr, data: b, group: null, strip, spark, rate, visible: false, ratesLoaded: false, tl: { events: [], seen: new Set(), loaded: false, truncated: false, base: null } };
  rows.set(b.name, r);
  tr.dataset.key = rowKey(r);
  insertSorted(tr);
  join(r);
  visibility.observe(tr);
  return r;
}

function render(b, flash) {
  let r = rows.get(b.name);
  if (!r) r = newRow(b);
  r.data = b;
  const tr = r.tr;
  const state = displayState(b);
  tr.dataset.state = state;
  tr.children[COL.state].replaceChildren(badge(state));
  tr.children[COL.failures].textContent = b.failure_count != null ? String(b.failure_count) : "";
  tr.children[COL.until].textContent = until(b);
  const lt = b.last_transition || {};
  const when = document.createElement("div");
  when.textContent = [lt.reason, lt.actor ? "by " + lt.actor : ""].filter(Boolean).join(" ");
  const small = document.createElement("div");
  small.className = "small";
  small.textContent = [ago(lt.at), lt.last_error].filter(Boolean).join(" · ");
  tr.children[COL.change].replaceChildren(when, small);
  const key = rowKey(r);
  if (key !== tr.dataset.key) {
    tr.dataset.key = key;
    insertSorted(tr);
  }
  if (flash) {
    tr.classList.remove("flash");
    void tr.offsetWidth;
    tr.classList.add("flash");
  }
  renderStrip(r.strip, r);
  applyFilter(tr);
  if (r.group) updateGroup(r.group);
  summarize();
  if (b.name === selected) renderJournalHead(r);
}

// insertSorted puts a row where its key sorts; the list arrives sorted by
// name, so appending is the common case.
function insertSorted(tr) {
  const body = $("rows");
  const key = tr.dataset.key;
  const last = body.lastElementChild;
  if (!last || (last !== tr && last.dataset.key < key)) {
    body.appendChild(tr);
    return;
  }
  for (const other of body.children) {
    if (other !== tr && other.dataset.key > key) {
      body.insertBefore(tr, other);
      return;
    }
  }
  body.appendChild(tr);
}

function resort() {
  for (const g of groups.values()) g.tr.dataset.key = groupKey(g) + "\u0000";
  const all = [...rows.values()].map((r) => {
    r.tr.dataset.key = rowKey(r);
    return r.tr;
  });
  all.push(...[...groups.values()].map((g) => g.tr));
  all.sort((a, b) => (a.dataset.key < b.dataset.key ? -1 : 1));
  $("rows").append(...all);
}

function applyFilter(tr) {
  const q = $("filter").value.trim().toLowerCase();
  const st = $("stateFilter").value;
  const s = tr.dataset.state || "";
  const stateOK = !st || (st === "forced" ? s.startsWith("forced_") : s === st);
  tr.classList.toggle("hidden", !(tr.dataset.name.includes(q) && stateOK));
}

function summarize() {
  const n = { closed: 0, open: 0, half_open: 0, forced: 0, misconfigured: 0 };
  for (const { data } of rows.values()) {
    const st = displayState(data);
    if (st.startsWith("forced_")) n.forced++;
    else n[st] = (n[st] || 0) + 1;
  }
  $("summary").textContent = rows.size + " breakers: " + n.closed + " closed, " + n.open + " open, " + n.half_open + " half-open, " + n.forced + " forced" +
    (n.misconfigured ? ", " + n.misconfigured + " misconfigured" : "");
  $("summary").classList.toggle("trouble", n.open + n.half_open + n.misconfigured > 0);
}

// remove drops a deleted or expired breaker's row.
function remove(name) {
  const r = rows.get(name);
  if (!r) return;
  visibility.unobserve(r.tr);
  r.tr.remove();
  rows.delete(name);
  leave(r);
  summarize();
}

// ---- the timeline strip ----

function stateClass(s) {
  return s.startsWith("forced_") ? "forced" : s;
}

// eventState is the state an event left its breaker in, as the page shows
// it: a trip for the callers' credentials is misconfigured.
function eventState(e) {
  return e.new_state === "open" && e.reason === "misconfigured" ? "misconfigured" : e.new_state;
}

// addToTimeline records a journaled event on its breaker's strip; events
// come from the timelines read and from the stream, each once.
function addToTimeline(r, e) {
  const key = e.cursor || e.id + "/" + e.breaker;
  if (r.tl.seen.has(key)) return false;
  r.tl.seen.add(key);
  r.tl.events.push({ t: new Date(e.timestamp).getTime(), id: e.id, old: e.old_state, state: eventState(e), event: e.event, reason: e.reason });
  return true;
}

function sortTimeline(tl) {
  tl.events.sort((a, b) => a.t - b.t || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

// renderStrip draws the states of the last hour: the state before the
// first event of the hour (grey when the journal does not reach that
// far), then one segment per state change, the current state last.
function renderStrip(svg, r) {
  const now = Date.now();
  const since = now - HOUR;
  const tl = r.tl;
  while (tl.events.length && tl.events[0].t <= since) {
    tl.base = tl.events.shift().state; // the state at the start of the hour
    tl.truncated = false;
  }
  let state = tl.base;
  if (state == null) state = tl.truncated ? "unknown" : tl.events.length ? tl.events[0].old : r.data.effective;
  const points = [[since, state]];
  for (const e of tl.events) {
    if (e.state !== points[points.length - 1][1]) points.push([e.t, e.state]);
  }
  const MIN = 64; // about 4 px of a 14rem strip: a brief state stays visible
  const rects = [];
  for (let i = 0; i < points.length; i++) {
    const [from, st] = points[i];
    const to = i + 1 < points.length ? points[i + 1][0] : now;
    let x = (from - since) / 1000;
    let w = Math.max((to - from) / 1000, MIN);
    if (x + w > 3600) x = 3600 - w;
    const rect = svgEl("rect", { x: x.toFixed(1), y: 0, width: w.toFixed(1), height: 12, class: "seg " + stateClass(st), "data-state": st });
    const title = svgEl("title");
    title.textContent = st + " from " + (i === 0 ? "before " : "") + new Date(from).toLocaleTimeString() + (i + 1 < points.length ? " to " + new Date(to).toLocaleTimeString() : " to now");
    rect.appendChild(title);
    rects.push(rect);
  }
  svg.replaceChildren(...rects);
  svg.dataset.segments = String(rects.length);
  svg.dataset.current = points[points.length - 1][1];
}

function queueTimeline(name) {
  timelineQueue.add(name);
  if (!timelineTimer) timelineTimer = setTimeout(loadTimelines, 50);
}

async function loadTimelines() {
  timelineTimer = null;
  const names = [...timelineQueue];
  timelineQueue.clear();
  for (let i = 0; i < names.length; i += BATCH) {
    const chunk = names.slice(i, i + BATCH);
    const body = await getJSON("/v1/timelines?limit=200&names=" + chunk.map(encodeURIComponent).join(","));
    if (!body) {
      for (const n of chunk) if (rows.has(n)) timelineQueue.add(n); // try again
      continue;
    }
    for (const t of body.timelines) {
      const r = rows.get(t.name);
      if (!r) continue;
      r.tl.truncated = t.truncated && r.tl.base == null;
      for (const e of t.events) addToTimeline(r, e);
      sortTimeline(r.tl);
      r.tl.loaded = true;
      renderStrip(r.strip, r);
      if (r.name === selected) renderStrip($("journalStrip"), r);
    }
  }
  if (timelineQueue.size && !timelineTimer) timelineTimer = setTimeout(loadTimelines, 2000);
}

// ---- rates ----

function renderSpark(svg, calls, fails) {
  const n = calls.length;
  const max = Math.max(1, ...calls);
  const x = (i) => ((i * 60) / (n - 1)).toFixed(2);
  const y = (v) => (19 - (v / max) * 18).toFixed(2);
  const line = (vs) => vs.map((v, i) => x(i) + "," + y(v)).join(" ");
  const [area, cl, fl] = svg.children;
  area.setAttribute("points", "0,19 " + line(calls) + " 60,19");
  cl.setAttribute("points", line(calls));
  let total = 0, failed = 0;
  for (const v of calls) total += v;
  for (const v of fails) failed += v;
  fl.setAttribute("points", failed ? line(fails) : ""); // no red line without a failure
  svg.dataset.total = String(total);
  svg.dataset.failed = String(failed);
  svg.dataset.max = String(max);
  let title = svg.querySelector("title");
  if (!title) title = svg.appendChild(svgEl("title"));
  title.textContent = total + " in the last minute, " + failed + " failed; peak " + max + "/s";
}

function rateText(calls, fails) {
  // The last 10 whole seconds (the newest one is still filling).
  const c = calls.slice(-11, -1).reduce((a, b) => a + b, 0);
  const f = fails.slice(-11, -1).reduce((a, b) => a + b, 0);
  if (c === 0) return "idle";
  return (c / 10).toFixed(1) + "/s" + (f ? " · " + Math.round((100 * f) / c) + "% fail" : "");
}

async function pollRates() {
  const names = [];
  for (const r of rows.values()) if (r.visible && !r.tr.classList.contains("hidden")) names.push(r.name);
  for (let i = 0; i < names.length; i += BATCH) {
    const chunk = names.slice(i, i + BATCH);
    const body = await getJSON("/v1/rates?names=" + chunk.map(encodeURIComponent).join(","));
    if (!body) continue;
    for (const rt of body.rates) {
      const r = rows.get(rt.name);
      if (!r) continue;
      r.ratesLoaded = true;
      renderSpark(r.spark, rt.calls, rt.failures);
      r.rate.textContent = rateText(rt.calls, rt.failures);
      r.rate.classList.toggle("failing", rt.failures.slice(-11, -1).some((v) => v > 0));
    }
  }
}

// ---- routes ----

async function pollRoutes() {
  const body = await getJSON("/v1/routes");
  if (!body) return;
  const tbody = $("routeRows");
  const trs = [];
  for (const rt of body.routes) {
    const tr = document.createElement("tr");
    tr.dataset.route = rt.name;
    tr.dataset.share = rt.fallback_share.toFixed(4);
    const name = document.createElement("td");
    name.textContent = rt.name;
    const sparkTd = document.createElement("td");
    const spark = svgEl("svg", { class: "spark", viewBox: "0 0 60 20", preserveAspectRatio: "none", role: "img", "aria-label": "served per second, fallbacks in red" });
    spark.append(svgEl("polygon", { class: "area" }), svgEl("polyline", { class: "calls", "vector-effect": "non-scaling-stroke" }),
      svgEl("polyline", { class: "fails", "vector-effect": "non-scaling-stroke" }));
    renderSpark(spark, rt.served, rt.fallback);
    const per = document.createElement("span");
    per.className = "rate small";
    per.textContent = (rt.served_total / body.seconds).toFixed(1) + "/s";
    sparkTd.append(spark, per);
    const shareTd = document.createElement("td");
    const bar = svgEl("svg", { class: "share", viewBox: "0 0 100 8", preserveAspectRatio: "none", role: "img", "aria-label": "fallback share" });
    bar.append(svgEl("rect", { class: "track", x: 0, y: 0, width: 100, height: 8 }),
      svgEl("rect", { class: "fill", x: 0, y: 0, width: (100 * rt.fallback_share).toFixed(1), height: 8 }));
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = Math.round(100 * rt.fallback_share) + "% (" + rt.fallback_total + " of " + rt.served_total + ")";
    shareTd.append(bar, pct);
    shareTd.classList.toggle("high", rt.fallback_share >= 0.2);
    tr.append(name, sparkTd, shareTd);
    trs.push(tr);
  }
  tbody.replaceChildren(...trs);
  $("noRoutes").hidden = trs.length > 0;
}

// ---- agents ----

async function pollAgents() {
  const body = await getJSON("/v1/agents");
  if (!body) return;
  const groups = new Map();
  for (const a of body.agents) {
    if (!groups.has(a.service)) groups.set(a.service, []);
    groups.get(a.service).push(a);
  }
  const list = [...groups.entries()].map(([service, agents]) => ({ service, agents, degraded: agents.filter((a) => a.degraded).length }));
  // Services with degraded agents first, then by name; agents without a
  // service last.
  list.sort((a, b) => (b.degraded > 0) - (a.degraded > 0) || (a.service === "") - (b.service === "") || (a.service < b.service ? -1 : 1));
  const out = [];
  let degraded = 0;
  for (const g of list) {
    degraded += g.degraded;
    const div = document.createElement("div");
    div.className = "svc" + (g.degraded ? " has-degraded" : "");
    div.dataset.service = g.service;
    const h = document.createElement("h3");
    h.textContent = g.service || "(no service)";
    const counts = document.createElement("span");
    counts.className = "small";
    counts.textContent = " " + g.agents.length + (g.agents.length === 1 ? " agent" : " agents") + (g.degraded ? ", " + g.degraded + " degraded" : "");
    h.appendChild(counts);
    const ul = document.createElement("ul");
    for (const a of g.agents) {
      const li = document.createElement("li");
      li.className = "agent" + (a.degraded ? " degraded" : "");
      li.dataset.agent = a.id;
      li.dataset.degraded = String(a.degraded);
      const id = document.createElement("span");
      id.textContent = a.id;
      li.appendChild(id);
      if (a.degraded) li.appendChild(badge("degraded"));
      const seen = document.createElement("span");
      seen.className = "small";
      seen.textContent = " " + ago(a.last_seen);
      li.appendChild(seen);
      ul.appendChild(li);
    }
    div.append(h, ul);
    out.push(div);
  }
  $("agents").replaceChildren(...out);
  $("agentSummary").textContent = body.agents.length + " seen in the last 30 s" + (degraded ? ", " + degraded + " degraded" : "");
}

// ---- a breaker's journal ----

function journalItem(e) {
  const li = document.createElement("li");
  li.dataset.event = e.event;
  const t = document.createElement("span");
  t.className = "small";
  t.textContent = clock(e.timestamp) + " ";
  const what = document.createElement("span");
  what.textContent = e.event + ": " + e.old_state + " → " + e.new_state + " (" + e.reason + (e.actor ? ", by " + e.actor : "") + ")";
  li.append(t, what);
  if (e.last_error && e.event !== "reset") {
    const err = document.createElement("div");
    err.className = "small";
    err.textContent = e.last_error;
    li.appendChild(err);
  }
  return li;
}

function renderJournalHead(r) {
  $("journalTitle").replaceChildren(document.createTextNode(r.name + " "), badge(displayState(r.data)));
  renderStrip($("journalStrip"), r);
}

async function openJournal(name) {
  const r = rows.get(name);
  if (!r) return;
  for (const other of document.querySelectorAll("#rows tr.selected")) other.classList.remove("selected");
  r.tr.classList.add("selected");
  selected = name;
  journalBefore = "";
  $("journal").hidden = false;
  $("journal").dataset.breaker = name;
  renderJournalHead(r);
  $("journalEvents").replaceChildren();
  await loadJournal(name);
}

async function loadJournal(name) {
  const q = "?limit=50" + (journalBefore ? "&before=" + encodeURIComponent(journalBefore) : "");
  const body = await getJSON("/v1/breakers/" + encodeURIComponent(name) + "/events" + q);
  if (!body || selected !== name) return;
  for (const e of body.events) $("journalEvents").appendChild(journalItem(e));
  journalBefore = body.next_before || "";
  $("journalOlder").hidden = !journalBefore;
  $("journal").dataset.loaded = "true";
}

function closeJournal() {
  selected = "";
  $("journal").hidden = true;
  for (const other of document.querySelectorAll("#rows tr.selected")) other.classList.remove("selected");
}

// ---- events ----

function addEvent(e) {
  const li = document.createElement("li");
  const t = new Date(e.timestamp).toLocaleTimeString();
  li.textContent = t + "  " + e.breaker + ": " + e.old_state + " → " + e.new_state + "  (" + e.event + ", " + e.reason + (e.actor ? ", by " + e.actor : "") + ")" + (e.last_error && e.event !== "reset" ? "  " + e.last_error : "");
  const list = $("events");
  list.insertBefore(li, list.firstChild);
  while (list.children.length > 100) list.removeChild(list.lastChild);
}

// A transition shows at once from the event itself, on the row and its
// strip; the breaker's counts follow with one request, coalesced per
// breaker.
function onEvent(e) {
  addEvent(e);
  if (e.event === "deleted" || e.event === "expired") {
    if (e.breaker === selected) closeJournal();
    remove(e.breaker);
    return;
  }
  const r = rows.get(e.breaker);
  if (r) {
    addToTimeline(r, e);
    sortTimeline(r.tl);
    if (e.breaker === selected) $("journalEvents").insertBefore(journalItem(e), $("journalEvents").firstChild);
  }
  if (r && e.version >= (r.data.version || 0) && e.event !== "probe_started") {
    render(Object.assign({}, r.data, { effective: e.new_state, misconfigured: eventState(e) === "misconfigured", version: e.version, failure_count: e.failure_count,
      last_transition: { reason: e.reason, actor: e.actor, at: e.timestamp, last_error: e.last_error } }), true);
  } else if (r) {
    renderStrip(r.strip, r);
  }
  // How long after it was journaled (Redis's clock) the event was drawn.
  if (r) r.strip.dataset.eventLagMs = String(Date.now() - new Date(e.timestamp).getTime());
  if (refetchTimers.has(e.breaker)) return;
  refetchTimers.set(e.breaker, setTimeout(async () => {
    refetchTimers.delete(e.breaker);
    const b = await getJSON("/v1/breakers/" + encodeURIComponent(e.breaker));
    if (b) render(b, false);
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
  if (connected) return;
  connected = true;
  const every = (fn, ms) => {
    const run = () => fn().catch(() => {}).finally(() => setTimeout(run, ms));
    run();
  };
  every(pollRates, RATES_EVERY);
  every(pollRoutes, SIDE_EVERY);
  every(pollAgents, SIDE_EVERY);
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
  const refilter = () => {
    rows.forEach(({ tr }) => applyFilter(tr));
    groups.forEach(updateGroup);
  };
  $("filter").addEventListener("input", refilter);
  $("stateFilter").addEventListener("change", refilter);
  $("sort").addEventListener("change", resort);
  $("journalClose").addEventListener("click", closeJournal);
  $("journalOlder").addEventListener("click", () => { if (selected) loadJournal(selected); });
  $("override").addEventListener("close", () => {
    if ($("override").returnValue === "confirm") submitOverride();
    else pending = null;
  });
  setInterval(() => rows.forEach((r) => { r.tr.children[COL.until].textContent = until(r.data); }), 1000);
  // Time moves the strips: redraw the ones on screen.
  setInterval(() => {
    for (const r of rows.values()) if (r.visible) renderStrip(r.strip, r);
    const r = rows.get(selected);
    if (r) renderStrip($("journalStrip"), r);
  }, 5000);
  if (token) {
    $("token").value = token;
    connect();
  }
});
