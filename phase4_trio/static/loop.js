// The render loop: one requestAnimationFrame callback that takes the newest frame (if any),
// lets the views redraw only when something changed, and measures what drawing costs.
// When a draw costs more than ~12 ms it draws only every 2nd, 3rd or 4th animation frame.

export const DRAW_RING = 1000;

export class RenderLoop {
  /**
   * @param {object} parts stats, intake (frames.js), display (display.js), views (name → view),
   *   onFrame(frame) for each new frame drawn, onDraw() after each draw, onTick(now) every frame
   */
  constructor({ stats, intake, display, views, onFrame, onDraw, onTick }) {
    Object.assign(this, { stats, intake, display, views, onFrame, onDraw, onTick });
    this.paused = false;
    this.needsDraw = true;
    this.frameNo = 0;
    this.drawTimes = new Float64Array(DRAW_RING);
    this.drawCount = 0;
    this.waiters = [];
  }

  start() {
    const tick = (now) => {
      requestAnimationFrame(tick);
      this.tick(now);
    };
    requestAnimationFrame(tick);
  }

  /** Something static changed (size, settings, connection state): draw on the next frame. */
  request() {
    this.needsDraw = true;
  }

  tick(now) {
    const { stats, display } = this;
    this.frameNo += 1;
    if (this.frameNo % stats.skipFactor !== 0) return;
    const t0 = performance.now();
    let dirty = this.needsDraw;
    this.needsDraw = false;
    if (!this.paused) {
      const f = this.intake.take();
      if (f !== null) {
        this.onFrame(f);
        stats.drawn += 1;
        dirty = true;
      }
      if (display.updatePeaks(now)) dirty = true;
    } else {
      display.holdPeaks(now);
    }
    display.ensureSomeLayout();
    const visible = Object.values(this.views).filter((v) => v.visible);
    for (const v of visible) if (v.prepare(display.model)) dirty = true;
    if (dirty) {
      for (const v of visible) v.draw(display);
      this.onDraw();
      const dt = performance.now() - t0;
      this.drawTimes[this.drawCount % DRAW_RING] = dt;
      this.drawCount += 1;
      stats.draws += 1;
      stats.drawEmaMs = stats.drawEmaMs * 0.95 + dt * 0.05;
      stats.skipFactor = Math.min(4, Math.max(1, Math.ceil(stats.drawEmaMs / 12)));
      while (this.waiters.length) this.waiters.shift()();
    } else {
      stats.idle += 1;
    }
    this.onTick(now);
  }

  /** Resolves after the next animation frame that drew something. */
  nextDraw() {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The last (up to) DRAW_RING draw times in ms, oldest first. */
  recentDrawTimes() {
    const n = Math.min(this.drawCount, DRAW_RING);
    const out = [];
    for (let i = this.drawCount - n; i < this.drawCount; i++) out.push(this.drawTimes[i % DRAW_RING]);
    return out;
  }

  drawStats() {
    const n = Math.min(this.drawCount, DRAW_RING);
    if (!n) return { n: 0 };
    const a = Array.from(this.drawTimes.subarray(0, n)).sort((x, y) => x - y);
    const q = (p) => a[Math.min(n - 1, Math.floor(p * n))];
    return { n, mean: a.reduce((s, x) => s + x, 0) / n, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: a[n - 1] };
  }

  resetDrawTimes() {
    this.drawCount = 0;
  }
}
