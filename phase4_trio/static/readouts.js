// The readout strip: message and draw rates, frame number and time, drops, tempo, flux (with
// its sparkline), latency, draw cost, the stream's format and resolution, where the values
// come from (the server's analysis, or the page's own bands), the beat light and the NO SIGNAL
// badge.

const $ = (id) => document.getElementById(id);
const FLUX_HISTORY = 96; // one column of the sparkline per frame
const EVERY_MS = 100;
const BEAT_LIGHT_MS = 110; // how long the beat light stays on after a beat

export class Readouts {
  constructor({ stats, display, loop }) {
    Object.assign(this, { stats, display, loop });
    this.flux = new Float32Array(FLUX_HISTORY);
    this.fluxPos = 0;
    this.fluxCtx = $("fluxCanvas").getContext("2d");
    this.last = 0;
    this.rateMark = { t: 0, messages: 0, draws: 0 };
    this.lastPhase = NaN;
    this.beatAt = -Infinity;
  }

  /**
   * A beat, from the frame's `beat` or from its phase wrapping round: a page drawing at 60 Hz
   * skips two frames in three of a 172-per-second stream, and the beat's own frame with them.
   */
  noteBeat(f) {
    const phase = typeof f.beatPhase === "number" ? f.beatPhase : NaN;
    const wrapped = phase < this.lastPhase - 0.5;
    this.lastPhase = phase;
    if (this.stats.bpm > 0 && (f.beat === true || wrapped)) {
      this.stats.beats += 1;
      this.beatAt = performance.now();
    }
  }

  /** What a newly drawn frame says about the stream (not about its levels). */
  noteFrame(f) {
    const stats = this.stats;
    stats.frameCount = f.frameCount ?? null;
    // a binary frame has no startTime string: the same instant, from captureTime
    stats.startTime = f.startTime ?? (typeof f.captureTime === "number" ? new Date(f.captureTime * 1000).toISOString() : null);
    stats.bpm = typeof f.bpm === "number" ? f.bpm : 0;
    stats.bpmConfidence = typeof f.bpmConfidence === "number" ? f.bpmConfidence : 0;
    this.noteBeat(f);
    if (Array.isArray(f.spectralFlux) || f.spectralFlux instanceof Float32Array) {
      let s = 0;
      for (const v of f.spectralFlux) s += v;
      stats.flux = s;
      this.flux[this.fluxPos] = s;
      this.fluxPos = (this.fluxPos + 1) % FLUX_HISTORY;
    }
    if (typeof f.dropped === "number") stats.serverDropped = f.dropped;
    stats.latencyMs = typeof f.captureTime === "number" ? Date.now() - f.captureTime * 1000 : null;
  }

  drawFlux() {
    const c = this.fluxCtx;
    const w = c.canvas.width;
    const h = c.canvas.height;
    c.fillStyle = "#111827";
    c.fillRect(0, 0, w, h);
    let max = 1e-9;
    for (const v of this.flux) max = Math.max(max, v);
    c.fillStyle = "#a78bfa";
    for (let i = 0; i < FLUX_HISTORY; i++) {
      const v = this.flux[(this.fluxPos + i) % FLUX_HISTORY];
      const bh = Math.round((v / max) * (h - 2));
      c.fillRect(i, h - bh, 1, bh);
    }
  }

  /** Called every animation frame; rewrites the strip every EVERY_MS. */
  render(now) {
    const lit = now - this.beatAt < BEAT_LIGHT_MS;
    const light = $("beatLight");
    if (light.classList.contains("on") !== lit) light.classList.toggle("on", lit);
    if (now - this.last <= EVERY_MS) return;
    this.last = now;
    const { stats, display } = this;
    const mark = this.rateMark;
    if (now - mark.t >= 1000) {
      const secs = (now - mark.t) / 1000;
      if (mark.t) {
        stats.msgRate = (stats.messages - mark.messages) / secs;
        stats.drawRate = (stats.draws - mark.draws) / secs;
      }
      this.rateMark = { t: now, messages: stats.messages, draws: stats.draws };
    }
    const connected = stats.state === "connected";
    setText("fpsDisplay", connected || stats.messages ? Math.round(stats.msgRate) : "--");
    setText("drawFpsDisplay", Math.round(stats.drawRate));
    setText("frameCountDisplay", stats.frameCount ?? "--");
    setText("startTimeDisplay", formatTime(stats.startTime));
    $("startTimeDisplay").title = stats.startTime || "";
    setText("droppedDisplay", stats.serverDropped ?? "--");
    setText("gapsDisplay", stats.sampled ? "--" : stats.gaps); // skipped on purpose with ?fps=
    setText("bpmDisplay", stats.bpm > 0 ? stats.bpm.toFixed(1) : "--");
    setText("bpmConfidenceDisplay", stats.bpm > 0 ? `${Math.round(stats.bpmConfidence * 100)}%` : "--");
    setText("fluxDisplay", display.hasData ? stats.flux.toFixed(3) : "--");
    setText("latencyDisplay", stats.latencyMs === null ? "--" : `${Math.round(stats.latencyMs)} ms`);
    const ds = this.loop.drawStats();
    setText("drawTimeDisplay", ds.n ? `${ds.p50.toFixed(2)} / ${ds.p95.toFixed(2)}` : "--");
    setText("formatDisplay", display.hasData ? streamText(display) : "--");
    const source = display.hasData ? sourceText(display, stats.askedAnalysis) : { text: "--", plain: false, title: "" };
    setText("sourceDisplay", source.text);
    $("sourceDisplay").title = source.title;
    $("sourceDisplay").dataset.plain = String(source.plain);
    const badge = $("signalBadge");
    const silent = display.hasData && display.silent;
    if (badge.hidden === silent) badge.hidden = !silent;
  }
}

/** Sample rate, FFT size and bin spacing of the spectrum the values come from. */
function streamText({ sampleRate, fftSize }) {
  const df = sampleRate / fftSize;
  return `${sampleRate} Hz · FFT ${fftSize} · Δf ${df < 100 ? df.toFixed(1) : Math.round(df)} Hz`;
}

const octaveName = (n) => `1/${n} octave`;

/**
 * Where the values on screen come from: the server's bands or bins, or bands the page sums
 * itself from the bins of a server that sends no analysis (a relay, the original engine).
 * plain: the page asked for the server's analysis and got the plain block spectrum.
 */
function sourceText(display, asked) {
  const { source, analysed, state } = display;
  const plain = asked && !analysed;
  const note = plain ? " · server sends no analysis" : "";
  const title = plain
    ? "This server sends its block spectrum only (a relay, or an engine without analysis): the page shows its bins and sums its own bands from them."
    : "";
  if (source.kind === "server") {
    const [kind, n] = source.name.split(":");
    return { text: `${kind === "octave" ? octaveName(n) : source.name} from the server`, plain, title };
  }
  if (source.kind === "maxima") return { text: `${source.count} log bands (maxima) from the server`, plain, title };
  if (state.bands !== "raw") return { text: `${octaveName(state.bands)} in the page${note}`, plain, title };
  return { text: `FFT bins${note}`, plain, title };
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
