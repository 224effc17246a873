// The binary spectrum (P4SP version 1, `?format=f32`) read in place: a DataView for the header
// and typed arrays laid over the message's own buffer for the values, so a message of 2049
// bins costs no parse and no copy. docs/protocol.md has the byte table. Pure: no DOM.

export const FLAG_FLUX = 1;
export const FLAG_BANDS = 2;
export const FLAG_ONSETS = 4;
export const FLAG_SILENT = 8;
export const FLAG_CHANNELS = 16;
const KNOWN_FLAGS = 31;
const FIRST_REVISION_FLAGS = FLAG_FLUX | FLAG_BANDS;
export const HEADER_SIZE = 80;
export const FIRST_REVISION_HEADER_SIZE = 56;
const CHANNEL_RECORD_SIZE = 20;
// header byte 58: what a row's values are (0 FFT bins, 1 maxima of `?bins=N`, 2-4 band power)
const LAYOUT_KINDS = [null, null, "octave", "mel", "log"];
const SCALES = ["linear", "db", "unit"];

/**
 * One binary message as a spectrum frame: the fields of the JSON message (`frameCount`,
 * `magnitudes`, `spectralFlux`, `sampleRate`, `fftSize`, `bpm`, `beatPhase`, `beat`, ...), with Float32Array views
 * of the buffer for the arrays (row 0 when the message has a row per channel). Band power
 * frames have `layout` ("octave:3") and `bands`; `?bins=N` frames `bands` alone. `analysed` is
 * true for a view's frame (the engine's own analysis), false for the plain form, which a relay
 * sends. Throws an Error with one line for anything that is not a spectrum this page can read.
 */
export function decodeSpectrum(buffer) {
  const length = buffer.byteLength;
  if (length < 8) throw new Error(`truncated: ${length} bytes`);
  const dv = new DataView(buffer);
  if (dv.getUint32(0, false) !== 0x50345350) throw new Error("not a P4SP message (bad magic)");
  const version = dv.getUint16(4, true);
  if (version !== 1) throw new Error(`P4SP version ${version}: this page reads version 1`);
  const headerSize = dv.getUint16(6, true);
  if (headerSize < FIRST_REVISION_HEADER_SIZE || headerSize % 8 || headerSize > length) {
    throw new Error(`header size ${headerSize} in a message of ${length} bytes`);
  }
  const flags = dv.getUint32(8, true);
  if (flags & ~KNOWN_FLAGS) throw new Error(`unknown flags ${flags & ~KNOWN_FLAGS}`);
  const n = dv.getUint32(12, true);
  const banded = Boolean(flags & FLAG_BANDS);
  const frame = {
    type: "fft_magnitudes",
    frameCount: Number(dv.getBigUint64(16, true)),
    dropped: Number(dv.getBigUint64(24, true)),
    captureTime: dv.getFloat64(32, true),
    sampleRate: dv.getUint32(40, true),
    fftSize: dv.getUint32(44, true),
    bpm: dv.getFloat32(48, true),
    bpmConfidence: dv.getFloat32(52, true),
    silent: Boolean(flags & FLAG_SILENT),
    scale: "linear",
    rms: NaN,
    peak: NaN,
    centroid: NaN,
    beatPhase: 0,
    beat: false,
    analysed: false,
  };
  let rows = 1;
  let layoutCode = banded ? 1 : 0;
  let param = banded ? n : 0;
  if (headerSize >= HEADER_SIZE) {
    rows = dv.getUint16(56, true);
    layoutCode = dv.getUint8(58);
    const scale = SCALES[dv.getUint8(59)];
    if (scale === undefined) throw new Error(`unknown scale ${dv.getUint8(59)}`);
    frame.scale = scale;
    param = dv.getUint16(60, true);
    const beat = dv.getUint16(62, true); // top bit: a beat fell in the block; the rest: phase
    frame.beatPhase = (beat & 0x7fff) / 0x8000;
    frame.beat = Boolean(beat & 0x8000);
    frame.rms = dv.getFloat32(64, true);
    frame.peak = dv.getFloat32(68, true);
    frame.centroid = dv.getFloat32(72, true);
    // only a view has a centroid (NaN in the plain form), or a row per channel
    frame.analysed = !Number.isNaN(frame.centroid) || Boolean(flags & FLAG_CHANNELS);
  } else if (flags & ~FIRST_REVISION_FLAGS) {
    throw new Error(`flags ${flags} need a header of ${HEADER_SIZE} bytes`);
  }
  if (layoutCode >= LAYOUT_KINDS.length) throw new Error(`unknown layout ${layoutCode}`);
  if (banded !== (layoutCode !== 0)) throw new Error(`layout ${layoutCode} does not match the BANDS flag`);
  if (rows < 1 || (rows > 1 && !(flags & FLAG_CHANNELS))) throw new Error(`${rows} rows`);
  if (frame.sampleRate < 1 || frame.fftSize < 2) throw new Error("not a spectrum (no sample rate or FFT size)");
  if (banded ? n < 1 : n !== frame.fftSize / 2 + 1) throw new Error(`${n} values for an FFT of ${frame.fftSize}`);
  const values = rows * n;
  const withFlux = Boolean(flags & FLAG_FLUX);
  let expected = headerSize + 4 * values * (withFlux ? 2 : 1);
  if (flags & FLAG_ONSETS) expected += Math.ceil(values / 4) * 4;
  if (flags & FLAG_CHANNELS) expected += CHANNEL_RECORD_SIZE * rows;
  if (length !== expected) throw new Error(`length ${length} bytes, the header announces ${expected}`);
  frame.magnitudes = new Float32Array(buffer, headerSize, n);
  if (withFlux) frame.spectralFlux = new Float32Array(buffer, headerSize + 4 * values, n);
  if (banded) {
    frame.bands = n;
    if (LAYOUT_KINDS[layoutCode]) frame.layout = `${LAYOUT_KINDS[layoutCode]}:${param}`;
  }
  return frame;
}
