// Messages in: decode, check, count, and keep only the newest frame. No DOM, no drawing: the
// render loop takes the newest frame when it draws, so a slow display skips frames instead
// of queueing them. Binary messages (P4SP, what the page asks for) and JSON text (the
// original engine's form, and what a server sends when asked for it) become the same frame.

import { decodeSpectrum } from "./p4sp.js";

/** The counters the page shows and the tests read, one object shared by every module. */
export function newStats() {
  return {
    messages: 0, // spectrum frames received (binary or JSON)
    binary: 0, // of which binary (P4SP)
    bytes: 0, // bytes of every message received (UTF-16 code units for text)
    ignored: 0, // messages of other types / shapes, band frames without their layout
    bad: 0, // unparseable text, undecodable binary
    lastError: "", // why the last undecodable binary message was refused
    layouts: 0, // band layout messages received
    skipped: 0, // frames replaced by a newer one before they were drawn
    drawn: 0, // new frames drawn
    draws: 0, // animation frames that drew anything
    idle: 0, // animation frames with nothing to do
    gaps: 0, // frames missing from the frameCount sequence (not counted when sampled)
    sampled: false, // the page asked for ?fps=: the engine skips frames on purpose
    askedAnalysis: false, // the stream URL asks for the server's analysis (bands, resolution)
    serverDropped: null,
    msgRate: 0,
    drawRate: 0,
    frameCount: null,
    startTime: null,
    bpm: 0,
    bpmConfidence: 0,
    beats: 0, // beats seen (a frame's `beat`, or its beat phase wrapping round)
    flux: 0,
    latencyMs: null,
    state: "disconnected",
    detail: "",
    url: "",
    opens: 0,
    skipFactor: 1,
    drawEmaMs: 0,
  };
}

const isArrayLike = (a) => Array.isArray(a) || a instanceof Float32Array;

export class FrameIntake {
  constructor(stats) {
    this.stats = stats;
    this.latest = null; // the newest accepted frame
    this.drawn = null; // the frame the display last processed
    this.lastFrameCount = null;
    this.layouts = new Map(); // band layouts this connection announced, by name ("octave:3")
  }

  text(text) {
    this.stats.bytes += text.length;
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      this.stats.bad += 1;
      return;
    }
    this.accept(msg);
  }

  binary(buffer) {
    const stats = this.stats;
    stats.bytes += buffer.byteLength;
    stats.binary += 1;
    let frame;
    try {
      frame = decodeSpectrum(buffer);
    } catch (e) {
      stats.bad += 1;
      stats.lastError = e.message;
      return;
    }
    this.accept(frame);
  }

  /** A decoded message: a spectrum frame (kept as the newest), a band layout, or ignored. */
  accept(msg) {
    const stats = this.stats;
    if (msg && msg.type === "bands") {
      this.acceptLayout(msg);
      return;
    }
    if (msg && msg.type === "fft_magnitudes" && !msg.magnitudes && Array.isArray(msg.channels) && msg.channels[0]) {
      // the per-channel JSON form: the page draws the first row
      msg.magnitudes = msg.channels[0].magnitudes;
      msg.spectralFlux = msg.channels[0].spectralFlux;
    }
    if (!msg || msg.type !== "fft_magnitudes" || !isArrayLike(msg.magnitudes) || msg.magnitudes.length < 1) {
      stats.ignored += 1;
      return;
    }
    if (typeof msg.layout === "string") {
      // band power: where each band lies comes from the layout message sent before
      const layout = this.layouts.get(msg.layout);
      if (!layout || layout.centres.length !== msg.magnitudes.length) {
        stats.ignored += 1;
        return;
      }
      msg.bandLayout = layout;
    } else if (typeof msg.bands !== "number" && msg.magnitudes.length < 2) {
      stats.ignored += 1;
      return;
    }
    if (typeof msg.analysed !== "boolean") msg.analysed = typeof msg.view === "string";
    stats.messages += 1;
    if (typeof msg.frameCount === "number") {
      const last = this.lastFrameCount;
      if (!stats.sampled && last !== null && msg.frameCount > last + 1) stats.gaps += msg.frameCount - last - 1;
      this.lastFrameCount = msg.frameCount;
    }
    if (this.latest !== null && this.latest !== this.drawn) stats.skipped += 1;
    this.latest = msg;
  }

  acceptLayout(msg) {
    const ok = typeof msg.layout === "string" && [msg.centres, msg.lowers, msg.uppers].every(
      (a) => Array.isArray(a) && a.length === msg.centres.length && a.length > 0,
    );
    if (!ok) {
      this.stats.ignored += 1;
      return;
    }
    this.stats.layouts += 1;
    this.layouts.set(msg.layout, msg);
  }

  /** The newest frame if it has not been drawn yet (and mark it drawn), else null. */
  take() {
    const f = this.latest;
    if (f === null || f === this.drawn) return null;
    this.drawn = f;
    return f;
  }

  /** A new connection: frame numbers start over, its layouts will be announced again. */
  restart() {
    this.lastFrameCount = null;
    this.layouts.clear();
  }

  forget() {
    this.latest = null;
    this.drawn = null;
  }
}
