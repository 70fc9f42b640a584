// The optional native backend 'torch-cpu': tfjs's cpu backend (tensors live in JS
// typed arrays, every cpu kernel works unchanged) with the costly kernels replaced
// by libtorch (ATen) calls that run on that memory in place, through the N-API
// addon in native/ (built at install time when libtorch is found). NHWC data is
// handed to ATen as channels-last NCHW, so nothing is transposed or copied on the
// way in; results are written into typed arrays allocated here.
import * as os from 'os';
import * as path from 'path';
import { PACKAGE_ROOT } from '../package-root';
import * as tf from '../tf';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import {
  BATCH_MOMENTS, BN_RELU, BN_RELU_GRAD, BN_RELU_POOLED_GRAD, bnReluGradInputs, checkChannelInputs, concatShape, lastAxis, xPieces,
} from '../core/fused-kernels';

export const TORCH_CPU = 'torch-cpu';
export const THREADS_ENV = 'DENSENET_THREADS';

/** The addon's functions (native/src/addon.cc documents each argument list). */
interface Addon {
  conv2d(x: Float32Array, xShape: number[], filter: Float32Array, filterShape: number[], bias: Float32Array | null,
    geometry: number[], activation: number, alpha: number, out: Float32Array, outShape: number[]): void;
  conv2dBackpropInput(dy: Float32Array, dyShape: number[], filter: Float32Array, filterShape: number[],
    inShape: number[], geometry: number[], out: Float32Array): void;
  conv2dBackpropFilter(x: Float32Array, xShape: number[], dy: Float32Array, dyShape: number[], filterShape: number[],
    geometry: number[], out: Float32Array): void;
  batchMatMul(a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], transposeA: boolean,
    transposeB: boolean, bias: Float32Array | null, biasShape: number[], activation: number, alpha: number,
    out: Float32Array, outShape: number[]): void;
  batchNorm(x: Float32Array, channels: number, mean: Float32Array, variance: Float32Array, scale: Float32Array | null,
    offset: Float32Array | null, epsilon: number, out: Float32Array): void;
  moments(x: Float32Array, channels: number, mean: Float32Array, variance: Float32Array): void;
  bnRelu(pieces: Float32Array[], widths: number[], scale: Float32Array, shift: Float32Array, out: Float32Array): void;
  bnReluGrad(pieces: Float32Array[], widths: number[], dr: Float32Array, gamma: Float32Array, beta: Float32Array,
    mean: Float32Array, invStd: Float32Array, splitWidths: number[], dxs: Float32Array[], accs: Array<Float32Array | null>,
    dGamma: Float32Array, dBeta: Float32Array, pooledHeight: number, pooledWidth: number): void;
  maxPool(x: Float32Array, xShape: number[], pool: number[], out: Float32Array, outShape: number[]): void;
  avgPool(x: Float32Array, xShape: number[], pool: number[], out: Float32Array, outShape: number[]): void;
  maxPoolGrad(dy: Float32Array, dyShape: number[], x: Float32Array, xShape: number[], pool: number[], out: Float32Array): void;
  avgPoolGrad(dy: Float32Array, dyShape: number[], x: Float32Array, xShape: number[], pool: number[], out: Float32Array): void;
  binary(op: number, a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], out: Float32Array,
    outShape: number[]): void;
  unary(op: number, x: Float32Array, alpha: number, out: Float32Array): void;
  reduce(op: number, x: Float32Array, xShape: number[], axes: number[], out: Float32Array, outShape: number[]): void;
  tile(x: Float32Array, xShape: number[], reps: number[], out: Float32Array, outShape: number[]): void;
  pad(x: Float32Array, xShape: number[], paddings: number[], value: number, out: Float32Array, outShape: number[]): void;
  concat(sources: ArrayBufferView[], chunkElements: number[], rows: number, out: ArrayBufferView): void;
  slice(x: ArrayBufferView, shape: number[], begin: number[], size: number[], out: ArrayBufferView): void;
  split(x: ArrayBufferView, chunkElements: number[], rows: number, outs: ArrayBufferView[]): void;
  setNumThreads(n: number): void;
  info(): { torchVersion: string; threads: number; zeroCopyOutputs: number; copiedOutputs: number; parallelInfo: string };
}

// ---------------------------------------------------------------------------------------------
// Loading the addon

export const ADDON_ENV = 'DENSENET_TORCH_ADDON';

/** Where scripts/build-native.js puts the addon; DENSENET_TORCH_ADDON overrides it (tests use it to hide the addon). */
export const ADDON_PATH = process.env[ADDON_ENV] || path.join(PACKAGE_ROOT, 'native', 'build', 'Release', 'torch_cpu.node');

let addon: Addon | null | undefined;
let unavailableReason = '';

/**
 * libgomp (libtorch's thread pool) spin-waits between parallel regions by default. When
 * another process holds a core, a spinning thread burns its slice waiting for a thread
 * that is not running: measured here on 2 busy cores, a 2-thread DenseNet-BC-100 step
 * took 24 s spinning and 2.9 s sleeping (1 thread: 4 s). Sleeping is the default unless
 * the user chose otherwise; it must be set before libgomp loads.
 */
function preferPassiveWaiting(env: NodeJS.ProcessEnv = process.env): void {
  if (env.OMP_WAIT_POLICY === undefined && env.GOMP_SPINCOUNT === undefined) env.OMP_WAIT_POLICY = 'passive';
}

function loadAddon(): Addon | null {
  if (addon !== undefined) return addon;
  preferPassiveWaiting();
  try {
    addon = require(ADDON_PATH) as Addon;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    unavailableReason = e.code === 'MODULE_NOT_FOUND'
      ? `the native addon was not built (${ADDON_PATH} is missing)`
      : `the native addon ${ADDON_PATH} failed to load: ${String(e.message).split('\n')[0]}`;
    addon = null;
  }
  return addon;
}

function native(): Addon {
  const a = loadAddon();
  if (!a) throw new Error(`torch-cpu: ${unavailableReason}`);
  return a;
}

const nativeCalls = new Map<string, number>();

/** The addon for one call of kernel `name` (counted, so tests and profiles can tell native runs from fallbacks). */
function nativeFor(name: string): Addon {
  nativeCalls.set(name, (nativeCalls.get(name) ?? 0) + 1);
  return native();
}

/** How many times each kernel ran in libtorch (not in its cpu fallback) since the process started. */
export function nativeCallCounts(): Record<string, number> {
  return Object.fromEntries(nativeCalls);
}

/** Number of libtorch threads: DENSENET_THREADS, or every core. */
export function threadsFromEnv(env: Record<string, string | undefined> = process.env): number {
  const raw = env[THREADS_ENV];
  if (raw === undefined || raw === '') return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${THREADS_ENV} must be a positive integer, got '${raw}'`);
  return n;
}

/** Sets libtorch's intra-op thread count (the whole process shares it). */
export function setTorchCpuThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`torch-cpu threads must be a positive integer, got ${n}`);
  native().setNumThreads(n);
}

function activeBackend(): TorchCpuBackend | null {
  return registered ? (tf.findBackend(TORCH_CPU) as TorchCpuBackend | null) : null;
}

export interface TorchCpuInfo {
  available: boolean;
  /** Why it is not available (empty when it is). */
  reason: string;
  addonPath: string;
  torchVersion?: string;
  threads?: number;
  /** Kernel outputs ATen wrote straight into tfjs memory, and those that needed a copy. */
  zeroCopyOutputs?: number;
  copiedOutputs?: number;
  /** Output buffers reused from disposed tensors, freshly allocated, and held for reuse now. */
  pool?: { recycled: number; allocated: number; pooledBytes: number };
}

export function torchCpuInfo(): TorchCpuInfo {
  const a = loadAddon();
  if (!a) return { available: false, reason: unavailableReason, addonPath: ADDON_PATH };
  const i = a.info();
  return {
    available: true, reason: '', addonPath: ADDON_PATH, torchVersion: i.torchVersion, threads: i.threads,
    zeroCopyOutputs: i.zeroCopyOutputs, copiedOutputs: i.copiedOutputs, pool: activeBackend()?.pool.stats(),
  };
}

// ---------------------------------------------------------------------------------------------
// Kernel helpers

type Values = tf.backend_util.BackendValues;
type KernelArgs = Parameters<tf.KernelFunc>[0];
/** tfjs types kernel inputs as optional; these are the ones a kernel always receives. */
type Req<T> = { [K in keyof T]-?: tf.TensorInfo };

/**
 * Recycles the output buffers of disposed tensors. Fresh large buffers cost a page
 * fault (and the kernel zeroing the page) per 4 KiB on first touch, which is more
 * than an elementwise op on them; a recycled one is usually still in cache.
 *
 * Only buffers this backend allocated are recycled, and only once no tensor uses
 * them: every write() of a view of one counts as a user (cpu kernels may return
 * subarray views), every disposal of such a tensor as a release. A buffer whose
 * values were ever read out (dataSync, data, bufferSync...) may be held by the
 * caller, so it is never recycled.
 */
class BufferPool {
  private readonly owned = new WeakMap<ArrayBuffer, { users: number; escaped: boolean }>();
  private readonly free = new Map<number, ArrayBuffer[]>();
  private freeBytes = 0;
  recycled = 0;
  allocated = 0;

  constructor(private readonly capBytes: number) {}

  floats(n: number): Float32Array {
    const bytes = n * 4;
    if (bytes < POOL_MIN_BYTES) return new Float32Array(n);
    let buffer = this.free.get(bytes)?.pop();
    if (buffer) {
      this.freeBytes -= bytes;
      this.recycled++;
    } else {
      // Uninitialised: the addon writes every element of an output.
      buffer = Buffer.allocUnsafeSlow(bytes).buffer as ArrayBuffer;
      this.allocated++;
    }
    this.owned.set(buffer, { users: 0, escaped: false });
    return new Float32Array(buffer, 0, n);
  }

  used(values: Values | undefined): void {
    const state = values && this.owned.get((values as ArrayBufferView).buffer as ArrayBuffer);
    if (state) state.users++;
  }

  escaped(values: Values | undefined): void {
    const state = values && this.owned.get((values as ArrayBufferView).buffer as ArrayBuffer);
    if (state) state.escaped = true;
  }

  released(values: Values | undefined): void {
    const buffer = values && ((values as ArrayBufferView).buffer as ArrayBuffer);
    const state = buffer && this.owned.get(buffer);
    if (!buffer || !state || --state.users > 0) return;
    this.owned.delete(buffer);
    if (state.escaped || buffer.byteLength > this.capBytes) return;
    this.makeRoom(buffer.byteLength);
    const list = this.free.get(buffer.byteLength) ?? [];
    list.push(buffer);
    this.free.set(buffer.byteLength, list);
    this.freeBytes += buffer.byteLength;
  }

  /** Drops the sizes pooled longest ago (a model's sizes change rarely) until `bytes` fit under the cap. */
  private makeRoom(bytes: number): void {
    for (const [size, list] of this.free) {
      if (this.freeBytes + bytes <= this.capBytes) return;
      this.free.delete(size);
      this.freeBytes -= size * list.length;
    }
  }

  clear(): void {
    this.free.clear();
    this.freeBytes = 0;
  }

  stats(): { pooledBytes: number; recycled: number; allocated: number } {
    return { pooledBytes: this.freeBytes, recycled: this.recycled, allocated: this.allocated };
  }
}

/** Outputs below this size come from V8's ordinary allocation (cheap for small buffers). */
const POOL_MIN_BYTES = 64 * 1024;

class TorchCpuBackend extends MathBackendCPU {
  // At most a quarter of the machine's memory is held for reuse.
  readonly pool = new BufferPool(os.totalmem() / 4);

  constructor() {
    super();
    // The cpu backend's first write prints "install tfjs-node"; this backend is native already.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** Memory for a float32 output that the addon fills completely. */
  floats(n: number): Float32Array {
    return this.pool.floats(n);
  }

  override write(values: Values, shape: number[], dtype: tf.DataType): ReturnType<MathBackendCPU['write']> {
    this.pool.used(values);
    return super.write(values, shape, dtype);
  }

  override move(dataId: object, values: Values, shape: number[], dtype: tf.DataType, refCount: number): void {
    this.pool.used(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  override readSync(dataId: object): Values {
    this.pool.escaped(this.data.get(dataId)?.values);
    return super.readSync(dataId);
  }

  override read(dataId: object): Promise<Values> {
    this.pool.escaped(this.data.get(dataId)?.values);
    return super.read(dataId);
  }

  override disposeData(dataId: object, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const done = super.disposeData(dataId, force);
    if (values !== undefined && !this.data.has(dataId)) this.pool.released(values);
    return done;
  }

  override dispose(): void {
    this.pool.clear();
    super.dispose();
  }
}

/** Below this many output elements the JS cpu kernel is as fast as a native call. */
const MIN_NATIVE_ELEMENTS = 2048;

function valuesOf(backend: TorchCpuBackend, t: tf.TensorInfo): Values {
  return backend.data.get(t.dataId).values as Values;
}

function floatsOf(backend: TorchCpuBackend, t: tf.TensorInfo): Float32Array {
  const values = valuesOf(backend, t);
  // The cpu kernels' lossless Cast (bool or int32 to float32) shares the source's integer array.
  return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
}

function isFloat(...ts: Array<tf.TensorInfo | undefined | null>): boolean {
  return ts.every((t) => t == null || t.dtype === 'float32');
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function cpuKernel(name: string): tf.KernelFunc {
  const k = tf.getKernel(name, 'cpu');
  if (!k) throw new Error(`torch-cpu: the cpu backend has no '${name}' kernel to fall back to`);
  return k.kernelFunc;
}

function fallback(name: string, args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  return cpuKernel(name)(args) as tf.TensorInfo | tf.TensorInfo[];
}

function output(backend: TorchCpuBackend, shape: number[], values: Values, dtype: tf.DataType = 'float32'): tf.TensorInfo {
  return backend.makeTensorInfo(shape, dtype, values);
}

type Geometry = [number, number, number, number, number, number, number, number];

/** ATen's output length for a window sliding over `size` with explicit padding. */
function atenOut(size: number, padBefore: number, padAfter: number, window: number, stride: number): number {
  return Math.floor((size + padBefore + padAfter - window) / stride) + 1;
}

/** Geometry for the addon, or null when ATen would compute another output size than tfjs. */
function convGeometry(info: tf.backend_util.Conv2DInfo): Geometry | null {
  const p = info.padInfo;
  if (info.dataFormat !== 'channelsLast' || [p.top, p.bottom, p.left, p.right].some((v) => v < 0)) return null;
  if (atenOut(info.inHeight, p.top, p.bottom, info.effectiveFilterHeight, info.strideHeight) !== info.outHeight ||
    atenOut(info.inWidth, p.left, p.right, info.effectiveFilterWidth, info.strideWidth) !== info.outWidth) return null;
  if ([info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outChannels, info.outHeight, info.outWidth].some((v) => v <= 0)) {
    return null;
  }
  return [info.strideHeight, info.strideWidth, info.dilationHeight, info.dilationWidth, p.top, p.bottom, p.left, p.right];
}

/** Pool geometry for the addon, or null when ATen would compute another output size than tfjs. */
function poolGeometry(info: tf.backend_util.Conv2DInfo): Geometry | null {
  const g = convGeometry(info);
  if (!g || info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  return [info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, g[4], g[5], g[6], g[7]];
}

const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2, sigmoid: 3, elu: 4, leakyrelu: 5 };

function activationCode(activation: unknown): number | null {
  if (activation == null) return 0;
  const code = ACTIVATIONS[String(activation)];
  return code === undefined ? null : code;
}

// ---------------------------------------------------------------------------------------------
// Convolutions

function conv2dInfo(xShape: number[], filterShape: number[], attrs: tf.NamedAttrMap, dilations: unknown): tf.backend_util.Conv2DInfo {
  const { strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as tf.Conv2DAttrs;
  return tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape as [number, number, number, number],
    strides, dilations as number, pad, dimRoundingMode, false, tf.backend_util.convertConv2DDataFormat(dataFormat));
}

function runConv2D(args: KernelArgs, kernelName: string): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as TorchCpuBackend;
  const { x, filter, bias, preluActivationWeights } = args.inputs as Req<Pick<tf.FusedConv2DInputs, 'x' | 'filter'>> & tf.FusedConv2DInputs;
  const attrs = args.attrs as unknown as tf.FusedConv2DAttrs;
  const act = activationCode(attrs.activation);
  const biasOk = bias == null || (bias.shape.length === 1 && bias.shape[0] === filter.shape[3]);
  if (!isFloat(x, filter, bias) || x.shape.length !== 4 || act === null || preluActivationWeights != null || !biasOk) {
    return fallback(kernelName, args);
  }
  const info = conv2dInfo(x.shape, filter.shape, args.attrs!, attrs.dilations ?? 1);
  const g = convGeometry(info);
  if (!g) return fallback(kernelName, args);
  const outShape = info.outShape;
  const out = backend.floats(size(outShape));
  nativeFor(kernelName).conv2d(floatsOf(backend, x), x.shape, floatsOf(backend, filter), filter.shape,
    bias ? floatsOf(backend, bias) : null, g, act, attrs.leakyreluAlpha ?? 0.2, out, outShape);
  return output(backend, outShape, out);
}

function conv2DBackpropInput(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as TorchCpuBackend;
  const { dy, filter } = args.inputs as Req<tf.Conv2DBackpropInputInputs>;
  const { inputShape } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  if (!isFloat(dy, filter) || dy.shape.length !== 4) return fallback(tf.Conv2DBackpropInput, args);
  const info = conv2dInfo(inputShape, filter.shape, args.attrs!, 1);
  const g = convGeometry(info);
  if (!g || !tf.util.arraysEqual(info.outShape, dy.shape)) return fallback(tf.Conv2DBackpropInput, args);
  const out = backend.floats(size(inputShape));
  nativeFor(tf.Conv2DBackpropInput).conv2dBackpropInput(floatsOf(backend, dy), dy.shape, floatsOf(backend, filter), filter.shape,
    inputShape, g, out);
  return output(backend, inputShape, out);
}

function conv2DBackpropFilter(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as TorchCpuBackend;
  const { x, dy } = args.inputs as Req<tf.Conv2DBackpropFilterInputs>;
  const { filterShape } = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (!isFloat(x, dy) || x.shape.length !== 4) return fallback(tf.Conv2DBackpropFilter, args);
  const info = conv2dInfo(x.shape, filterShape, args.attrs!, 1);
  const g = convGeometry(info);
  if (!g || !tf.util.arraysEqual(info.outShape, dy.shape)) return fallback(tf.Conv2DBackpropFilter, args);
  const out = backend.floats(size(filterShape));
  nativeFor(tf.Conv2DBackpropFilter).conv2dBackpropFilter(floatsOf(backend, x), x.shape, floatsOf(backend, dy), dy.shape, filterShape, g, out);
  return output(backend, filterShape, out);
}

// ---------------------------------------------------------------------------------------------
// Matrix multiplication

function runMatMul(args: KernelArgs, kernelName: string): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as TorchCpuBackend;
  const { a, b, bias, preluActivationWeights } = args.inputs as Req<Pick<tf._FusedMatMulInputs, 'a' | 'b'>> & tf._FusedMatMulInputs;
  const { transposeA, transposeB, activation, leakyreluAlpha } = args.attrs as unknown as tf._FusedMatMulAttrs;
  const act = activationCode(activation);
  if (!isFloat(a, b, bias) || a.shape.length < 2 || b.shape.length < 2 || act === null || preluActivationWeights != null) {
    return fallback(kernelName, args);
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const inner = transposeA ? ar : ac;
  if (inner !== (transposeB ? bc : br)) return fallback(kernelName, args); // the cpu kernel reports the mismatch
  const batchA = size(a.shape.slice(0, -2));
  const batchB = size(b.shape.slice(0, -2));
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batch = Math.max(batchA, batchB);
  if ((batchA !== batchB && batchA !== 1 && batchB !== 1) || size(outer) !== batch) return fallback(kernelName, args);
  const rows = transposeA ? ac : ar;
  const cols = transposeB ? br : bc;
  const outShape = [...outer, rows, cols];
  if (bias && (bias.shape.length > 2 ||
    !tf.util.arraysEqual(tf.broadcast_util.assertAndGetBroadcastShape(outShape, bias.shape), outShape))) {
    return fallback(kernelName, args);
  }
  const out = backend.floats(size(outShape));
  nativeFor(kernelName).batchMatMul(floatsOf(backend, a), [batchA, ar, ac], floatsOf(backend, b), [batchB, br, bc],
    !!transposeA, !!transposeB, bias ? floatsOf(backend, bias) : null, bias ? bias.shape : [], act, leakyreluAlpha ?? 0.2,
    out, [batch, rows, cols]);
  return output(backend, outShape, out);
}

// ---------------------------------------------------------------------------------------------
// Batch normalisation, pooling

function fusedBatchNorm(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as TorchCpuBackend;
  const { x, mean, variance, offset, scale } = args.inputs as Req<Pick<tf.FusedBatchNormInputs, 'x' | 'mean' | 'variance'>> & tf.FusedBatchNormInputs;
  const { varianceEpsilon } = (args.attrs ?? {}) as unknown as tf.FusedBatchNormAttrs;
  const channels = x.shape[x.shape.length - 1] ?? 0;
  const perChannel = (t?: tf.TensorInfo) => t == null || size(t.shape) === channels;
  if (!isFloat(x, mean, variance, offset, scale) || x.shape.length < 1 || channels === 0 || size(x.shape) === 0 ||
    !perChannel(mean) || !perChannel(variance) || !perChannel(offset) || !perChannel(scale)) {
    return fallback(tf.FusedBatchNorm, args);
  }
  const out = backend.floats(size(x.shape));
  nativeFor(tf.FusedBatchNorm).batchNorm(floatsOf(backend, x), channels, floatsOf(backend, mean), floatsOf(backend, variance),
    scale ? floatsOf(backend, scale) : null, offset ? floatsOf(backend, offset) : null, varianceEpsilon ?? 0.001, out);
  return output(backend, x.shape, out);
}

function poolInfo(xShape: number[], attrs: tf.NamedAttrMap): tf.backend_util.Conv2DInfo {
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolAttrs;
  return tf.backend_util.computePool2DInfo(xShape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
}

function symmetric(g: Geometry): boolean {
  return g[4] === g[5] && g[6] === g[7] && 2 * g[4] <= g[0] && 2 * g[6] <= g[1];
}

function runPool(args: KernelArgs, kernelName: string, kind: 'maxPool' | 'avgPool'): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as TorchCpuBackend;
  const { x } = args.inputs as Req<tf.MaxPoolInputs>;
  if (!isFloat(x) || x.shape.length !== 4) return fallback(kernelName, args);
  const info = poolInfo(x.shape, args.attrs!);
  const g = poolGeometry(info);
  const identity = info.filterHeight === 1 && info.filterWidth === 1 && tf.util.arraysEqual(info.inShape, info.outShape);
  if (!g || identity || (kind === 'avgPool' && !symmetric(g))) return fallback(kernelName, args);
  const out = backend.floats(size(info.outShape));
  nativeFor(kernelName)[kind](floatsOf(backend, x), x.shape, g, out, info.outShape);
  return output(backend, info.outShape, out);
}

function runPoolGrad(args: KernelArgs, kernelName: string, kind: 'maxPoolGrad' | 'avgPoolGrad'): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as TorchCpuBackend;
  const { dy, input } = args.inputs as Req<tf.MaxPoolGradInputs>;
  if (!isFloat(dy, input) || input.shape.length !== 4) return fallback(kernelName, args);
  const info = poolInfo(input.shape, args.attrs!);
  const g = poolGeometry(info);
  if (!g || !tf.util.arraysEqual(info.outShape, dy.shape) || (kind === 'avgPoolGrad' && !symmetric(g))) {
    return fallback(kernelName, args);
  }
  const out = backend.floats(size(input.shape));
  nativeFor(kernelName)[kind](floatsOf(backend, dy), dy.shape, floatsOf(backend, input), input.shape, g, out);
  return output(backend, input.shape, out);
}

// ---------------------------------------------------------------------------------------------
// Concat, slice, split (any element type: they only move bytes)

type TypedArrayCtor = new (n: number) => ArrayBufferView & { length: number };

function sameStorage(backend: TorchCpuBackend, ts: tf.TensorInfo[]): TypedArrayCtor | null {
  if (ts.some((t) => t.dtype === 'string' || t.dtype === 'complex64' || t.dtype !== ts[0].dtype)) return null;
  const ctor = (valuesOf(backend, ts[0]) as unknown as { constructor: TypedArrayCtor }).constructor;
  return ts.every((t) => (valuesOf(backend, t) as unknown as { constructor: unknown }).constructor === ctor) ? ctor : null;
}

function concat(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as TorchCpuBackend;
  const inputs = args.inputs as unknown as tf.TensorInfo[];
  if (inputs.length === 0) return fallback(tf.Concat, args);
  const axis = tf.util.parseAxisParam((args.attrs as unknown as tf.ConcatAttrs).axis, inputs[0].shape)[0];
  const nonEmpty = inputs.filter((t) => size(t.shape) > 0);
  const ctor = nonEmpty.length >= 2 ? sameStorage(backend, nonEmpty) : null;
  if (!ctor || nonEmpty.some((t) => t.shape.length !== inputs[0].shape.length)) return fallback(tf.Concat, args);
  tf.backend_util.assertParamsConsistent(inputs.map((t) => t.shape), axis);
  const outShape = tf.backend_util.computeOutShape(inputs.map((t) => t.shape), axis);
  const rows = size(outShape.slice(0, axis));
  const out = ctor === Float32Array ? backend.floats(size(outShape)) : new ctor(size(outShape));
  nativeFor(tf.Concat).concat(nonEmpty.map((t) => valuesOf(backend, t) as ArrayBufferView), nonEmpty.map((t) => size(t.shape.slice(axis))),
    rows, out);
  return output(backend, outShape, out as unknown as Values, inputs[0].dtype);
}

/** A strided slice copied by the addon; contiguous ones stay zero-copy views in the cpu kernel. */
function sliceInfo(backend: TorchCpuBackend, x: tf.TensorInfo, begin: number[], sizes: number[]): tf.TensorInfo {
  const args = { inputs: { x }, backend, attrs: { begin, size: sizes } } as unknown as KernelArgs;
  const ctor = sameStorage(backend, [x]);
  if (!ctor || size(sizes) === 0 || tf.slice_util.isSliceContinous(x.shape, begin, sizes)) {
    return fallback(tf.Slice, args) as tf.TensorInfo;
  }
  const out = ctor === Float32Array ? backend.floats(size(sizes)) : new ctor(size(sizes));
  nativeFor(tf.Slice).slice(valuesOf(backend, x) as ArrayBufferView, x.shape, begin, sizes, out);
  return output(backend, sizes, out as unknown as Values, x.dtype);
}

function slice(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as TorchCpuBackend;
  const { x } = args.inputs as Req<tf.SliceInputs>;
  const { begin, size: sizes } = args.attrs as unknown as tf.SliceAttrs;
  const [$begin, $size] = tf.slice_util.parseSliceParams(x, begin, sizes);
  tf.slice_util.assertParamsValid(x, $begin, $size);
  return sliceInfo(backend, x, $begin, $size);
}

function splitV(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as TorchCpuBackend;
  const { x } = args.inputs as Req<tf.SplitVInputs>;
  const { numOrSizeSplits, axis } = args.attrs as unknown as tf.SplitVAttrs;
  const $axis = tf.util.parseAxisParam(axis, x.shape)[0];
  const splits = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, $axis);
  const rows = size(x.shape.slice(0, $axis));
  const ctor = sameStorage(backend, [x]);
  if (!ctor || rows === 1 || size(x.shape) === 0 || splits.some((s) => s <= 0)) {
    // Splits of the outermost axis are contiguous: zero-copy views from the cpu kernel.
    const begin = new Array(x.shape.length).fill(0);
    return splits.map((s) => {
      const sizes = [...x.shape];
      sizes[$axis] = s;
      const part = sliceInfo(backend, x, [...begin], sizes);
      begin[$axis] += s;
      return part;
    });
  }
  // One pass over x (the concat gradient of a dense block splits the widest tensors).
  const inner = size(x.shape.slice($axis + 1));
  const outs = splits.map((s) => (ctor === Float32Array ? backend.floats(rows * s * inner) : new ctor(rows * s * inner)));
  nativeFor(tf.SplitV).split(valuesOf(backend, x) as ArrayBufferView, splits.map((s) => s * inner), rows, outs);
  return outs.map((out, i) => {
    const shape = [...x.shape];
    shape[$axis] = splits[i];
    return output(backend, shape, out as unknown as Values, x.dtype);
  });
}

// ---------------------------------------------------------------------------------------------
// Elementwise ops and reductions

const BINARY: Record<string, number> = {
  [tf.Add]: 0, [tf.Sub]: 1, [tf.Multiply]: 2, [tf.RealDiv]: 3, [tf.SquaredDifference]: 4, [tf.Maximum]: 5, [tf.Minimum]: 6,
};

function binary(kernelName: string): tf.KernelFunc {
  const op = BINARY[kernelName];
  return (args) => {
    const backend = args.backend as TorchCpuBackend;
    const { a, b } = args.inputs as Req<tf.BinaryInputs>;
    if (!isFloat(a, b)) return fallback(kernelName, args);
    const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
    if (size(outShape) < MIN_NATIVE_ELEMENTS) return fallback(kernelName, args);
    const out = backend.floats(size(outShape));
    nativeFor(kernelName).binary(op, floatsOf(backend, a), a.shape, floatsOf(backend, b), b.shape, out, outShape);
    return output(backend, outShape, out);
  };
}

const UNARY: Record<string, number> = { [tf.Relu]: 0, [tf.Relu6]: 1, [tf.Step]: 2, [tf.Sigmoid]: 3, [tf.Neg]: 4, [tf.Square]: 5 };

function unary(kernelName: string): tf.KernelFunc {
  const op = UNARY[kernelName];
  return (args) => {
    const backend = args.backend as TorchCpuBackend;
    const { x } = args.inputs as Req<tf.UnaryInputs>;
    if (!isFloat(x) || size(x.shape) < MIN_NATIVE_ELEMENTS) return fallback(kernelName, args);
    const alpha = Number((args.attrs as { alpha?: number } | undefined)?.alpha ?? 0);
    const out = backend.floats(size(x.shape));
    nativeFor(kernelName).unary(op, floatsOf(backend, x), alpha, out);
    return output(backend, x.shape, out);
  };
}

const REDUCE: Record<string, number> = { [tf.Sum]: 0, [tf.Mean]: 1 };

function reduction(kernelName: string): tf.KernelFunc {
  const op = REDUCE[kernelName];
  return (args) => {
    const backend = args.backend as TorchCpuBackend;
    const { x } = args.inputs as Req<tf.SumInputs>;
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const axes = tf.util.parseAxisParam(axis, x.shape);
    if (!isFloat(x) || axes.length === 0 || size(x.shape) < MIN_NATIVE_ELEMENTS) return fallback(kernelName, args);
    const reduced = x.shape.filter((_, i) => !axes.includes(i));
    const outShape = keepDims ? tf.backend_util.expandShapeToKeepDim(reduced, axes) : reduced;
    const out = backend.floats(size(outShape));
    nativeFor(kernelName).reduce(op, floatsOf(backend, x), x.shape, axes, out, reduced);
    return output(backend, outShape, out);
  };
}

function padV2(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as TorchCpuBackend;
  const { x } = args.inputs as Req<tf.PadV2Inputs>;
  const { paddings, constantValue } = args.attrs as unknown as tf.PadV2Attrs;
  const outShape = x.shape.map((d, i) => paddings[i][0] + d + paddings[i][1]);
  if (!isFloat(x) || paddings.flat().some((p) => p < 0) || size(outShape) < MIN_NATIVE_ELEMENTS) return fallback(tf.PadV2, args);
  const out = backend.floats(size(outShape));
  nativeFor(tf.PadV2).pad(floatsOf(backend, x), x.shape, paddings.flat(), constantValue, out, outShape);
  return output(backend, outShape, out);
}

function tile(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as TorchCpuBackend;
  const { x } = args.inputs as Req<tf.TileInputs>;
  const { reps } = args.attrs as unknown as tf.TileAttrs;
  const outShape = x.shape.map((d, i) => d * reps[i]);
  if (!isFloat(x) || reps.length !== x.shape.length || size(outShape) < MIN_NATIVE_ELEMENTS) return fallback(tf.Tile, args);
  const out = backend.floats(size(outShape));
  nativeFor(tf.Tile).tile(floatsOf(backend, x), x.shape, reps, out, outShape);
  return output(backend, outShape, out);
}

// ---------------------------------------------------------------------------------------------
// Fused BN-ReLU kernels: the training core's contract (src/core/fused-kernels.ts), plus moments


function assertFloats(kernel: string, ts: Record<string, tf.TensorInfo>, channels: number, perChannel: string[]): void {
  for (const [name, t] of Object.entries(ts)) {
    if (t.dtype !== 'float32') throw new Error(`${kernel} (torch-cpu): '${name}' must be float32, got ${t.dtype}`);
    if (perChannel.includes(name) && size(t.shape) !== channels) {
      throw new Error(`${kernel} (torch-cpu): '${name}' has shape [${t.shape}], expected ${channels} values (one per channel of x)`);
    }
  }
}

function momentsKernel(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as TorchCpuBackend;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const c = lastAxis(x);
  assertFloats(BATCH_MOMENTS, { x }, c, []);
  const mean = new Float32Array(c);
  const variance = new Float32Array(c);
  nativeFor(BATCH_MOMENTS).moments(floatsOf(backend, x), c, mean, variance);
  return [output(backend, [c], mean), output(backend, [c], variance)];
}

/** BN_RELU: relu(x * scale + shift) per channel, x whole or as channel pieces (src/core/fused-kernels.ts). */
function bnReluKernel(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as TorchCpuBackend;
  const inputs = args.inputs as Record<string, tf.TensorInfo>;
  const pieces = xPieces(inputs, BN_RELU);
  checkChannelInputs(BN_RELU, pieces, { scale: inputs.scale, shift: inputs.shift });
  const shape = concatShape(pieces);
  const out = backend.floats(size(shape));
  nativeFor(BN_RELU).bnRelu(pieces.map((p) => floatsOf(backend, p)), pieces.map(lastAxis),
    floatsOf(backend, inputs.scale), floatsOf(backend, inputs.shift), out);
  return output(backend, shape, out);
}

/**
 * BN_RELU_GRAD and BN_RELU_POOLED_GRAD: [dx splits (plus their accumulators), dGamma, dBeta] of
 * relu(BN_train(x)); the mask is recomputed from x.
 */
const bnReluGradKernel = (kernel: string) => (args: KernelArgs): tf.TensorInfo[] => {
  const backend = args.backend as TorchCpuBackend;
  const { pieces, dr, gamma, beta, mean, invStd, channels: c, segments, accs, lead, pooled } =
    bnReluGradInputs(args.inputs as Record<string, tf.TensorInfo>, args.attrs, kernel);
  const dxs = segments.map((s) => backend.floats(size(lead) * s.width));
  const dGamma = new Float32Array(c);
  const dBeta = new Float32Array(c);
  nativeFor(kernel).bnReluGrad(pieces.map((p) => floatsOf(backend, p)), pieces.map(lastAxis), floatsOf(backend, dr),
    floatsOf(backend, gamma), floatsOf(backend, beta), floatsOf(backend, mean), floatsOf(backend, invStd),
    segments.map((s) => s.width), dxs, accs.map((a) => (a ? floatsOf(backend, a) : null)), dGamma, dBeta, pooled.h, pooled.w);
  return [
    ...segments.map((s, j) => output(backend, [...lead, s.width], dxs[j])),
    output(backend, [c], dGamma), output(backend, [c], dBeta),
  ];
};

// ---------------------------------------------------------------------------------------------
// Registration

/** Kernels this backend runs in libtorch (with the cpu kernel as fallback for unusual arguments). */
export function torchCpuKernels(): Array<{ name: string; kernelFunc: tf.KernelFunc }> {
  const k = (name: string, kernelFunc: tf.KernelFunc) => ({ name, kernelFunc });
  return [
    k(tf.Conv2D, (a) => runConv2D(a, tf.Conv2D)),
    k(tf.FusedConv2D, (a) => runConv2D(a, tf.FusedConv2D)),
    k(tf.Conv2DBackpropInput, conv2DBackpropInput),
    k(tf.Conv2DBackpropFilter, conv2DBackpropFilter),
    k(tf.BatchMatMul, (a) => runMatMul(a, tf.BatchMatMul)),
    k(tf._FusedMatMul, (a) => runMatMul(a, tf._FusedMatMul)),
    k(tf.FusedBatchNorm, fusedBatchNorm),
    k(tf.MaxPool, (a) => runPool(a, tf.MaxPool, 'maxPool')),
    k(tf.AvgPool, (a) => runPool(a, tf.AvgPool, 'avgPool')),
    k(tf.MaxPoolGrad, (a) => runPoolGrad(a, tf.MaxPoolGrad, 'maxPoolGrad')),
    k(tf.AvgPoolGrad, (a) => runPoolGrad(a, tf.AvgPoolGrad, 'avgPoolGrad')),
    k(tf.Concat, concat),
    k(tf.Slice, slice),
    k(tf.SplitV, splitV),
    k(tf.Tile, tile),
    k(tf.PadV2, padV2),
    k(BATCH_MOMENTS, momentsKernel),
    k(BN_RELU, bnReluKernel),
    k(BN_RELU_GRAD, bnReluGradKernel(BN_RELU_GRAD)),
    k(BN_RELU_POOLED_GRAD, bnReluGradKernel(BN_RELU_POOLED_GRAD)),
    ...Object.keys(BINARY).map((name) => k(name, binary(name))),
    ...Object.keys(UNARY).map((name) => k(name, unary(name))),
    ...Object.keys(REDUCE).map((name) => k(name, reduction(name))),
  ];
}

let registered = false;

/** Every cpu kernel torch-cpu does not replace runs unchanged on its (identical) tensor storage. */
function copyCpuKernels(): void {
  for (const config of tf.getKernelsForBackend('cpu')) {
    if (!tf.getKernel(config.kernelName, TORCH_CPU)) tf.registerKernel({ ...config, backendName: TORCH_CPU });
  }
}

/**
 * Registers the 'torch-cpu' backend with tfjs when the addon loads: the native kernels
 * above plus every other cpu kernel, unchanged. Returns whether it is available.
 */
export function registerTorchCpuBackend(): boolean {
  if (registered) return true;
  if (!loadAddon()) return false;
  for (const { name, kernelFunc } of torchCpuKernels()) {
    tf.registerKernel({ kernelName: name, backendName: TORCH_CPU, kernelFunc });
  }
  copyCpuKernels();
  // Priority below cpu's: tfjs never picks it on its own; backend.init() does.
  tf.registerBackend(TORCH_CPU, () => {
    copyCpuKernels(); // including those registered for cpu since
    // Also when set with tf.setBackend directly; a bad DENSENET_THREADS is reported by init().
    try {
      setTorchCpuThreads(threadsFromEnv());
    } catch {
      // keep libtorch's default
    }
    return new TorchCpuBackend();
  }, 0);
  registered = true;
  return true;
}

const INSTALL = 'install libtorch (Debian/Ubuntu: apt-get install libtorch-dev; elsewhere: unpack the libtorch ' +
  'C++ archive from pytorch.org and set LIBTORCH=<its directory>), then run `npm rebuild densenet-zoo` ' +
  '(or `node scripts/build-native.js` in the package) to build native/ with node-gyp';

/** How to get the backend, with the reason it is missing once loading the addon was tried. */
export function torchCpuInstallHint(): string {
  return addon === null ? `${INSTALL} (now: ${unavailableReason})` : INSTALL;
}

function threadsText(): string {
  try {
    const n = threadsFromEnv();
    return `${n} thread${n === 1 ? '' : 's'}`;
  } catch {
    return `threads from ${THREADS_ENV}`; // the bad value is reported when the backend is initialised
  }
}

/** What the backend is; with the libtorch version once the addon has loaded (describing it loads nothing). */
export function torchCpuDescription(): string {
  return addon ? `libtorch ${addon.info().torchVersion} (ATen) on the CPU, ${threadsText()}` : 'libtorch (ATen) on the CPU';
}
