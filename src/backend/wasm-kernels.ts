// Training kernels for the WebAssembly backend.
//
// tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel at all; its
// Conv2DBackpropInput and transposed/batched BatchMatMul are naive C++ loops ten
// times slower than XNNPACK; its MaxPoolGrad is wrong for windows of values <= 0;
// and several kernels that every training step runs copy far more than needed.
// The replacements, registered for 'wasm' by registerWasmGradientKernels():
//
// - Conv2DBackpropInput: a forward XNNPACK conv of dy with the spatially flipped,
//   in/out-swapped filter. A strided conv splits into stride^2 phases (each a
//   stride-1 conv with every stride-th tap, interleaved): the same sums as
//   dilating dy with zeros first, without multiplying by the zeros. 1x1: a matmul.
// - Conv2DBackpropFilter: the "conv trick", a forward conv over the transposed
//   input [Ci,H,W,N] with the transposed gradient [OH,OW,N,Co] as filter, dilated
//   by the stride. 1x1: a matmul over pixels, in cache-sized blocks.
// - BatchMatMul: explicit transposes (of whichever side is cheaper), then the
//   single-batch XNNPACK matmul (a's batch folded into rows when b is shared).
// - MaxPoolGrad: a direct loop that matches the cpu backend.
// - Tile, Sum/Mean over leading axes, Slice, SplitV, Concat: loops over heap
//   views instead of per-element index arithmetic, transposes or whole-tensor
//   copies. Identity and same-type Cast share the buffer instead of copying it;
//   Cast to bool is x != 0 (wasm's own turns 0.5 into false).
// - The gradients of Sum and Mean broadcast dy (Tile) on wasm instead of
//   multiplying it by a ones tensor built in JavaScript.
//
// Kernels compose other wasm kernels by calling their kernelFunc directly on
// backend-level TensorInfos; every intermediate is released with
// backend.disposeData (see Scratch), so nothing leaks.
import * as tf from '../tf';

type TensorInfo = tf.TensorInfo;
type Shape4 = [number, number, number, number];
type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];

/** The part of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmBackendLike {
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  incRef(dataId: tf.DataId): void;
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): tf.TypedArray;
}

const WASM = 'wasm';
const CONV2D = 'Conv2D';
const CONV2D_BACKPROP_INPUT = 'Conv2DBackpropInput';
const CONV2D_BACKPROP_FILTER = 'Conv2DBackpropFilter';
const BATCH_MAT_MUL = 'BatchMatMul';
const MAX_POOL_GRAD = 'MaxPoolGrad';
const TILE = 'Tile';
const SUM = 'Sum';
const MEAN = 'Mean';
const IDENTITY = 'Identity';
const CAST = 'Cast';
const SLICE = 'Slice';
const SPLIT_V = 'SplitV';
const CONCAT = 'Concat';

/** wasm kernels as registered before ours replaced them (for fallbacks and the plain matmul). */
const originals = new Map<string, tf.KernelConfig>();
/** Kernel functions defined here, to recognise our own registrations (idempotence). */
const ours = new Set<tf.KernelFunc>();

/** tfjs's gradients of Sum and Mean, and ours that replace them. */
const originalGrads = new Map<string, tf.GradConfig>();
const ourGrads = new Set<tf.GradFunc>();

function missing(name: string): Error {
  return new Error(`wasm-kernels: the wasm backend has no '${name}' kernel, which these kernels need`);
}

/** tfjs's own wasm kernel `name`, even where ours replaced it: for fallbacks. */
function wasmKernel(name: string): tf.KernelConfig {
  const config = originals.get(name) ?? tf.getKernel(name, WASM);
  if (!config) throw missing(name);
  return config;
}

/** The wasm kernel `name` as registered now (ours where we replaced it): for building blocks. */
function currentKernel(name: string): tf.KernelConfig {
  const config = tf.getKernel(name, WASM);
  if (!config) throw missing(name);
  return config;
}

/** dst[dstAt, +len) = src[srcAt, +len). Short runs go element by element: a subarray costs more than it saves. */
function copyRun(src: Float32Array, srcAt: number, dst: Float32Array, dstAt: number, len: number): void {
  if (len >= 64) {
    dst.set(src.subarray(srcAt, srcAt + len), dstAt);
    return;
  }
  for (let i = 0; i < len; i++) dst[dstAt + i] = src[srcAt + i];
}

/**
 * Channel-style concatenation on flat arrays: row r of the result is row r of
 * each part in turn (`widths[i]` elements each). One pass over the rows, so many
 * narrow parts (DenseNet concatenates every earlier layer's k maps) stay cheap.
 */
function joinRows(parts: Float32Array[], widths: number[], rows: number, dst: Float32Array): void {
  const total = widths.reduce((a, b) => a + b, 0);
  for (let r = 0; r < rows; r++) {
    let at = r * total;
    for (let i = 0; i < parts.length; i++) {
      const w = widths[i];
      const src = parts[i];
      const from = r * w;
      if (w >= 64) dst.set(src.subarray(from, from + w), at);
      else for (let j = 0; j < w; j++) dst[at + j] = src[from + j];
      at += w;
    }
  }
}

/** The inverse of joinRows: row r of `src` is cut into `widths` and appended to each part. */
function splitRows(src: Float32Array, parts: Float32Array[], widths: number[], rows: number): void {
  const total = widths.reduce((a, b) => a + b, 0);
  for (let r = 0; r < rows; r++) {
    let at = r * total;
    for (let i = 0; i < parts.length; i++) {
      const w = widths[i];
      const dst = parts[i];
      const to = r * w;
      if (w >= 64) dst.set(src.subarray(at, at + w), to);
      else for (let j = 0; j < w; j++) dst[to + j] = src[at + j];
      at += w;
    }
  }
}

/**
 * x[begin : begin+size] for numeric x, copied through heap views in runs as long
 * as the slice allows. (wasm's own Slice first copies all of x out of the heap,
 * which makes every slice, and every SplitV piece, cost the whole tensor.)
 */
function sliceHeap(backend: WasmBackendLike, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const rank = x.shape.length;
  const out = backend.makeOutput(size, x.dtype);
  if (product(size) === 0) return out;
  // Same element type on both sides (float32, int32 or bool bytes): plain copies.
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  const strides = x.shape.map((_, i) => product(x.shape.slice(i + 1)));
  // Trailing axes taken whole merge into one contiguous run with the axis before them.
  let d = rank - 1;
  while (d > 0 && size[d] === x.shape[d]) d--;
  const run = size[d] * strides[d];
  const outer = product(size.slice(0, d));
  if (begin.slice(0, d).every((b, j) => b === 0 && size[j] === x.shape[j])) {
    // Whole leading axes (a split along the channels): evenly strided runs.
    const rowStride = x.shape[d] * strides[d];
    const first = begin[d] * strides[d];
    for (let r = 0; r < outer; r++) copyRun(src, r * rowStride + first, dst, r * run, run);
    return out;
  }
  const index = new Array<number>(d).fill(0);
  for (let r = 0; r < outer; r++) {
    let from = begin[d] * strides[d];
    for (let j = 0; j < d; j++) from += (begin[j] + index[j]) * strides[j];
    copyRun(src, from, dst, r * run, run);
    for (let j = d - 1; j >= 0 && ++index[j] === size[j]; j--) index[j] = 0;
  }
  return out;
}

/**
 * Runs wasm kernels on behalf of one of our kernels and frees every intermediate
 * except the result it finally returns (also on error).
 */
class Scratch {
  private readonly made: TensorInfo[] = [];

  constructor(readonly backend: WasmBackendLike) {}

  /** Runs kernel `name`, tfjs's own one when `stock` (ours would recurse), else the registered one. */
  run(name: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}, stock = false): TensorInfo {
    const kernel = stock ? wasmKernel(name) : currentKernel(name);
    const out = kernel.kernelFunc({ inputs, backend: this.backend, attrs });
    if (Array.isArray(out)) throw new Error(`wasm-kernels: kernel '${name}' returned ${out.length} outputs, expected one`);
    this.made.push(out);
    return out;
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  /** tfjs's plain (un-transposed) matmul of [B,M,K] x [B,K,N]; single-batch calls reach XNNPACK. */
  matmul(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run(BATCH_MAT_MUL, { a, b }, { transposeA: false, transposeB: false }, true);
  }

  conv(x: TensorInfo, filter: TensorInfo, pad: ExplicitPad, dilations: [number, number] = [1, 1]): TensorInfo {
    return this.run(CONV2D, { x, filter }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations });
  }

  slice(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    const out = sliceHeap(this.backend, x, begin, size);
    this.made.push(out);
    return out;
  }

  /** A new uninitialised float32 tensor. */
  output(shape: number[]): TensorInfo {
    const out = this.backend.makeOutput(shape, 'float32');
    this.made.push(out);
    return out;
  }

  /** Float32 view of a tensor in the wasm heap; invalid after the next allocation. */
  view(t: TensorInfo): Float32Array {
    return this.backend.typedArrayFromHeap(t) as Float32Array;
  }

  release(keep?: TensorInfo): void {
    for (const t of this.made) if (t !== keep) this.backend.disposeData(t.dataId);
    this.made.length = 0;
  }
}

function withScratch(backend: unknown, body: (s: Scratch) => TensorInfo): TensorInfo {
  const s = new Scratch(backend as WasmBackendLike);
  let result: TensorInfo | undefined;
  try {
    result = body(s);
    return result;
  } finally {
    s.release(result);
  }
}

function product(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

/** Geometry of a 2-D convolution in NHWC, as tfjs computes it (padding, output size). */
function convGeometry(
  xShape: Shape4, filterShape: Shape4, strides: number | [number, number], pad: unknown, roundingMode: unknown,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape, filterShape, strides, 1, pad as 'same', roundingMode as 'floor' | undefined, false, 'channelsLast',
  );
}

function isPointwise(info: tf.backend_util.Conv2DInfo): boolean {
  const p = info.padInfo;
  return info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 && info.strideWidth === 1 &&
    p.top === 0 && p.bottom === 0 && p.left === 0 && p.right === 0;
}

/**
 * Crops rows/columns off the bottom/right of `x` [N,H,W,C] where a padding came
 * out negative (those rows never reach the output), so a conv can take the rest.
 */
function cropForPad(s: Scratch, x: TensorInfo, padBottom: number, padRight: number): TensorInfo {
  if (padBottom >= 0 && padRight >= 0) return x;
  const [n, h, w, c] = x.shape;
  return s.slice(x, [0, 0, 0, 0], [n, h + Math.min(padBottom, 0), w + Math.min(padRight, 0), c]);
}

// ---------------------------------------------------------------------------
// Matrix products on XNNPACK

/** Reduction rows per chunk times the wider operand's columns: about 512 KB, to stay in cache. */
const CHUNK_FLOATS = 1 << 17;

/**
 * op(a) op(b) for single matrices a, b [1, rows, cols], where op transposes when
 * asked. XNNPACK only multiplies plain matrices, so transposes are explicit; the
 * wasm Transpose is slow, so this either transposes the flagged operands or
 * computes (op(b)^T op(a)^T)^T, whichever moves fewer elements.
 */
function matmul2D(s: Scratch, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): TensorInfo {
  const t = (x: TensorInfo): TensorInfo => s.transpose(x, [0, 2, 1]);
  const [m, k] = transposeA ? [a.shape[2], a.shape[1]] : [a.shape[1], a.shape[2]];
  const n = transposeB ? b.shape[1] : b.shape[2];
  if (transposeA && !transposeB && k > 2 * Math.floor(CHUNK_FLOATS / Math.max(m, n))) return matmulTNChunked(s, a, b);
  const direct = (transposeA ? m * k : 0) + (transposeB ? k * n : 0);
  const swapped = (transposeA ? 0 : m * k) + (transposeB ? 0 : k * n) + m * n;
  if (direct <= swapped) return s.matmul(transposeA ? t(a) : a, transposeB ? t(b) : b);
  return t(s.matmul(transposeB ? b : t(b), transposeA ? a : t(a)));
}

/**
 * a^T b for a [1,K,M], b [1,K,N] with a long reduction K (weight gradients sum
 * over batch x pixels). Whole, both the transpose and XNNPACK's packing of its
 * "weights" operand stride through megabytes and miss the cache on every row;
 * cut into row blocks of about CHUNK_FLOATS they stay in cache, and the partial
 * products are summed.
 */
function matmulTNChunked(s: Scratch, a: TensorInfo, b: TensorInfo): TensorInfo {
  const [, k, m] = a.shape;
  const n = b.shape[2];
  const rows = Math.max(64, Math.floor(CHUNK_FLOATS / Math.max(m, n)));
  const partials: TensorInfo[] = [];
  for (let start = 0; start < k; start += rows) {
    const count = Math.min(rows, k - start);
    const ac = s.slice(a, [0, start, 0], [1, count, m]);
    const bc = s.slice(b, [0, start, 0], [1, count, n]);
    partials.push(matmul2D(s, ac, bc, true, false));
  }
  return s.run('AddN', partials as unknown as tf.NamedTensorInfoMap);
}

// ---------------------------------------------------------------------------
// Conv2DBackpropInput

/** dx of a 1x1 stride-1 conv: dy [M,Co] x filter^T [Co,Ci]. */
function pointwiseInputGrad(s: Scratch, dy: TensorInfo, filter: TensorInfo, inShape: number[]): TensorInfo {
  const [ci, co] = [filter.shape[2], filter.shape[3]];
  const dy3 = s.reshape(dy, [1, product(dy.shape) / co, co]);
  return s.reshape(matmul2D(s, dy3, s.reshape(filter, [1, ci, co]), false, true), inShape);
}

/** One output phase of a strided input gradient: rows a, a+s, a+2s, ... of dx. */
interface Phase {
  /** First tap of the flipped filter that reaches these rows, and how many taps (every s-th). */
  firstTap: number;
  taps: number;
  /** Explicit conv padding before/after dy (negative: rows of dy to skip). */
  before: number;
  after: number;
}

/**
 * dx[h] = sum_k dyDilated[h + k - T] Wflip[k] with T = K-1-padBefore, where dyDilated
 * has s-1 zeros between rows. For h = q*s + a only the taps k = c_a + s*j with
 * c_a = (T - a) mod s meet non-zeros, at dy[q + j + off_a], off_a = (a + c_a - T)/s:
 * a stride-1 correlation of dy with every s-th tap. Each phase produces `outCount`
 * rows so phases interleave evenly (extra rows are cut off afterwards).
 */
function phase(a: number, stride: number, kernel: number, padBefore: number, dyLength: number, outCount: number): Phase {
  const t = kernel - 1 - padBefore;
  const firstTap = (((t - a) % stride) + stride) % stride;
  const taps = Math.max(0, Math.ceil((kernel - firstTap) / stride));
  const offset = (a + firstTap - t) / stride;
  return { firstTap, taps, before: -offset, after: outCount + taps - 1 + offset - dyLength };
}

/** Conv of dy with one phase's taps of the flipped filter: [N,Qh,Qw,Ci], or null where no tap reaches. */
function phaseConv(
  s: Scratch, dy: TensorInfo, flipped: TensorInfo, ph: Phase, pw: Phase, strides: [number, number],
): TensorInfo | null {
  const [n, oh, ow, co] = dy.shape;
  const [kh, kw, , ci] = flipped.shape;
  const skipTop = Math.max(-ph.before, 0);
  const skipLeft = Math.max(-pw.before, 0);
  const rows = oh - skipTop - Math.max(-ph.after, 0);
  const cols = ow - skipLeft - Math.max(-pw.after, 0);
  if (ph.taps === 0 || pw.taps === 0 || rows <= 0 || cols <= 0) return null;
  const src = rows === oh && cols === ow ? dy : s.slice(dy, [0, skipTop, skipLeft, 0], [n, rows, cols, co]);
  const taps = ph.taps === kh && pw.taps === kw ? flipped : s.run('StridedSlice', { x: flipped }, {
    begin: [ph.firstTap, pw.firstTap, 0, 0], end: [kh, kw, co, ci], strides: [strides[0], strides[1], 1, 1],
    beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0,
  });
  return s.conv(src, taps, [[0, 0], [Math.max(ph.before, 0), Math.max(ph.after, 0)], [Math.max(pw.before, 0), Math.max(pw.after, 0)], [0, 0]]);
}

/**
 * dx of a general conv as forward convs of dy with the spatially flipped,
 * in/out-swapped filter. A stride-s conv splits into s*s phases (sub-pixel
 * decomposition), each a stride-1 conv with every s-th tap, which does the work of
 * "dilate dy with zeros, then conv" without multiplying by the zeros.
 */
function convInputGrad(s: Scratch, dy: TensorInfo, filter: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { filterHeight: kh, filterWidth: kw, inHeight, inWidth, strideHeight: sh, strideWidth: sw } = info;
  const flipped = s.transpose(s.run('Reverse', { x: filter }, { dims: [0, 1] }), [0, 1, 3, 2]);
  const qh = Math.ceil(inHeight / sh);
  const qw = Math.ceil(inWidth / sw);
  const grid: (TensorInfo | null)[][] = [];
  for (let a = 0; a < sh; a++) {
    const ph = phase(a, sh, kh, info.padInfo.top, dy.shape[1], qh);
    const row: (TensorInfo | null)[] = [];
    for (let b = 0; b < sw; b++) {
      row.push(phaseConv(s, dy, flipped, ph, phase(b, sw, kw, info.padInfo.left, dy.shape[2], qw), [sh, sw]));
    }
    grid.push(row);
  }
  if (sh === 1 && sw === 1 && grid[0][0]) return grid[0][0];
  return interleave(s, grid, [info.batchSize, inHeight, inWidth, info.inChannels]);
}

/** dx[n, q*sh+a, p*sw+b, c] = grid[a][b][n, q, p, c] (zero where grid[a][b] is null), cut to `shape`. */
function interleave(s: Scratch, grid: (TensorInfo | null)[][], shape: Shape4): TensorInfo {
  const [n, h, w, c] = shape;
  const sh = grid.length;
  const sw = grid[0].length;
  const out = s.output(shape);
  // Views into the wasm heap: taken after the last allocation, which may move it.
  const dst = s.view(out);
  for (let a = 0; a < sh; a++) {
    for (let b = 0; b < sw; b++) {
      const part = grid[a][b];
      const src = part ? s.view(part) : null;
      const [qh, qw] = part ? [part.shape[1], part.shape[2]] : [0, 0];
      for (let i = 0; i < n; i++) {
        for (let q = 0, y = a; y < h; q++, y += sh) {
          for (let p = 0, x = b; x < w; p++, x += sw) {
            const o = ((i * h + y) * w + x) * c;
            if (!src) {
              dst.fill(0, o, o + c);
              continue;
            }
            const from = ((i * qh + q) * qw + p) * c;
            for (let k = 0; k < c; k++) dst[o + k] = src[from + k];
          }
        }
      }
    }
  }
  return out;
}

function conv2DBackpropInput(args: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const a = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const nchw = a.dataFormat === 'NCHW';
  const info = convGeometry(
    nchw ? [a.inputShape[0], a.inputShape[2], a.inputShape[3], a.inputShape[1]] : a.inputShape as Shape4,
    filter.shape as Shape4, a.strides, a.pad, a.dimRoundingMode,
  );
  // A padding larger than the filter (explicit pads only) leaves no valid flipped conv.
  const exotic = info.padInfo.top > info.filterHeight - 1 || info.padInfo.left > info.filterWidth - 1;
  if (nchw || exotic || dy.dtype !== 'float32') {
    return wasmKernel(CONV2D_BACKPROP_INPUT).kernelFunc(args) as TensorInfo;
  }
  return withScratch(backend, (s) => isPointwise(info)
    ? pointwiseInputGrad(s, dy, filter, a.inputShape)
    : convInputGrad(s, dy, filter, info));
}

// ---------------------------------------------------------------------------
// Conv2DBackpropFilter

/** dW of a 1x1 stride-1 conv: x^T dy over all pixels. */
function pointwiseFilterGrad(s: Scratch, x: TensorInfo, dy: TensorInfo, filterShape: number[]): TensorInfo {
  const ci = x.shape[3];
  const co = dy.shape[3];
  const m = product(x.shape) / ci;
  return s.reshape(matmul2D(s, s.reshape(x, [1, m, ci]), s.reshape(dy, [1, m, co]), true, false), filterShape);
}

/**
 * dW[kh,kw,ci,co] = sum_{n,oh,ow} x[n, oh*s+kh-top, ow*s+kw-left, ci] dy[n,oh,ow,co]
 * is a stride-1 conv of x^T [Ci,H,W,N] with dy^T [OH,OW,N,Co] dilated by s: its
 * output [Ci,KH,KW,Co] is dW up to a transpose.
 */
function convFilterGrad(s: Scratch, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { filterHeight: kh, filterWidth: kw, inHeight, inWidth, outHeight, outWidth, strideHeight: sh, strideWidth: sw } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const bottom = kh + (outHeight - 1) * sh - top - inHeight;
  const right = kw + (outWidth - 1) * sw - left - inWidth;
  const xc = cropForPad(s, x, bottom, right);
  const xT = s.transpose(xc, [3, 1, 2, 0]);
  const dyT = s.transpose(dy, [1, 2, 0, 3]);
  const out = s.conv(xT, dyT, [[0, 0], [top, Math.max(bottom, 0)], [left, Math.max(right, 0)], [0, 0]], [sh, sw]);
  return s.transpose(out, [1, 2, 0, 3]);
}

function conv2DBackpropFilter(args: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') {
    throw new Error(`wasm Conv2DBackpropFilter: x and dy must be float32, got ${x.dtype} and ${dy.dtype}`);
  }
  return withScratch(backend, (s) => {
    const nchw = a.dataFormat === 'NCHW';
    const xs = nchw ? s.transpose(x, [0, 2, 3, 1]) : x;
    const dys = nchw ? s.transpose(dy, [0, 2, 3, 1]) : dy;
    const info = convGeometry(xs.shape as Shape4, a.filterShape as Shape4, a.strides, a.pad, a.dimRoundingMode);
    if (dys.shape[1] !== info.outHeight || dys.shape[2] !== info.outWidth || dys.shape[3] !== info.outChannels) {
      throw new Error(
        `wasm Conv2DBackpropFilter: dy has shape [${dy.shape}], expected [${info.outShape}] for x [${x.shape}] ` +
          `and filter [${a.filterShape}]`,
      );
    }
    return isPointwise(info) ? pointwiseFilterGrad(s, xs, dys, a.filterShape) : convFilterGrad(s, xs, dys, info);
  });
}

// ---------------------------------------------------------------------------
// BatchMatMul

/** Per-batch products at least this large (multiply-adds) go to XNNPACK one by one. */
const SPLIT_MIN_MACS = 1 << 17;

/** Index of batch `i` of an output with outer shape `outDims` in an input with outer shape `dims` (broadcast). */
function broadcastIndex(i: number, outDims: number[], dims: number[]): number {
  let index = 0;
  let stride = 1;
  for (let d = outDims.length - 1, e = dims.length - 1; d >= 0; d--, e--) {
    const coord = Math.floor(i / product(outDims.slice(d + 1))) % outDims[d];
    if (e >= 0) {
      if (dims[e] !== 1) index += coord * stride;
      stride *= dims[e];
    }
  }
  return index;
}

function batchMatMul(args: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return wasmKernel(BATCH_MAT_MUL).kernelFunc(args) as TensorInfo;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const aDims = a.shape.slice(0, -2);
  const bDims = b.shape.slice(0, -2);
  const outDims = tf.broadcast_util.assertAndGetBroadcastShape(aDims, bDims);
  const [m, k] = transposeA ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
  const [kb, n] = transposeB ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
  if (k !== kb) {
    throw new Error(
      `matMul: inner dimensions differ: a [${a.shape}] (transposeA=${transposeA}) has ${k}, ` +
        `b [${b.shape}] (transposeB=${transposeB}) has ${kb}`,
    );
  }
  const aBatch = product(aDims);
  const bBatch = product(bDims);
  const outBatch = product(outDims);
  const outShape = [...outDims, m, n];
  return withScratch(backend, (s) => {
    const a3 = s.reshape(a, [aBatch, a.shape[ra - 2], a.shape[ra - 1]]);
    const b3 = s.reshape(b, [bBatch, b.shape[rb - 2], b.shape[rb - 1]]);
    if (aBatch === 1 && bBatch === 1) return s.reshape(matmul2D(s, a3, b3, transposeA, transposeB), outShape);
    const aN = transposeA ? s.transpose(a3, [0, 2, 1]) : a3;
    const bN = transposeB ? s.transpose(b3, [0, 2, 1]) : b3;
    if (bBatch === 1) {
      // One shared b: all of a's rows go through one XNNPACK call.
      return s.reshape(s.matmul(s.reshape(aN, [1, aBatch * m, k]), bN), outShape);
    }
    if (aBatch === bBatch && m * n * k < SPLIT_MIN_MACS) {
      return s.reshape(s.matmul(aN, bN), outShape);
    }
    const parts: TensorInfo[] = [];
    for (let i = 0; i < outBatch; i++) {
      const ai = aBatch === 1 ? aN : s.slice(aN, [broadcastIndex(i, outDims, aDims), 0, 0], [1, m, k]);
      const bi = s.slice(bN, [broadcastIndex(i, outDims, bDims), 0, 0], [1, k, n]);
      parts.push(s.matmul(ai, bi));
    }
    const joined = parts.length === 1 ? parts[0] : s.run('Concat', parts as unknown as tf.NamedTensorInfoMap, { axis: 0 });
    return s.reshape(joined, outShape);
  });
}

// ---------------------------------------------------------------------------
// MaxPoolGrad

/**
 * wasm's MaxPoolGrad starts each window's running max at FLT_MIN (the smallest
 * positive float) rather than -inf: a window of values <= 0 (all-negative input,
 * or the zeros after a ReLU) sends its gradient to element 0 of the tensor. This
 * one routes each window's gradient to its first maximum among the real (unpadded)
 * inputs, as the cpu backend does, through heap views with channels innermost.
 */
function maxPoolGrad(args: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const a = attrs as unknown as tf.MaxPoolGradAttrs;
  if (input.dtype !== 'float32') throw new Error(`wasm MaxPoolGrad: input must be float32, got ${input.dtype}`);
  const info = tf.backend_util.computePool2DInfo(
    input.shape as Shape4, a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode as 'floor' | undefined,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info;
  const wasm = backend as WasmBackendLike;
  const dx = wasm.makeOutput(input.shape, 'float32');
  const x = wasm.typedArrayFromHeap(input) as Float32Array;
  const g = wasm.typedArrayFromHeap(dy) as Float32Array;
  const out = wasm.typedArrayFromHeap(dx) as Float32Array;
  out.fill(0);
  const best = new Float32Array(c);
  const where = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * sh - info.padInfo.top;
      for (let ox = 0; ox < ow; ox++) {
        const x0 = ox * sw - info.padInfo.left;
        best.fill(-Infinity);
        where.fill(-1);
        for (let fy = 0; fy < fh; fy += dh) {
          const y = y0 + fy;
          if (y < 0 || y >= h) continue;
          for (let fx = 0; fx < fw; fx += dw) {
            const xx = x0 + fx;
            if (xx < 0 || xx >= w) continue;
            const base = ((b * h + y) * w + xx) * c;
            for (let k = 0; k < c; k++) {
              const v = x[base + k];
              if (v > best[k]) {
                best[k] = v;
                where[k] = base + k;
              }
            }
          }
        }
        const o = ((b * oh + oy) * ow + ox) * c;
        for (let k = 0; k < c; k++) if (where[k] >= 0) out[where[k]] += g[o + k];
      }
    }
  }
  return dx;
}

// ---------------------------------------------------------------------------
// Tile, Sum, Mean: the batch-norm and broadcast gradients

/**
 * Repeats x along each axis. wasm's Tile computes every output index separately
 * (about 100x slower than a copy; batchNorm's gradient tiles the per-channel
 * scale to the full activation shape). Here each axis, innermost first, copies
 * whole blocks: a block of the output is built once, then duplicated.
 */
function tile(args: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as { x: TensorInfo };
  const { reps } = attrs as unknown as tf.TileAttrs;
  if (x.dtype === 'string') return wasmKernel(TILE).kernelFunc(args) as TensorInfo;
  const wasm = backend as WasmBackendLike;
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const out = wasm.makeOutput(outShape, x.dtype);
  if (product(outShape) === 0) return out;
  // Same element type on both sides (float32, int32 or bool bytes): plain copies.
  const src = wasm.typedArrayFromHeap(x) as Float32Array;
  const dst = wasm.typedArrayFromHeap(out) as Float32Array;
  const rank = x.shape.length;
  // Size of one output block below axis d (axes d+1.. fully tiled) and one input block.
  const outBlock = (d: number): number => product(outShape.slice(d + 1));
  const inBlock = (d: number): number => product(x.shape.slice(d + 1));
  const fill = (d: number, srcOff: number, dstOff: number): void => {
    const n = x.shape[d];
    if (d === rank - 1) {
      if (n === 1) dst.fill(src[srcOff], dstOff, dstOff + reps[d]);
      else for (let r = 0; r < reps[d]; r++) dst.set(src.subarray(srcOff, srcOff + n), dstOff + r * n);
      return;
    }
    const inner = outBlock(d);
    for (let i = 0; i < n; i++) fill(d + 1, srcOff + i * inBlock(d), dstOff + i * inner);
    // Duplicate the finished n*inner block reps-1 times, doubling the copied span.
    const span = n * inner;
    for (let done = 1; done < reps[d];) {
      const count = Math.min(done, reps[d] - done);
      dst.copyWithin(dstOff + done * span, dstOff, dstOff + count * span);
      done += count;
    }
  };
  fill(0, 0, 0);
  return out;
}

/** Normalised reduction axes when they form one block that excludes the last axis, else null. */
function outerReduction(shape: number[], axis: number | number[]): { p: number; r: number; q: number } | null {
  const axes = tf.util.parseAxisParam(axis, shape).sort((a, b) => a - b);
  if (axes.length === 0 || axes[axes.length - 1] === shape.length - 1) return null;
  if (axes.some((a, i) => i > 0 && a !== axes[i - 1] + 1)) return null;
  const first = axes[0];
  const last = axes[axes.length - 1];
  return {
    p: product(shape.slice(0, first)), r: product(shape.slice(first, last + 1)), q: product(shape.slice(last + 1)),
  };
}

/**
 * Sum (or mean) over a block of axes that are not innermost, e.g. the [0,1,2] of
 * an NHWC gradient: wasm transposes the whole tensor first to reduce innermost.
 * This walks x once as [P,R,Q] with float64 accumulators.
 */
function reduceOuter(args: Parameters<tf.KernelFunc>[0], kernelName: string, divide: boolean): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as { x: TensorInfo };
  const { axis, keepDims } = attrs as unknown as tf.SumAttrs;
  const block = x.dtype === 'float32' ? outerReduction(x.shape, axis) : null;
  if (!block) return wasmKernel(kernelName).kernelFunc(args) as TensorInfo;
  const axes = tf.util.parseAxisParam(axis, x.shape);
  const outShape = keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
  const wasm = backend as WasmBackendLike;
  const out = wasm.makeOutput(outShape, 'float32');
  const src = wasm.typedArrayFromHeap(x) as Float32Array;
  const dst = wasm.typedArrayFromHeap(out) as Float32Array;
  const { p, r, q } = block;
  const acc = new Float64Array(q);
  const scale = divide ? 1 / r : 1;
  for (let i = 0; i < p; i++) {
    acc.fill(0);
    let j = 0;
    // Four rows per pass: a quarter of the accumulator traffic.
    for (; j + 4 <= r; j += 4) {
      const b0 = (i * r + j) * q;
      const b1 = b0 + q;
      const b2 = b1 + q;
      const b3 = b2 + q;
      for (let k = 0; k < q; k++) acc[k] += (src[b0 + k] + src[b1 + k]) + (src[b2 + k] + src[b3 + k]);
    }
    for (; j < r; j++) {
      const base = (i * r + j) * q;
      for (let k = 0; k < q; k++) acc[k] += src[base + k];
    }
    for (let k = 0; k < q; k++) dst[i * q + k] = acc[k] * scale;
  }
  return out;
}

function sum(args: Parameters<tf.KernelFunc>[0]): TensorInfo {
  return reduceOuter(args, SUM, false);
}

function mean(args: Parameters<tf.KernelFunc>[0]): TensorInfo {
  return reduceOuter(args, MEAN, true);
}

// ---------------------------------------------------------------------------
// Identity and Cast: aliases, not copies

/**
 * The engine clones every tensor it saves for the backward pass through Identity,
 * and many gradients cast float32 to float32; wasm copies the data both times.
 * tfjs tensors are immutable, so (like the cpu backend) these share the buffer
 * and bump its reference count.
 */
function alias(args: Parameters<tf.KernelFunc>[0], kernelName: string): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as { x: TensorInfo };
  const dtype = (attrs as { dtype?: tf.DataType } | undefined)?.dtype ?? x.dtype;
  if (x.dtype === 'string' || dtype !== x.dtype) return wasmKernel(kernelName).kernelFunc(args) as TensorInfo;
  (backend as WasmBackendLike).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
}

function identity(args: Parameters<tf.KernelFunc>[0]): TensorInfo {
  return alias(args, IDENTITY);
}

/**
 * Same-type casts share the buffer. Casting numbers to bool is x != 0 (wasm's own
 * Cast copies through a Uint8Array, so 0.5 becomes false and 2 stays 2).
 */
function cast(args: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as { x: TensorInfo };
  const { dtype } = attrs as unknown as tf.CastAttrs;
  if (dtype !== 'bool' || x.dtype === 'bool' || x.dtype === 'string') return alias(args, CAST);
  const wasm = backend as WasmBackendLike;
  const out = wasm.makeOutput(x.shape, 'bool');
  const src = wasm.typedArrayFromHeap(x);
  const dst = wasm.typedArrayFromHeap(out);
  for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0;
  return out;
}

// ---------------------------------------------------------------------------
// Slice, SplitV (the gradient of concat) and Concat

function slice(args: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as { x: TensorInfo };
  const { begin, size } = attrs as unknown as tf.SliceAttrs;
  if (x.dtype === 'string') return wasmKernel(SLICE).kernelFunc(args) as TensorInfo;
  const [b, sz] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, begin, size);
  tf.slice_util.assertParamsValid(x as unknown as tf.Tensor, b, sz);
  return sliceHeap(backend as WasmBackendLike, x, b, sz);
}

function splitV(args: Parameters<tf.KernelFunc>[0]): TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as { x: TensorInfo };
  const { numOrSizeSplits, axis } = attrs as unknown as tf.SplitVAttrs;
  if (x.dtype === 'string') return wasmKernel(SPLIT_V).kernelFunc(args) as TensorInfo[];
  const at = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, at);
  const wasm = backend as WasmBackendLike;
  const pieces = sizes.map((n) => wasm.makeOutput(x.shape.map((d, i) => (i === at ? n : d)), x.dtype));
  // Views after the last allocation: an allocation may move the heap.
  const inner = product(x.shape.slice(at + 1));
  const widths = sizes.map((n) => n * inner);
  const kept = pieces.filter((_, i) => widths[i] > 0);
  splitRows(
    wasm.typedArrayFromHeap(x) as Float32Array, kept.map((t) => wasm.typedArrayFromHeap(t) as Float32Array),
    widths.filter((w) => w > 0), product(x.shape.slice(0, at)),
  );
  return pieces;
}

/**
 * Concatenation through heap views (DenseNet concatenates at every layer): per
 * row of the axes before `axis`, each input's block is one run of the output.
 */
function concat(args: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args;
  const list = inputs as unknown as TensorInfo[];
  if (list.some((t) => t.dtype === 'string')) return wasmKernel(CONCAT).kernelFunc(args) as TensorInfo;
  const axis = tf.util.parseAxisParam((attrs as unknown as tf.ConcatAttrs).axis, list[0].shape)[0];
  const shapes = list.map((t) => t.shape);
  tf.backend_util.assertParamsConsistent(shapes, axis);
  const outShape = tf.backend_util.computeOutShape(shapes, axis);
  const wasm = backend as WasmBackendLike;
  const out = wasm.makeOutput(outShape, list[0].dtype);
  if (product(outShape) === 0) return out;
  const kept = list.filter((t) => product(t.shape) > 0);
  joinRows(
    kept.map((t) => wasm.typedArrayFromHeap(t) as Float32Array), kept.map((t) => product(t.shape.slice(axis))),
    product(outShape.slice(0, axis)), wasm.typedArrayFromHeap(out) as Float32Array,
  );
  return out;
}

// ---------------------------------------------------------------------------
// Sum and Mean gradients: broadcast instead of multiplying by ones

/**
 * tfjs's gradients of Sum and Mean multiply dy by ones(x.shape), a tensor filled
 * in JavaScript and copied into the heap on every call: for batch-norm statistics
 * (tf.moments) and global average pooling that is the size of the activations.
 * On wasm these gradients broadcast dy with the Tile kernel instead (same values);
 * on any other backend they defer to tfjs's own. Gradients are registered per
 * kernel, not per backend, hence the backend check.
 */
function broadcastingGrad(kernelName: string, divideByCount: boolean): tf.GradConfig {
  const stock = originalGrads.get(kernelName);
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      if (tf.getBackend() !== WASM && stock) return stock.gradFunc(dy, saved, attrs);
      const [x] = saved;
      const axes = tf.util.parseAxisParam((attrs as unknown as tf.SumAttrs).axis, x.shape);
      const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const count = product(axes.map((a) => x.shape[a]));
      return {
        x: () => {
          const spread = tf.broadcastTo(tf.reshape(dy as tf.Tensor, kept), x.shape);
          return divideByCount ? tf.div(spread, count) : spread;
        },
      };
    },
  };
}

function registerBroadcastingGrads(): void {
  for (const [name, divide] of [[SUM, false], [MEAN, true]] as Array<[string, boolean]>) {
    const existing = tf.getGradient(name);
    if (existing && !ourGrads.has(existing.gradFunc) && !originalGrads.has(name)) originalGrads.set(name, existing);
    const config = broadcastingGrad(name, divide);
    ourGrads.add(config.gradFunc);
    tf.registerGradient(config);
  }
}

function unregisterBroadcastingGrads(): void {
  for (const name of [SUM, MEAN]) {
    const existing = tf.getGradient(name);
    const stock = originalGrads.get(name);
    if (existing && ourGrads.has(existing.gradFunc) && stock) tf.registerGradient(stock);
  }
}

// ---------------------------------------------------------------------------
// Registration

const replacements: Array<{ kernelName: string; kernelFunc: tf.KernelFunc }> = [
  { kernelName: CONV2D_BACKPROP_INPUT, kernelFunc: conv2DBackpropInput as unknown as tf.KernelFunc },
  { kernelName: CONV2D_BACKPROP_FILTER, kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc },
  { kernelName: BATCH_MAT_MUL, kernelFunc: batchMatMul as unknown as tf.KernelFunc },
  { kernelName: MAX_POOL_GRAD, kernelFunc: maxPoolGrad as unknown as tf.KernelFunc },
  { kernelName: TILE, kernelFunc: tile as unknown as tf.KernelFunc },
  { kernelName: SUM, kernelFunc: sum as unknown as tf.KernelFunc },
  { kernelName: MEAN, kernelFunc: mean as unknown as tf.KernelFunc },
  { kernelName: IDENTITY, kernelFunc: identity as unknown as tf.KernelFunc },
  { kernelName: CAST, kernelFunc: cast as unknown as tf.KernelFunc },
  { kernelName: SLICE, kernelFunc: slice as unknown as tf.KernelFunc },
  { kernelName: SPLIT_V, kernelFunc: splitV as unknown as tf.KernelFunc },
  { kernelName: CONCAT, kernelFunc: concat as unknown as tf.KernelFunc },
];
for (const r of replacements) ours.add(r.kernelFunc);

/**
 * Registers the kernels above for 'wasm', replacing the backend's own. Idempotent:
 * a second call re-registers ours without losing the originals they delegate to.
 */
export function registerWasmGradientKernels(): void {
  for (const { kernelName, kernelFunc } of replacements) {
    const existing = tf.getKernel(kernelName, WASM);
    if (existing && !ours.has(existing.kernelFunc) && !originals.has(kernelName)) originals.set(kernelName, existing);
    if (existing) tf.unregisterKernel(kernelName, WASM);
    const original = originals.get(kernelName);
    tf.registerKernel({
      kernelName,
      backendName: WASM,
      kernelFunc,
      // The originals we delegate to bind their wasm functions in setupFunc.
      setupFunc: original?.setupFunc,
      disposeFunc: original?.disposeFunc,
    });
  }
  registerBroadcastingGrads();
}

/** Puts the wasm backend's own kernels and tfjs's gradients back (for benchmarks and tests that compare). */
export function unregisterWasmGradientKernels(): void {
  for (const { kernelName } of replacements) {
    const existing = tf.getKernel(kernelName, WASM);
    if (!existing || !ours.has(existing.kernelFunc)) continue;
    tf.unregisterKernel(kernelName, WASM);
    const original = originals.get(kernelName);
    if (original) tf.registerKernel(original);
  }
  unregisterBroadcastingGrads();
}
