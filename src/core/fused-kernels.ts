// Fused BatchNorm-ReLU kernels. The composite-op versions in bn-relu-conv.ts allocate up
// to four full-size temporaries per call; these make one pass (forward) or two (backward)
// over the data with no temporaries, which is both the memory peak and most of the time
// of the dense layers' backward pass. The JS versions here serve the cpu backend (4-18x
// faster than its composite ops) and are the reference the others must equal; scalar JS
// is slower than wasm's SIMD ops, so the wasm and torch-cpu backends register their own
// under the same names (src/backend). Other backends fall back to the composite ops.
//
// A dense layer's input is the channel concatenation of its block's feature maps. Both
// kernels take it as those pieces (inputs x0, x1, ...), so the concatenation is never
// built, and the backward writes the input gradient straight into per-piece outputs added
// to the running gradients: no Concat, SplitV or Add around the layer.
import * as tf from '../tf';

/**
 * { x | x0..x(p-1), scale, shift } -> r = max(0, x * scale + shift) per channel (the last
 * axis); with pieces, r has the shape of their channel concatenation.
 */
export const BN_RELU = 'DenseNetBnRelu';
/**
 * Backward of r = relu(BN_train(x)) given dr, the ReLU mask recomputed from x:
 * { x | x0..x(p-1), dr, gamma, beta, mean, invStd, [acc0..acc(q-1)] }, attrs { splits? }
 * -> [dx_0..dx_(q-1), dGamma, dBeta]. dx is split along channels by `splits` (default one
 * piece; each split lies within one input piece), and dx_j has acc_j added where given.
 */
export const BN_RELU_GRAD = 'DenseNetBnReluGrad';
/**
 * BN_RELU_GRAD of a unit whose BN-ReLU output is 2x2 average-pooled (a DenseNet transition that
 * pools before its conv): dr is given at half the height and width, already divided by 4, and
 * pixel (y, x) reads it at (y/2, x/2), so the full-size dr is never made. x's height and width
 * must be even. Backends without it take AvgPoolGrad and BN_RELU_GRAD.
 */
export const BN_RELU_POOLED_GRAD = 'DenseNetBnReluPooledGrad';
/** { x } -> [mean, biased variance] over every axis but the last, in one pass (backends that have it). */
export const BATCH_MOMENTS = 'DenseNetBatchMoments';

type Info = tf.TensorInfo;
type InputMap = Record<string, Info | undefined>;

export interface BnReluGradAttrs {
  splits?: number[];
}

/** Input names for a kernel call on channel pieces. */
export function pieceInputs<T>(xs: T[], prefix = 'x'): Record<string, T> {
  return Object.fromEntries(xs.map((x, i) => [`${prefix}${i}`, x]));
}

/** The x input: `x` alone, or the pieces x0, x1, ...; checks that they agree on every axis but the last. */
export function xPieces(inputs: InputMap, kernel: string): Info[] {
  const pieces = inputs.x ? [inputs.x] : [];
  for (let i = 0; !inputs.x && inputs[`x${i}`]; i++) pieces.push(inputs[`x${i}`]!);
  if (pieces.length === 0) throw new Error(`${kernel}: expected an input 'x' or pieces 'x0', 'x1', ...`);
  const lead = pieces[0].shape.slice(0, -1);
  pieces.forEach((p, i) => {
    if (p.dtype !== 'float32') throw new Error(`${kernel}: x piece ${i} must be float32, got ${p.dtype}`);
    if (p.shape.length === 0 || !tf.util.arraysEqual(p.shape.slice(0, -1), lead)) {
      throw new Error(`${kernel}: x piece ${i} has shape [${p.shape}], expected [${lead},C] like piece 0`);
    }
  });
  return pieces;
}

/** Shape of the channel concatenation of the pieces. */
export function concatShape(pieces: Info[]): number[] {
  return [...pieces[0].shape.slice(0, -1), pieces.reduce((s, p) => s + lastAxis(p), 0)];
}

/** Channels of a tensor: its last axis. */
export function lastAxis(t: Info): number {
  return t.shape[t.shape.length - 1];
}

/** One output piece of BN_RELU_GRAD: channels [channel, channel + width) of x, which lie in input `piece` from `offset`. */
export interface SplitSegment {
  piece: number;
  offset: number;
  channel: number;
  width: number;
}

/** Where each split of dx lies among the input pieces. */
export function splitSegments(pieces: Info[], splits: number[] | undefined, kernel: string): SplitSegment[] {
  const widths = pieces.map(lastAxis);
  const total = widths.reduce((a, b) => a + b, 0);
  const sizes = splits ?? [total];
  const segments: SplitSegment[] = [];
  let piece = 0;
  let pieceStart = 0;
  let channel = 0;
  for (const width of sizes) {
    while (piece < widths.length && channel >= pieceStart + widths[piece]) pieceStart += widths[piece++];
    if (!Number.isInteger(width) || width <= 0 || piece === widths.length || channel + width > pieceStart + widths[piece]) {
      throw new Error(`${kernel}: splits [${sizes}] must be positive and each lie within one x piece (piece widths [${widths}])`);
    }
    segments.push({ piece, offset: channel - pieceStart, channel, width });
    channel += width;
  }
  if (channel !== total) throw new Error(`${kernel}: splits [${sizes}] add up to ${channel}, expected ${total} channels`);
  return segments;
}

/** The optional acc_j inputs, checked against the split shapes. */
export function accumulators(inputs: InputMap, pieces: Info[], segments: SplitSegment[], kernel: string): Array<Info | undefined> {
  const lead = pieces[0].shape.slice(0, -1);
  return segments.map((s, j) => {
    const acc = inputs[`acc${j}`];
    if (acc && (acc.dtype !== 'float32' || !tf.util.arraysEqual(acc.shape, [...lead, s.width]))) {
      throw new Error(`${kernel}: 'acc${j}' is ${acc.dtype} [${acc.shape}], expected float32 [${[...lead, s.width]}]`);
    }
    return acc;
  });
}

/** The shape dr has for x of `shape`: x's own, or half its height and width for the pooled kernel. */
function drShapeFor(shape: number[], pooled: boolean): number[] {
  return pooled ? [shape[0], shape[1] / 2, shape[2] / 2, shape[3]] : shape;
}

/** Checks the per-channel vectors and dr (when given) against the pieces; returns the channel count. */
export function checkChannelInputs(kernel: string, pieces: Info[], vectors: InputMap, dr?: Info, pooled = false): number {
  const shape = concatShape(pieces);
  if (pooled && (shape.length !== 4 || shape[1] % 2 !== 0 || shape[2] % 2 !== 0)) {
    throw new Error(`${kernel}: x is [${shape}]; the pooled gradient needs NHWC with even height and width`);
  }
  const channels = shape[shape.length - 1];
  for (const [name, v] of Object.entries(vectors)) {
    if (!v || v.dtype !== 'float32' || v.shape.length !== 1 || v.shape[0] !== channels) {
      throw new Error(`${kernel}: '${name}' is ${v ? `${v.dtype} [${v.shape}]` : 'missing'}, expected float32 [${channels}] (the channels of x, [${shape}])`);
    }
  }
  const drShape = drShapeFor(shape, pooled);
  if (dr && (dr.dtype !== 'float32' || !tf.util.arraysEqual(dr.shape, drShape))) {
    throw new Error(`${kernel}: 'dr' is ${dr.dtype} [${dr.shape}], expected float32 [${drShape}] (${pooled ? 'x pooled 2x2' : 'the shape of x'})`);
  }
  return channels;
}

/**
 * The dr row pixel `row` of x reads: itself, or for the pooled kernel the 2x2 window it lies in,
 * for x of height h and width w (0 for the plain kernel).
 */
export function drRowOf(row: number, h: number, w: number): number {
  if (h === 0) return row;
  const image = Math.floor(row / (h * w));
  const at = row - image * h * w;
  const y = Math.floor(at / w);
  const x = at - y * w;
  return (image * (h / 2) + (y >> 1)) * (w / 2) + (x >> 1);
}

/**
 * The inputs of a BN_RELU_GRAD (or BN_RELU_POOLED_GRAD) call, checked: the x pieces, dr and the
 * BatchNorm vectors, the splits and their accumulators; `pooled`: x's height and width (0, 0 when not pooled).
 */
export function bnReluGradInputs(inputs: InputMap, attrs: unknown, kernel: string = BN_RELU_GRAD) {
  const pieces = xPieces(inputs, kernel);
  const { dr, gamma, beta, mean, invStd } = inputs;
  const isPooled = kernel === BN_RELU_POOLED_GRAD;
  const channels = checkChannelInputs(kernel, pieces, { gamma, beta, mean, invStd }, dr, isPooled);
  const segments = splitSegments(pieces, (attrs as BnReluGradAttrs | undefined)?.splits, kernel);
  const accs = accumulators(inputs, pieces, segments, kernel);
  const lead = pieces[0].shape.slice(0, -1);
  const pooled = isPooled ? { h: lead[1], w: lead[2] } : { h: 0, w: 0 };
  return { pieces, dr: dr!, gamma: gamma!, beta: beta!, mean: mean!, invStd: invStd!, channels, segments, accs, lead, pooled };
}

/** How a backend exposes tensor memory to JS. */
interface MemoryAccess {
  /** Allocates every output before any view is taken (a heap that grows would detach earlier views). */
  alloc(shapes: number[][]): Info[];
  view(info: Info): Float32Array;
}

function cpuAccess(backend: unknown): MemoryAccess {
  const b = backend as { makeTensorInfo(shape: number[], dtype: string, values?: Float32Array): Info; data: { get(id: unknown): { values: Float32Array } } };
  return {
    alloc: (shapes) => shapes.map((s) => b.makeTensorInfo(s, 'float32', new Float32Array(tf.util.sizeFromShape(s)))),
    view: (info) => b.data.get(info.dataId).values,
  };
}

/** Calls f(x, channel, index in the concatenation) for every element of the pieces' channel concatenation. */
function forEachConcatElement(m: MemoryAccess, pieces: Info[], channels: number, f: (x: number, channel: number, at: number) => void): void {
  let start = 0;
  for (const piece of pieces) {
    const xv = m.view(piece);
    const width = lastAxis(piece);
    for (let i = 0, o = start; i < xv.length; i += width, o += channels) {
      for (let c = 0; c < width; c++) f(xv[i + c], start + c, o + c);
    }
    start += width;
  }
}

function bnReluKernel(access: (backend: unknown) => MemoryAccess): tf.KernelFunc {
  return ({ inputs, backend }) => {
    const m = access(backend);
    const pieces = xPieces(inputs as InputMap, BN_RELU);
    const { scale, shift } = inputs as InputMap;
    const channels = checkChannelInputs(BN_RELU, pieces, { scale, shift });
    const [out] = m.alloc([concatShape(pieces)]);
    const sv = m.view(scale!);
    const hv = m.view(shift!);
    const ov = m.view(out);
    forEachConcatElement(m, pieces, channels, (x, c, at) => {
      const y = x * sv[c] + hv[c];
      ov[at] = y > 0 ? y : 0;
    });
    return out;
  };
}

/** Sums accumulate in float64; each output value is rounded once, then added to its accumulator. */
function bnReluGradKernel(access: (backend: unknown) => MemoryAccess, kernel: string): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const m = access(backend);
    const { pieces, dr, gamma, beta, mean, invStd, channels, segments, accs, lead, pooled } = bnReluGradInputs(inputs as InputMap, attrs, kernel);
    const drAt = (at: number, c: number) => drRowOf(Math.floor(at / channels), pooled.h, pooled.w) * channels + c;
    const outs = m.alloc([...segments.map((s) => [...lead, s.width]), [channels], [channels]]);
    const dv = m.view(dr);
    const gv = m.view(gamma);
    const bv = m.view(beta);
    const mv = m.view(mean);
    const iv = m.view(invStd);
    const scale = new Float64Array(channels);
    const shift = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      scale[c] = gv[c] * iv[c];
      shift[c] = bv[c] - mv[c] * scale[c];
    }
    const sumDy = new Float64Array(channels);
    const sumDyX = new Float64Array(channels);
    forEachConcatElement(m, pieces, channels, (x, c, at) => {
      if (x * scale[c] + shift[c] > 0) {
        const d = dv[drAt(at, c)];
        sumDy[c] += d;
        sumDyX[c] += d * x;
      }
    });
    const count = tf.util.sizeFromShape(lead);
    const a = new Float64Array(channels);
    const b = new Float64Array(channels);
    const dgv = m.view(outs[segments.length]);
    const dbv = m.view(outs[segments.length + 1]);
    for (let c = 0; c < channels; c++) {
      const g = iv[c] * (sumDyX[c] - mv[c] * sumDy[c]);
      dgv[c] = g;
      dbv[c] = sumDy[c];
      const gOverM = (g * iv[c]) / count;
      a[c] = -scale[c] * gOverM;
      b[c] = scale[c] * (mv[c] * gOverM - sumDy[c] / count);
    }
    segments.forEach((s, j) => {
      const xv = m.view(pieces[s.piece]);
      const xWidth = lastAxis(pieces[s.piece]);
      const out = m.view(outs[j]);
      const acc = accs[j] ? m.view(accs[j]!) : null;
      for (let row = 0; row < count; row++) {
        for (let c = 0; c < s.width; c++) {
          const k = s.channel + c;
          const xi = xv[row * xWidth + s.offset + c];
          const dy = xi * scale[k] + shift[k] > 0 ? dv[drRowOf(row, pooled.h, pooled.w) * channels + k] : 0;
          const v = Math.fround(dy * scale[k] + xi * a[k] + b[k]);
          out[row * s.width + c] = acc ? acc[row * s.width + c] + v : v;
        }
      }
    });
    return outs;
  };
}

/** Registers the JS fused kernels for the cpu backend (idempotent). */
export function registerFusedKernels(): void {
  const kernels: Array<[string, tf.KernelFunc]> = [
    [BN_RELU, bnReluKernel(cpuAccess)],
    [BN_RELU_GRAD, bnReluGradKernel(cpuAccess, BN_RELU_GRAD)],
    [BN_RELU_POOLED_GRAD, bnReluGradKernel(cpuAccess, BN_RELU_POOLED_GRAD)],
  ];
  for (const [kernelName, kernelFunc] of kernels) {
    if (!tf.getKernel(kernelName, 'cpu')) tf.registerKernel({ kernelName, backendName: 'cpu', kernelFunc });
  }
}

export function hasFusedKernels(): boolean {
  return hasKernel(BN_RELU_GRAD);
}

/** Whether the current backend registers `kernelName`. */
export function hasKernel(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) != null;
}

/**
 * Gradient of the forward kernel, for autodiff through inference-mode layers (saliency maps,
 * input gradients); training uses the layers' own backward instead.
 */
function registerBnReluGradient(): void {
  if (tf.getGradient(BN_RELU)) return;
  tf.registerGradient({
    kernelName: BN_RELU,
    inputsToSave: ['x', 'scale'],
    outputsToSave: [true],
    gradFunc: (dy, saved) => {
      const [x, scale, r] = saved;
      const masked = () => tf.mul(dy as tf.Tensor, tf.step(r));
      return {
        x: () => tf.mul(masked(), scale),
        scale: () => tf.sum(tf.mul(masked(), x), [0, 1, 2]),
        shift: () => tf.sum(masked(), [0, 1, 2]),
      };
    },
  });
}

registerFusedKernels();
registerBnReluGradient();
