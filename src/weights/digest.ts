// The sha256 of a tfjs model's weights: the weight list of its model.json (names, shapes, dtypes,
// quantization, in order) and then the weight bytes. Hashing the list too means that a model.json
// with two tensors' names swapped, or a shape changed, no longer passes as the weights it names.
import { createHash } from 'crypto';
import type * as tf from '../tf';

type WeightSpec = tf.io.WeightsManifestEntry;

/** The canonical text of a weight list: only what decoding the bytes depends on, keys in a fixed order. */
function canonicalSpecs(specs: readonly WeightSpec[]): string {
  return JSON.stringify(specs.map((w) => ({
    name: w.name, shape: w.shape, dtype: w.dtype, ...(w.quantization ? { quantization: w.quantization } : {}),
  })));
}

/** sha256 (hex) of `specs` as canonical JSON, a newline, then `data`. */
export function tfjsWeightsDigest(specs: readonly WeightSpec[], data: ArrayBuffer | Uint8Array): string {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  return createHash('sha256').update(canonicalSpecs(specs) + '\n').update(bytes).digest('hex');
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The hash a source must have, and whose it is (for the error), e.g. `tag 'fashion-mnist'`. */
export interface ExpectedDigest {
  sha256: string;
  owner: string;
}

/** Throws when `actual` is not the expected digest. */
export function checkDigest(source: string, what: string, actual: string, expected: ExpectedDigest): void {
  if (actual !== expected.sha256) {
    throw new Error(`${source}: sha256 of ${what} is ${actual}, not the ${expected.sha256} of ${expected.owner}; the files are damaged or replaced`);
  }
}
