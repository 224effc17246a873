// The control panel and the keyboard: every input is bound to one key of the view state,
// and every shortcut is one action. What an action does is the app's (app.js); this module
// only connects the page's elements and keys to it.

import { BAND_MODES, COLORMAP_NAMES } from "./state.js";

const $ = (id) => document.getElementById(id);

const BINDINGS = [
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
const VIEW_CHECKS = { showBars: "bars", showRadial: "radial", showSpectrogram: "spectrogram" };

/** Put the state into the controls (and show / hide the views it names). */
export function renderControls(state) {
  for (const b of BINDINGS) {
    const el = $(b.id);
    const v = state[b.key];
    if (b.kind === "check") el.checked = v === b.on;
    else if (document.activeElement !== el || b.kind !== "number") el.value = String(v);
    if (b.out) $(b.out).textContent = b.fmt(v);
  }
  for (const [id, name] of Object.entries(VIEW_CHECKS)) $(id).checked = state.views.includes(name);
  const on = new Set(state.views);
  $("barsView").hidden = !on.has("bars");
  $("radialView").hidden = !on.has("radial");
  $("spectrogramView").hidden = !on.has("spectrogram");
  const top = ["bars", "radial"].filter((n) => on.has(n)).length;
  const views = $("views").classList;
  views.toggle("single-top", top === 1);
  // no view below or none above: the visible ones take the height of the window
  views.toggle("fill", top === 0 || !on.has("spectrogram"));
}

/**
 * @param app {state, setState, toggleView, togglePause, toggleFullscreen, toggleHelp,
 *   connectOrDisconnect, resetView}
 */
export function wireControls(app) {
  for (const b of BINDINGS) {
    const el = $(b.id);
    el.addEventListener(b.kind === "range" ? "input" : "change", () => {
      let v;
      if (b.kind === "check") v = el.checked ? b.on : b.off;
      else if (b.kind === "select") v = el.value;
      else {
        v = Number(el.value);
        if (el.value === "" || !Number.isFinite(v)) return;
      }
      app.setState({ [b.key]: v });
    });
  }
  for (const [id, name] of Object.entries(VIEW_CHECKS)) {
    $(id).addEventListener("change", () => app.toggleView(name, $(id).checked));
  }
  $("pauseBtn").addEventListener("click", () => app.togglePause());
  $("fullscreenBtn").addEventListener("click", () => app.toggleFullscreen());
  $("helpBtn").addEventListener("click", () => app.toggleHelp());
  $("helpClose").addEventListener("click", () => app.toggleHelp(false));
  $("helpOverlay").addEventListener("click", (e) => {
    if (e.target === $("helpOverlay")) app.toggleHelp(false);
  });
  $("resetBtn").addEventListener("click", () => app.resetView());
  // A button clicked with the mouse keeps the focus, and Space would click it again: give
  // the focus back to the page, so Space pauses. Keyboard clicks (detail 0) keep it.
  document.addEventListener("click", (e) => {
    const button = e.target instanceof Element ? e.target.closest("button") : null;
    if (button && e.detail > 0) button.blur();
  });
  document.addEventListener("keydown", (e) => onKey(app, e));
}

function shortcuts(app) {
  const { state, setState } = app;
  const cycle = (list, value) => list[(list.indexOf(value) + 1) % list.length];
  return {
    "?": () => app.toggleHelp(),
    Escape: () => app.toggleHelp(false),
    " ": () => app.togglePause(),
    p: () => app.togglePause(),
    f: () => app.toggleFullscreen(),
    c: () => app.connectOrDisconnect(),
    l: () => setState({ scale: state.scale === "log" ? "lin" : "log" }),
    b: () => setState({ bands: cycle(BAND_MODES, state.bands) }),
    a: () => setState({ weighting: state.weighting === "a" ? "none" : "a" }),
    n: () => setState({ labels: state.labels === "note" ? "hz" : "note" }),
    h: () => setState({ peakHold: !state.peakHold }),
    g: () => setState({ grid: !state.grid }),
    m: () => setState({ colormap: cycle(COLORMAP_NAMES, state.colormap) }),
    1: () => app.toggleView("bars", !state.views.includes("bars")),
    2: () => app.toggleView("radial", !state.views.includes("radial")),
    3: () => app.toggleView("spectrogram", !state.views.includes("spectrogram")),
    "[": () => setState({ minDb: state.minDb - 5 }),
    "]": () => setState({ minDb: state.minDb + 5 }),
    "-": () => setState({ maxDb: state.maxDb - 5 }),
    "=": () => setState({ maxDb: state.maxDb + 5 }),
    ",": () => setState({ smoothing: Math.round(Math.max(0, state.smoothing - 0.05) * 100) / 100 }),
    ".": () => setState({ smoothing: Math.round(Math.min(0.99, state.smoothing + 0.05) * 100) / 100 }),
  };
}

function onKey(app, e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  const typing = t instanceof HTMLInputElement && ["text", "number", "search", "url"].includes(t.type);
  if ((typing || t instanceof HTMLTextAreaElement) && e.key !== "Escape") return;
  const keys = shortcuts(app);
  const action = keys[e.key.length === 1 ? e.key.toLowerCase() : e.key] || keys[e.key];
  if (!action) return;
  // Space on a button the keyboard reached, or an open list, is theirs
  if (e.key === " " && (t instanceof HTMLButtonElement || t instanceof HTMLSelectElement)) return;
  e.preventDefault();
  action();
}
