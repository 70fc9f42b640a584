// DenseNet's head before the classifier, BatchNorm -> ReLU -> global average pooling, as one
// layer with one hand-written backward: training keeps only its input and the batch statistics
// (tfjs's own layers would each keep their input, and their gradients, to the end of the backward
// pass). Its weights are a BatchNorm's, named as the final_norm layer's always were.
import * as tf from '../tf';
import { batchMoments, bnRelu, bnReluGradients, channelStats } from '../core/bn-relu-conv';
import { BatchNorm } from './batch-norm';
import { updateMovingStats } from './unit-variables';

type Shape = Array<number | null>;

const SPATIAL = [1, 2];

export class NormReluPool extends BatchNorm {
  static className = 'DenseNetNormReluPool';

  computeOutputShape(inputShape: Shape): Shape {
    return [inputShape[0], inputShape[inputShape.length - 1]];
  }

  call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const v = this.vars!;
    const bn = { gamma: v.gamma.read() as tf.Tensor1D, beta: v.beta.read() as tf.Tensor1D };
    if (!kwargs.training) {
      return tf.tidy(() => {
        const stats = channelStats(v.movingMean.read() as tf.Tensor1D, v.movingVariance.read() as tf.Tensor1D, this.epsilon);
        return tf.mean(bnRelu(x, bn, stats), SPATIAL);
      });
    }
    const op = tf.customGrad((...args: unknown[]) => {
      const input = args[0] as tf.Tensor4D;
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const { mean, variance } = batchMoments(input);
      updateMovingStats(v, mean, variance, this.momentum);
      const stats = channelStats(mean, variance, this.epsilon);
      const value = tf.tidy(() => tf.mean(bnRelu(input, bn, stats), SPATIAL));
      save([input, stats.mean, stats.invStd]);
      tf.dispose([variance, stats.invStd]);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, m, invStd] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
        const [n, h, w, c] = xs.shape;
        // The mean's gradient: dy / (H W) at every pixel.
        const dr = tf.tidy(() => tf.broadcastTo(tf.reshape(tf.div(dy, h * w), [n, 1, 1, c]), xs.shape) as tf.Tensor4D);
        const g = bnReluGradients(xs, dr, bn, { mean: m, invStd });
        tf.dispose([dr, dy, ...saved]); // see DenseBlock.backward
        return [g.dxs[0], g.dGamma, g.dBeta];
      };
      return { value, gradFunc };
    });
    return op(x, bn.gamma, bn.beta);
  }
}

tf.serialization.registerClass(NormReluPool);
