// Inputs of the raster figures: plain typed arrays with their shape, or
// TensorFlow.js tensors, so the helpers work without the model zoo.
import * as tf from '../tf';
import { PixelBlock } from './raster';

export type NumericArray = ArrayLike<number>;

/**
 * An image or a stack of maps in HWC order (row-major, channels last),
 * the layout TensorFlow.js uses.
 */
export interface HwcArray {
  data: NumericArray;
  height: number;
  width: number;
  /** Channels per pixel (default 1). */
  channels?: number;
}

/** A HwcArray, or a tensor shaped [h, w], [h, w, c] or [1, h, w, c]. */
export type ArrayOrTensor = HwcArray | tf.Tensor;

/** Value range mapped to black..white; 'auto' picks one (see imageToPixels). */
export type ValueRange = readonly [number, number] | 'auto';

interface Hwc {
  data: NumericArray;
  height: number;
  width: number;
  channels: number;
}

/** A tensor's values now; a GPU backend may refuse (webgpu has no sync read): then say what to pass instead. */
function readSync(t: tf.Tensor, what: string): ArrayLike<number> {
  try {
    return t.dataSync();
  } catch (err) {
    throw new Error(`${what}: the ${tf.getBackend()} backend cannot read a tensor synchronously (${(err as Error).message}); ` +
      'pass its values instead: { data: await tensor.data(), height, width, channels }');
  }
}

/** Shape-checks an input and reads tensor data synchronously. */
export function toHwc(input: ArrayOrTensor, what: string): Hwc {
  if (input instanceof tf.Tensor) {
    const shape = input.shape;
    let dims: number[];
    if (shape.length === 2) dims = [shape[0], shape[1], 1];
    else if (shape.length === 3) dims = shape;
    else if (shape.length === 4 && shape[0] === 1) dims = shape.slice(1);
    else {
      throw new Error(`${what}: expected a tensor shaped [h, w], [h, w, c] or [1, h, w, c], got [${shape.join(', ')}]`);
    }
    return { data: readSync(input, what), height: dims[0], width: dims[1], channels: dims[2] };
  }
  if (input == null || typeof input !== 'object' || input.data == null) {
    throw new Error(`${what}: expected { data, height, width, channels? } or a tf.Tensor, got ${describe(input)}`);
  }
  const channels = input.channels ?? 1;
  for (const [k, v] of [['height', input.height], ['width', input.width], ['channels', channels]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`${what}: ${k} must be a positive integer, got ${v}`);
  }
  const expected = input.height * input.width * channels;
  if (input.data.length !== expected) {
    throw new Error(
      `${what}: data has ${input.data.length} values, expected height*width*channels = ` +
        `${input.height}*${input.width}*${channels} = ${expected}`,
    );
  }
  return { data: input.data, height: input.height, width: input.width, channels };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  return typeof v;
}

function isByteArray(a: NumericArray): boolean {
  return a instanceof Uint8Array || a instanceof Uint8ClampedArray;
}

/** Min and max over the finite values (NaN if there are none). */
export function finiteRange(data: NumericArray, start = 0, end = data.length, stride = 1): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = start; i < end; i += stride) {
    const v = data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo === Infinity ? [NaN, NaN] : [lo, hi];
}

/**
 * The range 'auto' means: bytes are 0..255; other data already inside [0, 1]
 * is 0..1, inside [0, 255] is 0..255; anything else (e.g. standardised
 * inputs) is stretched from its own min to its max.
 */
export function resolveRange(data: NumericArray, range: ValueRange): [number, number] {
  if (range !== 'auto') {
    if (!(range[1] > range[0])) throw new Error(`value range must be [low, high] with high > low, got [${range.join(', ')}]`);
    return [range[0], range[1]];
  }
  if (isByteArray(data)) return [0, 255];
  const [lo, hi] = finiteRange(data);
  if (Number.isNaN(lo)) return [0, 1];
  if (lo >= 0 && hi <= 1) return [0, 1];
  if (lo >= 0 && hi <= 255) return [0, 255];
  return hi > lo ? [lo, hi] : [lo - 0.5, lo + 0.5];
}

/** An image (1, 3 or 4 channels) as RGB(A) bytes ready to blit. */
export function imageToPixels(input: ArrayOrTensor, range: ValueRange = 'auto', what = 'image'): PixelBlock {
  const img = toHwc(input, what);
  const c = img.channels;
  if (c !== 1 && c !== 3 && c !== 4) {
    throw new Error(`${what}: an image needs 1, 3 or 4 channels, got ${c}; use featureMapGrid for other channel counts`);
  }
  const [lo, hi] = resolveRange(img.data, range);
  const scale = 255 / (hi - lo);
  const n = img.height * img.width;
  const outC = c === 4 ? 4 : 3;
  const out = new Uint8Array(n * outC);
  for (let p = 0; p < n; p++) {
    for (let k = 0; k < outC; k++) {
      const srcK = c === 1 ? 0 : k;
      const v = img.data[p * c + srcK];
      // Alpha stays on its own 0..255 or 0..1 scale regardless of range.
      const byte = k === 3 ? (hi > 1 ? v : v * 255) : (v - lo) * scale;
      out[p * outC + k] = Number.isFinite(byte) ? Math.max(0, Math.min(255, Math.round(byte))) : 0;
    }
  }
  return { data: out, width: img.width, height: img.height, channels: outC as 3 | 4 };
}

/** A map of class ids, one per pixel. */
export interface LabelMap {
  data: Int32Array;
  height: number;
  width: number;
}

/**
 * Class ids from [h, w] (or [h, w, 1]) integers, or from [h, w, C] scores or
 * one-hot maps, which are reduced by argmax over C.
 */
export function toLabelMap(input: ArrayOrTensor, what = 'label map'): LabelMap {
  const m = toHwc(input, what);
  const n = m.height * m.width;
  const out = new Int32Array(n);
  if (m.channels === 1) {
    for (let p = 0; p < n; p++) {
      const v = m.data[p];
      if (!Number.isInteger(v)) {
        throw new Error(`${what}: pixel ${p} (row ${Math.floor(p / m.width)}, col ${p % m.width}) is ${v}, expected an integer class id`);
      }
      out[p] = v;
    }
  } else {
    for (let p = 0; p < n; p++) {
      let best = 0;
      for (let k = 1; k < m.channels; k++) {
        if (m.data[p * m.channels + k] > m.data[p * m.channels + best]) best = k;
      }
      out[p] = best;
    }
  }
  return { data: out, height: m.height, width: m.width };
}
