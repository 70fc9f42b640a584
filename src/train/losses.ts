// Training losses in tfjs (differentiable with respect to the scores).
import * as tf from '../tf';

export interface CrossEntropyOptions {
  /** The scores are softmax probabilities instead of logits (a model that ends in softmax). */
  fromProbabilities?: boolean;
}

export interface PixelCrossEntropyOptions extends CrossEntropyOptions {
  /** Pixels with this label add nothing to the loss and are not counted in the mean. */
  ignoreLabel?: number;
  /** One weight per class, multiplying the loss of each pixel of that true class. */
  classWeights?: ArrayLike<number>;
}

/** Smallest probability taken the log of, so that a confident wrong softmax gives a large finite loss. */
const PROBABILITY_FLOOR = 1e-7;

function logProbabilities(scores: tf.Tensor, fromProbabilities: boolean | undefined): tf.Tensor {
  return fromProbabilities
    ? tf.log(tf.clipByValue(scores, PROBABILITY_FLOOR, 1))
    : tf.logSoftmax(scores);
}

function checkLabelsShape(scores: tf.Tensor, labels: tf.Tensor, what: string): void {
  const expected = scores.shape.slice(0, -1);
  if (labels.shape.length !== expected.length || labels.shape.some((d, i) => d !== expected[i])) {
    throw new Error(`${what}: labels have shape [${labels.shape.join(', ')}]; expected [${expected.join(', ')}] to match scores [${scores.shape.join(', ')}]`);
  }
}

/**
 * Mean softmax cross entropy of [N, C] scores against [N] integer labels.
 * Labels must be in 0..C-1 (the datasets check this when they read the files).
 */
export function softmaxCrossEntropy(scores: tf.Tensor, labels: tf.Tensor, opts: CrossEntropyOptions = {}): tf.Scalar {
  if (scores.rank !== 2) throw new Error(`softmaxCrossEntropy: scores must be [N, classes], got [${scores.shape.join(', ')}]`);
  checkLabelsShape(scores, labels, 'softmaxCrossEntropy');
  return tf.tidy(() => {
    const numClasses = scores.shape[1]!;
    const logp = logProbabilities(scores, opts.fromProbabilities);
    const picked = tf.sum(tf.mul(tf.oneHot(tf.cast(labels, 'int32'), numClasses), logp), -1);
    return tf.neg(tf.mean(picked)) as tf.Scalar;
  });
}

/**
 * Per-pixel cross entropy of [N, H, W, C] scores against [N, H, W] labels: the sum over
 * non-ignored pixels of (weight of the true class) * (-log p(true class)), divided by the number
 * of non-ignored pixels (0 when every pixel is ignored).
 */
export function pixelCrossEntropy(scores: tf.Tensor, labels: tf.Tensor, opts: PixelCrossEntropyOptions = {}): tf.Scalar {
  if (scores.rank < 2) throw new Error(`pixelCrossEntropy: scores must be [N, H, W, classes], got [${scores.shape.join(', ')}]`);
  checkLabelsShape(scores, labels, 'pixelCrossEntropy');
  const numClasses = scores.shape[scores.rank - 1];
  const weights = opts.classWeights;
  if (weights && weights.length !== numClasses) {
    throw new Error(`pixelCrossEntropy: ${weights.length} class weights for ${numClasses} classes`);
  }
  return tf.tidy(() => {
    const flatScores = tf.reshape(scores, [-1, numClasses]);
    const flatLabels = tf.cast(tf.reshape(labels, [-1]), 'int32');
    const keep = opts.ignoreLabel === undefined
      ? tf.ones(flatLabels.shape, 'float32')
      : tf.cast(tf.notEqual(flatLabels, opts.ignoreLabel), 'float32');
    // Ignored pixels may carry a label outside 0..C-1 (CamVid's 11); give them class 0, masked anyway.
    const safeLabels = tf.mul(flatLabels, tf.cast(keep, 'int32'));
    const logp = logProbabilities(flatScores, opts.fromProbabilities);
    const nll = tf.neg(tf.sum(tf.mul(tf.oneHot(safeLabels, numClasses), logp), -1));
    let pixelWeights = keep;
    if (weights) pixelWeights = tf.mul(keep, tf.gather(tf.tensor1d(Array.from(weights), 'float32'), safeLabels));
    const counted = tf.maximum(tf.sum(keep), 1);
    return tf.div(tf.sum(tf.mul(nll, pixelWeights)), counted) as tf.Scalar;
  });
}
