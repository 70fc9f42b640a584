// The one place where batches meet tfjs: typed arrays in, tensors out.
import * as tf from '../tf';
import type { Batch } from './dataset';

export interface BatchTensors {
  /** [N, H, W, C] float32, normalised. */
  images: tf.Tensor4D;
  /** [N] int32 class per image, or [N, H, W] int32 class per pixel. */
  labels: tf.Tensor1D | tf.Tensor3D;
}

/** Tensors of a batch; the caller disposes them (or calls this inside tf.tidy). */
export function batchToTensors(batch: Batch): BatchTensors {
  const [n, h, w] = batch.shape;
  const images = tf.tensor4d(batch.images, batch.shape, 'float32');
  const perPixel = batch.labels.length === n * h * w && batch.labels.length !== n;
  const labels = perPixel
    ? tf.tensor3d(batch.labels, [n, h, w], 'int32')
    : tf.tensor1d(batch.labels, 'int32');
  return { images, labels };
}
