// suibou duty officer console: plain JavaScript and SVG, talking only to the alert API it is served by.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const HEX = {1: "#ffffff", 2: "#f2e700", 3: "#ff2800", 4: "#aa00aa", 5: "#0c000c"};
const NODATA = "#c8c8c8";
const LEVEL_TEXT = {
  1: "level 1 · no alert", 2: "level 2 · caution 注意", 3: "level 3 · warning 警戒",
  4: "level 4 · danger 危険", 5: "level 5 · emergency 緊急",
};
const THRESHOLDS = [  // key, label, Japanese name, colour
  ["standby_m", "standby", "水防団待機水位", "#7d8791"], ["caution_m", "caution", "氾濫注意水位", "#c9b800"],
  ["evacuation_m", "evacuation", "避難判断水位", HEX[3]], ["danger_m", "danger", "氾濫危険水位", HEX[4]],
  ["bank_full_m", "bank full", "堤防高", HEX[5]],
];
const POLL_MS = 2000;
const JST_MS = 9 * 3600 * 1000;

const S = {
  token: sessionStorage.getItem("suibou.token"), officer: null, map: null, doc: null, etag: null,
  stream: null, selected: null, flash: new Set(), userView: false, view: null, proj: null,
  sse: null, polling: false, detailKey: null,
};

// ------------------------------------------------------------------ small helpers

const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function s(tag, attrs, parent) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, v);
  if (parent) parent.append(node);
  return node;
}

const ms = (iso) => Date.parse(iso);
function jst(iso, withDate = true) {
  if (!iso) return "—";
  const t = new Date(ms(iso) + JST_MS).toISOString();
  return (withDate ? t.slice(0, 10) + " " : "") + t.slice(11, 16) + " JST";
}
const num = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v)) ? "—" : Number(v).toFixed(d);
const chip = (level) => h("span", {class: `lvchip lv${level}`, title: LEVEL_TEXT[level]}, String(level));
const sleep = (t) => new Promise((r) => setTimeout(r, t));

// A request refused because the session ended: the login form already says so,
// so requests still in flight when it happened end quietly.
class SessionEnded extends Error {}
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason instanceof SessionEnded) event.preventDefault();
});

function toast(text, bad = false) {
  const node = $("toast");
  node.textContent = text;
  node.className = bad ? "toast bad" : "toast";
  node.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { node.hidden = true; }, 4000);
}

async function api(path, {method = "GET", body, etag} = {}) {
  const headers = {Authorization: `Bearer ${S.token}`};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (etag) headers["If-None-Match"] = etag;
  const response = await fetch(path, {method, headers, cache: "no-store",
                                      body: body === undefined ? undefined : JSON.stringify(body)});
  if (response.status === 401) {
    showLogin("Your session has ended; log in again.");
    throw new SessionEnded("session ended");
  }
  return response;
}

async function apiJson(path, options) {
  const response = await api(path, options);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return response.json();
}

const streamParam = () => (S.doc ? `stream=${encodeURIComponent(S.doc.stream.id)}` : "");
const isExerciseStream = () => Boolean(S.doc && S.doc.stream.exercise);

function alertInStream(message, streamId) {
  if (streamId === "live") return !message.exercise;
  return message.exercise && (message.drill_id === null || message.drill_id === streamId);
}

// ------------------------------------------------------------------ login

function showLogin(message) {
  S.token = null;
  sessionStorage.removeItem("suibou.token");
  if (S.sse) S.sse.abort();
  $("app").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  const response = await fetch("/v1/officer/login", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: $("username").value, password: $("password").value}),
  });
  if (!response.ok) {
    $("login-error").textContent = response.status === 429 ? "Too many failed logins; wait 5 minutes."
      : "Wrong user name or password.";
    return;
  }
  const body = await response.json();
  S.token = body.token;
  sessionStorage.setItem("suibou.token", body.token);
  $("password").value = "";
  await start();
}

async function logout() {
  try { await api("/v1/officer/logout", {method: "POST"}); } catch (e) { /* already ended */ }
  showLogin("Logged out.");
}

async function start() {
  try {
    S.officer = await apiJson("/v1/officer/me");
  } catch (e) {
    showLogin(S.token ? "" : undefined);
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = `${S.officer.display_name} (${S.officer.username}, ${S.officer.role})`;
  if (!S.map) {
    S.map = await apiJson("/v1/console/map");
    buildMap();
  }
  S.etag = null;
  await refreshState();
  if (!S.polling) {
    S.polling = true;
    pollLoop();
  }
  followAlerts();
}

async function pollLoop() {
  for (;;) {
    await sleep(POLL_MS);
    if (S.token) {
      try { await refreshState(); } catch (e) { /* shown on the next success */ }
    }
  }
}

// ------------------------------------------------------------------ live alert stream (SSE over fetch)

async function followAlerts() {
  if (S.sse) S.sse.abort();
  const controller = new AbortController();
  S.sse = controller;
  let lastId = null;
  while (!controller.signal.aborted && S.token) {
    try {
      const headers = {Authorization: `Bearer ${S.token}`, Accept: "text/event-stream"};
      if (lastId) headers["Last-Event-ID"] = lastId;
      const response = await fetch("/v1/stream", {headers, signal: controller.signal, cache: "no-store"});
      if (response.status === 401) { showLogin("Your session has ended; log in again."); return; }
      if (!response.ok) throw new Error(`stream ${response.status}`);
      setLive(true);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true}).replace(/\r\n/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const id = onServerEvent(block);
          if (id) lastId = id;
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
    }
    setLive(false);
    await sleep(2000);
  }
}

function setLive(on) {
  const node = $("live");
  node.className = on ? "live on" : "live off";
  node.textContent = on ? "alerts: live" : "alerts: reconnecting";
}

function onServerEvent(block) {
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("id:")) id = line.slice(3).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (!data.length) return id;
  try {
    const message = JSON.parse(data.join("\n"));
    if (!S.doc || !S.stream || alertInStream(message, S.doc.stream.id)) {
      S.flash.add(message.alert_id);
      toast(`${message.exercise ? "EXERCISE · " : ""}${message.msg_type}: ${message.headline_en || message.headline}`);
    }
    refreshState(true);
    if (S.selected && S.selected.type === "alert" && S.selected.id === message.alert_id && !editing()) {
      showAlert(message.alert_id);
    }
  } catch (e) { /* a malformed event is skipped */ }
  return id;
}

// ------------------------------------------------------------------ state

async function refreshState(force = false) {
  if (!S.token) return;
  const query = S.stream ? `?stream=${encodeURIComponent(S.stream)}` : "";
  const response = await api(`/v1/console/state${query}`, {etag: force ? null : S.etag});
  if (response.status === 304) return;
  if (!response.ok) return;
  S.etag = response.headers.get("ETag");
  S.doc = await response.json();
  renderState();
}

function renderState() {
  const doc = S.doc;
  renderHeader(doc);
  colourMap(doc);
  renderAlerts(doc);
  renderFaults(doc);
  if (!S.userView) autoFit(doc);
  refreshDetail();
}

// The live fusion job, from its supervisor's heartbeats: a badge, and a banner whenever it is not running
// in time (live alerts may then be late or missing).
function renderJob(job) {
  const badge = $("job");
  const banner = $("job-banner");
  if (!job) {
    badge.hidden = true;
    banner.hidden = true;
    return;
  }
  badge.hidden = false;
  badge.textContent = `live job: ${job.summary}`;
  badge.className = "job " + (job.state === "running" ? "ok" : (job.state === "starting" ? "warn" : "bad"));
  const restarts = job.restarts ? ` · ${job.restarts} restart(s)` : "";
  badge.title = `heartbeat ${job.heartbeat_at ? jst(job.heartbeat_at) : "never"}${restarts}`
    + (job.last_restart_reason ? ` · last: ${job.last_restart_reason}` : "");
  const warnings = {
    not_seen: "The live fusion job is not seen (no heartbeat for 30 s): live alerts may be missing · 解析ジョブ応答なし",
    stopped: "The live fusion job is stopped: no live alerts are being decided · 解析ジョブ停止中",
    restarting: "The live fusion job is restarting: live alerts may be late · 解析ジョブ再起動中",
    behind: `The live fusion job is ${job.summary}: live alerts are late · 解析ジョブ遅延`,
  };
  banner.hidden = !(job.state in warnings);
  banner.textContent = warnings[job.state] || "";
}

function renderHeader(doc) {
  const select = $("stream-select");
  const ids = doc.streams.map((x) => x.id);
  if (!ids.includes("live")) ids.push("live");
  const wanted = ["", ...ids];
  const current = [...select.options].map((o) => o.value);
  if (wanted.join("|") !== current.join("|")) {
    select.replaceChildren(...wanted.map((id) => h("option", {value: id},
      id === "" ? "follow the latest" : (id === "live" ? "live" : `EXERCISE ${id}`))));
  }
  select.value = S.stream || "";
  select.title = `showing ${doc.stream.id}`;
  $("stream-clock").textContent = `${doc.stream.id === "live" ? "live" : "drill"} time ${jst(doc.stream.clock)}`;
  renderJob(doc.live_job);
  const feed = doc.feed;
  $("feed").textContent = `station feed: ${feed.state}`;
  $("feed").title = feed.last_error || `${feed.applied} updates`;
  const banner = $("banner");
  if (doc.stream.exercise) {
    banner.hidden = false;
    banner.textContent = `EXERCISE 訓練 — ${doc.stream.drill_id ? "drill " + doc.stream.drill_id : "exercise traffic"}`
      + " — not an actual alert · 実際の警報ではありません";
  } else {
    banner.hidden = true;
  }
  $("exercise-mark").hidden = !doc.stream.exercise;
  document.body.classList.toggle("exercise", doc.stream.exercise);
}

// ------------------------------------------------------------------ map

function buildMap() {
  const svg = $("map");
  const all = S.map.catalogues.map((c) => c.bbox);
  const lon0 = (Math.min(...all.map((b) => b[0])) + Math.max(...all.map((b) => b[2]))) / 2;
  const lat0 = (Math.min(...all.map((b) => b[1])) + Math.max(...all.map((b) => b[3]))) / 2;
  S.proj = {lon0, lat0, kx: 111.32 * Math.cos(lat0 * Math.PI / 180), ky: 110.574};
  const defs = s("defs", {}, svg);
  const hatch = s("pattern", {id: "fault-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
                              patternTransform: "rotate(45)"}, defs);
  s("rect", {width: 6, height: 6, fill: "#ff8c00"}, hatch);
  s("rect", {width: 3, height: 6, fill: "#444"}, hatch);
  const layers = {};
  for (const name of ["roads", "zones", "corridors", "rivers", "faults", "markers"]) {
    layers[name] = s("g", {id: `layer-${name}`}, svg);
  }
  for (const road of S.map.roads) {
    s("polyline", {class: "road", points: pts(road.line)}, layers.roads).append(title(`${road.name_ja} ${road.name}`));
  }
  for (const area of S.map.areas) {
    if (area.kind === "zone") {
      const zone = s("polygon", {class: "zone area", points: pts(area.polygon), fill: HEX[1], "data-id": area.area_id,
                                 "data-kind": "zone"}, layers.zones);
      zone.append(title(`${area.name_ja} ${area.name} (landslide warning zone)`));
      zone.addEventListener("click", clickOn("area", area.area_id));
      s("polygon", {class: "area-fault", points: pts(area.polygon), "data-fault-of": area.area_id,
                    visibility: "hidden"}, layers.faults);
    } else {
      s("polygon", {class: "corridor", points: pts(area.polygon), "data-corridor-of": area.area_id, fill: HEX[1],
                    visibility: "hidden"}, layers.corridors);
      s("polyline", {class: "river-casing", points: pts(area.line)}, layers.rivers);
      const river = s("polyline", {class: "river area", points: pts(area.line), stroke: HEX[1], "data-id": area.area_id,
                                   "data-kind": "reach"}, layers.rivers);
      river.append(title(`${area.name_ja} ${area.name}`));
      river.addEventListener("click", clickOn("area", area.area_id));
      s("polyline", {class: "area-fault", points: pts(area.line), "data-fault-of": area.area_id,
                     visibility: "hidden"}, layers.faults);
    }
  }
  for (const gauge of S.map.gauges) addMarker(layers.markers, "station", gauge.station_id, gauge.lon, gauge.lat,
    gauge.kind, `${gauge.name_ja} ${gauge.name} (${gauge.kind === "level" ? "water level" : "rain"} gauge ${gauge.station_id})`);
  for (const camera of S.map.cameras) addMarker(layers.markers, "camera", camera.camera_id, camera.lon, camera.lat,
    "camera", `${camera.name_ja} ${camera.name} (camera ${camera.camera_id})`);

  const select = $("area-select");
  select.replaceChildren(h("option", {value: ""}, "all areas"),
    ...S.map.catalogues.map((c) => h("option", {value: c.name}, c.name)));
  select.addEventListener("change", () => {
    S.userView = true;
    const catalogue = S.map.catalogues.find((c) => c.name === select.value);
    fit(catalogue ? catalogue.bbox : unionBbox(S.map.catalogues.map((c) => c.bbox)));
  });
  fit(unionBbox(all));
  enablePanZoom(svg);
  buildLegend();
}

function title(text) {
  const node = document.createElementNS(SVGNS, "title");
  node.textContent = text;
  return node;
}

function project(lon, lat) {
  return [(lon - S.proj.lon0) * S.proj.kx, -(lat - S.proj.lat0) * S.proj.ky];
}

const pts = (coords) => coords.map(([lon, lat]) => project(lon, lat).map((v) => v.toFixed(4)).join(",")).join(" ");

function addMarker(layer, type, id, lon, lat, kind, label) {
  const [x, y] = project(lon, lat);
  const g = s("g", {class: "marker no_data", "data-id": id, "data-type": type, "data-kind": kind,
                    "data-status": "no_data", "data-x": x, "data-y": y}, layer);
  // Cameras stand beside the gauges they watch: drawn raised on a short stalk, so both stay visible.
  const dy = kind === "camera" ? -16 : 0;
  if (kind === "level") s("path", {class: "shape", d: "M0,-9 L8,6 L-8,6 Z", fill: NODATA}, g);
  else if (kind === "rain") s("circle", {class: "shape", r: 6.5, fill: NODATA}, g);
  else {
    s("line", {x1: 0, y1: 0, x2: 0, y2: dy + 5.5, stroke: "#1b1b1b", "stroke-width": 1.2,
               "vector-effect": "non-scaling-stroke"}, g);
    s("rect", {class: "shape", x: -7, y: dy - 5.5, width: 14, height: 11, rx: 2, fill: NODATA}, g);
    s("circle", {cy: dy, r: 2.6, fill: "#fff", stroke: "#1b1b1b", "stroke-width": 1, "vector-effect": "non-scaling-stroke"}, g);
  }
  const badge = s("g", {class: "badge-group", visibility: "hidden"}, g);
  s("circle", {class: "badge", cx: 8, cy: dy - 8, r: 5.5}, badge);
  s("text", {class: "badge-text", x: 8, y: dy - 5}, badge).textContent = "!";
  if (kind !== "camera") s("text", {class: "label", x: 10, y: 4}, g).textContent = id.replace(/^(WL|RG)-/, "");
  g.append(title(label));
  g.addEventListener("click", clickOn(type, id));
}

function clickOn(type, id) {
  return (event) => {
    if (S.dragged) return;
    event.stopPropagation();
    select(type, id);
  };
}

function unionBbox(boxes) {
  return [Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1])),
          Math.max(...boxes.map((b) => b[2])), Math.max(...boxes.map((b) => b[3]))];
}

function fit(bbox) {
  const [x0, y1] = project(bbox[0], bbox[1]);
  const [x1, y0] = project(bbox[2], bbox[3]);
  const pad = Math.max(x1 - x0, y1 - y0) * 0.08 + 0.5;
  setView({x: x0 - pad, y: y0 - pad, w: x1 - x0 + 2 * pad, h: y1 - y0 + 2 * pad});
}

function setView(view) {
  const svg = $("map");
  const box = svg.getBoundingClientRect();
  const width = box.width || 800;
  const height = box.height || 600;
  // Keep the screen's aspect ratio, so that a unit is the same size both ways.
  const scale = Math.max(view.w / width, view.h / height);
  const w = width * scale;
  const hgt = height * scale;
  S.view = {x: view.x + (view.w - w) / 2, y: view.y + (view.h - hgt) / 2, w, h: hgt, scale};
  svg.setAttribute("viewBox", `${S.view.x} ${S.view.y} ${S.view.w} ${S.view.h}`);
  for (const g of svg.querySelectorAll(".marker")) {
    g.setAttribute("transform", `translate(${g.dataset.x} ${g.dataset.y}) scale(${scale})`);
  }
}

function zoomAt(factor, cx, cy) {
  const v = S.view;
  setView({x: cx - (cx - v.x) * factor, y: cy - (cy - v.y) * factor, w: v.w * factor, h: v.h * factor});
}

function svgPoint(svg, clientX, clientY) {
  const box = svg.getBoundingClientRect();
  return [S.view.x + (clientX - box.left) * S.view.scale, S.view.y + (clientY - box.top) * S.view.scale];
}

function enablePanZoom(svg) {
  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    S.userView = true;
    const [cx, cy] = svgPoint(svg, event.clientX, event.clientY);
    zoomAt(Math.exp(event.deltaY * 0.0015), cx, cy);
  }, {passive: false});
  let start = null;
  svg.addEventListener("pointerdown", (event) => {
    start = {x: event.clientX, y: event.clientY, view: {...S.view}};
    S.dragged = false;
  });
  svg.addEventListener("pointermove", (event) => {
    if (!start) return;
    const dx = event.clientX - start.x;
    const dy = event.clientY - start.y;
    if (!S.dragged && Math.hypot(dx, dy) < 4) return;
    if (!S.dragged) { S.dragged = true; svg.classList.add("dragging"); svg.setPointerCapture(event.pointerId); }
    S.userView = true;
    setView({x: start.view.x - dx * start.view.scale, y: start.view.y - dy * start.view.scale,
             w: start.view.w, h: start.view.h});
  });
  const end = () => {
    start = null;
    svg.classList.remove("dragging");
    setTimeout(() => { S.dragged = false; }, 0);
  };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);
  const centre = () => [S.view.x + S.view.w / 2, S.view.y + S.view.h / 2];
  $("zoom-in").addEventListener("click", () => { S.userView = true; zoomAt(0.7, ...centre()); });
  $("zoom-out").addEventListener("click", () => { S.userView = true; zoomAt(1 / 0.7, ...centre()); });
  window.addEventListener("resize", () => setView(S.view));
  const mark = h("div", {id: "exercise-mark", class: "map-exercise", hidden: true}, "EXERCISE 訓練");
  $("map-pane").append(mark);
}

function autoFit(doc) {
  // Show the catalogue with the most stations reporting in this stream (once, until the officer moves the map).
  const counts = {};
  for (const gauge of S.map.gauges) {
    const entry = doc.stations[gauge.station_id];
    if (entry && entry.status !== "no_data") counts[gauge.catalogue] = (counts[gauge.catalogue] || 0) + 1;
  }
  const best = Object.entries(counts).sort((a, b) => b[1] - a[1])[0];
  const name = best ? best[0] : null;
  if (!name || S.fitted === name) return;
  const catalogue = S.map.catalogues.find((c) => c.name === name);
  if (!catalogue) return;
  S.fitted = name;
  $("area-select").value = name;
  fit(catalogue.bbox);
}

function colourMap(doc) {
  const svg = $("map");
  for (const area of S.map.areas) {
    const entry = doc.areas[area.area_id] || {alert_level: 1, faulted: false};
    const colour = HEX[entry.alert_level];
    const shape = svg.querySelector(`.area[data-id="${CSS.escape(area.area_id)}"]`);
    shape.setAttribute(area.kind === "zone" ? "fill" : "stroke", colour);
    shape.dataset.level = entry.alert_level;
    const corridor = svg.querySelector(`[data-corridor-of="${CSS.escape(area.area_id)}"]`);
    if (corridor) {
      corridor.setAttribute("fill", colour);
      corridor.setAttribute("visibility", entry.alert_level >= 2 ? "visible" : "hidden");
    }
    svg.querySelector(`[data-fault-of="${CSS.escape(area.area_id)}"]`)
      .setAttribute("visibility", entry.faulted ? "visible" : "hidden");
    shape.classList.toggle("selected", Boolean(S.selected && S.selected.id === area.area_id));
  }
  for (const g of svg.querySelectorAll(".marker")) {
    const entry = g.dataset.type === "camera" ? doc.cameras[g.dataset.id] : doc.stations[g.dataset.id];
    const status = entry ? entry.status : "no_data";
    const level = entry && entry.colour_level ? entry.colour_level : null;
    g.classList.remove("ok", "fault", "no_data");
    g.classList.add(status);
    g.dataset.status = status;
    g.dataset.level = level || "";
    g.querySelector(".shape").setAttribute("fill", status === "fault" ? "url(#fault-hatch)"
      : status === "no_data" || !level ? NODATA : HEX[level]);
    g.querySelector(".badge-group").setAttribute("visibility", status === "fault" ? "visible" : "hidden");
    g.classList.toggle("selected", Boolean(S.selected && S.selected.id === g.dataset.id));
    const tip = g.querySelector("title");
    tip.textContent = tip.textContent.replace(/ — .*$/, "") + " — " + (status === "fault"
      ? `FAULT: ${entry.fault.kind} since ${jst(entry.fault.since)}` : status === "no_data" ? "no data" : LEVEL_TEXT[level] || "");
  }
}

function buildLegend() {
  const rows = [1, 2, 3, 4, 5].map((l) => h("div", {class: "row"}, h("span", {class: `sw lv${l}`}), LEVEL_TEXT[l]));
  $("legend").replaceChildren(
    ...rows,
    h("div", {class: "row"}, h("span", {class: "sw fault"}), "sensor fault (not \"no risk\")"),
    h("div", {class: "row"}, h("span", {class: "sw nodata"}), "no data"),
    h("div", {class: "row small"}, "▲ water level · ● rain · ▣ camera · reaches and zones by alert"),
  );
}

// ------------------------------------------------------------------ alerts and faults

function renderAlerts(doc) {
  const list = $("alerts");
  const alerts = [...doc.alerts].sort((a, b) => (b.active - a.active));
  $("alert-count").textContent = `(${alerts.filter((a) => a.active).length} active)`;
  list.replaceChildren(...alerts.map((alert) => {
    const item = h("li", {"data-alert-id": alert.alert_id, "data-level": alert.level,
                          class: [alert.active ? "" : "cancelled",
                                  S.selected && S.selected.id === alert.alert_id ? "selected" : "",
                                  S.flash.has(alert.alert_id) ? "flash" : ""].join(" ").trim(),
                          onclick: () => select("alert", alert.alert_id)},
      chip(alert.level),
      h("div", {},
        h("div", {}, alert.area_name_ja || alert.area_id, " ", h("span", {class: "small"}, alert.area_name)),
        h("div", {class: "small"}, `${alert.msg_type} · ${alert.hazard} · ${jst(alert.updated)}`,
          alert.exercise ? h("span", {class: "tag exercise"}, "EXERCISE 訓練") : null,
          alert.source === "duty_officer" ? h("span", {class: "tag officer"}, "officer") : null,
          alert.manual ? h("span", {class: "tag"}, "manual") : null,
          alert.reason && alert.reason.faults && alert.reason.faults.length ? h("span", {class: "tag fault"}, "faults") : null)),
      h("span", {class: "small"}, alert.active ? "" : "cancelled"));
    return item;
  }));
  S.flash.clear();
}

function renderFaults(doc) {
  $("fault-count").textContent = `(${doc.faults.length})`;
  $("faults").replaceChildren(...doc.faults.map((fault) => h("li", {"data-station-id": fault.station_id,
    onclick: () => select("station", fault.station_id)},
    h("span", {class: "tag fault"}, fault.kind), " ", fault.station_id,
    h("div", {class: "small"}, `since ${jst(fault.since)} · ${fault.detail}`))));
}

// ------------------------------------------------------------------ details

function select(type, id) {
  S.selected = {type, id};
  S.detailKey = null;
  if (S.doc) { colourMap(S.doc); renderAlerts(S.doc); }
  refreshDetail(true);
}

function refreshDetail(force = false) {
  if (!S.selected || !S.doc || (!force && editing())) return;
  const {type, id} = S.selected;
  if (type === "station") showStation(id, force);
  else if (type === "camera") showCamera(id, force);
  else if (type === "area") showArea(id, force);
  else if (type === "alert" && force) showAlert(id, true);
}

function panel(...children) {
  const mark = isExerciseStream() ? h("div", {class: "exercise-note"},
    `EXERCISE 訓練 — ${S.doc.stream.drill_id || "exercise"}`) : null;
  render([mark, ...children]);
}

const fieldKey = (field) => `${(field.closest("[data-form]") || {dataset: {}}).dataset.form}:${field.name}`;

function render(children) {
  // New data must not wipe what the officer is typing or has chosen in a form of the same subject.
  const detail = $("detail");
  const saved = new Map([...detail.querySelectorAll("[data-form] [name]")].map((f) => [fieldKey(f), f.value]));
  detail.replaceChildren(...children.filter(Boolean));
  for (const field of detail.querySelectorAll("[data-form] [name]")) {
    if (saved.has(fieldKey(field))) field.value = saved.get(fieldKey(field));
  }
}

function editing() {
  const active = document.activeElement;
  return Boolean(active && $("detail").contains(active) && active.matches("input, select"));
}

function kv(rows) {
  return h("table", {class: "kv"}, ...rows.filter(Boolean).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v))));
}

async function showStation(id, force) {
  const doc = await apiJson(`/v1/console/stations/${encodeURIComponent(id)}?${streamParam()}`);
  const key = JSON.stringify(doc);
  if (!force && key === S.detailKey) return;
  if (!S.selected || S.selected.id !== id) return;
  S.detailKey = key;
  const head = h("h3", {}, doc.name_ja || "", " ", h("span", {class: "small"}, `${doc.name} · ${id}`));
  const fault = doc.fault ? h("p", {class: "tag fault", "data-fault": doc.fault.kind},
    `FAULT ${doc.fault.kind} since ${jst(doc.fault.since)}: ${doc.fault.detail}`) : null;
  if (!doc.latest && !doc.series.length) {
    panel(head, fault, h("p", {}, "No data from this gauge in this stream."));
    return;
  }
  if (doc.kind === "level") panel(head, fault, ...levelDetail(doc));
  else panel(head, fault, ...rainDetail(doc));
}

function levelDetail(doc) {
  const latest = doc.latest;
  const minutes = latest && Object.keys(latest.minutes_to).length ? Object.entries(latest.minutes_to)
    .map(([k, v]) => `${k.replace(/_m$/, "")} in ${num(v, 0)} min`).join(", ") : "—";
  const out = [];
  if (latest) {
    out.push(kv([["level", h("span", {}, `${num(latest.level_m)} m `, chip(latest.observed_level))],
                 ["reading", jst(latest.time)], ["rise (30 min)", `${num(latest.rise_m_per_h)} m/h`],
                 ["at this rate", minutes]]));
  }
  out.push(hydrograph(doc));
  out.push(h("p", {class: "small"}, "Dashed: ", doc.trend ? doc.trend.basis : "no trend", "."));
  const forecast = doc.forecast;
  if (forecast) {
    const p = forecast.probabilities;
    const cell = (k) => (k in p ? `${Math.round(p[k] * 100)}%` : "—");
    out.push(h("h3", {}, `Flood model ${forecast.model}: chance to reach each level`));
    out.push(h("table", {"data-forecast": forecast.model},
      h("tr", {}, h("th", {}, ""), h("th", {}, "within 30 min"), h("th", {}, "within 60 min")),
      ...["caution", "evacuation", "danger"].map((name) => h("tr", {}, h("td", {}, name),
        h("td", {}, cell(`${name}_30min`)), h("td", {}, cell(`${name}_60min`))))));
    out.push(h("p", {class: "small"}, `Score of ${doc.reach_id} at ${jst(forecast.time)}; model probabilities, `
      + "trained on synthetic storms (see the model card), not an observation."));
    if (forecast.faults.length) out.push(h("p", {class: "tag fault"}, `score made with faults: ${forecast.faults.join("; ")}`));
    if (doc.probability_series.length > 1) out.push(probabilityChart(doc.probability_series, forecast.target));
  }
  if (doc.cameras.length) {
    out.push(h("p", {}, "Cameras on this reach: ",
      ...doc.cameras.map((c) => h("button", {type: "button", onclick: () => select("camera", c)}, c))));
  }
  return out;
}

function rainDetail(doc) {
  const latest = doc.latest;
  const out = [];
  if (latest) {
    out.push(kv([["reading", jst(latest.time)], ["10 min", `${num(latest.rain_10min_mm, 1)} mm`],
                 ["60 min", `${num(latest.rain_60min_mm, 1)} mm`], ["3 h / 24 h",
                 `${num(latest.rain_3h_mm, 1)} / ${num(latest.rain_24h_mm, 1)} mm`],
                 ["soil water index", `${num(latest.swi_mm, 1)} mm`],
                 ["snake line", latest.beyond_critical_line.length
                   ? `beyond the critical line (${latest.beyond_critical_line.join(", ")})` : "inside the critical line"]]));
  }
  out.push(rainChart(doc));
  out.push(snakeChart(doc));
  const invented = doc.critical_lines.filter((l) => l.note && l.note.includes("invented"));
  if (invented.length) out.push(h("p", {class: "small"}, `Critical line: ${invented[0].note}.`));
  return out;
}

function showCamera(id, force) {
  const camera = S.map.cameras.find((c) => c.camera_id === id);
  const entry = S.doc.cameras[id] || {status: "no_data"};
  const key = JSON.stringify(entry);
  if (!force && key === S.detailKey) return;
  S.detailKey = key;
  const head = h("h3", {}, camera ? camera.name_ja : id, " ", h("span", {class: "small"}, `${camera ? camera.name : ""} · ${id}`));
  if (!entry.frame) {
    panel(head, h("p", {}, "No still from this camera in this stream."));
    return;
  }
  const img = h("img", {class: "frame", alt: `still of ${id} at ${jst(entry.frame.time)}`, "data-event-id": entry.frame.event_id});
  const gauge = camera && camera.level_station_id ? S.doc.stations[camera.level_station_id] : null;
  const estimate = entry.estimate;
  panel(head, img, h("p", {class: "small"}, `still of ${jst(entry.frame.time)}`),
    estimate ? kv([["camera estimate", h("span", {"data-estimate": estimate.level_m}, `${num(estimate.level_m)} m `,
                     estimate.estimated_level ? chip(estimate.estimated_level) : "")],
                   ["P(overtopping)", `${Math.round(estimate.p_overtopping * 100)}%${estimate.overtopping ? " — overtopping" : ""}`],
                   ["as of", jst(estimate.score_time)],
                   gauge && gauge.latest ? [`gauge ${camera.level_station_id}`, `${num(gauge.latest.level_m)} m at ${jst(gauge.latest.time)}`] : null])
      : h("p", {}, "No camera estimate in the reach's latest score."),
    estimate ? h("p", {class: "small"}, estimate.source) : null,
    camera && camera.level_station_id ? h("button", {type: "button", onclick: () => select("station", camera.level_station_id)},
      `hydrograph of ${camera.level_station_id}`) : null);
  api(`/v1/console/cameras/${encodeURIComponent(id)}/frames/${encodeURIComponent(entry.frame.event_id)}?${streamParam()}`)
    .then((r) => (r.ok ? r.blob() : null))
    .then((blob) => { if (blob) img.src = URL.createObjectURL(blob); })
    .catch(() => {});
}

function showArea(id, force) {
  const area = S.map.areas.find((a) => a.area_id === id);
  const entry = S.doc.areas[id] || {alert_level: 1, alert_ids: [], score: null};
  const key = JSON.stringify(entry);
  if (!force && key === S.detailKey) return;
  S.detailKey = key;
  const out = [h("h3", {}, chip(entry.alert_level), " ", area.name_ja, " ", h("span", {class: "small"}, `${area.name} · ${id}`))];
  out.push(h("p", {class: "small"}, `${area.kind === "zone" ? "landslide warning zone" : "river reach"} · ${area.hazard}`));
  for (const alertId of entry.alert_ids) {
    out.push(h("button", {type: "button", onclick: () => select("alert", alertId)}, `alert ${alertId}`));
  }
  if (entry.score) out.push(h("h3", {}, "Latest score"), scoreTable(entry.score));
  else out.push(h("p", {}, "No score for this area in this stream."));
  if (area.level_station_id) {
    out.push(h("p", {}, h("button", {type: "button", onclick: () => select("station", area.level_station_id)},
      `hydrograph of ${area.level_station_id}`)));
  }
  if (S.officer.role === "officer") out.push(issueForm(area));
  panel(...out);
}

function scoreTable(score) {
  const features = Object.entries(score.features).map(([k, v]) => h("tr", {},
    h("td", {}, k, score.contributions.includes(k) ? " ★" : ""), h("td", {}, num(v, 3))));
  const probabilities = Object.entries(score.probabilities).map(([k, v]) => `${k} ${Math.round(v * 100)}%`).join(", ");
  const cameraUsed = "camera_level_m" in score.features;
  return h("div", {"data-score": score.event_id},
    kv([["model", score.model + (cameraUsed ? " with a camera/1 estimate" : "")], ["target", score.target],
        ["probability", `${Math.round(score.probability * 100)}%`], probabilities ? ["all targets", probabilities] : null,
        ["observed level", chip(score.observed_level)], ["time", jst(score.time)],
        score.faults.length ? ["faults", h("span", {class: "tag fault"}, score.faults.join("; "))] : null]),
    h("table", {}, h("tr", {}, h("th", {}, "feature (★ drove the score)"), h("th", {}, "value")), ...features));
}

function issueForm(area) {
  const level = h("select", {name: "level"}, ...[2, 3, 4, 5].map((l) => h("option", {value: l}, LEVEL_TEXT[l])));
  const note = h("input", {type: "text", name: "note", placeholder: "note (goes to the audit log)", maxlength: 1000});
  const exercise = isExerciseStream();
  return h("div", {class: "actions", "data-issue": area.area_id, "data-form": `issue:${area.area_id}`},
    h("strong", {}, exercise ? "Issue an EXERCISE alert by hand" : "Issue an alert by hand"), level, note,
    h("button", {type: "button", onclick: async () => {
      try {
        const body = {area_id: area.area_id, hazard: area.hazard, level: Number(level.value), note: note.value,
                      area_kind: area.kind, area_name: area.name, area_name_ja: area.name_ja, exercise,
                      polygon: {type: "Polygon", coordinates: [area.polygon]}};
        if (exercise && S.doc.stream.drill_id) body.drill_id = S.doc.stream.drill_id;
        const detail = await apiJson("/v1/officer/alerts", {method: "POST", body});
        toast(`issued ${detail.alert_id}`);
        await refreshState(true);
        select("alert", detail.alert_id);
      } catch (e) { toast(`not issued: ${e.message}`, true); }
    }}, "issue"));
}

async function showAlert(id, force = false) {
  let alert;
  try {
    alert = await apiJson(`/v1/alerts/${encodeURIComponent(id)}`);
  } catch (e) {
    panel(h("p", {class: "error"}, `alert ${id}: ${e.message}`));
    return;
  }
  const key = JSON.stringify(alert);
  if (!S.selected || S.selected.id !== id || (!force && key === S.detailKey)) return;
  S.detailKey = key;
  const why = [...alert.messages].reverse().find((m) => m.source === "pipeline") || null;
  const out = [];
  if (alert.exercise) out.push(h("div", {class: "exercise-note"}, `EXERCISE 訓練 — ${alert.drill_id || "exercise"}`));
  out.push(h("h3", {}, chip(alert.level), " ", alert.headline));
  out.push(kv([["alert", alert.alert_id], ["state", alert.active ? (alert.manual ? "active, under officer control" : "active")
    : "cancelled"], ["since", jst(alert.event_time)], ["updated", jst(alert.updated)], ["status", alert.status]]));
  if (S.officer.role === "officer" && alert.active) out.push(actions(alert));
  if (why) out.push(h("h3", {}, "Why it was raised"), reasonView(why.reason));
  out.push(h("h3", {}, "History"), h("table", {"data-history": alert.alert_id},
    h("tr", {}, h("th", {}, "#"), h("th", {}, "type"), h("th", {}, "level"), h("th", {}, "time"), h("th", {}, "by")),
    ...alert.messages.map((m) => h("tr", {}, h("td", {}, m.sequence), h("td", {}, m.msg_type), h("td", {}, chip(m.level)),
      h("td", {}, jst(m.event_time)),
      h("td", {}, m.source === "duty_officer" ? `${m.officer || "officer"} (${m.action})${m.reason.note ? ": " + m.reason.note : ""}`
        : `pipeline${m.reason.model ? " · " + m.reason.model : ""}`)))));
  if (alert.held.length) {
    out.push(h("h3", {}, "Held pipeline messages"), ...alert.held.map((m) => h("p", {class: "small"},
      `${m.msg_type} level ${m.level} at ${jst(m.event_time)}: ${m.reason}`)));
  }
  render(out);
}

function reasonView(reason) {
  const rows = [];
  if (reason.model) rows.push(["model", reason.model + (reason.features && "camera_level_m" in reason.features ? " with a camera/1 estimate" : "")]);
  if (reason.target) rows.push(["target", reason.target]);
  if (reason.probability !== undefined) rows.push(["probability", `${Math.round(reason.probability * 100)}%`]);
  if (reason.observed_level !== undefined) rows.push(["observed level", chip(reason.observed_level)]);
  if (reason.faults && reason.faults.length) rows.push(["faults", h("span", {class: "tag fault"}, reason.faults.join("; "))]);
  if (reason.risk_score_id) rows.push(["score", reason.risk_score_id]);
  const contributions = reason.contributions || [];
  const features = Object.entries(reason.features || {}).map(([k, v]) => h("tr", {},
    h("td", {}, k, contributions.includes(k) ? " ★" : ""), h("td", {}, num(v, 3))));
  return h("div", {"data-reason": "1"}, kv(rows),
    features.length ? h("table", {}, h("tr", {}, h("th", {}, "feature (★ drove the score)"), h("th", {}, "value")), ...features) : null);
}

function actions(alert) {
  const note = h("input", {type: "text", name: "note", placeholder: "note (goes to the message and the audit log)", maxlength: 1000});
  const level = h("select", {name: "level"}, ...[2, 3, 4, 5].map((l) => h("option", {value: l, selected: l === alert.level}, LEVEL_TEXT[l])));
  const act = (action, extra = {}) => async () => {
    try {
      await apiJson(`/v1/officer/alerts/${encodeURIComponent(alert.alert_id)}/${action}`, {method: "POST",
        body: {note: note.value, expected_sequence: alert.sequence, ...extra}});
      toast(`${action}: ${alert.alert_id}`);
      note.value = "";
      await refreshState(true);
      await showAlert(alert.alert_id, true);
    } catch (e) { toast(`${action} refused: ${e.message}`, true); }
  };
  const cancel = h("button", {type: "button", class: "danger", "data-action": "cancel"}, "cancel alert");
  cancel.addEventListener("click", () => {
    if (cancel.dataset.armed) return act("cancel")();
    cancel.dataset.armed = "1";
    cancel.textContent = "confirm cancel";
    return null;
  });
  return h("div", {class: "actions", "data-form": `act:${alert.alert_id}`}, note,
    h("button", {type: "button", "data-action": "acknowledge", onclick: act("acknowledge")}, "acknowledge"),
    level, h("button", {type: "button", "data-action": "update", onclick: () => act("update", {level: Number(level.value)})()},
      "set level"),
    cancel);
}

// ------------------------------------------------------------------ charts

function chartFrame(width, height) {
  const svg = s("svg", {class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img"});
  return svg;
}

function timeAxis(svg, t0, t1, x, y0, y1) {
  const span = t1 - t0;
  const step = [10, 20, 30, 60, 120, 180, 360, 720].map((m) => m * 60000).find((st) => span / st <= 7) || 1440 * 60000;
  for (let t = Math.ceil((t0 + JST_MS) / step) * step - JST_MS; t <= t1; t += step) {
    s("line", {class: "grid", x1: x(t), x2: x(t), y1: y0, y2: y1}, svg);
    s("text", {x: x(t), y: y1 + 12, "text-anchor": "middle"}, svg).textContent =
      new Date(t + JST_MS).toISOString().slice(11, 16);
  }
}

function valueAxis(svg, v0, v1, y, x0, x1, unit) {
  const raw = (v1 - v0) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= raw) || raw;
  for (let v = Math.ceil(v0 / step) * step; v <= v1 + 1e-9; v += step) {
    s("line", {class: "grid", x1: x0, x2: x1, y1: y(v), y2: y(v)}, svg);
    s("text", {x: x0 - 4, y: y(v) + 3, "text-anchor": "end"}, svg).textContent = `${+v.toFixed(2)}`;
  }
  s("text", {x: x0 - 4, y: 10, "text-anchor": "end"}, svg).textContent = unit;
}

function hydrograph(doc) {
  const W = 430, H = 230, L = 40, R = 96, T = 14, B = 22;
  const svg = chartFrame(W, H);
  svg.dataset.chart = "hydrograph";
  const series = doc.series.map(([t, v]) => [ms(t), v]);
  const trend = doc.trend ? doc.trend.points.map(([t, v]) => [ms(t), v]) : [];
  const times = [...series, ...trend].map((p) => p[0]);
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 60000);
  // The trend may run off the top: the scale follows the thresholds and the observations; the plot is clipped.
  const values = [...series.map((p) => p[1]), ...Object.values(doc.thresholds)];
  const v0 = Math.min(0, ...values), v1 = Math.max(...values) * 1.15 || 1;
  const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
  const y = (v) => T + (1 - (v - v0) / (v1 - v0)) * (H - T - B);
  valueAxis(svg, v0, v1, y, L, W - R, "m");
  timeAxis(svg, t0, t1, x, T, H - B);
  const clip = `clip-${Math.random().toString(36).slice(2)}`;
  s("rect", {x: L, y: T, width: W - L - R, height: H - T - B}, s("clipPath", {id: clip}, svg));
  for (const [key, label, ja, colour] of THRESHOLDS) {
    if (!(key in doc.thresholds)) continue;
    const v = doc.thresholds[key];
    s("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: colour, "stroke-width": 1.5,
               "stroke-dasharray": key === "standby_m" ? "4 3" : null, "data-threshold": key}, svg);
    const text = s("text", {x: W - R + 4, y: y(v) + 3, fill: colour}, svg);
    text.textContent = `${label} ${v} m`;
    text.append(title(`${ja} (${label})`));
  }
  const plot = s("g", {"clip-path": `url(#${clip})`}, svg);
  if (series.length) s("polyline", {class: "obs", points: series.map(([t, v]) => `${x(t)},${y(v)}`).join(" ")}, plot);
  if (trend.length) s("polyline", {class: "trend", points: trend.map(([t, v]) => `${x(t)},${y(v)}`).join(" ")}, plot);
  s("line", {class: "axis", x1: L, x2: L, y1: T, y2: H - B}, svg);
  s("line", {class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B}, svg);
  return svg;
}

function probabilityChart(points, target) {
  const W = 430, H = 110, L = 40, R = 20, T = 14, B = 22;
  const svg = chartFrame(W, H);
  svg.dataset.chart = "probability";
  const series = points.map(([t, p]) => [ms(t), p]);
  const t0 = series[0][0], t1 = Math.max(series[series.length - 1][0], t0 + 60000);
  const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
  const y = (v) => T + (1 - v) * (H - T - B);
  valueAxis(svg, 0, 1, y, L, W - R, "P");
  timeAxis(svg, t0, t1, x, T, H - B);
  s("polyline", {class: "prob", points: series.map(([t, v]) => `${x(t)},${y(v)}`).join(" ")}, svg);
  s("text", {x: L + 4, y: T + 10}, svg).textContent = `P: ${target}`;
  return svg;
}

function rainChart(doc) {
  const W = 430, H = 170, L = 40, R = 40, T = 14, B = 22;
  const svg = chartFrame(W, H);
  svg.dataset.chart = "rainfall";
  const bars = doc.bars.map(([t, v]) => [ms(t), v]);
  const r60 = doc.series.map(([t, , v]) => [ms(t), v]);
  const times = [...bars.map((b) => b[0] - 600000), ...r60.map((p) => p[0])];
  if (!times.length) return svg;
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 600000);
  const v1 = Math.max(10, ...bars.map((b) => b[1]), ...r60.map((p) => p[1])) * 1.1;
  const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
  const y = (v) => T + (1 - v / v1) * (H - T - B);
  valueAxis(svg, 0, v1, y, L, W - R, "mm");
  timeAxis(svg, t0, t1, x, T, H - B);
  for (const [t, v] of bars) {
    s("rect", {class: "bar", x: x(t - 600000) + 0.5, width: Math.max(1, x(t) - x(t - 600000) - 1), y: y(v),
               height: y(0) - y(v)}, svg).append(title(`${num(v, 1)} mm in 10 min to ${new Date(t + JST_MS).toISOString().slice(11, 16)}`));
  }
  if (r60.length) s("polyline", {class: "r60", points: r60.map(([t, v]) => `${x(t)},${y(v)}`).join(" ")}, svg);
  s("text", {x: L + 4, y: T + 10}, svg).textContent = "bars: 10-min rain · line: 60-min rain";
  return svg;
}

function snakeChart(doc) {
  const W = 430, H = 230, L = 40, R = 20, T = 14, B = 28;
  const svg = chartFrame(W, H);
  svg.dataset.chart = "snake";
  const points = doc.series.map(([, , r60, swi]) => [swi, r60]);
  const lines = doc.critical_lines;
  const x1v = Math.max(50, ...points.map((p) => p[0]), ...lines.map((l) => l.swi_at_no_rain_mm)) * 1.05;
  const y1v = Math.max(20, ...points.map((p) => p[1]), ...lines.map((l) => l.r60_at_dry_mm)) * 1.05;
  const x = (v) => L + v / x1v * (W - L - R);
  const y = (v) => T + (1 - v / y1v) * (H - T - B);
  valueAxis(svg, 0, y1v, y, L, W - R, "mm/h");
  for (let v = 0; v <= x1v; v += x1v > 300 ? 100 : 50) {
    s("line", {class: "grid", x1: x(v), x2: x(v), y1: T, y2: H - B}, svg);
    s("text", {x: x(v), y: H - B + 12, "text-anchor": "middle"}, svg).textContent = v;
  }
  s("text", {x: W - R, y: H - 3, "text-anchor": "end"}, svg).textContent = "soil water index (mm)";
  for (const line of lines) {
    const floor = line.swi_floor_mm, end = line.swi_at_no_rain_mm, r0 = line.r60_at_dry_mm;
    const atFloor = r0 * (1 - floor / end);
    s("polygon", {class: "beyond", points: `${x(floor)},${y(atFloor)} ${x(end)},${y(0)} ${x(x1v)},${y(0)} ${x(x1v)},${T} ${x(floor)},${T}`}, svg);
    s("line", {class: "cl", x1: x(floor), y1: y(atFloor), x2: x(end), y2: y(0), "data-critical-line": line.zone_id || "default"}, svg);
    s("text", {x: x(end) - 4, y: y(0) - 6, "text-anchor": "end", fill: "#b00020"}, svg).textContent =
      `CL ${line.zone_id || "(default)"}`;
  }
  if (points.length) {
    s("polyline", {class: "snake", points: points.map(([a, b]) => `${x(a)},${y(b)}`).join(" ")}, svg);
    const [a, b] = points[points.length - 1];
    s("circle", {class: "now", cx: x(a), cy: y(b), r: 4}, svg);
  }
  s("line", {class: "axis", x1: L, x2: L, y1: T, y2: H - B}, svg);
  s("line", {class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B}, svg);
  s("text", {x: L + 4, y: T + 10}, svg).textContent = "snake line: 60-min rain against soil water index";
  return svg;
}

// ------------------------------------------------------------------ start

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("stream-select").addEventListener("change", (event) => {
    S.stream = event.target.value || null;
    S.etag = null;
    S.fitted = null;
    S.userView = false;
    refreshState(true);
  });
  if (S.token) start();
  else showLogin();
});
