// Dropout masks drawn in one pass from a counter-based hash (splitmix32 over the element
// index): no random-number object per call, no full-size temporaries (tfjs's randomUniform
// -> greaterEqual -> cast -> div makes three), and the same mask on every backend for the
// same seed. The seed comes from Math.random, which the trainer replaces with its
// checkpointed stream during a step (src/train/seeded-random.ts), so a resumed run draws
// the same masks.
import * as tf from '../tf';
import { mix32 } from '../random/prng';
import { hasKernel } from './fused-kernels';

/**
 * attrs { shape, rate, seed } -> the mask as a kernel, so that backends that hold no values
 * (the planner's dry run) make only its shape; the cpu backend (and torch-cpu, which shares
 * its kernels) writes the values in place. Elsewhere the values are uploaded.
 */
export const DROPOUT_MASK = 'DenseNetDropoutMask';

interface DropoutMaskAttrs {
  shape: number[];
  rate: number;
  seed: number;
}

/** Throws unless `rate` is a dropout rate, in [0, 1); `what` names its owner in the message. */
export function checkDropoutRate(rate: number, what = 'dropout'): void {
  if (!(rate >= 0 && rate < 1)) throw new Error(`${what}: rate must be in [0, 1), got ${rate}`);
}

/** Values 1 / (1 - rate) where element i is kept (probability 1 - rate), else 0. */
export function dropoutMaskValues(size: number, rate: number, seed: number): Float32Array {
  checkDropoutRate(rate);
  const keep = Math.fround(1 / Math.fround(1 - rate));
  // Element i is dropped when its 24-bit uniform falls below the threshold.
  const threshold = Math.ceil(rate * 2 ** 24);
  const key = mix32(seed >>> 0);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    if (mix32((key + Math.imul(i, 0x9e3779b9)) >>> 0) >>> 8 >= threshold) values[i] = keep;
  }
  return values;
}

/** A float32 dropout mask of `shape`, drawn with a seed from Math.random unless one is given. */
export function dropoutMask(shape: number[], rate: number, seed = Math.floor(Math.random() * 2 ** 32)): tf.Tensor {
  if (hasKernel(DROPOUT_MASK)) {
    const attrs: DropoutMaskAttrs = { shape, rate, seed };
    return tf.engine().runKernel(DROPOUT_MASK, {}, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  return tf.tensor(dropoutMaskValues(tf.util.sizeFromShape(shape), rate, seed), shape, 'float32');
}

function registerCpuKernel(): void {
  if (tf.getKernel(DROPOUT_MASK, 'cpu')) return;
  tf.registerKernel({
    kernelName: DROPOUT_MASK,
    backendName: 'cpu',
    kernelFunc: ({ attrs, backend }) => {
      const { shape, rate, seed } = attrs as unknown as DropoutMaskAttrs;
      const values = dropoutMaskValues(tf.util.sizeFromShape(shape), rate, seed);
      return (backend as unknown as { makeTensorInfo(s: number[], d: string, v: Float32Array): tf.TensorInfo }).makeTensorInfo(shape, 'float32', values);
    },
  });
}

registerCpuKernel();
