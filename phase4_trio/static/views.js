// The three views. Each works in canvas backing-store pixels (CSS px x devicePixelRatio), so the
// coordinates its mapping functions return are the ones getImageData() reads. Static parts
// (background, grid, labels) are drawn once into an offscreen canvas whenever the model or
// the size changes; each animation frame only blits that and draws the data.

import { dbStep, frequencyTicks, spaceTicks, noteName, formatHz } from "./dsp.js";
import { lut } from "./colormaps.js";

export const BG = "#0b0d12";
const GRID = "rgba(255,255,255,0.09)";
const GRID_MAJOR = "rgba(255,255,255,0.16)";
const LABEL = "#9ca3af";
const PEAK = "#7dd3fc";
const BAR_LOW = "#22c55e";
const BAR_MID = "#eab308";
const BAR_HIGH = "#ef4444";

const dpr = () => window.devicePixelRatio || 1;
const clamp01 = (t) => (t < 0 ? 0 : t > 1 ? 1 : t);

/**
 * Draw items no finer than a cell (a pixel, or a few). span(el) gives an element's extent
 * [p0, p1] in cells (or null when it lies outside the plot). An element a cell wide or more is
 * an item of its own; consecutive narrower ones in the same cell share one item, drawn as the
 * loudest of them (thousands of fine bins crowd into the top octaves of a log axis). The cell
 * of a narrow element is round(p0), or with centred the cell its middle lies in.
 * Items: p0, p1 (cells; whole for shared ones) and the elements first..last they show.
 */
function pixelItems(els, span, centred = false) {
  const p0 = [];
  const p1 = [];
  const first = [];
  const last = [];
  let sharedAt = NaN; // pixel of the last item, when it is a shared (narrow) one
  for (let i = 0; i < els.length; i++) {
    const s = span(els[i]);
    if (s === null) continue;
    const narrow = Math.round(s[1]) - Math.round(s[0]) <= 1;
    const a = centred ? Math.floor((s[0] + s[1]) / 2) : Math.round(s[0]);
    if (narrow && a === sharedAt) {
      last[last.length - 1] = i;
      continue;
    }
    p0.push(narrow ? a : s[0]);
    p1.push(narrow ? a + 1 : s[1]);
    first.push(i);
    last.push(i);
    sharedAt = narrow ? a : NaN;
  }
  return { p0: Float64Array.from(p0), p1: Float64Array.from(p1), first: Int32Array.from(first), last: Int32Array.from(last) };
}

/** The loudest of values[first..last]. */
function loudest(values, first, last) {
  let v = values[first];
  for (let i = first + 1; i <= last; i++) if (values[i] > v) v = values[i];
  return v;
}

/** The element's part of the scale's range, as [t0, t1] in 0..1, or null outside it. */
function inScale(scale, el) {
  if (!(el.hi > scale.fmin && el.lo < scale.fmax)) return null;
  return [clamp01(scale.norm(el.lo)), clamp01(scale.norm(el.hi))];
}

class View {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.static = document.createElement("canvas");
    this.sctx = this.static.getContext("2d", { alpha: false });
    this.model = null;
    this.modelVersion = -1;
    this.sizeDirty = true;
    this.W = 0;
    this.H = 0;
    this.plot = { left: 0, top: 0, width: 1, height: 1 };
  }

  get visible() {
    return this.canvas.offsetParent !== null || document.fullscreenElement?.contains(this.canvas);
  }

  /** Match the backing store to the element's size. Returns true when anything changed. */
  prepare(model) {
    let changed = false;
    if (this.sizeDirty) {
      this.sizeDirty = false;
      const r = dpr();
      const w = Math.max(1, Math.round(this.canvas.clientWidth * r));
      const h = Math.max(1, Math.round(this.canvas.clientHeight * r));
      if (w !== this.W || h !== this.H) {
        this.canvas.width = this.static.width = this.W = w;
        this.canvas.height = this.static.height = this.H = h;
        changed = true;
      }
    }
    if (changed || model.version !== this.modelVersion) {
      this.model = model;
      this.modelVersion = model.version;
      this.layout();
      this.drawStatic();
      this.describe();
      changed = true;
    }
    return changed;
  }

  describe() {
    const d = this.canvas.dataset;
    const m = this.model;
    d.plotLeft = this.plot.left;
    d.plotTop = this.plot.top;
    d.plotWidth = this.plot.width;
    d.plotHeight = this.plot.height;
    d.scale = m.scale.kind;
    d.fmin = m.scale.fmin;
    d.fmax = m.scale.fmax;
    d.minDb = m.minDb;
    d.maxDb = m.maxDb;
  }

  font(px) {
    return `${Math.round(px * dpr())}px system-ui, sans-serif`;
  }

  dbNorm(db) {
    return clamp01((db - this.model.minDb) / (this.model.maxDb - this.model.minDb));
  }

  /** A note over a drawing that is no longer live (disconnected / reconnecting). */
  staleNote(ctx, d) {
    if (!d.stale) return;
    ctx.font = this.font(11);
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillStyle = "#93c5fd";
    ctx.fillText(d.stale, this.plot.left + 6 * dpr(), this.plot.top + 4 * dpr());
  }

  /** The latest frame put nothing above the floor: say so instead of showing empty axes. */
  noSignalNote(ctx, d) {
    if (!d.silent) return;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillStyle = "#e5e7eb";
    ctx.font = this.font(16);
    ctx.fillText(`No signal above ${this.model.minDb} dB`, this.W / 2, this.H / 2);
    ctx.fillStyle = "#9ca3af";
    ctx.font = this.font(12);
    ctx.fillText("the input is silent (or lower Min dB to see quieter sound)", this.W / 2, this.H / 2 + 20 * dpr());
  }

  waiting(ctx) {
    ctx.fillStyle = "#6b7280";
    ctx.font = this.font(14);
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(this.model.message || "Waiting for data…", this.W / 2, this.H / 2);
  }
}

// ------------------------------------------------------------------------------ bars

export class BarsView extends View {
  layout() {
    const r = dpr();
    const left = Math.round(44 * r);
    const top = Math.round(8 * r);
    this.plot = { left, top, width: this.W - left - Math.round(10 * r), height: this.H - top - Math.round(22 * r) };
    const p = this.plot;
    this.gradient = this.ctx.createLinearGradient(0, p.top + p.height, 0, p.top);
    this.gradient.addColorStop(0, BAR_LOW);
    this.gradient.addColorStop(0.6, BAR_MID);
    this.gradient.addColorStop(1, BAR_HIGH);
    // integer column span of every draw item (an element, or the narrow ones sharing a column)
    const items = pixelItems(this.model.elements, (el) => {
      const t = inScale(this.model.scale, el);
      return t && [p.left + p.width * t[0], p.left + p.width * t[1]];
    });
    this.items = items;
    const n = items.first.length;
    this.x0 = new Int32Array(n);
    this.x1 = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const a = Math.round(items.p0[i]);
      let b = Math.round(items.p1[i]);
      if (b - a >= 3) b -= 1; // a 1 px gap between wide bars
      this.x0[i] = a;
      this.x1[i] = Math.max(b, a + 1);
    }
  }

  /** x (backing-store px) of a frequency: left + width * scale.norm(hz). */
  xForFrequency(hz) {
    return this.plot.left + this.plot.width * this.model.scale.norm(hz);
  }

  /** y (backing-store px) of a level: top + height * (1 - (db - minDb) / (maxDb - minDb)). */
  yForDb(db) {
    return this.plot.top + this.plot.height * (1 - this.dbNorm(db));
  }

  frequencyAtX(x) {
    return this.model.scale.inv((x - this.plot.left) / this.plot.width);
  }

  drawStatic() {
    const c = this.sctx;
    const p = this.plot;
    const m = this.model;
    c.fillStyle = BG;
    c.fillRect(0, 0, this.W, this.H);
    c.font = this.font(10);
    c.fillStyle = LABEL;
    // dB grid and labels
    const pxPerDb = p.height / (m.maxDb - m.minDb);
    const step = dbStep(pxPerDb, 22 * dpr());
    c.textAlign = "right";
    c.textBaseline = "middle";
    for (let db = Math.ceil(m.minDb / step) * step; db <= m.maxDb; db += step) {
      const y = Math.round(this.yForDb(db)) + 0.5;
      if (m.grid) {
        c.fillStyle = GRID;
        c.fillRect(p.left, Math.floor(y), p.width, 1);
      }
      c.fillStyle = LABEL;
      c.fillText(`${db}`, p.left - 4 * dpr(), y);
    }
    c.save();
    c.translate(10 * dpr(), p.top + p.height / 2);
    c.rotate(-Math.PI / 2);
    c.textAlign = "center";
    c.fillText("dB", 0, 0);
    c.restore();
    // frequency ticks
    const ticks = spaceTicks(frequencyTicks(m.scale, m.labels), (f) => this.xForFrequency(f), 34 * dpr());
    this.ticks = ticks.map((t) => ({ f: t.f, label: t.label, x: t.p }));
    c.textAlign = "center";
    c.textBaseline = "top";
    for (const t of ticks) {
      const x = Math.round(t.p);
      if (m.grid) {
        c.fillStyle = t.major ? GRID_MAJOR : GRID;
        c.fillRect(x, p.top, 1, p.height);
      }
      c.fillStyle = LABEL;
      c.fillRect(x, p.top + p.height, 1, 4 * dpr());
      c.fillText(t.label, x, p.top + p.height + 6 * dpr());
    }
    c.fillStyle = "#374151";
    c.fillRect(p.left, p.top + p.height, p.width, 1);
  }

  draw(d) {
    const ctx = this.ctx;
    const p = this.plot;
    ctx.drawImage(this.static, 0, 0);
    if (!d.hasData) {
      this.waiting(ctx);
      return;
    }
    const bottom = p.top + p.height;
    const { first, last } = this.items;
    const n = first.length;
    ctx.fillStyle = this.gradient;
    for (let i = 0; i < n; i++) {
      const y = Math.round(this.yForDb(loudest(d.values, first[i], last[i])));
      if (y >= bottom) continue;
      ctx.fillRect(this.x0[i], y, this.x1[i] - this.x0[i], bottom - y);
    }
    if (this.model.peakHold) {
      ctx.fillStyle = PEAK;
      for (let i = 0; i < n; i++) {
        const y = Math.round(this.yForDb(loudest(d.peaks, first[i], last[i])));
        if (y >= bottom) continue;
        ctx.fillRect(this.x0[i], Math.max(p.top, y - 2), this.x1[i] - this.x0[i], 2);
      }
    }
    if (this.hoverX !== null && this.hoverX !== undefined) this.drawHover(d);
    this.noSignalNote(ctx, d);
    this.staleNote(ctx, d);
  }

  drawHover(d) {
    const ctx = this.ctx;
    const p = this.plot;
    const x = Math.round(this.hoverX * dpr());
    if (x < p.left || x > p.left + p.width) return;
    const f = this.frequencyAtX(x);
    let level = "";
    const els = this.model.elements;
    for (let i = 0; i < els.length; i++) {
      if (f >= els[i].lo && f < els[i].hi) {
        level = ` · ${d.values[i].toFixed(1)} dB`;
        break;
      }
    }
    const note = noteName(f);
    const text = `${formatHz(f)} Hz · ${note.name} ${note.cents >= 0 ? "+" : ""}${note.cents}c${level}`;
    ctx.fillStyle = "rgba(255,255,255,0.5)";
    ctx.fillRect(x, p.top, 1, p.height);
    ctx.font = this.font(11);
    const w = ctx.measureText(text).width + 8 * dpr();
    const bx = Math.min(x + 6 * dpr(), p.left + p.width - w);
    ctx.fillStyle = "rgba(17,24,39,0.85)";
    ctx.fillRect(bx, p.top + 4 * dpr(), w, 18 * dpr());
    ctx.fillStyle = "#e5e7eb";
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.fillText(text, bx + 4 * dpr(), p.top + 13 * dpr());
  }
}

// ------------------------------------------------------------------------------ radial

/** Narrowest wedge drawn, in CSS pixels of arc on the outer circle: a hairline wedge would be
 * lost to antialiasing. Narrower elements share wedges of this width (the loudest shows). */
const MIN_WEDGE_PX = 3;

export class RadialView extends View {
  layout() {
    const r = dpr();
    this.cx = this.W / 2;
    this.cy = this.H / 2;
    this.R = Math.max(10, Math.min(this.W, this.H) / 2 - 22 * r);
    this.r0 = this.R * 0.22;
    this.plot = { left: this.cx - this.R, top: this.cy - this.R, width: 2 * this.R, height: 2 * this.R };
    this.gradient = this.ctx.createRadialGradient(this.cx, this.cy, this.r0, this.cx, this.cy, this.R);
    this.gradient.addColorStop(0, BAR_LOW);
    this.gradient.addColorStop(0.6, BAR_MID);
    this.gradient.addColorStop(1, BAR_HIGH);
    // items by arc length on the outer circle, in cells of the narrowest wedge
    const cells = (2 * Math.PI * this.R) / (MIN_WEDGE_PX * r);
    const items = pixelItems(
      this.model.elements,
      (el) => {
        const t = inScale(this.model.scale, el);
        return t && [t[0] * cells, t[1] * cells];
      },
      true,
    );
    this.items = items;
    const n = items.first.length;
    this.a0 = new Float64Array(n);
    this.a1 = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const t0 = items.p0[i] / cells;
      const t1 = items.p1[i] / cells;
      const gap = t1 - t0 > 0.01 ? 0.002 : 0;
      this.a0[i] = this.angleAt(t0);
      this.a1[i] = this.angleAt(t1 - gap);
    }
  }

  angleAt(t) {
    return -Math.PI / 2 + 2 * Math.PI * t;
  }

  /** Angle in radians (canvas convention: 0 = +x, clockwise on screen); -pi/2 (top) is fmin. */
  angleForFrequency(hz) {
    return this.angleAt(this.model.scale.norm(hz));
  }

  /** Radius in px: r0 at minDb .. R at maxDb. */
  radiusForDb(db) {
    return this.r0 + (this.R - this.r0) * this.dbNorm(db);
  }

  pointFor(hz, db) {
    const a = this.angleForFrequency(hz);
    const r = this.radiusForDb(db);
    return { x: this.cx + r * Math.cos(a), y: this.cy + r * Math.sin(a) };
  }

  describe() {
    super.describe();
    Object.assign(this.canvas.dataset, { cx: this.cx, cy: this.cy, r0: this.r0, rmax: this.R });
  }

  drawStatic() {
    const c = this.sctx;
    const m = this.model;
    c.fillStyle = BG;
    c.fillRect(0, 0, this.W, this.H);
    c.lineWidth = 1;
    if (m.grid) {
      const step = dbStep((this.R - this.r0) / (m.maxDb - m.minDb), 18 * dpr());
      c.strokeStyle = GRID;
      for (let db = Math.ceil(m.minDb / step) * step; db <= m.maxDb; db += step) {
        c.beginPath();
        c.arc(this.cx, this.cy, this.radiusForDb(db), 0, 2 * Math.PI);
        c.stroke();
      }
    }
    const minArc = 30 * dpr();
    const ticks = spaceTicks(frequencyTicks(m.scale, m.labels), (f) => this.angleForFrequency(f) * this.R, minArc);
    // the circle closes: the last label must not sit on top of the first
    while (ticks.length > 1 && ticks[0].p + 2 * Math.PI * this.R - ticks[ticks.length - 1].p < minArc) ticks.pop();
    this.ticks = ticks.map((t) => ({ f: t.f, label: t.label, angle: this.angleForFrequency(t.f) }));
    c.font = this.font(10);
    c.textAlign = "center";
    c.textBaseline = "middle";
    for (const t of ticks) {
      const a = this.angleForFrequency(t.f);
      const cos = Math.cos(a);
      const sin = Math.sin(a);
      if (m.grid) {
        c.strokeStyle = t.major ? GRID_MAJOR : GRID;
        c.beginPath();
        c.moveTo(this.cx + this.r0 * cos, this.cy + this.r0 * sin);
        c.lineTo(this.cx + this.R * cos, this.cy + this.R * sin);
        c.stroke();
      }
      c.fillStyle = LABEL;
      const lr = this.R + 11 * dpr();
      c.fillText(t.label, this.cx + lr * cos, this.cy + lr * sin);
    }
    c.strokeStyle = "#374151";
    c.beginPath();
    c.arc(this.cx, this.cy, this.r0, 0, 2 * Math.PI);
    c.stroke();
  }

  draw(d) {
    const ctx = this.ctx;
    ctx.drawImage(this.static, 0, 0);
    if (!d.hasData) {
      this.waiting(ctx);
      return;
    }
    const { cx, cy, r0 } = this;
    const { first, last } = this.items;
    const n = first.length;
    ctx.beginPath();
    for (let i = 0; i < n; i++) {
      const a0 = this.a0[i];
      const a1 = this.a1[i];
      if (a1 <= a0) continue;
      const r = this.radiusForDb(loudest(d.values, first[i], last[i]));
      if (r <= r0 + 0.5) continue;
      ctx.moveTo(cx + r0 * Math.cos(a0), cy + r0 * Math.sin(a0));
      ctx.arc(cx, cy, r, a0, a1);
      ctx.arc(cx, cy, r0, a1, a0, true);
      ctx.closePath();
    }
    ctx.fillStyle = this.gradient;
    ctx.fill();
    if (this.model.peakHold) {
      ctx.beginPath();
      for (let i = 0; i < n; i++) {
        if (this.a1[i] <= this.a0[i]) continue;
        const r = this.radiusForDb(loudest(d.peaks, first[i], last[i]));
        if (r <= r0 + 0.5) continue;
        ctx.moveTo(cx + (r + 1.5) * Math.cos(this.a0[i]), cy + (r + 1.5) * Math.sin(this.a0[i]));
        ctx.arc(cx, cy, r + 1.5, this.a0[i], this.a1[i]);
      }
      ctx.strokeStyle = PEAK;
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    this.noSignalNote(ctx, d);
  }
}

// ------------------------------------------------------------------------ spectrogram

export class SpectrogramView extends View {
  constructor(canvas) {
    super(canvas);
    this.ring = document.createElement("canvas");
    this.rctx = this.ring.getContext("2d", { alpha: false });
    this.writeX = 0;
    this.columns = 0; // columns written since the last clear
  }

  layout() {
    const r = dpr();
    const left = Math.round(44 * r);
    const top = Math.round(6 * r);
    this.plot = { left, top, width: Math.max(1, this.W - left - Math.round(8 * r)), height: Math.max(1, this.H - top - Math.round(18 * r)) };
    const p = this.plot;
    // row -> the elements it covers, first..last (first -1: none); a row shows the loudest
    const els = this.model.elements;
    this.rowFirst = new Int32Array(p.height).fill(-1);
    this.rowLast = new Int32Array(p.height).fill(-1);
    // first element with hi > f
    const firstAbove = (f) => {
      let lo = 0;
      let hi = els.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (els[mid].hi > f) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    };
    for (let row = 0; row < p.height; row++) {
      const fLow = this.model.scale.inv(1 - (row + 1) / p.height);
      const fHigh = this.model.scale.inv(1 - row / p.height);
      const first = firstAbove(fLow);
      let last = first;
      while (last + 1 < els.length && els[last + 1].lo < fHigh) last += 1;
      if (first < els.length && els[first].lo < fHigh) {
        this.rowFirst[row] = first;
        this.rowLast[row] = last;
      }
    }
    this.lut = lut(this.model.colormap);
    this.column = this.rctx.createImageData(1, p.height);
    this.column32 = new Uint32Array(this.column.data.buffer);
    // history survives changes that do not move rows (colours, dB range, grid, labels)
    const key = `${p.width}x${p.height}|${this.model.geometry}`;
    if (key !== this.ringKey) {
      this.ringKey = key;
      this.clear();
    }
  }

  clear() {
    this.ring.width = this.plot.width;
    this.ring.height = this.plot.height;
    this.rctx.fillStyle = BG;
    this.rctx.fillRect(0, 0, this.plot.width, this.plot.height);
    this.writeX = 0;
    this.columns = 0;
  }

  /** y (backing-store px) of a frequency: top + height * (1 - scale.norm(hz)). */
  yForFrequency(hz) {
    return this.plot.top + this.plot.height * (1 - this.model.scale.norm(hz));
  }

  /** Add one column (the newest, drawn at the right edge) from a levels array. */
  push(levels) {
    const { rowFirst, rowLast, column32 } = this;
    const table = this.lut;
    const bg = 0xff120d0b; // BG packed little-endian
    const lo = this.model.minDb;
    const k = 255 / (this.model.maxDb - lo);
    for (let row = 0; row < rowFirst.length; row++) {
      const i = rowFirst[row];
      if (i < 0 || rowLast[row] >= levels.length) {
        column32[row] = bg;
        continue;
      }
      let v = Math.round((loudest(levels, i, rowLast[row]) - lo) * k);
      v = v < 0 ? 0 : v > 255 ? 255 : v;
      column32[row] = table[v];
    }
    this.rctx.putImageData(this.column, this.writeX, 0);
    this.writeX = (this.writeX + 1) % this.plot.width;
    this.columns += 1;
  }

  drawStatic() {
    const c = this.sctx;
    const p = this.plot;
    const m = this.model;
    c.fillStyle = BG;
    c.fillRect(0, 0, this.W, this.H);
    const ticks = spaceTicks(frequencyTicks(m.scale, m.labels), (f) => -this.yForFrequency(f), 16 * dpr());
    this.ticks = ticks.map((t) => ({ f: t.f, label: t.label, y: this.yForFrequency(t.f) }));
    c.font = this.font(10);
    c.textAlign = "right";
    c.textBaseline = "middle";
    for (const t of this.ticks) {
      c.fillStyle = LABEL;
      c.fillRect(p.left - 4 * dpr(), Math.round(t.y), 4 * dpr(), 1);
      c.fillText(t.label, p.left - 6 * dpr(), t.y);
    }
    c.textAlign = "right";
    c.textBaseline = "top";
    c.fillText("now →", p.left + p.width, p.top + p.height + 4 * dpr());
    c.textAlign = "left";
    c.fillText(`← older (1 px per drawn frame) · ${m.colormap}`, p.left, p.top + p.height + 4 * dpr());
  }

  draw(d) {
    const ctx = this.ctx;
    const p = this.plot;
    ctx.drawImage(this.static, 0, 0);
    const w = p.width;
    const wx = this.writeX;
    // oldest part: ring [wx, w) -> left; newest part: ring [0, wx) -> right
    if (w - wx > 0) ctx.drawImage(this.ring, wx, 0, w - wx, p.height, p.left, p.top, w - wx, p.height);
    if (wx > 0) ctx.drawImage(this.ring, 0, 0, wx, p.height, p.left + w - wx, p.top, wx, p.height);
    if (!d.hasData) {
      this.waiting(ctx);
      return;
    }
    this.noSignalNote(ctx, d);
    this.staleNote(ctx, d);
  }
}
