// Dropout for the zoo's models with the masks of src/core/dropout-mask.ts, as the dense
// blocks use: seeded by the trainer's stream, drawn in one pass, and only a shape in the
// planner's dry run (tfjs's own dropout draws full-size random tensors in JavaScript).
import * as tf from '../tf';
import { checkDropoutRate, dropoutMask } from '../core/dropout-mask';

/**
 * Where a DenseNet's dropout goes: after every conv but the stem's, transitions included (the
 * paper's, for CIFAR without augmentation), or after each dense layer's last conv only (torchvision's drop_rate).
 */
export const DROPOUT_PLACEMENTS = ['every-conv', 'last-conv'] as const;
export type DropoutPlacement = (typeof DROPOUT_PLACEMENTS)[number];

export class MaskDropout extends tf.layers.Layer {
  static className = 'DenseNetDropout';
  readonly rate: number;

  constructor(args: { name?: string; rate: number }) {
    super({ name: args.name });
    checkDropoutRate(args.rate, args.name);
    this.rate = args.rate;
  }

  call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (!kwargs.training || this.rate === 0) return tf.clone(x);
    return tf.tidy(() => tf.mul(x, dropoutMask(x.shape, this.rate)));
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate };
  }
}

tf.serialization.registerClass(MaskDropout);
