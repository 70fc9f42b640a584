// BN-ReLU-Conv as one layer with the hand-written backward of src/core: the
// transitions of DenseNet and FC-DenseNet. Training keeps only the input and the
// batch statistics (memory-efficient) or also the BN-ReLU output (naive).
import * as tf from '../tf';
import { bnRelu, channelStats, conv, unitBackward, unitForward, unitWeightList } from '../core/bn-relu-conv';
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
  }

  build(inputShape: Shape): void {
    this.unit = addUnitVariables(this, {
      ...TRANSITION_UNIT, channels: inputShape[3] as number, kernelSize: this.kernelSize, filters: this.filters, useBias: this.useBias,
      kernelInit: this.kernelInit,
    });
    this.built = true;
  }

  computeOutputShape(inputShape: Shape): Shape {
    return [inputShape[0], inputShape[1], inputShape[2], this.filters];
  }

  call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const unit = this.unit!;
    const w = readUnit(unit);
    if (!kwargs.training) {
      return tf.tidy(() => {
        const { mean, variance } = inferenceMoments(unit, x, this.inferenceStats);
        return conv(bnRelu(x, w.bn, channelStats(mean, variance, this.epsilon)), w.conv);
      });
    }
    const op = tf.customGrad((...args: unknown[]) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const input = args[0] as tf.Tensor4D;
      const f = unitForward(input, w, this.epsilon);
      updateMovingStats(unit, f.mean, f.variance, this.momentum);
      save([input, f.stats.mean, f.stats.invStd, ...(this.memoryEfficient ? [] : [f.r])]);
      tf.dispose([f.r, f.mean, f.variance, f.stats.invStd]);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, mean, invStd, keptR] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor4D?];
        const stats = { mean, invStd };
        const grads = tf.tidy(() => {
          const r = keptR ?? bnRelu(xs, w.bn, stats);
          const b = unitBackward(xs, r, w, stats, dy as tf.Tensor4D, { releaseActivation: !keptR });
          return [...b.dxs, ...b.weightGrads];
        });
        tf.dispose([dy, ...saved]); // see DenseBlock.backward
        return grads;
      };
      return { value: f.out, gradFunc };
    });
    return op(x, ...unitWeightList(w));
  }

  getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters, kernelSize: this.kernelSize, useBias: this.useBias,
      memoryEfficient: this.memoryEfficient, epsilon: this.epsilon, momentum: this.momentum, kernelInit: this.kernelInit,
      inferenceStats: this.inferenceStats,
    };
  }
}

tf.serialization.registerClass(PreActivationConv);
