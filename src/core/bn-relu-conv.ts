// The arithmetic of one BN-ReLU-Conv unit, forward and hand-written backward.
// Written as plain tensor functions (no tape) so a dense layer can run them inside
// tf.customGrad, either keeping the intermediates (naive mode) or recomputing them
// in the backward pass (memory-efficient mode). BatchNorm is folded into one
// per-channel scale and shift, which keeps every op a broadcast over channels
// (tfjs's own BN gradient spends most of its time tiling).
import * as tf from '../tf';
import { BATCH_MOMENTS, BN_RELU, BN_RELU_GRAD, BN_RELU_POOLED_GRAD, hasFusedKernels, hasKernel, pieceInputs } from './fused-kernels';

export interface BatchNormWeights {
  gamma: tf.Tensor1D;
  beta: tf.Tensor1D;
}

export interface ConvWeights {
  kernel: tf.Tensor4D;
  bias?: tf.Tensor1D;
}

/** Per-channel statistics a BN normalises with: batch statistics in training, moving ones in inference. */
export interface ChannelStats {
  mean: tf.Tensor1D;
  invStd: tf.Tensor1D;
}

const SPATIAL_AXES = [0, 1, 2];

/**
 * Combines per-process batch statistics into those of the whole global batch (synchronised
 * BatchNorm across data-parallel ranks). Every rank calls it in the same order, inside the
 * training step only; it may read tensors synchronously, so it is used on CPU backends.
 */
export interface BatchStatsReducer {
  /** The global batch's moments from this rank's, over `count` values per channel here. */
  moments(local: Moments, count: number): Moments;
  /** Global per-channel sums of dy and dy * x, and the global count, from this rank's. */
  gradientSums(sumDy: tf.Tensor1D, sumDyX: tf.Tensor1D, count: number): { sumDy: tf.Tensor1D; sumDyX: tf.Tensor1D; count: number };
}

let reducer: BatchStatsReducer | undefined;

/** Runs `fn` (a training step) with BatchNorm statistics reduced across ranks by `r`. */
export function withBatchStatsReducer<T>(r: BatchStatsReducer | undefined, fn: () => T): T {
  const previous = reducer;
  reducer = r;
  try {
    return fn();
  } finally {
    reducer = previous;
  }
}

/** Batch mean and variance over N, H, W; variance is the biased one, as tfjs-layers' BatchNormalization uses. */
export function batchMoments(x: tf.Tensor4D): Moments {
  const local = localMoments(x);
  if (!reducer) return local;
  const [n, h, w] = x.shape;
  const global = reducer.moments(local, n * h * w);
  tf.dispose([local.mean, local.variance]);
  return global;
}

function localMoments(x: tf.Tensor4D): Moments {
  if (hasKernel(BATCH_MOMENTS)) {
    const [mean, variance] = tf.engine().runKernel(BATCH_MOMENTS, { x }) as tf.Tensor1D[];
    return { mean, variance };
  }
  return tf.tidy(() => {
    const mean = tf.mean(x, SPATIAL_AXES) as tf.Tensor1D;
    const variance = tf.mean(tf.squaredDifference(x, mean), SPATIAL_AXES) as tf.Tensor1D;
    return { mean, variance };
  });
}

export function channelStats(mean: tf.Tensor1D, variance: tf.Tensor1D, epsilon: number): ChannelStats {
  return { mean, invStd: tf.tidy(() => tf.rsqrt(tf.add(variance, epsilon)) as tf.Tensor1D) };
}

/**
 * relu(gamma * (x - mean) * invStd + beta) as one multiply-add per element. `x` may be
 * given as channel pieces: the fused kernels read them in place of their concatenation.
 */
export function bnRelu(x: tf.Tensor4D | tf.Tensor4D[], bn: BatchNormWeights, stats: ChannelStats): tf.Tensor4D {
  return tf.tidy(() => {
    const scale = tf.mul(bn.gamma, stats.invStd);
    const shift = tf.sub(bn.beta, tf.mul(stats.mean, scale));
    if (hasFusedKernels()) {
      const inputs = Array.isArray(x) ? pieceInputs(x) : { x };
      return tf.engine().runKernel(BN_RELU, { ...inputs, scale, shift }) as tf.Tensor4D;
    }
    return tf.relu(tf.add(tf.mul(concatChannels(x), scale), shift)) as tf.Tensor4D;
  });
}

/** The channel concatenation of `x` (a new tensor: the caller disposes it). */
export function concatChannels(x: tf.Tensor4D | tf.Tensor4D[]): tf.Tensor4D {
  if (!Array.isArray(x)) return x.clone();
  return x.length === 1 ? x[0].clone() : tf.concat(x, 3);
}

/** 2x2 average pooling with stride 2: a DenseNet transition's. */
export function avgPool2(x: tf.Tensor4D): tf.Tensor4D {
  return tf.avgPool(x, 2, 2, 'valid');
}

/** The gradient of avgPool2 for an input of `like`'s shape. */
function avgPool2Backward(dy: tf.Tensor4D, like: tf.Tensor4D): tf.Tensor4D {
  return tf.engine().runKernel(tf.AvgPoolGrad, { dy, input: like }, { filterSize: 2, strides: 2, pad: 'valid' }) as tf.Tensor4D;
}

export function conv(x: tf.Tensor4D, w: ConvWeights): tf.Tensor4D {
  return tf.tidy(() => {
    const y = tf.conv2d(x, w.kernel, 1, 'same');
    return (w.bias ? tf.add(y, w.bias) : y) as tf.Tensor4D;
  });
}

/** Gradients of conv(x) for the weights; `x` is the conv's input. */
function convWeightGrads(x: tf.Tensor4D, w: ConvWeights, dy: tf.Tensor4D): { dKernel: tf.Tensor4D; dBias?: tf.Tensor1D } {
  const dKernel = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
    strides: [1, 1], pad: 'same', dataFormat: 'NHWC', filterShape: w.kernel.shape,
  }) as tf.Tensor4D;
  return w.bias ? { dKernel, dBias: tf.sum(dy, SPATIAL_AXES) as tf.Tensor1D } : { dKernel };
}

/** Gradient of conv(x) for its input, of `inputShape`. */
function convInputGrad(inputShape: [number, number, number, number], w: ConvWeights, dy: tf.Tensor4D): tf.Tensor4D {
  return tf.conv2dTranspose(dy, w.kernel, inputShape, 1, 'same');
}

/**
 * Backward of y = BN_train(x) given dy. Batch statistics depend on x, so dx carries the
 * two mean terms of the BN gradient. Full-size temporaries are freed as soon as they are
 * used: this is the peak of the memory-efficient backward pass.
 */
export function batchNormBackward(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  bn: BatchNormWeights,
  stats: ChannelStats,
): { dx: tf.Tensor4D; dGamma: tf.Tensor1D; dBeta: tf.Tensor1D } {
  const [n, h, w] = x.shape;
  const sumDy = tf.sum(dy, SPATIAL_AXES) as tf.Tensor1D;
  const dyX = tf.mul(dy, x);
  const sumDyX = tf.sum(dyX, SPATIAL_AXES) as tf.Tensor1D;
  dyX.dispose();
  // dGamma = sum(dy * xhat) with xhat = (x - mean) * invStd, expanded so xhat is never built.
  const gammaGrad = (sDy: tf.Tensor1D, sDyX: tf.Tensor1D) => tf.mul(stats.invStd, tf.sub(sDyX, tf.mul(stats.mean, sDy))) as tf.Tensor1D;
  const dGamma = tf.tidy(() => gammaGrad(sumDy, sumDyX));
  // Synchronised BatchNorm: the weights' gradients stay this rank's, dx takes the global batch's sums.
  const global = reducer?.gradientSums(sumDy, sumDyX, n * h * w);
  const { scale, a, c } = tf.tidy(() => {
    const count = global?.count ?? n * h * w;
    const batchSumDy = global?.sumDy ?? sumDy;
    const batchDGamma = global ? gammaGrad(global.sumDy, global.sumDyX) : dGamma;
    const scale = tf.mul(bn.gamma, stats.invStd);
    // dx = scale * (dy - sumDy/M - xhat * dGamma/M) = scale*dy + a*x + c
    const gOverM = tf.div(tf.mul(batchDGamma, stats.invStd), count);
    const a = tf.neg(tf.mul(scale, gOverM));
    const c = tf.mul(scale, tf.sub(tf.mul(stats.mean, gOverM), tf.div(batchSumDy, count)));
    return { scale, a, c };
  });
  if (global) tf.dispose([global.sumDy, global.sumDyX]);
  const scaled = tf.mul(dy, scale);
  const shifted = tf.mul(x, a);
  const sum = tf.add(scaled, shifted);
  tf.dispose([scaled, shifted]);
  const dx = tf.add(sum, c) as tf.Tensor4D;
  tf.dispose([sum, scale, a, c, sumDyX]);
  return { dx, dGamma, dBeta: sumDy };
}

export interface UnitWeights {
  bn: BatchNormWeights;
  conv: ConvWeights;
}

export interface Moments {
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

export interface UnitForward {
  out: tf.Tensor4D;
  r: tf.Tensor4D;
  stats: ChannelStats;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/**
 * Training-mode forward of one BN-ReLU-Conv unit: batch statistics, the BN-ReLU output and
 * the conv output. `x` may be channel pieces; `moments`, when given, are x's batch moments
 * (a dense layer assembles them from its feature maps' moments instead of recomputing).
 */
export function unitForward(x: tf.Tensor4D, w: UnitWeights, epsilon: number): UnitForward;
export function unitForward(x: tf.Tensor4D | tf.Tensor4D[], w: UnitWeights, epsilon: number, moments: Moments): UnitForward;
export function unitForward(x: tf.Tensor4D | tf.Tensor4D[], w: UnitWeights, epsilon: number, moments?: Moments): UnitForward {
  const { mean, variance } = moments ?? batchMoments(x as tf.Tensor4D);
  const stats = channelStats(mean, variance, epsilon);
  const r = bnRelu(x, w.bn, stats);
  return { out: conv(r, w.conv), r, stats, mean, variance };
}

/**
 * Where the input gradient of a unit goes: split along channels by `splits`, each piece
 * added to its accumulator where one is given (the running gradients of a dense block's
 * feature maps).
 */
export interface InputGradTarget {
  splits: number[];
  accumulators: Array<tf.Tensor4D | null>;
  /**
   * The accumulators are the caller's to give up: each is disposed as soon as its sum exists, so
   * that the old and new running gradients of only one piece are alive at a time.
   */
  consume?: boolean;
}

/**
 * Backward of one unit: the input gradient (one tensor per split of `target`, or one in
 * all) and the weight gradients in the order gamma, beta, kernel[, bias]. `x` is the unit's
 * input, whole or as channel pieces. With `releaseActivation` the BN-ReLU output `r` is
 * disposed as soon as it is no longer needed, with `releaseGradient` dOut too. With `pooled`, the unit is a transition that
 * average-pools before its 1x1 conv (the same as after: both are linear) and `r` is the
 * pooled BN-ReLU output.
 */
export function unitBackward(
  x: tf.Tensor4D | tf.Tensor4D[], r: tf.Tensor4D, w: UnitWeights, stats: ChannelStats, dOut: tf.Tensor4D,
  options: { releaseActivation?: boolean; releaseGradient?: boolean; target?: InputGradTarget; pooled?: boolean } = {},
): { dxs: tf.Tensor4D[]; weightGrads: tf.Tensor[] } {
  if (options.pooled && Array.isArray(x)) throw new Error('unitBackward: a pooled unit takes its input whole, not as pieces');
  // The weights' gradient first: then r can go before the input gradient, as large, is made.
  const { dKernel, dBias } = convWeightGrads(r, w.conv, dOut);
  const convGrads = [dKernel, ...(dBias ? [dBias] : [])];
  const rShape = r.shape;
  // The fused kernel needs only x; the fallback still reads r for the ReLU mask. The fused
  // kernel sums the BN gradient itself, so synchronised BatchNorm takes the composite path.
  const fused = hasFusedKernels() && !reducer;
  if (options.releaseActivation && (fused || options.pooled)) r.dispose();
  const convDx = convInputGrad(rShape, w.conv, dOut);
  if (options.releaseGradient) dOut.dispose();
  const full = (x as tf.Tensor4D).shape; // a pooled unit's x is whole (checked above)
  const pooledKernel = !!options.pooled && fused && hasKernel(BN_RELU_POOLED_GRAD) && full[1] % 2 === 0 && full[2] % 2 === 0;
  // The pool's gradient is dr / 4 over each window: the pooled kernel reads it there, no full-size dr is made.
  const dr = pooledKernel ? (tf.div(convDx, 4) as tf.Tensor4D) : options.pooled ? avgPool2Backward(convDx, x as tf.Tensor4D) : convDx;
  if (dr !== convDx) convDx.dispose();
  const mask = fused || options.pooled ? undefined : r;
  const b = pooledKernel
    ? fusedBnReluBackward(x, dr, w.bn, stats, options.target, BN_RELU_POOLED_GRAD)
    : bnReluGradients(x, dr, w.bn, stats, { target: options.target, activation: mask });
  if (mask && options.releaseActivation) mask.dispose();
  dr.dispose();
  return { dxs: b.dxs, weightGrads: [b.dGamma, b.dBeta, ...convGrads] };
}

/**
 * Backward of r = relu(BN_train(x)) given dr: the fused kernel where the backend has it and
 * BatchNorm is not synchronised, else composite ops, which read the ReLU mask from
 * `activation` (r) when given and recompute it otherwise.
 */
export function bnReluGradients(x: tf.Tensor4D | tf.Tensor4D[], dr: tf.Tensor4D, bn: BatchNormWeights, stats: ChannelStats,
  options: { target?: InputGradTarget; activation?: tf.Tensor4D } = {}): BnReluGrads {
  if (hasFusedKernels() && !reducer) {
    const { target } = options;
    return target?.consume && Array.isArray(x) && x.length > 1 && target.splits.every((w, j) => x[j]?.shape[3] === w)
      ? piecewiseBnReluBackward(x, dr, bn, stats, target)
      : fusedBnReluBackward(x, dr, bn, stats, target);
  }
  const r = options.activation ?? bnRelu(x, bn, stats);
  const b = bnReluBackward(r, x, dr, bn, stats, options.target);
  if (!options.activation) r.dispose();
  return b;
}

export interface BnReluGrads {
  dxs: tf.Tensor4D[];
  dGamma: tf.Tensor1D;
  dBeta: tf.Tensor1D;
}

/** Backward of r = relu(BN_train(x)) given dr, in one kernel that recomputes the ReLU mask from x. */
function fusedBnReluBackward(x: tf.Tensor4D | tf.Tensor4D[], dr: tf.Tensor4D, bn: BatchNormWeights, stats: ChannelStats,
  target?: InputGradTarget, kernel = BN_RELU_GRAD): BnReluGrads {
  const xs = Array.isArray(x) ? pieceInputs(x) : { x };
  const accs = Object.fromEntries((target?.accumulators ?? []).flatMap((a, j) => (a ? [[`acc${j}`, a]] : [])));
  const outs = tf.engine().runKernel(kernel, {
    ...xs, dr, gamma: bn.gamma, beta: bn.beta, mean: stats.mean, invStd: stats.invStd, ...accs,
  } as unknown as tf.NamedTensorMap, target ? { splits: target.splits } : {}) as tf.Tensor[];
  const n = outs.length - 2;
  return { dxs: outs.slice(0, n) as tf.Tensor4D[], dGamma: outs[n] as tf.Tensor1D, dBeta: outs[n + 1] as tf.Tensor1D };
}

/**
 * The fused backward one input piece at a time (BatchNorm's gradient is per channel), each
 * piece's accumulator given up once its sum is made: the running gradients are never all
 * alive twice. dr is read in channel slices, a copy of one piece's channels at a time.
 */
function piecewiseBnReluBackward(x: tf.Tensor4D[], dr: tf.Tensor4D, bn: BatchNormWeights, stats: ChannelStats,
  target: InputGradTarget): BnReluGrads {
  const dxs: tf.Tensor4D[] = [];
  const dGammas: tf.Tensor1D[] = [];
  const dBetas: tf.Tensor1D[] = [];
  let channel = 0;
  x.forEach((piece, j) => {
    const width = piece.shape[3];
    const cut = <T extends tf.Tensor>(t: T): T => tf.slice(t, [...t.shape.slice(0, -1).map(() => 0), channel], [...t.shape.slice(0, -1).map(() => -1), width]) as T;
    const part = tf.tidy(() => {
      const g = fusedBnReluBackward(piece, cut(dr), { gamma: cut(bn.gamma), beta: cut(bn.beta) },
        { mean: cut(stats.mean), invStd: cut(stats.invStd) }, { splits: [width], accumulators: [target.accumulators[j]] });
      return { dx: g.dxs[0], dGamma: g.dGamma, dBeta: g.dBeta };
    });
    target.accumulators[j]?.dispose();
    dxs.push(part.dx);
    dGammas.push(part.dGamma);
    dBetas.push(part.dBeta);
    channel += width;
  });
  const dGamma = tf.concat(dGammas) as tf.Tensor1D;
  const dBeta = tf.concat(dBetas) as tf.Tensor1D;
  tf.dispose([...dGammas, ...dBetas]);
  return { dxs, dGamma, dBeta };
}

/** The same with composite ops, for backends without the fused kernels. */
function bnReluBackward(r: tf.Tensor4D, x: tf.Tensor4D | tf.Tensor4D[], dr: tf.Tensor4D, bn: BatchNormWeights,
  stats: ChannelStats, target?: InputGradTarget): BnReluGrads {
  const mask = tf.step(r);
  const dy = tf.mul(dr, mask) as tf.Tensor4D;
  mask.dispose();
  const whole = concatChannels(x);
  const b = batchNormBackward(whole, dy, bn, stats);
  tf.dispose([dy, whole]);
  if (!target) return { ...b, dxs: [b.dx] };
  const dxs = tf.tidy(() => {
    const pieces = target.splits.length === 1 ? [b.dx] : (tf.split(b.dx, target.splits, 3) as tf.Tensor4D[]);
    return pieces.map((p, j) => (target.accumulators[j] ? (tf.add(target.accumulators[j]!, p) as tf.Tensor4D) : p.clone()));
  });
  b.dx.dispose();
  return { dxs, dGamma: b.dGamma, dBeta: b.dBeta };
}

/** The weights of a unit as customGrad inputs, in the order unitBackward returns their gradients. */
export function unitWeightList(w: UnitWeights): tf.Tensor[] {
  return [w.bn.gamma, w.bn.beta, w.conv.kernel, ...(w.conv.bias ? [w.conv.bias] : [])];
}
