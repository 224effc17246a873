// phase4 live page: wiring. The WebSocket handler only parses and keeps the latest frame;
// everything is computed and drawn on requestAnimationFrame from that latest frame, so a
// slow display skips frames instead of queueing them.

import { Connection } from "./connection.js";
import { makeScale, buildElements, levels, aWeightingDb, octaveBands, noteName } from "./dsp.js";
import { colorAt } from "./colormaps.js";
import { BarsView, RadialView, SpectrogramView } from "./views.js";
import {
  BAND_MODES, COLORMAP_NAMES, SCHEMA, applyPreset, defaults, fromQuery, loadPresets,
  normalize, presetOf, savePresets, toQuery,
} from "./state.js";

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ state

// The stream beside the page: /ws for a page at /, /ID/ws for a relay's page at /ID/.
const DEFAULT_SERVER = location.host
  ? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${location.pathname.replace(/[^/]*$/, "")}ws`
  : "ws://127.0.0.1:8889/ws";
const query = new URLSearchParams(location.search);
const AUTOCONNECT = query.get("connect") !== "0";
const state = fromQuery(location.search);
let paused = false;

/** What the views draw from; version bumps whenever anything static changes. */
const model = {
  version: 0,
  geometry: "",
  scale: makeScale("log", 20, 22050),
  elements: [],
  minDb: state.minDb,
  maxDb: state.maxDb,
  grid: state.grid,
  labels: state.labels,
  peakHold: state.peakHold,
  colormap: state.colormap,
  message: "Waiting for data…",
};

const display = {
  hasData: false,
  stale: "", // when not connected: why the frame on screen is the last one received
  layoutKey: "",
  layout: null,
  values: new Float32Array(0), // smoothed dB per element (what bars / radial draw)
  raw: new Float32Array(0), // unsmoothed dB per element (what the spectrogram draws)
  peaks: new Float32Array(0),
  peakAt: new Float64Array(0),
  scratch: new Float32Array(0),
  resetSmoothing: true,
  sampleRate: 44100,
  fftSize: 0,
  nBins: 0,
};

const stats = {
  messages: 0, // fft_magnitudes messages received
  ignored: 0, // messages of other types / shapes
  bad: 0, // unparseable text
  binary: 0, // binary frames (ignored: this page reads the JSON form)
  skipped: 0, // frames replaced by a newer one before they were drawn
  drawn: 0, // new frames drawn
  draws: 0, // animation frames that drew anything
  idle: 0, // animation frames with nothing to do
  gaps: 0, // frames missing from the frameCount sequence
  serverDropped: null,
  msgRate: 0,
  drawRate: 0,
  frameCount: null,
  startTime: null,
  bpm: 0,
  bpmConfidence: 0,
  flux: 0,
  latencyMs: null,
  state: "disconnected",
  detail: "",
  url: "",
  opens: 0,
  skipFactor: 1,
  drawEmaMs: 0,
};

let latest = null; // the newest parsed frame (set by onmessage only)
let drawnFrame = null; // the frame the display last processed
let lastFrameCount = null;

// ------------------------------------------------------------------ messages

function onText(text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    stats.bad += 1;
    return;
  }
  accept(msg);
}

function accept(msg) {
  if (!msg || msg.type !== "fft_magnitudes" || !Array.isArray(msg.magnitudes) || msg.magnitudes.length < 2) {
    stats.ignored += 1;
    return;
  }
  stats.messages += 1;
  if (typeof msg.frameCount === "number") {
    if (lastFrameCount !== null && msg.frameCount > lastFrameCount + 1) stats.gaps += msg.frameCount - lastFrameCount - 1;
    lastFrameCount = msg.frameCount;
  }
  if (latest !== null && latest !== drawnFrame) stats.skipped += 1;
  latest = msg; // latest frame wins; drawing happens on requestAnimationFrame
}

const conn = new Connection({
  onText,
  onBinary: () => {
    stats.binary += 1;
  },
  onState: (info) => {
    stats.state = info.state;
    stats.detail = info.detail;
    stats.url = info.url;
    stats.opens = conn ? conn.opens : 0;
    if (info.state === "connected") lastFrameCount = null;
    display.stale = info.state === "connected" ? "" : `${info.state} · showing the last frame received`;
    needsDraw = true;
    renderStatus();
  },
});

function connect(url) {
  const u = (url || $("wsUrl").value || DEFAULT_SERVER).trim();
  $("wsUrl").value = u;
  state.server = u === DEFAULT_SERVER ? "" : u;
  latest = null;
  drawnFrame = null;
  display.hasData = false;
  model.message = "Waiting for data…";
  conn.connect(u);
  writeUrl();
}

function renderStatus() {
  const el = $("connectionStatus");
  const s = stats.state;
  el.dataset.state = s;
  const label = { connected: "Connected", connecting: "Connecting…", reconnecting: "Reconnecting…", disconnected: "Disconnected", error: "Error" }[s] || s;
  el.textContent = stats.detail && s !== "connected" ? `${label} (${stats.detail})` : label;
  el.title = stats.url;
  // Connect stays available to switch servers: disabled only when it would change nothing
  const same = $("wsUrl").value.trim() === stats.url;
  $("connectBtn").disabled = same && (s === "connected" || s === "connecting");
  $("disconnectBtn").disabled = s === "disconnected" || s === "error";
}

// ------------------------------------------------------------------ model / display layout

function effectiveRange() {
  const nyq = display.sampleRate / 2;
  const fmax = state.fmax > 0 ? Math.min(state.fmax, nyq) : nyq;
  const fmin = Math.min(Math.max(1, state.fmin), fmax / 2);
  return { fmin, fmax };
}

/** Rebuild elements when the stream's shape or a frequency setting changes. */
function ensureLayout(nBins) {
  display.nBins = nBins;
  const { fmin, fmax } = effectiveRange();
  const key = [nBins, display.sampleRate, display.fftSize, state.bands, state.weighting, fmin, fmax, state.scale].join("|");
  if (key === display.layoutKey) return;
  display.layoutKey = key;
  display.layout = buildElements({
    nBins, sampleRate: display.sampleRate, fftSize: display.fftSize, bands: state.bands, fmin, fmax, weighting: state.weighting,
  });
  const n = display.layout.elements.length;
  display.values = new Float32Array(n).fill(state.minDb);
  display.raw = new Float32Array(n).fill(state.minDb);
  display.peaks = new Float32Array(n).fill(state.minDb);
  display.peakAt = new Float64Array(n);
  display.scratch = new Float32Array(n);
  display.resetSmoothing = true;
  rebuildModel();
}

function rebuildModel() {
  const { fmin, fmax } = effectiveRange();
  model.scale = makeScale(state.scale, fmin, fmax);
  model.elements = display.layout ? display.layout.elements : [];
  model.geometry = display.layoutKey;
  model.minDb = state.minDb;
  model.maxDb = state.maxDb;
  model.grid = state.grid;
  model.labels = state.labels;
  model.peakHold = state.peakHold;
  model.colormap = state.colormap;
  model.version += 1;
}

/** Turn the latest frame into levels (dB), smoothed levels and peaks. */
function processFrame(f, { live = true } = {}) {
  const mags = f.magnitudes;
  display.sampleRate = typeof f.sampleRate === "number" && f.sampleRate > 0 ? f.sampleRate : 44100;
  display.fftSize = typeof f.fftSize === "number" && f.fftSize > 0 ? f.fftSize : 2 * (mags.length - 1);
  ensureLayout(mags.length);
  const { minDb, maxDb, smoothing } = state;
  const lv = levels(mags, display.layout, state.refMag, state.bands, display.scratch);
  const { values, raw } = display;
  const a = display.resetSmoothing ? 0 : smoothing;
  for (let i = 0; i < lv.length; i++) {
    let d = lv[i];
    d = d < minDb ? minDb : d > maxDb ? maxDb : d;
    raw[i] = d;
    values[i] = a * values[i] + (1 - a) * d; // exponential smoothing, in dB
  }
  display.resetSmoothing = false;
  display.hasData = true;
  if (!live) return;
  stats.frameCount = f.frameCount ?? null;
  stats.startTime = f.startTime ?? null;
  stats.bpm = typeof f.bpm === "number" ? f.bpm : 0;
  stats.bpmConfidence = typeof f.bpmConfidence === "number" ? f.bpmConfidence : 0;
  if (Array.isArray(f.spectralFlux)) {
    let s = 0;
    for (const v of f.spectralFlux) s += v;
    stats.flux = s;
    fluxHistory[fluxPos] = s;
    fluxPos = (fluxPos + 1) % fluxHistory.length;
  }
  if (typeof f.dropped === "number") stats.serverDropped = f.dropped;
  stats.latencyMs = typeof f.captureTime === "number" ? Date.now() - f.captureTime * 1000 : null;
  const sg = views.spectrogram;
  if (sg.visible) {
    sg.prepare(model);
    sg.push(raw);
  }
}

let lastPeakTime = 0;
/** Peak hold: follow rises at once; after holdMs without a new high, fall at decay dB/s. */
function updatePeaks(now) {
  const dt = lastPeakTime ? (now - lastPeakTime) / 1000 : 0;
  lastPeakTime = now;
  if (!state.peakHold || !display.hasData) return false;
  const { values, peaks, peakAt } = display;
  const fall = state.decayDbPerS * dt;
  let moving = false;
  for (let i = 0; i < values.length; i++) {
    if (values[i] >= peaks[i]) {
      peaks[i] = values[i];
      peakAt[i] = now;
    } else if (now - peakAt[i] > state.holdMs) {
      peaks[i] = Math.max(values[i], peaks[i] - fall);
      moving = true;
    } else {
      moving = true; // still holding: redraw when the hold ends
    }
  }
  return moving;
}

// ------------------------------------------------------------------ views and the loop

const views = {
  bars: new BarsView($("barsCanvas")),
  radial: new RadialView($("radialCanvas")),
  spectrogram: new SpectrogramView($("spectrogramCanvas")),
};
const resizeObserver = new ResizeObserver((entries) => {
  for (const e of entries) {
    for (const v of Object.values(views)) if (v.canvas === e.target) v.sizeDirty = true;
  }
  needsDraw = true;
});
for (const v of Object.values(views)) resizeObserver.observe(v.canvas);

const DRAW_RING = 1000;
const drawTimes = new Float64Array(DRAW_RING);
let drawCount = 0;
let needsDraw = true;
let frameNo = 0;
const drawWaiters = [];
const fluxHistory = new Float32Array(96);
let fluxPos = 0;

function loop(now) {
  requestAnimationFrame(loop);
  frameNo += 1;
  // degrade gracefully: when drawing costs more than ~12 ms, draw only every 2nd/3rd/4th frame
  if (frameNo % stats.skipFactor !== 0) return;
  const t0 = performance.now();
  let dirty = needsDraw;
  needsDraw = false;
  if (!paused) {
    const f = latest;
    if (f !== null && f !== drawnFrame) {
      drawnFrame = f;
      processFrame(f);
      stats.drawn += 1;
      dirty = true;
    }
    if (updatePeaks(now)) dirty = true;
  } else {
    lastPeakTime = now;
  }
  if (!display.layout) {
    display.fftSize = 256;
    ensureLayout(129); // axes before the first frame: assume 44.1 kHz / 256
  }
  for (const v of Object.values(views)) {
    if (!v.visible) continue;
    if (v.prepare(model)) dirty = true;
  }
  if (dirty) {
    for (const v of Object.values(views)) if (v.visible) v.draw(display);
    drawFlux();
    const dt = performance.now() - t0;
    drawTimes[drawCount % DRAW_RING] = dt;
    drawCount += 1;
    stats.draws += 1;
    stats.drawEmaMs = stats.drawEmaMs * 0.95 + dt * 0.05;
    stats.skipFactor = Math.min(4, Math.max(1, Math.ceil(stats.drawEmaMs / 12)));
    while (drawWaiters.length) drawWaiters.shift()();
  } else {
    stats.idle += 1;
  }
  if (now - lastReadout > 100) renderReadouts(now);
}

const fluxCtx = $("fluxCanvas").getContext("2d");
function drawFlux() {
  const c = fluxCtx;
  const w = c.canvas.width;
  const h = c.canvas.height;
  c.fillStyle = "#111827";
  c.fillRect(0, 0, w, h);
  let max = 1e-9;
  for (const v of fluxHistory) max = Math.max(max, v);
  c.fillStyle = "#a78bfa";
  for (let i = 0; i < fluxHistory.length; i++) {
    const v = fluxHistory[(fluxPos + i) % fluxHistory.length];
    const bh = Math.round((v / max) * (h - 2));
    c.fillRect(i, h - bh, 1, bh);
  }
}

let lastReadout = 0;
let rateMark = { t: 0, messages: 0, draws: 0 };
function renderReadouts(now) {
  lastReadout = now;
  if (now - rateMark.t >= 1000) {
    const secs = (now - rateMark.t) / 1000;
    if (rateMark.t) {
      stats.msgRate = (stats.messages - rateMark.messages) / secs;
      stats.drawRate = (stats.draws - rateMark.draws) / secs;
    }
    rateMark = { t: now, messages: stats.messages, draws: stats.draws };
  }
  const connected = stats.state === "connected";
  setText("fpsDisplay", connected || stats.messages ? Math.round(stats.msgRate) : "--");
  setText("drawFpsDisplay", Math.round(stats.drawRate));
  setText("frameCountDisplay", stats.frameCount ?? "--");
  setText("startTimeDisplay", formatTime(stats.startTime));
  $("startTimeDisplay").title = stats.startTime || "";
  setText("droppedDisplay", stats.serverDropped ?? "--");
  setText("gapsDisplay", stats.gaps);
  setText("bpmDisplay", stats.bpm > 0 ? stats.bpm.toFixed(1) : "--");
  setText("bpmConfidenceDisplay", stats.bpm > 0 ? `${Math.round(stats.bpmConfidence * 100)}%` : "--");
  setText("fluxDisplay", display.hasData ? stats.flux.toFixed(3) : "--");
  setText("latencyDisplay", stats.latencyMs === null ? "--" : `${Math.round(stats.latencyMs)} ms`);
  const ds = drawStats();
  setText("drawTimeDisplay", ds.n ? `${ds.p50.toFixed(2)} / ${ds.p95.toFixed(2)}` : "--");
  setText("formatDisplay", display.hasData ? `${display.sampleRate} Hz · N=${display.fftSize}` : "--");
}

function setText(id, v) {
  const el = $(id);
  const s = String(v);
  if (el.textContent !== s) el.textContent = s;
}

function formatTime(s) {
  if (!s) return "--";
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

function drawStats() {
  const n = Math.min(drawCount, DRAW_RING);
  if (!n) return { n: 0 };
  const a = Array.from(drawTimes.subarray(0, n)).sort((x, y) => x - y);
  const q = (p) => a[Math.min(n - 1, Math.floor(p * n))];
  return { n, mean: a.reduce((s, x) => s + x, 0) / n, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: a[n - 1] };
}

// ------------------------------------------------------------------ controls

const bindings = [
  { id: "smoothing", key: "smoothing", kind: "range", out: "smoothingValue", fmt: (v) => v.toFixed(2) },
  { id: "minDb", key: "minDb", kind: "range", out: "minDbValue", fmt: (v) => `${v}` },
  { id: "maxDb", key: "maxDb", kind: "range", out: "maxDbValue", fmt: (v) => `${v}` },
  { id: "refMag", key: "refMag", kind: "number" },
  { id: "holdTime", key: "holdMs", kind: "range", out: "holdTimeValue", fmt: (v) => `${v} ms` },
  { id: "peakDecay", key: "decayDbPerS", kind: "range", out: "peakDecayValue", fmt: (v) => `${v} dB/s` },
  { id: "fminInput", key: "fmin", kind: "number" },
  { id: "fmaxInput", key: "fmax", kind: "number" },
  { id: "aWeighting", key: "weighting", kind: "check", on: "a", off: "none" },
  { id: "dbGrid", key: "grid", kind: "check", on: true, off: false },
  { id: "logFreqScale", key: "scale", kind: "check", on: "log", off: "lin" },
  { id: "noteLabels", key: "labels", kind: "check", on: "note", off: "hz" },
  { id: "peakHold", key: "peakHold", kind: "check", on: true, off: false },
  { id: "bandMode", key: "bands", kind: "select" },
  { id: "colormap", key: "colormap", kind: "select" },
];
const viewChecks = { showBars: "bars", showRadial: "radial", showSpectrogram: "spectrogram" };

function renderControls() {
  for (const b of bindings) {
    const el = $(b.id);
    const v = state[b.key];
    if (b.kind === "check") el.checked = v === b.on;
    else if (document.activeElement !== el || b.kind !== "number") el.value = String(v);
    if (b.out) $(b.out).textContent = b.fmt(v);
  }
  for (const [id, name] of Object.entries(viewChecks)) $(id).checked = state.views.includes(name);
  $("wsUrl").placeholder = DEFAULT_SERVER;
  applyViewVisibility();
}

function applyViewVisibility() {
  const on = new Set(state.views);
  $("barsView").hidden = !on.has("bars");
  $("radialView").hidden = !on.has("radial");
  $("spectrogramView").hidden = !on.has("spectrogram");
  const top = ["bars", "radial"].filter((n) => on.has(n)).length;
  $("views").classList.toggle("single-top", top === 1);
}

/** Change view state (any subset of keys), then redraw, re-render controls and rewrite the URL. */
function setState(patch) {
  const changed = Object.keys(patch);
  for (const k of changed) {
    if (!(k in SCHEMA)) throw new Error(`unknown state key ${k}`);
    const v = SCHEMA[k].parse(Array.isArray(patch[k]) ? patch[k].join(",") : typeof patch[k] === "boolean" ? (patch[k] ? "1" : "0") : String(patch[k]));
    if (v !== undefined) state[k] = v;
  }
  normalize(state, changed.includes("maxDb") && !changed.includes("minDb") ? "maxDb" : "minDb");
  if (changed.some((k) => ["minDb", "maxDb", "refMag", "weighting", "bands"].includes(k))) display.resetSmoothing = true;
  if (changed.includes("peakHold") || changed.includes("minDb") || changed.includes("maxDb")) display.peaks.fill(-Infinity);
  if (display.layout) ensureLayout(display.nBins); // bands / range / weighting may have changed
  rebuildModel();
  if (drawnFrame && (paused || latest === drawnFrame)) {
    // no newer frame will come along to show the change (paused or idle): recompute the
    // levels of the frame on screen, without smoothing and without a spectrogram column
    display.resetSmoothing = true;
    processFrame(drawnFrame, { live: false });
  }
  if (changed.includes("server") && state.server) $("wsUrl").value = state.server;
  renderControls();
  needsDraw = true;
  writeUrl();
}

function writeUrl() {
  const url = `${location.pathname}${toQuery(state, { connect: query.get("connect") })}${location.hash}`;
  if (url !== `${location.pathname}${location.search}${location.hash}`) history.replaceState(null, "", url);
}

function wireControls() {
  for (const b of bindings) {
    const el = $(b.id);
    const ev = b.kind === "range" ? "input" : "change";
    el.addEventListener(ev, () => {
      let v;
      if (b.kind === "check") v = el.checked ? b.on : b.off;
      else if (b.kind === "select") v = el.value;
      else {
        v = Number(el.value);
        if (el.value === "" || !Number.isFinite(v)) return;
      }
      setState({ [b.key]: v });
    });
  }
  for (const [id, name] of Object.entries(viewChecks)) {
    $(id).addEventListener("change", () => toggleView(name, $(id).checked));
  }
  $("connectBtn").addEventListener("click", () => connect($("wsUrl").value));
  $("disconnectBtn").addEventListener("click", () => conn.disconnect());
  $("wsUrl").addEventListener("input", renderStatus);
  $("wsUrl").addEventListener("keydown", (e) => {
    if (e.key === "Enter") connect($("wsUrl").value);
  });
  $("pauseBtn").addEventListener("click", togglePause);
  $("fullscreenBtn").addEventListener("click", toggleFullscreen);
  $("helpBtn").addEventListener("click", () => toggleHelp());
  $("helpClose").addEventListener("click", () => toggleHelp(false));
  $("helpOverlay").addEventListener("click", (e) => {
    if (e.target === $("helpOverlay")) toggleHelp(false);
  });
  $("resetBtn").addEventListener("click", () => {
    const d = defaults();
    delete d.server;
    setState(d);
  });
  const bars = views.bars;
  bars.hoverX = null;
  $("barsCanvas").addEventListener("mousemove", (e) => {
    bars.hoverX = e.offsetX;
    needsDraw = true;
  });
  $("barsCanvas").addEventListener("mouseleave", () => {
    bars.hoverX = null;
    needsDraw = true;
  });
  // presets
  $("presetSave").addEventListener("click", () => savePreset($("presetName").value));
  $("presetName").addEventListener("keydown", (e) => {
    if (e.key === "Enter") savePreset($("presetName").value);
  });
  $("presetLoad").addEventListener("click", () => loadPreset($("presetList").value));
  $("presetDelete").addEventListener("click", () => deletePreset($("presetList").value));
  $("presetList").addEventListener("change", () => {
    $("presetName").value = $("presetList").value;
    renderPresetButtons();
  });
  $("presetList").addEventListener("dblclick", () => loadPreset($("presetList").value));
}

function toggleView(name, on) {
  const set = new Set(state.views);
  if (on) set.add(name);
  else set.delete(name);
  setState({ views: [...set] });
}

function togglePause() {
  paused = !paused;
  $("pauseBtn").textContent = paused ? "Resume" : "Pause";
  $("pauseBtn").setAttribute("aria-pressed", String(paused));
  $("pausedBadge").hidden = !paused;
  needsDraw = true;
}

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen?.();
  else $("views").requestFullscreen?.().catch((e) => console.warn("phase4: fullscreen refused", e));
}

function toggleHelp(show) {
  const el = $("helpOverlay");
  el.hidden = show === undefined ? !el.hidden : !show;
}

// ------------------------------------------------------------------ presets

function renderPresetList(selected) {
  const presets = loadPresets();
  const list = $("presetList");
  list.replaceChildren();
  for (const name of Object.keys(presets).sort()) {
    const o = document.createElement("option");
    o.value = o.textContent = name;
    if (name === selected) o.selected = true;
    list.appendChild(o);
  }
  $("presetEmpty").hidden = list.options.length > 0;
  renderPresetButtons();
}

function renderPresetButtons() {
  const has = Boolean($("presetList").value);
  $("presetLoad").disabled = !has;
  $("presetDelete").disabled = !has;
}

function savePreset(name) {
  name = (name || "").trim();
  if (!name) {
    $("presetName").focus();
    $("presetName").classList.add("invalid");
    return;
  }
  $("presetName").classList.remove("invalid");
  const presets = loadPresets();
  presets[name] = presetOf(state);
  savePresets(presets);
  renderPresetList(name);
}

function loadPreset(name) {
  const p = loadPresets()[name];
  if (!p) return;
  const patch = {};
  const s = applyPreset(defaults(), p);
  for (const k of Object.keys(p)) if (k in s && k !== "server") patch[k] = s[k];
  setState(patch);
  renderPresetList(name);
}

function deletePreset(name) {
  const presets = loadPresets();
  if (!(name in presets)) return;
  delete presets[name];
  savePresets(presets);
  renderPresetList();
  $("presetName").value = "";
}

// ------------------------------------------------------------------ keyboard

const KEYS = {
  "?": () => toggleHelp(),
  Escape: () => toggleHelp(false),
  " ": togglePause,
  p: togglePause,
  f: toggleFullscreen,
  c: () => (stats.state === "disconnected" || stats.state === "error" ? connect($("wsUrl").value) : conn.disconnect()),
  l: () => setState({ scale: state.scale === "log" ? "lin" : "log" }),
  b: () => setState({ bands: BAND_MODES[(BAND_MODES.indexOf(state.bands) + 1) % BAND_MODES.length] }),
  a: () => setState({ weighting: state.weighting === "a" ? "none" : "a" }),
  n: () => setState({ labels: state.labels === "note" ? "hz" : "note" }),
  h: () => setState({ peakHold: !state.peakHold }),
  g: () => setState({ grid: !state.grid }),
  m: () => setState({ colormap: COLORMAP_NAMES[(COLORMAP_NAMES.indexOf(state.colormap) + 1) % COLORMAP_NAMES.length] }),
  1: () => toggleView("bars", !state.views.includes("bars")),
  2: () => toggleView("radial", !state.views.includes("radial")),
  3: () => toggleView("spectrogram", !state.views.includes("spectrogram")),
  "[": () => setState({ minDb: state.minDb - 5 }),
  "]": () => setState({ minDb: state.minDb + 5 }),
  "-": () => setState({ maxDb: state.maxDb - 5 }),
  "=": () => setState({ maxDb: state.maxDb + 5 }),
  ",": () => setState({ smoothing: Math.round(Math.max(0, state.smoothing - 0.05) * 100) / 100 }),
  ".": () => setState({ smoothing: Math.round(Math.min(0.99, state.smoothing + 0.05) * 100) / 100 }),
};

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  const typing = t instanceof HTMLInputElement && ["text", "number", "search", "url"].includes(t.type);
  if ((typing || t instanceof HTMLTextAreaElement) && e.key !== "Escape") return;
  const action = KEYS[e.key.length === 1 ? e.key.toLowerCase() : e.key] || KEYS[e.key];
  if (!action) return;
  if (e.key === " " && (t instanceof HTMLButtonElement || t instanceof HTMLSelectElement)) return;
  e.preventDefault();
  action();
});

// ------------------------------------------------------------------ test hook

window.phase4 = {
  version: 1,
  state,
  stats,
  display,
  model,
  views,
  get lastFrame() {
    return latest;
  },
  get drawnFrame() {
    return drawnFrame;
  },
  get paused() {
    return paused;
  },
  /** Rolling record of the last (up to) 1000 draw times in ms, oldest first. */
  get drawTimes() {
    const n = Math.min(drawCount, DRAW_RING);
    const out = [];
    for (let i = drawCount - n; i < drawCount; i++) out.push(drawTimes[i % DRAW_RING]);
    return out;
  },
  drawStats,
  resetDrawTimes() {
    drawCount = 0;
  },
  /** x in bars-canvas backing-store pixels of a frequency (same as views.bars.xForFrequency). */
  xForFrequency: (hz) => views.bars.xForFrequency(hz),
  setState,
  connect,
  disconnect: () => conn.disconnect(),
  togglePause,
  /** Feed a message exactly as if it had arrived on the socket (object or JSON text). */
  feed: (m) => (typeof m === "string" ? onText(m) : accept(m)),
  /** Resolves after the next animation frame that drew something. */
  nextDraw: () => new Promise((resolve) => drawWaiters.push(resolve)),
  aWeightingDb,
  octaveBands,
  noteName,
  colorAt,
  defaultServer: DEFAULT_SERVER,
};

// ------------------------------------------------------------------ start

$("wsUrl").value = state.server || DEFAULT_SERVER;
wireControls();
renderControls();
renderPresetList();
renderStatus();
writeUrl();
requestAnimationFrame(loop);
if (AUTOCONNECT) connect($("wsUrl").value);
