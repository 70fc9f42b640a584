// The variables of one BN-ReLU-Conv unit inside a custom layer, shared by the dense
// block and the transition layer.
import * as tf from '../tf';
import { batchMoments, UnitWeights } from '../core/bn-relu-conv';
import { UnitScopes, WeightParam, weightName } from './layer-names';
import { KernelInit, tfjsKernelInitializer } from './initializers';

/** torch's BatchNorm2d defaults (its momentum 0.1 is Keras-style 0.9), for every BatchNorm of the zoo's models. */
export const BATCH_NORM_DEFAULTS = { epsilon: 1e-5, momentum: 0.9 } as const;

export interface UnitVariables {
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
  kernel: tf.LayerVariable;
  bias?: tf.LayerVariable;
}

export interface UnitShape extends UnitScopes {
  channels: number;
  kernelSize: number;
  filters: number;
  useBias: boolean;
  kernelInit: KernelInit;
}

type AddWeight = (name: string, shape: number[], dtype: 'float32', init: ReturnType<typeof tf.initializers.ones>,
  regularizer: undefined, trainable: boolean) => tf.LayerVariable;

/** Creates the unit's weights on `layer` under `norm/...` and `conv/...`. */
export function addUnitVariables(layer: tf.layers.Layer, s: UnitShape): UnitVariables {
  const add = (layer as unknown as { addWeight: AddWeight }).addWeight.bind(layer);
  const weight = (scope: string, param: WeightParam, shape: number[], init: ReturnType<typeof tf.initializers.ones>, trainable = true) =>
    add(weightName(scope, param), shape, 'float32', init, undefined, trainable);
  return {
    gamma: weight(s.norm, 'gamma', [s.channels], tf.initializers.ones()),
    beta: weight(s.norm, 'beta', [s.channels], tf.initializers.zeros()),
    movingMean: weight(s.norm, 'moving_mean', [s.channels], tf.initializers.zeros(), false),
    movingVariance: weight(s.norm, 'moving_variance', [s.channels], tf.initializers.ones(), false),
    kernel: weight(s.conv, 'kernel', [s.kernelSize, s.kernelSize, s.channels, s.filters], tf.initializers[tfjsKernelInitializer(s.kernelInit)]({})),
    bias: s.useBias ? weight(s.conv, 'bias', [s.filters], tf.initializers.zeros()) : undefined,
  };
}

export function readUnit(u: UnitVariables): UnitWeights {
  return {
    bn: { gamma: u.gamma.read() as tf.Tensor1D, beta: u.beta.read() as tf.Tensor1D },
    conv: { kernel: u.kernel.read() as tf.Tensor4D, bias: u.bias?.read() as tf.Tensor1D | undefined },
  };
}

export function movingStats(u: UnitVariables): { mean: tf.Tensor1D; variance: tf.Tensor1D } {
  return { mean: u.movingMean.read() as tf.Tensor1D, variance: u.movingVariance.read() as tf.Tensor1D };
}

/**
 * Which statistics BatchNorm normalises with outside training: the running averages (the usual
 * inference), or the batch's own, as the FC-DenseNet authors' code does at test time (without
 * updating the running averages).
 */
export type InferenceStats = 'running' | 'batch';
export const INFERENCE_STATS: readonly InferenceStats[] = ['running', 'batch'];

/** The statistics a unit normalises its input (one tensor, or channel pieces) with outside training. */
export function inferenceMoments(u: UnitVariables, input: tf.Tensor4D | tf.Tensor4D[], mode: InferenceStats): { mean: tf.Tensor1D; variance: tf.Tensor1D } {
  if (mode === 'running') return movingStats(u);
  const pieces = Array.isArray(input) ? input : [input];
  const moments = pieces.map((p) => batchMoments(p));
  return { mean: tf.concat(moments.map((m) => m.mean)) as tf.Tensor1D, variance: tf.concat(moments.map((m) => m.variance)) as tf.Tensor1D };
}

/** moving = momentum * moving + (1 - momentum) * batch; called once per training forward, never on recomputation. */
export function updateMovingStats(u: Pick<UnitVariables, 'movingMean' | 'movingVariance'>, mean: tf.Tensor1D, variance: tf.Tensor1D, momentum: number): void {
  tf.tidy(() => {
    u.movingMean.write(tf.add(tf.mul(u.movingMean.read(), momentum), tf.mul(mean, 1 - momentum)));
    u.movingVariance.write(tf.add(tf.mul(u.movingVariance.read(), momentum), tf.mul(variance, 1 - momentum)));
  });
}
