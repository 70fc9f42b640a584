// BatchNorm on its own (the stem's and the final norm of DenseNet), with the hand-written
// backward of src/core, so that every BatchNorm of the zoo's models normalises, updates its
// running averages and, in data-parallel training, synchronises the same way. Its weights
// are named as tfjs-layers' BatchNormalization names them (gamma, beta, moving_*).
import * as tf from '../tf';
import { batchMoments, batchNormBackward, channelStats } from '../core/bn-relu-conv';
import { BATCH_NORM_DEFAULTS, updateMovingStats } from './unit-variables';

type Shape = Array<number | null>;

export interface BatchNormArgs {
  name: string;
  epsilon?: number;
  momentum?: number;
}

export class BatchNorm extends tf.layers.Layer {
  static className = 'DenseNetBatchNorm';
  readonly epsilon: number;
  readonly momentum: number;
  protected vars?: { gamma: tf.LayerVariable; beta: tf.LayerVariable; movingMean: tf.LayerVariable; movingVariance: tf.LayerVariable };

  constructor(args: BatchNormArgs) {
    super({ name: args.name });
    this.epsilon = args.epsilon ?? BATCH_NORM_DEFAULTS.epsilon;
    this.momentum = args.momentum ?? BATCH_NORM_DEFAULTS.momentum;
  }

  build(inputShape: Shape): void {
    const channels = [inputShape[inputShape.length - 1] as number];
    const add = (name: string, init: ReturnType<typeof tf.initializers.ones>, trainable: boolean) =>
      this.addWeight(name, channels, 'float32', init, undefined, trainable);
    this.vars = {
      gamma: add('gamma', tf.initializers.ones(), true),
      beta: add('beta', tf.initializers.zeros(), true),
      movingMean: add('moving_mean', tf.initializers.zeros(), false),
      movingVariance: add('moving_variance', tf.initializers.ones(), false),
    };
    this.built = true;
  }

  call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const v = this.vars!;
    const bn = { gamma: v.gamma.read() as tf.Tensor1D, beta: v.beta.read() as tf.Tensor1D };
    if (!kwargs.training) {
      return tf.batchNorm(x, v.movingMean.read() as tf.Tensor1D, v.movingVariance.read() as tf.Tensor1D, bn.beta, bn.gamma, this.epsilon);
    }
    const op = tf.customGrad((...args: unknown[]) => {
      const [input, gamma, beta] = args as tf.Tensor[];
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const { mean, variance } = batchMoments(input as tf.Tensor4D);
      updateMovingStats(v, mean, variance, this.momentum);
      const stats = channelStats(mean, variance, this.epsilon);
      const value = tf.batchNorm(input as tf.Tensor4D, mean, variance, beta as tf.Tensor1D, gamma as tf.Tensor1D, this.epsilon);
      save([input, stats.mean, stats.invStd]);
      variance.dispose();
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, m, invStd] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
        const g = batchNormBackward(xs, dy as tf.Tensor4D, bn, { mean: m, invStd });
        return [g.dx, g.dGamma, g.dBeta];
      };
      return { value, gradFunc };
    });
    return op(x, bn.gamma, bn.beta);
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon, momentum: this.momentum };
  }
}

tf.serialization.registerClass(BatchNorm);
