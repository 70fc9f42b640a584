// The fused BatchNorm-ReLU kernels (src/core/fused-kernels.ts) for the wasm backend.
//
// Scalar JS loops over the wasm heap are several times slower than the backend's
// own SIMD ops, so these kernels are C compiled to a 3 KB WebAssembly module
// (native/wasm-kernels/bn_relu.c, built by scripts/build-wasm-kernels.sh and
// embedded in wasm-fused-kernels-binary.ts). The module imports tfjs-backend-wasm's
// linear memory and reads and writes the tensors where they live: no copies, no
// temporaries beyond the outputs and a few bytes per channel of scratch. Results
// equal the cpu backend's JS kernels bit for bit.
import * as tf from '../tf';
import { BN_RELU, BN_RELU_GRAD } from '../core/fused-kernels';
import { WASM_FUSED_KERNELS_BASE64 } from './wasm-fused-kernels-binary';

const WASM = 'wasm';

/** What the compiled module exports (pointers are byte offsets into the backend's memory). */
interface KernelExports {
  bn_relu_scratch_bytes(channels: number): number;
  bn_relu(x: number, scale: number, shift: number, out: number, rows: number, channels: number, scratch: number): void;
  bn_relu_grad_scratch_bytes(channels: number): number;
  bn_relu_grad(
    x: number, dr: number, gamma: number, beta: number, mean: number, invStd: number,
    dx: number, dGamma: number, dBeta: number, rows: number, channels: number, scratch: number,
  ): void;
}

/** The parts of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmBackendLike {
  wasm: { asm?: { memory?: unknown }; _malloc(bytes: number): number; _free(pointer: number): void };
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number | null } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

let compiled: Promise<WebAssembly.Module> | undefined;
let kernelsModule: WebAssembly.Module | undefined;
/** Set when this engine can't load the module at all. */
let compileProblem: string | null = null;
/** One instance per backend memory (a new wasm backend instance has a new memory). */
const instances = new WeakMap<WebAssembly.Memory, KernelExports>();

function decodeBase64(text: string): Uint8Array {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** Why the backend's memory can't be used, or null when it can. */
function memoryProblem(backend: unknown): string | null {
  const b = backend as Partial<WasmBackendLike> | undefined;
  const memory = b?.wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return "the wasm backend exposes no WebAssembly.Memory at backend.wasm.asm.memory";
  if (typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer) {
    return "the wasm backend's memory is shared (multi-threaded build); the kernels are built for unshared memory";
  }
  if (typeof b?.wasm?._malloc !== 'function' || typeof b?.wasm?._free !== 'function' || b?.dataIdMap === undefined) {
    return 'the wasm backend has no _malloc/_free or dataIdMap';
  }
  return null;
}

function kernelsFor(backend: unknown, kernelName: string): { b: WasmBackendLike; k: KernelExports } {
  const problem = memoryProblem(backend);
  if (problem !== null || kernelsModule === undefined) {
    throw new Error(`${kernelName} (wasm): cannot run: ${problem ?? 'the module is not compiled; await registerWasmFusedKernels() first'}`);
  }
  const b = backend as WasmBackendLike;
  const memory = b.wasm.asm!.memory as WebAssembly.Memory;
  let k = instances.get(memory);
  if (!k) {
    // Synchronous, but cheap: the module is compiled already and is 3 KB.
    k = new WebAssembly.Instance(kernelsModule, { env: { memory } }).exports as unknown as KernelExports;
    instances.set(memory, k);
  }
  return { b, k };
}

function offsetOf(b: WasmBackendLike, info: tf.TensorInfo, kernelName: string, input: string): number {
  const offset = b.dataIdMap.get(info.dataId)?.memoryOffset;
  if (offset == null) throw new Error(`${kernelName} (wasm): tensor '${input}' has no data on the wasm heap`);
  return offset;
}

function checkFloat(kernelName: string, name: string, info: tf.TensorInfo): void {
  if (info.dtype !== 'float32') throw new Error(`${kernelName} (wasm): '${name}' must be float32, got ${info.dtype}`);
}

/** Channel count of x (its last axis), checked against the per-channel vectors. */
function channelsOf(kernelName: string, x: tf.TensorInfo, vectors: Record<string, tf.TensorInfo>): number {
  const channels = x.shape.length > 0 ? x.shape[x.shape.length - 1] : 1;
  for (const [name, v] of Object.entries(vectors)) {
    checkFloat(kernelName, name, v);
    if (v.shape.length !== 1 || v.shape[0] !== channels) {
      throw new Error(`${kernelName} (wasm): '${name}' has shape [${v.shape}], expected [${channels}] (the last axis of x, [${x.shape}])`);
    }
  }
  return channels;
}

/** Runs `body` with `bytes` of scratch from the backend's allocator, freed afterwards. */
function withScratch(b: WasmBackendLike, bytes: number, body: (pointer: number) => void): void {
  const pointer = b.wasm._malloc(Math.max(bytes, 8)) >>> 0;
  if (pointer === 0) throw new Error(`wasm fused kernels: out of wasm memory allocating ${bytes} bytes of scratch`);
  try {
    body(pointer);
  } finally {
    b.wasm._free(pointer);
  }
}

/** r = max(0, x * scale[c] + shift[c]); inputs x [..., C], scale [C], shift [C]. */
const bnRelu: tf.KernelFunc = ({ inputs, backend }) => {
  const { b, k } = kernelsFor(backend, BN_RELU);
  const { x, scale, shift } = inputs as unknown as Record<'x' | 'scale' | 'shift', tf.TensorInfo>;
  checkFloat(BN_RELU, 'x', x);
  const channels = channelsOf(BN_RELU, x, { scale, shift });
  // Outputs first: allocating may grow the heap, offsets stay valid (the Memory object is the same).
  const out = b.makeOutput(x.shape, 'float32');
  const rows = channels === 0 ? 0 : tf.util.sizeFromShape(x.shape) / channels;
  withScratch(b, k.bn_relu_scratch_bytes(channels), (scratch) =>
    k.bn_relu(
      offsetOf(b, x, BN_RELU, 'x'), offsetOf(b, scale, BN_RELU, 'scale'), offsetOf(b, shift, BN_RELU, 'shift'),
      offsetOf(b, out, BN_RELU, 'output'), rows, channels, scratch,
    ));
  return out;
};

/** [dx, dGamma, dBeta] of r = relu(BN_train(x)) given dr; the ReLU mask is recomputed from x. */
const bnReluGrad: tf.KernelFunc = ({ inputs, backend }) => {
  const { b, k } = kernelsFor(backend, BN_RELU_GRAD);
  const { x, dr, gamma, beta, mean, invStd } =
    inputs as unknown as Record<'x' | 'dr' | 'gamma' | 'beta' | 'mean' | 'invStd', tf.TensorInfo>;
  checkFloat(BN_RELU_GRAD, 'x', x);
  checkFloat(BN_RELU_GRAD, 'dr', dr);
  if (!tf.util.arraysEqual(dr.shape, x.shape)) {
    throw new Error(`${BN_RELU_GRAD} (wasm): 'dr' has shape [${dr.shape}], expected the shape of x, [${x.shape}]`);
  }
  const channels = channelsOf(BN_RELU_GRAD, x, { gamma, beta, mean, invStd });
  const dx = b.makeOutput(x.shape, 'float32');
  const dGamma = b.makeOutput([channels], 'float32');
  const dBeta = b.makeOutput([channels], 'float32');
  const rows = channels === 0 ? 0 : tf.util.sizeFromShape(x.shape) / channels;
  const at = (info: tf.TensorInfo, name: string): number => offsetOf(b, info, BN_RELU_GRAD, name);
  withScratch(b, k.bn_relu_grad_scratch_bytes(channels), (scratch) =>
    k.bn_relu_grad(
      at(x, 'x'), at(dr, 'dr'), at(gamma, 'gamma'), at(beta, 'beta'), at(mean, 'mean'), at(invStd, 'invStd'),
      at(dx, 'dx'), at(dGamma, 'dGamma'), at(dBeta, 'dBeta'), rows, channels, scratch,
    ));
  return [dx, dGamma, dBeta];
};

const KERNELS: [string, tf.KernelFunc][] = [[BN_RELU, bnRelu], [BN_RELU_GRAD, bnReluGrad]];

/**
 * Compiles the module and registers both kernels for the 'wasm' backend. Call it once
 * the wasm backend is initialised (its memory is checked). Does nothing when the kernels
 * are registered already, and registers nothing where they can't run (an engine without
 * WebAssembly SIMD, or the backend's multi-threaded build, whose memory is shared): the
 * dense layers then use composite ops, and `wasmFusedKernelsProblem()` says why.
 */
export async function registerWasmFusedKernels(): Promise<void> {
  if (kernelsModule === undefined && compileProblem === null) {
    const bytes = decodeBase64(WASM_FUSED_KERNELS_BASE64);
    if (!WebAssembly.validate(bytes)) {
      compileProblem = 'this WebAssembly engine cannot load the kernels module (it needs the SIMD extension)';
    } else {
      compiled ??= WebAssembly.compile(bytes);
      kernelsModule = await compiled;
    }
  }
  if (wasmFusedKernelsProblem() !== null) return;
  for (const [kernelName, kernelFunc] of KERNELS) {
    if (!tf.getKernel(kernelName, WASM)) tf.registerKernel({ kernelName, backendName: WASM, kernelFunc });
  }
}

/** Why the kernels can't run (on the current wasm backend, if it is initialised), or null when they can. */
export function wasmFusedKernelsProblem(): string | null {
  if (compileProblem !== null) return compileProblem;
  const backend = tf.engine().registry[WASM];
  return backend === undefined ? null : memoryProblem(backend);
}

/** Removes the kernels (benchmarks compare against the composite ops this way). */
export function unregisterWasmFusedKernels(): void {
  for (const [kernelName] of KERNELS) {
    if (tf.getKernel(kernelName, WASM)) tf.unregisterKernel(kernelName, WASM);
  }
}
