// Pieces shared by the DenseNet and FC-DenseNet builders.
import * as tf from '../tf';
import { DenseBlock, DenseBlockArgs } from '../layers/dense-block';
import { BatchNorm } from '../layers/batch-norm';
import { BATCH_NORM_DEFAULTS } from '../layers/unit-variables';
import type { InferenceStats } from '../layers/unit-variables';

export type InputShape = [number, number, number];

export interface BuildOptions {
  name: string;
  inputShape: InputShape;
  numClasses: number;
  memoryEfficient: boolean;
  /** BatchNorm statistics outside training (default 'running'). */
  inferenceStats?: InferenceStats;
}

export type DenseBlockSpec = Omit<DenseBlockArgs, 'name'> & { name: string };

export function denseBlock(input: tf.SymbolicTensor, spec: DenseBlockSpec): tf.SymbolicTensor {
  return new DenseBlock(spec).apply(input) as tf.SymbolicTensor;
}

export function concat(name: string, parts: tf.SymbolicTensor[]): tf.SymbolicTensor {
  return parts.length === 1 ? parts[0] : (tf.layers.concatenate({ name, axis: -1 }).apply(parts) as tf.SymbolicTensor);
}

export function batchNorm(name: string): tf.layers.Layer {
  return new BatchNorm({ name, ...BATCH_NORM_DEFAULTS });
}

export function relu(name: string): tf.layers.Layer {
  return tf.layers.reLU({ name });
}

export function channels(t: tf.SymbolicTensor): number {
  return t.shape[3] as number;
}

/** Throws a clear error when an input size cannot pass through the model. */
export function checkInputShape(name: string, inputShape: InputShape, rule: { multipleOf?: number; min?: number }): void {
  const [h, w, c] = inputShape;
  const ok = (v: number) =>
    Number.isInteger(v) && v > 0 && (rule.min === undefined || v >= rule.min) && (rule.multipleOf === undefined || v % rule.multipleOf === 0);
  if (!ok(h) || !ok(w) || !Number.isInteger(c) || c < 1) {
    const wanted = [rule.min !== undefined ? `at least ${rule.min}` : '', rule.multipleOf ? `divisible by ${rule.multipleOf}` : '']
      .filter(Boolean)
      .join(' and ');
    throw new Error(`${name} cannot take input ${h}x${w}x${c}: height and width must be integers ${wanted}, channels at least 1`);
  }
}
