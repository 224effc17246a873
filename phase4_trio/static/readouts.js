// The readout strip: message and draw rates, frame number and time, drops, tempo, flux (with
// its sparkline), latency, draw cost, the stream's format, and the NO SIGNAL badge.

const $ = (id) => document.getElementById(id);
const FLUX_HISTORY = 96; // one column of the sparkline per frame
const EVERY_MS = 100;

export class Readouts {
  constructor({ stats, display, loop }) {
    Object.assign(this, { stats, display, loop });
    this.flux = new Float32Array(FLUX_HISTORY);
    this.fluxPos = 0;
    this.fluxCtx = $("fluxCanvas").getContext("2d");
    this.last = 0;
    this.rateMark = { t: 0, messages: 0, draws: 0 };
  }

  /** What a newly drawn frame says about the stream (not about its levels). */
  noteFrame(f) {
    const stats = this.stats;
    stats.frameCount = f.frameCount ?? null;
    stats.startTime = f.startTime ?? null;
    stats.bpm = typeof f.bpm === "number" ? f.bpm : 0;
    stats.bpmConfidence = typeof f.bpmConfidence === "number" ? f.bpmConfidence : 0;
    if (Array.isArray(f.spectralFlux)) {
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
    setText("formatDisplay", display.hasData ? `${display.sampleRate} Hz · N=${display.fftSize}` : "--");
    const badge = $("signalBadge");
    const silent = display.hasData && display.silent;
    if (badge.hidden === silent) badge.hidden = !silent;
  }
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
