// Messages in: parse, check, count, and keep only the newest frame. No DOM, no drawing: the
// render loop takes the newest frame when it draws, so a slow display skips frames instead
// of queueing them.

/** The counters the page shows and the tests read, one object shared by every module. */
export function newStats() {
  return {
    messages: 0, // fft_magnitudes messages received
    ignored: 0, // messages of other types / shapes
    bad: 0, // unparseable text
    binary: 0, // binary frames (ignored: this page reads the JSON form)
    skipped: 0, // frames replaced by a newer one before they were drawn
    drawn: 0, // new frames drawn
    draws: 0, // animation frames that drew anything
    idle: 0, // animation frames with nothing to do
    gaps: 0, // frames missing from the frameCount sequence (not counted when sampled)
    sampled: false, // the page asked for ?fps=: the engine skips frames on purpose
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
}

export class FrameIntake {
  constructor(stats) {
    this.stats = stats;
    this.latest = null; // the newest accepted frame
    this.drawn = null; // the frame the display last processed
    this.lastFrameCount = null;
  }

  text(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      this.stats.bad += 1;
      return;
    }
    this.accept(msg);
  }

  binary() {
    this.stats.binary += 1;
  }

  accept(msg) {
    const stats = this.stats;
    if (!msg || msg.type !== "fft_magnitudes" || !Array.isArray(msg.magnitudes) || msg.magnitudes.length < 2) {
      stats.ignored += 1;
      return;
    }
    stats.messages += 1;
    if (typeof msg.frameCount === "number") {
      const last = this.lastFrameCount;
      if (!stats.sampled && last !== null && msg.frameCount > last + 1) stats.gaps += msg.frameCount - last - 1;
      this.lastFrameCount = msg.frameCount;
    }
    if (this.latest !== null && this.latest !== this.drawn) stats.skipped += 1;
    this.latest = msg;
  }

  /** The newest frame if it has not been drawn yet (and mark it drawn), else null. */
  take() {
    const f = this.latest;
    if (f === null || f === this.drawn) return null;
    this.drawn = f;
    return f;
  }

  /** A new connection: frame numbers start over, nothing received is pending. */
  restart() {
    this.lastFrameCount = null;
  }

  forget() {
    this.latest = null;
    this.drawn = null;
  }
}
