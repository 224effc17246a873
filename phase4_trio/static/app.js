// phase4 live page: the wiring. Each part is a module of its own — messages in (frames.js),
// levels and peaks (display.js), the views (views.js), the render loop (loop.js), the readouts
// (readouts.js), the controls and keys (controls.js), presets (presets.js), the view state and
// its URL (state.js) and the connection (connection.js); this file makes one of each and
// connects them. `page` is exported for whoever imports this module (the tests do); nothing
// is put on `window`.

import { Connection } from "./connection.js";
import { Display } from "./display.js";
import { FrameIntake, newStats } from "./frames.js";
import { RenderLoop } from "./loop.js";
import { PresetPanel } from "./presets.js";
import { Readouts } from "./readouts.js";
import { SCHEMA, asksForAnalysis, defaults, fromQuery, normalize, streamUrl, toQuery } from "./state.js";
import { BarsView, RadialView, SpectrogramView } from "./views.js";
import { renderControls, wireControls } from "./controls.js";

const $ = (id) => document.getElementById(id);

// The stream beside the page: /ws for a page at /, /ID/ws for a relay's page at /ID/.
const DEFAULT_SERVER = location.host
  ? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${location.pathname.replace(/[^/]*$/, "")}ws`
  : "ws://127.0.0.1:8889/ws";
const query = new URLSearchParams(location.search);
const AUTOCONNECT = query.get("connect") !== "0";

const state = fromQuery(location.search);
const stats = newStats();
const intake = new FrameIntake(stats);
const display = new Display(state);
const views = {
  bars: new BarsView($("barsCanvas")),
  radial: new RadialView($("radialCanvas")),
  spectrogram: new SpectrogramView($("spectrogramCanvas")),
};
const loop = new RenderLoop({
  stats,
  intake,
  display,
  views,
  onFrame: (f) => {
    display.process(f);
    readouts.noteFrame(f);
    const sg = views.spectrogram;
    if (sg.visible) {
      sg.prepare(display.model);
      sg.push(display.raw);
    }
  },
  onDraw: () => readouts.drawFlux(),
  onTick: (now) => readouts.render(now),
});
const readouts = new Readouts({ stats, display, loop });
const presets = new PresetPanel(state, setState);

// ------------------------------------------------------------------ the connection

let server = ""; // the address the user connected to (the socket's URL adds the stream options)

const conn = new Connection({
  onText: (text) => intake.text(text),
  onBinary: (buffer) => intake.binary(buffer),
  onState: (info) => {
    stats.state = info.state;
    stats.detail = info.detail;
    stats.url = info.url;
    stats.opens = conn ? conn.opens : 0;
    if (info.state === "connected") intake.restart();
    display.stale = info.state === "connected" ? "" : `${info.state} · showing the last frame received`;
    loop.request();
    renderStatus();
  },
});

function connect(url) {
  const u = (url || $("wsUrl").value || DEFAULT_SERVER).trim();
  $("wsUrl").value = u;
  state.server = u === DEFAULT_SERVER ? "" : u;
  server = u;
  intake.forget();
  display.clear();
  openStream((stream) => conn.connect(stream));
  writeUrl();
}

/** Open the stream of `server` with the options the view state asks for, by open(url). */
function openStream(open) {
  const stream = streamUrl(server, { fps: state.fps, bands: state.bands });
  stats.sampled = /[?&]fps=/.test(stream);
  stats.askedAnalysis = asksForAnalysis(stream);
  open(stream);
}

function renderStatus() {
  const el = $("connectionStatus");
  const s = stats.state;
  el.dataset.state = s;
  const label = { connected: "Connected", connecting: "Connecting…", reconnecting: "Reconnecting…", disconnected: "Disconnected", error: "Error" }[s] || s;
  el.textContent = stats.detail && s !== "connected" ? `${label} (${stats.detail})` : label;
  el.title = stats.url;
  // Connect stays available to switch servers: disabled only when it would change nothing
  const same = $("wsUrl").value.trim() === server;
  $("connectBtn").disabled = same && (s === "connected" || s === "connecting");
  $("disconnectBtn").disabled = s === "disconnected" || s === "error";
}

// ------------------------------------------------------------------ the view state

/** Change view state (any subset of keys), then redraw, re-render controls and rewrite the URL. */
function setState(patch) {
  const changed = Object.keys(patch);
  for (const k of changed) {
    if (!(k in SCHEMA)) throw new Error(`unknown state key ${k}`);
    const raw = patch[k];
    const text = Array.isArray(raw) ? raw.join(",") : typeof raw === "boolean" ? (raw ? "1" : "0") : String(raw);
    const v = SCHEMA[k].parse(text);
    if (v !== undefined) state[k] = v;
  }
  normalize(state, changed.includes("maxDb") && !changed.includes("minDb") ? "maxDb" : "minDb");
  if (changed.some((k) => ["minDb", "maxDb", "refMag", "weighting", "bands"].includes(k))) display.resetSmoothing = true;
  if (changed.includes("peakHold") || changed.includes("minDb") || changed.includes("maxDb")) display.peaks.fill(-Infinity);
  if (display.layout) display.ensureLayout(display.nBins); // bands / range / weighting may have changed
  display.rebuildModel();
  const shown = intake.drawn;
  if (shown && (loop.paused || intake.latest === shown)) {
    // no newer frame will come along to show the change (paused or idle): recompute the
    // levels of the frame on screen, without smoothing and without a spectrogram column
    display.resetSmoothing = true;
    display.process(shown);
  }
  if (changed.includes("server") && state.server) $("wsUrl").value = state.server;
  // the bands are the server's: another band mode is another stream, switched to without a
  // gap. Until its first frame arrives the frame on screen stays (its bins summed in the page).
  if (changed.includes("bands") && conn.wanted && streamUrl(server, { fps: state.fps, bands: state.bands }) !== conn.url) {
    openStream((stream) => conn.switchTo(stream));
  }
  renderControls(state);
  loop.request();
  writeUrl();
}

function writeUrl() {
  const url = `${location.pathname}${toQuery(state, { connect: query.get("connect") })}${location.hash}`;
  if (url !== `${location.pathname}${location.search}${location.hash}`) history.replaceState(null, "", url);
}

function toggleView(name, on) {
  const set = new Set(state.views);
  if (on) set.add(name);
  else set.delete(name);
  setState({ views: [...set] });
}

function togglePause() {
  loop.paused = !loop.paused;
  $("pauseBtn").textContent = loop.paused ? "Resume" : "Pause";
  $("pauseBtn").setAttribute("aria-pressed", String(loop.paused));
  $("pausedBadge").hidden = !loop.paused;
  loop.request();
}

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen?.();
  else $("views").requestFullscreen?.().catch((e) => console.warn("phase4: fullscreen refused", e));
}

function toggleHelp(show) {
  const el = $("helpOverlay");
  el.hidden = show === undefined ? !el.hidden : !show;
}

function resetView() {
  const d = defaults();
  delete d.server;
  setState(d);
}

// ------------------------------------------------------------------ wiring

function wire() {
  wireControls({
    state,
    setState,
    toggleView,
    togglePause,
    toggleFullscreen,
    toggleHelp,
    resetView,
    connectOrDisconnect: () =>
      stats.state === "disconnected" || stats.state === "error" ? connect($("wsUrl").value) : conn.disconnect(),
  });
  presets.wire();
  $("connectBtn").addEventListener("click", () => connect($("wsUrl").value));
  $("disconnectBtn").addEventListener("click", () => conn.disconnect());
  $("wsUrl").addEventListener("input", renderStatus);
  $("wsUrl").addEventListener("keydown", (e) => {
    if (e.key === "Enter") connect($("wsUrl").value);
  });
  const bars = views.bars;
  bars.hoverX = null;
  $("barsCanvas").addEventListener("mousemove", (e) => {
    bars.hoverX = e.offsetX;
    loop.request();
  });
  $("barsCanvas").addEventListener("mouseleave", () => {
    bars.hoverX = null;
    loop.request();
  });
  const resized = new ResizeObserver((entries) => {
    for (const e of entries) {
      for (const v of Object.values(views)) if (v.canvas === e.target) v.sizeDirty = true;
    }
    loop.request();
  });
  for (const v of Object.values(views)) resized.observe(v.canvas);
}

/** The page's parts, for code that imports this module (the browser tests). */
export const page = {
  state,
  stats,
  intake,
  display,
  views,
  loop,
  setState,
  connect,
  disconnect: () => conn.disconnect(),
  togglePause,
  defaultServer: DEFAULT_SERVER,
};

$("wsUrl").value = state.server || DEFAULT_SERVER;
$("wsUrl").placeholder = DEFAULT_SERVER;
wire();
renderControls(state);
presets.render();
renderStatus();
writeUrl();
loop.start();
if (AUTOCONNECT) connect($("wsUrl").value);
