// The fused BatchNorm-ReLU kernels (src/core/fused-kernels.ts) for the wasm backend.
//
// Scalar JS loops over the wasm heap are several times slower than the backend's
// own SIMD ops, so these kernels are C compiled to a 4 KB WebAssembly module
// (native/wasm-kernels/bn_relu.c, built by scripts/build-wasm-kernels.sh and
// embedded in wasm-fused-kernels-binary.ts). The module imports tfjs-backend-wasm's
// linear memory and reads and writes the tensors where they live: no copies, no
// temporaries beyond the outputs and a few bytes per channel of scratch. Results
// equal the cpu backend's JS kernels bit for bit.
//
// Both take x whole or as channel pieces, and the backward writes dx split and added to
// accumulators, as the contract in src/core/fused-kernels.ts says (its helpers do the
// validation and the layout). The module is told where each piece and split lies by a
// small table of segments written into the scratch memory.
import * as tf from '../tf';
import {
  BN_RELU, BN_RELU_GRAD, BnReluGradAttrs, SplitSegment, accumulators, checkChannelInputs, concatShape, lastAxis, splitSegments,
  xPieces,
} from '../core/fused-kernels';
import { WASM_FUSED_KERNELS_BASE64 } from './wasm-fused-kernels-binary';

const WASM = 'wasm';

/** What the compiled module exports (pointers are byte offsets into the backend's memory). */
interface KernelExports {
  bn_relu_scratch_bytes(channels: number): number;
  bn_relu(segments: number, numSegments: number, scale: number, shift: number, rows: number, channels: number, scratch: number): void;
  bn_relu_grad_scratch_bytes(channels: number): number;
  bn_relu_grad(
    pieces: number, numPieces: number, splits: number, numSplits: number, dr: number,
    gamma: number, beta: number, mean: number, invStd: number, dGamma: number, dBeta: number,
    rows: number, channels: number, scratch: number,
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

function kernelsFor(backend: unknown, kernelName: string): { b: WasmBackendLike; k: KernelExports; memory: WebAssembly.Memory } {
  const problem = memoryProblem(backend);
  if (problem !== null || kernelsModule === undefined) {
    throw new Error(`${kernelName} (wasm): cannot run: ${problem ?? 'the module is not compiled; await registerWasmFusedKernels() first'}`);
  }
  const b = backend as WasmBackendLike;
  const memory = b.wasm.asm!.memory as WebAssembly.Memory;
  let k = instances.get(memory);
  if (!k) {
    // Synchronous, but cheap: the module is compiled already and is 4 KB.
    k = new WebAssembly.Instance(kernelsModule, { env: { memory } }).exports as unknown as KernelExports;
    instances.set(memory, k);
  }
  return { b, k, memory };
}

function offsetOf(b: WasmBackendLike, info: tf.TensorInfo, kernelName: string, input: string): number {
  const offset = b.dataIdMap.get(info.dataId)?.memoryOffset;
  if (offset == null) throw new Error(`${kernelName}: tensor '${input}' has no data on the wasm heap`);
  return offset;
}

type InputMap = Record<string, tf.TensorInfo | undefined>;

/** The x inputs (whole or pieces, checked) with their input names and heap offsets. */
function xInputs(b: WasmBackendLike, inputs: InputMap, kernelName: string): { pieces: tf.TensorInfo[]; offsets: number[] } {
  // The single form keeps naming its tensor 'x' (the shared check says "x piece 0").
  if (inputs.x && inputs.x.dtype !== 'float32') throw new Error(`${kernelName}: 'x' must be float32, got ${inputs.x.dtype}`);
  const pieces = xPieces(inputs, kernelName);
  const offsets = pieces.map((p, i) => offsetOf(b, p, kernelName, inputs.x ? 'x' : `x${i}`));
  return { pieces, offsets };
}

/** Rows of the logical x: every axis but the last. */
function rowsOf(pieces: tf.TensorInfo[]): number {
  return tf.util.sizeFromShape(pieces[0].shape.slice(0, -1));
}

/** A Segment of bn_relu.c: pointers as byte offsets (`acc` 0 for none), strides in floats. */
interface Segment {
  x: number;
  xStride: number;
  channel: number;
  width: number;
  out: number;
  outStride: number;
  acc: number;
}

/** Size of a Segment in the module's memory: 7 u32 words. */
const SEGMENT_BYTES = 7 * 4;

/** Segments for the sums (and the forward's writes): one per non-empty x piece, at its channels of the whole. */
function pieceSegments(pieces: tf.TensorInfo[], offsets: number[], out = 0, outStride = 0): Segment[] {
  const segments: Segment[] = [];
  let channel = 0;
  pieces.forEach((p, i) => {
    const width = lastAxis(p);
    if (width > 0) segments.push({ x: offsets[i], xStride: width, channel, width, out: out + 4 * channel, outStride, acc: 0 });
    channel += width;
  });
  return segments;
}

/** Writes the tables at `at` (call after the last allocation: a heap that grows detaches views). */
function writeSegments(memory: WebAssembly.Memory, at: number, segments: Segment[]): void {
  const words = new Uint32Array(memory.buffer, at, (segments.length * SEGMENT_BYTES) / 4);
  segments.forEach((s, i) => words.set([s.x, s.xStride, s.channel, s.width, s.out, s.outStride, s.acc], (i * SEGMENT_BYTES) / 4));
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

const FORWARD = `${BN_RELU} (wasm)`;
const BACKWARD = `${BN_RELU_GRAD} (wasm)`;

/** r = max(0, x * scale[c] + shift[c]); inputs x [..., C] or pieces x0, x1, ... [..., C_i], scale [C], shift [C]. */
const bnRelu: tf.KernelFunc = ({ inputs, backend }) => {
  const { b, k, memory } = kernelsFor(backend, BN_RELU);
  const named = inputs as unknown as InputMap;
  const { pieces, offsets } = xInputs(b, named, FORWARD);
  const { scale, shift } = named;
  const channels = checkChannelInputs(FORWARD, pieces, { scale, shift });
  const at = (info: tf.TensorInfo, name: string): number => offsetOf(b, info, FORWARD, name);
  const scaleAt = at(scale!, 'scale');
  const shiftAt = at(shift!, 'shift');
  // Outputs after every check (nothing to dispose on a throw), before the scratch:
  // allocating may grow the heap, offsets stay valid (the Memory object is the same).
  const out = b.makeOutput(concatShape(pieces), 'float32');
  const segments = pieceSegments(pieces, offsets, at(out, 'output'), channels);
  const tableBytes = k.bn_relu_scratch_bytes(channels);
  withScratch(b, tableBytes + segments.length * SEGMENT_BYTES, (scratch) => {
    writeSegments(memory, scratch + tableBytes, segments);
    k.bn_relu(scratch + tableBytes, segments.length, scaleAt, shiftAt, rowsOf(pieces), channels, scratch);
  });
  return out;
};

/**
 * [dx_0..dx_(q-1), dGamma, dBeta] of r = relu(BN_train(x)) given dr, the ReLU mask recomputed
 * from x (whole or pieces); dx split by attrs.splits, with acc_j added where given.
 */
const bnReluGrad: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { b, k, memory } = kernelsFor(backend, BN_RELU_GRAD);
  const named = inputs as unknown as InputMap;
  const { pieces, offsets } = xInputs(b, named, BACKWARD);
  const { dr, gamma, beta, mean, invStd } = named;
  const channels = checkChannelInputs(BACKWARD, pieces, { gamma, beta, mean, invStd }, dr);
  const splits: SplitSegment[] = splitSegments(pieces, (attrs as BnReluGradAttrs | undefined)?.splits, BACKWARD);
  const accs = accumulators(named, pieces, splits, BACKWARD);
  const at = (info: tf.TensorInfo, name: string): number => offsetOf(b, info, BACKWARD, name);
  const vectors = [at(dr!, 'dr'), at(gamma!, 'gamma'), at(beta!, 'beta'), at(mean!, 'mean'), at(invStd!, 'invStd')] as const;
  const accAt = accs.map((acc, j) => (acc ? at(acc, `acc${j}`) : 0));
  const lead = pieces[0].shape.slice(0, -1);
  const dxs = splits.map((s) => b.makeOutput([...lead, s.width], 'float32'));
  const dGamma = b.makeOutput([channels], 'float32');
  const dBeta = b.makeOutput([channels], 'float32');
  const sums = pieceSegments(pieces, offsets);
  const outs = splits.map((s, j): Segment => ({
    x: offsets[s.piece] + 4 * s.offset, xStride: lastAxis(pieces[s.piece]), channel: s.channel, width: s.width,
    out: at(dxs[j], `dx${j}`), outStride: s.width, acc: accAt[j],
  }));
  const tableBytes = k.bn_relu_grad_scratch_bytes(channels);
  withScratch(b, tableBytes + (sums.length + outs.length) * SEGMENT_BYTES, (scratch) => {
    const sumsAt = scratch + tableBytes;
    const outsAt = sumsAt + sums.length * SEGMENT_BYTES;
    writeSegments(memory, sumsAt, sums);
    writeSegments(memory, outsAt, outs);
    k.bn_relu_grad(
      sumsAt, sums.length, outsAt, outs.length, ...vectors,
      at(dGamma, 'dGamma'), at(dBeta, 'dBeta'), rowsOf(pieces), channels, scratch,
    );
  });
  return [...dxs, dGamma, dBeta];
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
