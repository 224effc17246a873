// View state: defaults, validation, the URL query form (bookmarkable) and named presets.
// Pure except for the presets' storage, which is passed in (window.localStorage by default).

export const VIEW_NAMES = ["bars", "radial", "spectrogram"];
export const COLORMAP_NAMES = ["inferno", "viridis", "magma", "gray"];
export const BAND_MODES = ["raw", "1", "3", "6", "12", "24"];

/**
 * Every key of the view state, with its URL parameter, default and parser.
 * A parser returns undefined for a value it rejects (the default is used instead).
 */
const num = (lo, hi) => (s) => {
  const v = Number(s);
  return s !== "" && Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : undefined;
};
const oneOf = (choices) => (s) => (choices.includes(String(s).toLowerCase()) ? String(s).toLowerCase() : undefined);
const bool = (s) => (["1", "true", "on", "yes"].includes(String(s).toLowerCase()) ? true
  : ["0", "false", "off", "no"].includes(String(s).toLowerCase()) ? false : undefined);
const viewList = (s) => {
  const names = String(s).split(",").map((x) => x.trim().toLowerCase()).filter(Boolean);
  if (names.some((n) => !VIEW_NAMES.includes(n))) return undefined;
  return VIEW_NAMES.filter((n) => names.includes(n)); // canonical order
};

export const SCHEMA = {
  server: { param: "server", def: "", parse: (s) => String(s) },
  smoothing: { param: "smooth", def: 0.6, parse: num(0, 0.99) },
  minDb: { param: "min", def: -90, parse: num(-160, 40) },
  maxDb: { param: "max", def: 0, parse: num(-150, 60) },
  refMag: { param: "ref", def: 1, parse: num(1e-6, 1e6) },
  scale: { param: "scale", def: "log", parse: oneOf(["log", "lin"]) },
  bands: { param: "bands", def: "raw", parse: oneOf(BAND_MODES) },
  weighting: { param: "weight", def: "none", parse: oneOf(["none", "a"]) },
  labels: { param: "labels", def: "hz", parse: oneOf(["hz", "note"]) },
  grid: { param: "grid", def: true, parse: bool },
  peakHold: { param: "peak", def: true, parse: bool },
  holdMs: { param: "hold", def: 1000, parse: num(0, 10000) },
  decayDbPerS: { param: "decay", def: 30, parse: num(1, 500) },
  views: { param: "views", def: [...VIEW_NAMES], parse: viewList },
  colormap: { param: "cmap", def: "inferno", parse: oneOf(COLORMAP_NAMES) },
  fmin: { param: "fmin", def: 20, parse: num(1, 100000) },
  fmax: { param: "fmax", def: 0, parse: num(0, 200000) },
  // frames per second asked of the server (its ?fps=); 0 = every frame the engine analyses
  fps: { param: "fps", def: 60, parse: num(0, 1000) },
};

export function defaults() {
  const s = {};
  for (const [k, d] of Object.entries(SCHEMA)) s[k] = Array.isArray(d.def) ? [...d.def] : d.def;
  return s;
}

function same(a, b) {
  return Array.isArray(a) ? Array.isArray(b) && a.join(",") === b.join(",") : a === b;
}

function fmt(v) {
  if (Array.isArray(v)) return v.join(",");
  if (typeof v === "boolean") return v ? "1" : "0";
  if (typeof v === "number") return String(Number(v.toPrecision(6)));
  return String(v);
}

/** Keep minDb < maxDb (at least 1 dB apart), adjusting the key that was not just changed. */
export function normalize(state, changed) {
  if (state.maxDb - state.minDb < 1) {
    if (changed === "maxDb") state.minDb = state.maxDb - 1;
    else state.maxDb = state.minDb + 1;
  }
  return state;
}

/** Parse a query string into a full state (unknown or bad values fall back to defaults). */
export function fromQuery(search) {
  const q = new URLSearchParams(search);
  const s = defaults();
  const problems = [];
  for (const [key, d] of Object.entries(SCHEMA)) {
    if (!q.has(d.param)) continue;
    const v = d.parse(q.get(d.param));
    if (v === undefined) problems.push(`${d.param}=${q.get(d.param)}`);
    else s[key] = v;
  }
  if (problems.length) console.warn("phase4: ignoring bad URL parameters:", problems.join(" "));
  return normalize(s, "maxDb");
}

/** The query string for a state: only keys that differ from the defaults, in schema order. */
export function toQuery(state, extra = {}) {
  const q = new URLSearchParams();
  for (const [key, d] of Object.entries(SCHEMA)) {
    if (!same(state[key], d.def)) q.set(d.param, fmt(state[key]));
  }
  for (const [k, v] of Object.entries(extra)) if (v !== null && v !== undefined) q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : "";
}

// ------------------------------------------------------------------ presets (localStorage)

export const PRESET_KEY = "phase4.presets.v1";
/** How the page looks is a preset; where and how fast it connects is not. */
export const PRESET_KEYS = Object.keys(SCHEMA).filter((k) => k !== "server" && k !== "fps");

export function loadPresets(storage = window.localStorage) {
  try {
    const data = JSON.parse(storage.getItem(PRESET_KEY) || "{}");
    return data && typeof data === "object" && !Array.isArray(data) ? data : {};
  } catch (e) {
    console.warn("phase4: presets in localStorage are unreadable, starting empty", e);
    return {};
  }
}

export function savePresets(presets, storage = window.localStorage) {
  storage.setItem(PRESET_KEY, JSON.stringify(presets));
}

export function presetOf(state) {
  const p = {};
  for (const k of PRESET_KEYS) p[k] = Array.isArray(state[k]) ? [...state[k]] : state[k];
  return p;
}

/** Apply a stored preset onto a state, validating each value through the URL parsers. */
export function applyPreset(state, preset) {
  for (const k of PRESET_KEYS) {
    if (!(k in preset)) continue;
    const v = SCHEMA[k].parse(fmt(preset[k]));
    if (v !== undefined) state[k] = v;
  }
  return normalize(state, "maxDb");
}

/** Query parameters that choose the server's analysis (docs/protocol.md); an address that
 * names one already is asked exactly that. */
export const ANALYSIS_PARAMS = ["bins", "bands", "resolution", "channels", "scale", "smooth", "gain", "gate"];

/**
 * The WebSocket URL to open for a server address, given the view state: binary frames
 * (format=f32), the display rate (fps=N, none when fps is 0), and the analysis the bands control
 * wants: the fine spectrum's bins (resolution=fine) for raw, the server's IEC bands
 * (bands=octave:N) for 1/N octave. A parameter the address already has is left as typed, and
 * so is every analysis parameter when the address names one.
 */
export function streamUrl(server, { fps = 0, bands = "raw" } = {}) {
  let url;
  try {
    url = new URL(server);
  } catch {
    return server; // the connection reports a malformed address itself
  }
  const q = url.searchParams;
  const added = [];
  if (!q.has("format")) added.push("format=f32");
  if (fps && !q.has("fps")) added.push(`fps=${fps}`);
  if (!ANALYSIS_PARAMS.some((name) => q.has(name))) {
    added.push(bands === "raw" ? "resolution=fine" : `bands=octave:${bands}`);
  }
  if (!added.length) return server;
  url.search = `${url.search ? `${url.search}&` : "?"}${added.join("&")}`;
  return url.toString();
}

/** Whether a stream URL asks the server for its analysis (bands, fine bins, dynamics). */
export function asksForAnalysis(stream) {
  try {
    const q = new URL(stream).searchParams;
    return ANALYSIS_PARAMS.some((name) => name !== "bins" && q.has(name));
  } catch {
    return false;
  }
}
