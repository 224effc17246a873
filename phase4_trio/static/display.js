// From frames to what the views draw: the element layout (bins or bands), levels in dB,
// exponential smoothing, peak hold, and whether anything is above the floor at all.
// No DOM: the views read `model` (what changes rarely) and this object (every frame).

import { buildElements, levels, makeScale } from "./dsp.js";

export const WAITING = "Waiting for data…";

const BINS = { kind: "bins", key: "bins" };

/** What a frame's values are: FFT bins, the server's band power (placed by the layout message
 * the frame was matched with), or the maxima of `?bins=N` bands. */
function sourceOf(f) {
  if (f.bandLayout) {
    const l = f.bandLayout;
    return { kind: "server", layout: l, name: f.layout, key: `server|${f.layout}|${l.sampleRate}|${l.fftSize}` };
  }
  if (typeof f.bands === "number") return { kind: "maxima", count: f.bands, key: `maxima|${f.bands}` };
  return BINS;
}

export class Display {
  /** @param state the view state (state.js); read, never written here */
  constructor(state) {
    this.state = state;
    /** What the views draw from; `version` bumps whenever anything static changes. */
    this.model = {
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
      message: WAITING,
    };
    this.hasData = false;
    this.silent = false; // the latest frame put nothing above minDb: "no signal"
    this.stale = ""; // when not connected: why the frame on screen is the last one received
    this.layoutKey = "";
    this.layout = null;
    this.source = BINS; // what the values of the frame on screen are (sourceOf)
    this.analysed = false; // the frame on screen is the server's analysis (a view), not the plain form
    this.values = new Float32Array(0); // smoothed dB per element (what bars / radial draw)
    this.raw = new Float32Array(0); // unsmoothed dB per element (what the spectrogram draws)
    this.peaks = new Float32Array(0);
    this.peakAt = new Float64Array(0);
    this.scratch = new Float32Array(0);
    this.resetSmoothing = true;
    this.sampleRate = 44100;
    this.fftSize = 0;
    this.nBins = 0;
    this.lastPeakTime = 0;
  }

  effectiveRange() {
    const nyq = this.sampleRate / 2;
    const { state } = this;
    const fmax = state.fmax > 0 ? Math.min(state.fmax, nyq) : nyq;
    const fmin = Math.min(Math.max(1, state.fmin), fmax / 2);
    return { fmin, fmax };
  }

  /** Rebuild elements when the stream's shape, what its values are, or a frequency setting
   * changes. */
  ensureLayout(nBins, source = this.source) {
    const { state } = this;
    this.nBins = nBins;
    this.source = source;
    const { fmin, fmax } = this.effectiveRange();
    const key = [nBins, this.sampleRate, this.fftSize, source.key, state.bands, state.weighting, fmin, fmax, state.scale].join("|");
    if (key === this.layoutKey) return;
    this.layoutKey = key;
    this.layout = buildElements({
      nBins, sampleRate: this.sampleRate, fftSize: this.fftSize, source, bands: state.bands, fmin, fmax, weighting: state.weighting,
    });
    const n = this.layout.elements.length;
    this.values = new Float32Array(n).fill(state.minDb);
    this.raw = new Float32Array(n).fill(state.minDb);
    this.peaks = new Float32Array(n).fill(state.minDb);
    this.peakAt = new Float64Array(n);
    this.scratch = new Float32Array(n);
    this.resetSmoothing = true;
    this.rebuildModel();
  }

  /** Axes before the first frame: assume the engine's defaults (44.1 kHz, 256 samples). */
  ensureSomeLayout() {
    if (this.layout) return;
    this.fftSize = 256;
    this.ensureLayout(129, BINS);
  }

  rebuildModel() {
    const { state, model } = this;
    const { fmin, fmax } = this.effectiveRange();
    model.scale = makeScale(state.scale, fmin, fmax);
    model.elements = this.layout ? this.layout.elements : [];
    model.geometry = this.layoutKey;
    model.minDb = state.minDb;
    model.maxDb = state.maxDb;
    model.grid = state.grid;
    model.labels = state.labels;
    model.peakHold = state.peakHold;
    model.colormap = state.colormap;
    model.version += 1;
  }

  /** Turn a frame into levels (dB), smoothed levels and the no-signal flag. */
  process(f) {
    let mags = f.magnitudes;
    if (f.scale === "db") mags = Float32Array.from(mags, (v) => 10 ** (v / 20)); // typed ?scale=db
    this.sampleRate = typeof f.sampleRate === "number" && f.sampleRate > 0 ? f.sampleRate : 44100;
    this.fftSize = typeof f.fftSize === "number" && f.fftSize > 0 ? f.fftSize : 2 * (mags.length - 1);
    this.analysed = f.analysed === true;
    this.ensureLayout(mags.length, sourceOf(f));
    const { minDb, maxDb, smoothing, refMag } = this.state;
    const lv = levels(mags, this.layout, refMag, this.scratch);
    const { values, raw } = this;
    const a = this.resetSmoothing ? 0 : smoothing;
    let above = false;
    for (let i = 0; i < lv.length; i++) {
      let d = lv[i];
      d = d < minDb ? minDb : d > maxDb ? maxDb : d;
      if (d > minDb) above = true;
      raw[i] = d;
      values[i] = a * values[i] + (1 - a) * d; // exponential smoothing, in dB
    }
    this.resetSmoothing = false;
    this.hasData = true;
    this.silent = !above;
  }

  /** Peak hold: follow rises at once; after holdMs without a new high, fall at decay dB/s.
   * Returns whether the peaks will still move (so the loop keeps drawing). */
  updatePeaks(now) {
    const dt = this.lastPeakTime ? (now - this.lastPeakTime) / 1000 : 0;
    this.lastPeakTime = now;
    const { state } = this;
    if (!state.peakHold || !this.hasData) return false;
    const { values, peaks, peakAt } = this;
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

  /** The clock stood still (paused): peaks resume from now, not from before the pause. */
  holdPeaks(now) {
    this.lastPeakTime = now;
  }

  /** A new server: nothing on screen is current. */
  clear() {
    this.hasData = false;
    this.silent = false;
    this.model.message = WAITING;
  }
}
