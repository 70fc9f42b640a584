// The memory-efficient mode's kernels in WGSL for the webgpu backend, under the names of
// src/core/fused-kernels.ts and src/core/dropout-mask.ts and equal to the cpu ones up to float32
// summation order. BN-ReLU reads a dense layer's feature maps in place and its backward writes
// each map's gradient (plus its running gradient) directly, so efficient mode builds no
// concatenation here either.
//
// A WebGPU shader may bind only maxStorageBuffersPerShaderStage buffers (8 by default) while a
// dense layer reads up to ~50 maps, so the kernels that read the pieces run once per group of
// pieces, writing their channels of a shared output. Every program takes its sizes as uniforms,
// so one shader serves every layer with the same number of pieces.
import * as tf from '../tf';
import {
  BATCH_MOMENTS, BN_RELU, BN_RELU_GRAD, bnReluGradInputs, checkChannelInputs, concatShape, lastAxis, xPieces,
} from '../core/fused-kernels';
import { DROPOUT_MASK, checkDropoutRate } from '../core/dropout-mask';
import { WEBGPU } from './webgpu';

type Info = tf.TensorInfo;
type InputMap = Record<string, Info | undefined>;
type Uniform = { type: 'int32' | 'uint32' | 'float32'; data: number[] };

/** The parts of tfjs's WebGPUProgram these kernels fill in (tfjs-backend-webgpu/src/webgpu_program.ts). */
interface Program {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  variableNames: string[];
  workgroupSize: [number, number, number];
  uniforms: string;
  getUserCode(): string;
}

interface WebGpuBackendLike {
  device: { limits: { maxStorageBuffersPerShaderStage: number } };
  makeTensorInfo(shape: number[], dtype: 'float32'): Info;
  runWebGPUProgram(program: Program, inputs: Info[], dtype: 'float32', uniforms: Uniform[], output?: Info): Info;
  disposeData(dataId: unknown): void;
}

const WORKGROUP = 64;
const i32s = (...data: number[]): Uniform => ({ type: 'int32', data });

/**
 * A program over `threads` invocations (or `threads` workgroups when `perWorkgroup`), with the
 * body given the flat invocation index as `index`.
 */
function program(key: string, variableNames: string[], outputShape: number[], uniforms: string[], threads: number,
  body: string, perWorkgroup = false): Program {
  return {
    outputShape, variableNames, workgroupSize: [WORKGROUP, 1, 1],
    shaderKey: `densenet_${key}_${variableNames.length}`,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: [Math.max(1, perWorkgroup ? threads : Math.ceil(threads / WORKGROUP)), 1, 1],
    uniforms: uniforms.map((u) => `${u} : i32,`).join(' '),
    getUserCode: () => body,
  };
}

/** WGSL: the value of channel `c` (of the group's pieces) in row `row`, from pieces x0..x(n-1) of widths uniforms.w0... */
function pieceRead(n: number): string {
  const branches = Array.from({ length: n }, (_, i) =>
    `if (c < start + uniforms.w${i}) { return x${i}[row * uniforms.w${i} + c - start]; }\n      start = start + uniforms.w${i};`);
  return `fn readPiece(row : i32, c : i32) -> f32 {
      var start = 0;
      ${branches.join('\n      ')}
      return 0.0;
    }`;
}

/** The pieces in groups a shader can bind beside `others` other buffers and its output. */
function groups(b: WebGpuBackendLike, pieces: Info[], others: number): Info[][] {
  const size = Math.max(1, b.device.limits.maxStorageBuffersPerShaderStage - others - 1);
  const out: Info[][] = [];
  for (let i = 0; i < pieces.length; i += size) out.push(pieces.slice(i, i + size));
  return out;
}

const pieceNames = (group: Info[]) => group.map((_, i) => `x${i}`);
const widthUniforms = (group: Info[]) => group.map((_, i) => `w${i}`);

function bnReluKernel({ inputs, backend }: { inputs: InputMap; backend: unknown }): Info {
  const b = backend as WebGpuBackendLike;
  const pieces = xPieces(inputs, BN_RELU);
  const { scale, shift } = inputs;
  const channels = checkChannelInputs(BN_RELU, pieces, { scale, shift });
  const shape = concatShape(pieces);
  const rows = tf.util.sizeFromShape(shape.slice(0, -1));
  const out = b.makeTensorInfo(shape, 'float32');
  let start = 0;
  for (const group of groups(b, pieces, 2)) {
    const width = group.reduce((s, p) => s + lastAxis(p), 0);
    const p = program('bn_relu', [...pieceNames(group), 'scale', 'shift'], shape, ['rows', 'channels', 'groupStart', 'groupWidth', ...widthUniforms(group)],
      rows * width, `
    ${pieceRead(group.length)}
    fn main(index : i32) {
      if (index >= uniforms.rows * uniforms.groupWidth) { return; }
      let row = index / uniforms.groupWidth;
      let c = index % uniforms.groupWidth;
      let k = uniforms.groupStart + c;
      result[row * uniforms.channels + k] = max(readPiece(row, c) * scale[k] + shift[k], 0.0);
    }`);
    b.runWebGPUProgram(p, [...group, scale!, shift!], 'float32', [i32s(rows), i32s(channels), i32s(start), i32s(width), ...group.map((g) => i32s(lastAxis(g)))], out);
    start += width;
  }
  return out;
}

/** WGSL: a workgroup's tree reduction of `names` (arrays in workgroup memory), leaving the sums at [0]. */
function workgroupReduce(names: string[]): string {
  return `workgroupBarrier();
      for (var stride = ${WORKGROUP / 2}u; stride > 0u; stride = stride / 2u) {
        if (localId.x < stride) {
          ${names.map((n) => `${n}[localId.x] = ${n}[localId.x] + ${n}[localId.x + stride];`).join('\n          ')}
        }
        workgroupBarrier();
      }`;
}

/** [scale, shift] per channel, from the BatchNorm weights and statistics. */
function foldParams(b: WebGpuBackendLike, gamma: Info, beta: Info, mean: Info, invStd: Info, channels: number): Info {
  const p = program('bn_fold', ['gamma', 'beta', 'mean', 'invStd'], [2, channels], ['channels'], channels, `
    fn main(index : i32) {
      if (index >= uniforms.channels) { return; }
      let scale = gamma[index] * invStd[index];
      result[index] = scale;
      result[uniforms.channels + index] = beta[index] - mean[index] * scale;
    }`);
  return b.runWebGPUProgram(p, [gamma, beta, mean, invStd], 'float32', [i32s(channels)]);
}

function bnReluGradKernel({ inputs, backend, attrs }: { inputs: InputMap; backend: unknown; attrs?: unknown }): Info[] {
  const b = backend as WebGpuBackendLike;
  const { pieces, dr, gamma, beta, mean, invStd, channels, segments, accs, lead } = bnReluGradInputs(inputs, attrs);
  const rows = tf.util.sizeFromShape(lead);
  const params = foldParams(b, gamma, beta, mean, invStd, channels);

  // Per channel, over the rows where the ReLU passed: sum(dr) and sum(dr * x). One workgroup per channel.
  const sums = b.makeTensorInfo([2, channels], 'float32');
  let start = 0;
  for (const group of groups(b, pieces, 2)) {
    const width = group.reduce((s, p) => s + lastAxis(p), 0);
    const p = program('bn_relu_grad_sums', [...pieceNames(group), 'dr', 'params'], [2, channels],
      ['rows', 'channels', 'groupStart', ...widthUniforms(group)], width, `
    ${pieceRead(group.length)}
    var<workgroup> partDy : array<f32, ${WORKGROUP}>;
    var<workgroup> partDyX : array<f32, ${WORKGROUP}>;
    fn main(index : i32) {
      let c = i32(workgroupId.x); // one workgroup per channel: fewer than 65536, so never reshaped
      let k = uniforms.groupStart + c;
      let scale = params[k];
      let shift = params[uniforms.channels + k];
      var sumDy = 0.0;
      var sumDyX = 0.0;
      for (var row = i32(localId.x); row < uniforms.rows; row = row + ${WORKGROUP}) {
        let x = readPiece(row, c);
        if (x * scale + shift > 0.0) {
          let d = dr[row * uniforms.channels + k];
          sumDy = sumDy + d;
          sumDyX = sumDyX + d * x;
        }
      }
      partDy[localId.x] = sumDy;
      partDyX[localId.x] = sumDyX;
      ${workgroupReduce(['partDy', 'partDyX'])}
      if (localId.x == 0u) {
        result[k] = partDy[0];
        result[uniforms.channels + k] = partDyX[0];
      }
    }`, true);
    b.runWebGPUProgram(p, [...group, dr, params], 'float32', [i32s(rows), i32s(channels), i32s(start), ...group.map((g) => i32s(lastAxis(g)))], sums);
    start += width;
  }

  // dGamma, dBeta, and the coefficients of dx = mask * dr * scale + x * a + c per channel. (A shader
  // must use every buffer it is given: the layout leaves unused ones out.)
  const perChannel = (key: string, names: string[], length: number, code: string) => b.runWebGPUProgram(
    program(key, names, [length], ['channels', 'count'], channels, `
    fn main(index : i32) {
      if (index >= uniforms.channels) { return; }
      let n = uniforms.channels;
      ${code}
    }`), names.map((name) => ({ params, sums, mean, invStd })[name]!), 'float32', [i32s(channels), i32s(rows)]);
  const dGammaOf = 'let dGamma = invStd[index] * (sums[n + index] - mean[index] * sums[index]);';
  const dGamma = perChannel('bn_relu_grad_gamma', ['sums', 'mean', 'invStd'], channels, `${dGammaOf}
      result[index] = dGamma;`);
  const dBeta = perChannel('bn_relu_grad_beta', ['sums'], channels, 'result[index] = sums[index];');
  const coef = perChannel('bn_relu_grad_coef', ['params', 'sums', 'mean', 'invStd'], 3 * channels, `${dGammaOf}
      let scale = params[index];
      let gOverM = dGamma * invStd[index] / f32(uniforms.count);
      result[index] = scale;
      result[n + index] = -scale * gOverM;
      result[2 * n + index] = scale * (mean[index] * gOverM - sums[index] / f32(uniforms.count));`);

  const dxs = segments.map((s, j) => {
    const acc = accs[j];
    const p = program(`bn_relu_grad_dx${acc ? '_acc' : ''}`, ['x', 'dr', 'params', 'coef', ...(acc ? ['acc'] : [])], [...lead, s.width],
      ['rows', 'channels', 'width', 'xWidth', 'offset', 'channel'], rows * s.width, `
    fn main(index : i32) {
      if (index >= uniforms.rows * uniforms.width) { return; }
      let row = index / uniforms.width;
      let c = index % uniforms.width;
      let k = uniforms.channel + c;
      let n = uniforms.channels;
      let xv = x[row * uniforms.xWidth + uniforms.offset + c];
      var dy = 0.0;
      if (xv * params[k] + params[n + k] > 0.0) { dy = dr[row * n + k]; }
      let v = dy * coef[k] + xv * coef[n + k] + coef[2 * n + k];
      result[index] = ${acc ? 'acc[index] + v' : 'v'};
    }`);
    return b.runWebGPUProgram(p, [pieces[s.piece], dr, params, coef, ...(acc ? [acc] : [])], 'float32',
      [i32s(rows), i32s(channels), i32s(s.width), i32s(lastAxis(pieces[s.piece])), i32s(s.offset), i32s(s.channel)]);
  });
  for (const t of [params, sums, coef]) b.disposeData(t.dataId);
  return [...dxs, dGamma, dBeta];
}

/** Mean, then the biased variance about it, per channel: one workgroup per channel each. */
function batchMomentsKernel({ inputs, backend }: { inputs: InputMap; backend: unknown }): Info[] {
  const b = backend as WebGpuBackendLike;
  const x = inputs.x;
  if (!x || x.dtype !== 'float32' || x.shape.length === 0) throw new Error(`${BATCH_MOMENTS}: expected a float32 input 'x' with channels last`);
  const channels = lastAxis(x);
  const rows = tf.util.sizeFromShape(x.shape.slice(0, -1));
  const reduce = (key: string, names: string[], term: string) => program(key, names, [channels], ['rows', 'channels'], channels, `
    var<workgroup> part : array<f32, ${WORKGROUP}>;
    fn main(index : i32) {
      let k = i32(workgroupId.x);
      var sum = 0.0;
      for (var row = i32(localId.x); row < uniforms.rows; row = row + ${WORKGROUP}) {
        let v = x[row * uniforms.channels + k];
        sum = sum + ${term};
      }
      part[localId.x] = sum;
      ${workgroupReduce(['part'])}
      if (localId.x == 0u) { result[k] = part[0] / f32(uniforms.rows); }
    }`, true);
  const sizes = [i32s(rows), i32s(channels)];
  const mean = b.runWebGPUProgram(reduce('moments_mean', ['x'], 'v'), [x], 'float32', sizes);
  const variance = b.runWebGPUProgram(reduce('moments_variance', ['x', 'mean'], '(v - mean[k]) * (v - mean[k])'), [x, mean], 'float32', sizes);
  return [mean, variance];
}

/** The same hash as dropoutMaskValues (mix32 of key + i * golden ratio), in u32 arithmetic. */
function dropoutMaskKernel({ attrs, backend }: { attrs?: unknown; backend: unknown }): Info {
  const b = backend as WebGpuBackendLike;
  const { shape, rate, seed } = attrs as { shape: number[]; rate: number; seed: number };
  checkDropoutRate(rate);
  const size = tf.util.sizeFromShape(shape);
  const p = program('dropout_mask', [], shape, ['size'], size, `
    fn mix32(x : u32) -> u32 {
      var z = x + 0x9e3779b9u;
      z = (z ^ (z >> 16u)) * 0x85ebca6bu;
      z = (z ^ (z >> 13u)) * 0xc2b2ae35u;
      return z ^ (z >> 16u);
    }
    fn main(index : i32) {
      if (index >= uniforms.size) { return; }
      let key = mix32(uniforms.seed);
      let drawn = mix32(key + u32(index) * 0x9e3779b9u) >> 8u;
      result[index] = select(0.0, uniforms.keep, drawn >= uniforms.threshold);
    }`);
  p.uniforms += ' seed : u32, threshold : u32, keep : f32,';
  const keep = Math.fround(1 / Math.fround(1 - rate));
  return b.runWebGPUProgram(p, [], 'float32', [i32s(size), { type: 'uint32', data: [seed >>> 0] },
    { type: 'uint32', data: [Math.ceil(rate * 2 ** 24)] }, { type: 'float32', data: [keep] }]);
}

const KERNELS: Array<[string, tf.KernelFunc]> = [
  [BN_RELU, bnReluKernel as unknown as tf.KernelFunc],
  [BN_RELU_GRAD, bnReluGradKernel as unknown as tf.KernelFunc],
  [BATCH_MOMENTS, batchMomentsKernel as unknown as tf.KernelFunc],
  [DROPOUT_MASK, dropoutMaskKernel as unknown as tf.KernelFunc],
];

/** Registers the kernels for the webgpu backend (idempotent). */
export function registerWebGpuKernels(): void {
  for (const [kernelName, kernelFunc] of KERNELS) {
    if (!tf.getKernel(kernelName, WEBGPU)) tf.registerKernel({ kernelName, backendName: WEBGPU, kernelFunc });
  }
}

/** Removes them (tests and benchmarks compare against the composite ops this way). */
export function unregisterWebGpuKernels(): void {
  for (const [kernelName] of KERNELS) {
    if (tf.getKernel(kernelName, WEBGPU)) tf.unregisterKernel(kernelName, WEBGPU);
  }
}
