// Shared test utilities.
import * as tf from '../src/tf';

/** max |a - b| / max(|b|, floor): relative error that does not explode where values are tiny. */
export function maxRelativeError(a: tf.Tensor, b: tf.Tensor, floor = 1e-3): number {
  assertSameShape(a, b);
  const x = a.dataSync();
  const y = b.dataSync();
  let scale = floor;
  for (const v of y) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  return worst / scale;
}

export function assertSameShape(a: tf.Tensor, b: tf.Tensor): void {
  if (a.shape.join('x') !== b.shape.join('x')) throw new Error(`shape ${a.shape} != ${b.shape}`);
}

/** Exact equality of two tensors' values (and shapes). */
export function sameValues(a: tf.Tensor, b: tf.Tensor): boolean {
  assertSameShape(a, b);
  const x = a.dataSync();
  const y = b.dataSync();
  return x.every((v, i) => v === y[i]);
}
