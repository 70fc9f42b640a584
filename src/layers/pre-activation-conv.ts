// BN-ReLU-Conv as one layer with the hand-written backward of src/core: the
// transitions of DenseNet and FC-DenseNet. Training keeps only the input and the
// batch statistics (memory-efficient) or also the BN-ReLU output (naive). A DenseNet
// transition's 2x2 average pooling can be part of the layer (`pool`): it then runs
// before the 1x1 conv, which is the same (both are linear) at a quarter of the conv's
// cost, and the full-resolution conv output is never made.
import * as tf from '../tf';
import {
  avgPool2, batchMoments, bnRelu, channelStats, conv, unitBackward, unitForward, unitWeightList,
} from '../core/bn-relu-conv';
import { TRANSITION_UNIT } from './layer-names';
import { KernelInit } from './initializers';
import {
  BATCH_NORM_DEFAULTS, InferenceStats, UnitVariables, addUnitVariables, inferenceMoments, readUnit, updateMovingStats,
} from './unit-variables';

export interface PreActivationConvArgs {
  name?: string;
  filters: number;
  kernelSize: number;
  useBias: boolean;
  memoryEfficient: boolean;
  epsilon?: number;
  momentum?: number;
  /** Default he-normal. */
  kernelInit?: KernelInit;
  /** BatchNorm statistics outside training; default 'running'. */
  inferenceStats?: InferenceStats;
  /** Average-pool 2x2 (stride 2) as part of the layer; needs kernelSize 1. */
  pool?: boolean;
}

type Shape = Array<number | null>;

export class PreActivationConv extends tf.layers.Layer {
  static className = 'DenseNetPreActivationConv';
  readonly filters: number;
  readonly kernelSize: number;
  readonly useBias: boolean;
  readonly epsilon: number;
  readonly momentum: number;
  readonly kernelInit: KernelInit;
  readonly inferenceStats: InferenceStats;
  readonly pool: boolean;
  memoryEfficient: boolean;
  private unit?: UnitVariables;

  constructor(args: PreActivationConvArgs) {
    super({ name: args.name });
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.useBias = args.useBias;
    this.memoryEfficient = args.memoryEfficient;
    this.epsilon = args.epsilon ?? BATCH_NORM_DEFAULTS.epsilon;
    this.momentum = args.momentum ?? BATCH_NORM_DEFAULTS.momentum;
    this.kernelInit = args.kernelInit ?? 'he-normal';
    this.inferenceStats = args.inferenceStats ?? 'running';
    this.pool = args.pool ?? false;
    if (this.pool && this.kernelSize !== 1) throw new Error(`${this.name}: pooling before the conv is exact for a 1x1 conv only, not ${this.kernelSize}x${this.kernelSize}`);
  }

  build(inputShape: Shape): void {
    this.unit = addUnitVariables(this, {
      ...TRANSITION_UNIT, channels: inputShape[3] as number, kernelSize: this.kernelSize, filters: this.filters, useBias: this.useBias,
      kernelInit: this.kernelInit,
    });
    this.built = true;
  }

  computeOutputShape(inputShape: Shape): Shape {
    const half = (d: number | null) => (d === null ? null : Math.floor(d / 2));
    return this.pool
      ? [inputShape[0], half(inputShape[1]), half(inputShape[2]), this.filters]
      : [inputShape[0], inputShape[1], inputShape[2], this.filters];
  }

  /** The conv's input: the BN-ReLU output, average-pooled when the layer pools. */
  private convInput(r: tf.Tensor4D): tf.Tensor4D {
    if (!this.pool) return r;
    const pooled = avgPool2(r);
    r.dispose();
    return pooled;
  }

  call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const unit = this.unit!;
    const w = readUnit(unit);
    if (!kwargs.training) {
      return tf.tidy(() => {
        const { mean, variance } = inferenceMoments(unit, x, this.inferenceStats);
        return conv(this.convInput(bnRelu(x, w.bn, channelStats(mean, variance, this.epsilon))), w.conv);
      });
    }
    const op = tf.customGrad((...args: unknown[]) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const input = args[0] as tf.Tensor4D;
      const f = this.pool ? this.pooledForward(input, w) : unitForward(input, w, this.epsilon);
      updateMovingStats(unit, f.mean, f.variance, this.momentum);
      save([input, f.stats.mean, f.stats.invStd, ...(this.memoryEfficient ? [] : [f.r])]);
      tf.dispose([f.r, f.mean, f.variance, f.stats.invStd]);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, mean, invStd, keptR] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor4D?];
        const stats = { mean, invStd };
        const grads = tf.tidy(() => {
          const r = keptR ?? this.convInput(bnRelu(xs, w.bn, stats));
          // dy is this op's to free (it frees it below anyway): gone before the input gradient is made.
          const b = unitBackward(xs, r, w, stats, dy as tf.Tensor4D, { releaseActivation: !keptR, releaseGradient: true, pooled: this.pool });
          return [...b.dxs, ...b.weightGrads];
        });
        tf.dispose([dy, ...saved]); // see DenseBlock.backward
        return grads;
      };
      return { value: f.out, gradFunc };
    });
    return op(x, ...unitWeightList(w));
  }

  /** The training forward with the pool before the conv: `r` is the pooled BN-ReLU output. */
  private pooledForward(input: tf.Tensor4D, w: ReturnType<typeof readUnit>): ReturnType<typeof unitForward> {
    const { mean, variance } = batchMoments(input);
    const stats = channelStats(mean, variance, this.epsilon);
    const r = this.convInput(bnRelu(input, w.bn, stats));
    return { out: conv(r, w.conv), r, stats, mean, variance };
  }

  getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters, kernelSize: this.kernelSize, useBias: this.useBias, pool: this.pool,
      memoryEfficient: this.memoryEfficient, epsilon: this.epsilon, momentum: this.momentum, kernelInit: this.kernelInit,
      inferenceStats: this.inferenceStats,
    };
  }
}

tf.serialization.registerClass(PreActivationConv);
