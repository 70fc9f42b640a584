// Shared test utilities.
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '../src/tf';

/** max |got - want| / max(max |want|, floor): relative error that does not explode where values are tiny. */
export function maxRelativeErrorOf(got: ArrayLike<number>, want: ArrayLike<number>, floor = 0): number {
  let diff = 0;
  let scale = floor;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/** maxRelativeErrorOf for tensors of the same shape. */
export function maxRelativeError(a: tf.Tensor, b: tf.Tensor, floor = 1e-3): number {
  assertSameShape(a, b);
  return maxRelativeErrorOf(a.dataSync(), b.dataSync(), floor);
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

/** The committed torchvision fixture (scripts/make-torchvision-fixtures.py): its config file. */
export interface TinyDensenetFixture {
  growth_rate: number;
  block_config: number[];
  num_init_features: number;
  bn_size: number;
  num_classes: number;
  input_hwc: [number, number, number];
  trainable_params: number;
  state_dict_tensors: number;
}

export const FIXTURES = path.resolve(__dirname, '../../test/fixtures');

export async function readTinyDensenetFixture(): Promise<TinyDensenetFixture> {
  return JSON.parse(await fs.promises.readFile(path.join(FIXTURES, 'tiny-densenet.json'), 'utf8')) as TinyDensenetFixture;
}
