// Pure display maths for the phase4 page: frequency scales, fractional-octave bands, the
// elements of bins and bands and their levels, A-weighting, note names, tick choice. No DOM
// here, so every function is easy to test.

/** Octave ratio of the base-10 system (IEC 61260-1 / ANSI S1.11): G = 10^(3/10). */
export const OCTAVE_RATIO = 10 ** (3 / 10);

/** Equivalent noise bandwidth of the Hann window, in bins. Band sums are divided by it so a
 * sine inside one band reads the same level as its peak bin does in raw mode. */
export const HANN_ENBW = 1.5;

/** A frequency scale between fmin and fmax: norm(f) in [0, 1], inv(t) its inverse. */
export function makeScale(kind, fmin, fmax) {
  if (kind === "log") {
    const lmin = Math.log(fmin);
    const span = Math.log(fmax) - lmin;
    return {
      kind, fmin, fmax,
      norm: (f) => (f > 0 ? (Math.log(f) - lmin) / span : -Infinity),
      inv: (t) => Math.exp(lmin + t * span),
    };
  }
  const span = fmax - fmin;
  return {
    kind, fmin, fmax,
    norm: (f) => (f - fmin) / span,
    inv: (t) => fmin + t * span,
  };
}

/**
 * Base-10 fractional-octave bands (1/n octave) overlapping [flo, fhi].
 * Exact mid-band frequencies per IEC 61260-1: odd n: fm = 1000 * G^(k/n);
 * even n: fm = 1000 * G^((2k+1)/(2n)). Band edges: fm * G^(±1/(2n)) = fm * 10^(±3/(20n)).
 */
export function octaveBands(n, flo, fhi) {
  const bands = [];
  const odd = n % 2 === 1;
  const kOf = (f) => (n * Math.log(f / 1000)) / Math.log(OCTAVE_RATIO);
  const k0 = Math.floor(kOf(Math.max(flo, 1e-3))) - 2;
  const k1 = Math.ceil(kOf(fhi)) + 2;
  const half = OCTAVE_RATIO ** (1 / (2 * n));
  for (let k = k0; k <= k1; k++) {
    const fc = odd ? 1000 * OCTAVE_RATIO ** (k / n) : 1000 * OCTAVE_RATIO ** ((2 * k + 1) / (2 * n));
    const lo = fc / half;
    const hi = fc * half;
    if (hi > flo && lo < fhi && fc < fhi) bands.push({ fc, lo, hi, k });
  }
  return bands;
}

/** A-weighting in dB (IEC 61672-1), 0 dB at 1 kHz; -Infinity at DC. */
export function aWeightingDb(f) {
  if (!(f > 0)) return -Infinity;
  const f2 = f * f;
  const ra =
    (12194 ** 2 * f2 * f2) /
    ((f2 + 20.6 ** 2) * Math.sqrt((f2 + 107.7 ** 2) * (f2 + 737.9 ** 2)) * (f2 + 12194 ** 2));
  return 20 * Math.log10(ra) + 2.0;
}

const NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];

/** Nearest equal-tempered note (A4 = 440 Hz) and the offset in cents. */
export function noteName(f) {
  if (!(f > 0)) return { name: "--", cents: 0 };
  const midi = 69 + 12 * Math.log2(f / 440);
  const m = Math.round(midi);
  const octave = Math.floor(m / 12) - 1;
  return { name: `${NOTE_NAMES[((m % 12) + 12) % 12]}${octave}`, cents: Math.round((midi - m) * 100), midi: m };
}

export function formatHz(f) {
  if (f >= 1000) {
    const k = f / 1000;
    return `${Number.isInteger(k) ? k : k.toFixed(k < 10 ? 1 : 0)}k`;
  }
  return `${Math.round(f)}`;
}

/**
 * Candidate frequency ticks for an axis: [{f, label, major}] in ascending order.
 * labels: "hz" gives 1-2-5 ticks, "note" gives every C (C0 .. C10).
 */
export function frequencyTicks(scale, labels) {
  const out = [];
  if (labels === "note") {
    for (let oct = 0; oct <= 10; oct++) {
      const f = 440 * 2 ** ((12 * (oct + 1) - 69) / 12);
      if (f >= scale.fmin && f <= scale.fmax) out.push({ f, label: `C${oct}`, major: true });
    }
    return out;
  }
  if (scale.kind === "log") {
    for (let d = 1; d <= 100000; d *= 10) {
      for (const m of [1, 2, 5]) {
        const f = m * d;
        if (f >= scale.fmin && f <= scale.fmax) out.push({ f, label: formatHz(f), major: m === 1 });
      }
    }
    return out;
  }
  const span = scale.fmax - scale.fmin;
  const raw = span / 10;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) || 10 * p;
  for (let f = Math.ceil(scale.fmin / step) * step; f <= scale.fmax; f += step) {
    out.push({ f, label: formatHz(f), major: true });
  }
  return out;
}

/** Keep ticks at least minPx apart (in the order given), by a position function. */
export function spaceTicks(ticks, pos, minPx) {
  const kept = [];
  let last = -Infinity;
  for (const t of ticks) {
    const p = pos(t.f);
    if (!Number.isFinite(p)) continue;
    if (Math.abs(p - last) >= minPx) {
      kept.push({ ...t, p });
      last = p;
    }
  }
  return kept;
}

/** A "nice" dB grid step giving lines at least minPx apart over pxPerDb. */
export function dbStep(pxPerDb, minPx) {
  for (const s of [1, 2, 3, 5, 6, 10, 20, 30, 50]) if (s * pxPerDb >= minPx) return s;
  return 100;
}

/** Coherent gain of the Hann window: a full-scale sine centred on a bin reads 0.5 there. The
 * server's band power reads a sine's own amplitude (1.0 at full scale); multiplied by this it
 * reads what the sine's peak bin reads, so bins and bands share one dB scale on the page. */
export const HANN_COHERENT_GAIN = 0.5;

/** Lowest edge of the `?bins=N` log-spaced bands (docs/protocol.md). */
export const LOG_BANDS_LOW_HZ = 20;

const powerWeight = (weighting, f) => (weighting === "a" ? 10 ** (aWeightingDb(f) / 10) : 1);
const inRange = (b, flo, fhi) => b.hi > flo && b.lo < fhi && b.fc < fhi;

/**
 * The display elements for a frame's values. source says what the values are:
 * {kind: "bins"} FFT bins (drawn as bins, or summed into 1/N-octave bands when bands is not
 * "raw"); {kind: "server", layout} band power from the server, placed by its layout message;
 * {kind: "maxima", count} the maxima of the server's `?bins=N` log-spaced bands.
 * Each element: {fc, lo, hi} in Hz, and how its power is found: the value at `index`, the
 * power sum of the bins [start, end), or the magnitude interpolated at the fractional bin
 * `interp`, times `gain` (window correction and A-weighting; per bin for bin sums).
 */
export function buildElements({ nBins, sampleRate, fftSize, source = { kind: "bins" }, bands, fmin, fmax, weighting }) {
  const df = sampleRate / fftSize;
  const nyq = sampleRate / 2;
  const fhi = Math.min(fmax, nyq);
  const binWeight = new Float32Array(nBins);
  if (source.kind === "bins") {
    for (let k = 0; k < nBins; k++) binWeight[k] = powerWeight(weighting, k * df);
  }
  const elements = [];
  const single = (index, fc, lo, hi, gain) => ({ fc, lo, hi, index, start: 0, end: 0, interp: -1, gain });
  if (source.kind === "server") {
    const { centres, lowers, uppers } = source.layout;
    const cg2 = HANN_COHERENT_GAIN * HANN_COHERENT_GAIN;
    for (let i = 0; i < centres.length; i++) {
      const el = single(i, centres[i], lowers[i], uppers[i], cg2 * powerWeight(weighting, centres[i]));
      if (inRange(el, fmin, fhi)) elements.push(el);
    }
  } else if (source.kind === "maxima") {
    const edge = (i) => LOG_BANDS_LOW_HZ * (nyq / LOG_BANDS_LOW_HZ) ** (i / source.count);
    for (let i = 0; i < source.count; i++) {
      const lo = edge(i);
      const hi = edge(i + 1);
      const fc = Math.sqrt(lo * hi);
      const el = single(i, fc, lo, hi, powerWeight(weighting, fc));
      if (inRange(el, fmin, fhi)) elements.push(el);
    }
  } else if (bands === "raw") {
    for (let k = 0; k < nBins; k++) {
      const fc = k * df;
      elements.push({ fc, lo: Math.max(0, fc - df / 2), hi: Math.min(nyq, fc + df / 2), index: -1, start: k, end: k + 1, interp: -1, gain: 1 });
    }
  } else {
    for (const b of octaveBands(Number(bands), fmin, fhi)) {
      const start = Math.max(0, Math.ceil(b.lo / df));
      // bins whose centre k*df lies in [lo, hi)
      const end = Math.min(nBins, Math.ceil(b.hi / df));
      const el = { fc: b.fc, lo: b.lo, hi: Math.min(b.hi, nyq), index: -1, start, end, interp: -1, gain: 1 / HANN_ENBW, band: b.k };
      if (end <= start) {
        el.interp = Math.min(b.fc / df, nBins - 1);
        el.start = el.end = 0;
        el.gain = powerWeight(weighting, b.fc);
      }
      elements.push(el);
    }
  }
  return { elements, binWeight, df, nyq, source: source.kind };
}

/**
 * Level in dB of every element for one frame's values, written into out (Float32Array):
 * 10 log10(power / ref²), the power as buildElements describes it. Raw bins read
 * 20 log10(m / ref); page bands 10 log10(sum (m/ref)^2 w / ENBW); server bands
 * 20 log10(v · coherent gain / ref).
 */
export function levels(mags, layout, ref, out) {
  const { elements, binWeight } = layout;
  const inv = 1 / (ref * ref);
  const nb = mags.length;
  for (let i = 0; i < elements.length; i++) {
    const el = elements[i];
    let p;
    if (el.index >= 0) {
      const m = mags[el.index] || 0;
      p = m * m;
    } else if (el.interp >= 0) {
      const k = Math.floor(el.interp);
      const t = el.interp - k;
      const a = mags[k] || 0;
      const b = k + 1 < nb ? mags[k + 1] || 0 : a;
      const m = a + (b - a) * t;
      p = m * m;
    } else {
      p = 0;
      for (let k = el.start; k < el.end; k++) {
        const m = mags[k] || 0;
        p += m * m * binWeight[k];
      }
    }
    out[i] = 10 * Math.log10(p * el.gain * inv + 1e-30);
  }
  return out;
}
