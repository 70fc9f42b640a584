// The memory planner: peak training memory of the naive and memory-efficient modes,
// predicted from the architecture by running the real training step on data-less
// tensors (see dry-run-backend.ts), and the largest batch that fits a budget.
// Activation memory is linear in the batch; at small batches the peak may instead be the
// weight update's, so the slope comes from two large batches, the requested batch gets a
// dry run of its own, and the largest batch for the budget is checked by one more.
import * as tf from '../tf';
import { ModelFactory, measurePeak, zooFactory } from './memory';
import { DRY_RUN, registerDryRunBackend } from './dry-run-backend';
import type { ModelOptions } from '../zoo';

export interface ModePlan {
  /** Weights, gradients and optimizer slots: what does not grow with the batch. */
  fixedBytes: number;
  bytesPerImage: number;
  /** Predicted peak at the requested batch, as tfjs counts it (tf.profile's peakBytes). */
  peakBytes: number;
  /** Predicted peak of distinct buffers (what is allocated) at the requested batch. */
  peakBufferBytes: number;
  /** Largest batch whose predicted peak fits the budget (0 if none). */
  maxBatch: number;
}

export interface MemoryPlan {
  model: string;
  input: number[];
  batch: number;
  budgetBytes: number;
  naive: ModePlan;
  efficient: ModePlan;
}

export interface PlanOptions extends Omit<ModelOptions, 'memoryEfficient'> {
  batch: number;
  budgetBytes: number;
}

/** Parses `8GB`, `512MB`, `2GiB`, `1e9`. */
export function parseBytes(text: string): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*$/i.exec(text);
  if (!m) throw new Error(`'${text}': expected a size such as 8GB, 512MB or 2GiB`);
  const units: Record<string, number> = {
    b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
  };
  return Math.round(Number(m[1]) * units[(m[2] ?? 'b').toLowerCase()]);
}

async function dryRunPeak(make: ModelFactory, memoryEfficient: boolean, batch: number): Promise<number> {
  return (await measurePeak(make, memoryEfficient, batch)).peakBytes;
}

const SLOPE_BATCHES: [number, number] = [64, 128];

async function planMode(make: ModelFactory, memoryEfficient: boolean, options: PlanOptions): Promise<ModePlan> {
  const peakAt = (batch: number) => dryRunPeak(make, memoryEfficient, batch);
  const [b1, b2] = SLOPE_BATCHES;
  const [p1, p2] = [await peakAt(b1), await peakAt(b2)];
  const bytesPerImage = (p2 - p1) / (b2 - b1);
  const fixedBytes = p1 - b1 * bytesPerImage;
  let maxBatch = Math.max(0, Math.floor((options.budgetBytes - fixedBytes) / bytesPerImage));
  // Below the linear regime the update's peak may dominate: confirm the estimate, step down if needed.
  while (maxBatch > 0 && (await peakAt(maxBatch)) > options.budgetBytes) maxBatch = Math.floor(maxBatch * 0.9);
  const at = await measurePeak(make, memoryEfficient, options.batch);
  return { fixedBytes, bytesPerImage, peakBytes: at.peakBytes, peakBufferBytes: at.peakBufferBytes, maxBatch };
}

/** Predicts both modes' peak memory; runs on the dry-run backend and restores the active one. */
export async function planMemory(name: string, options: PlanOptions, make: ModelFactory = zooFactory(name, options)): Promise<MemoryPlan> {
  registerDryRunBackend();
  const previous = tf.getBackend();
  await tf.setBackend(DRY_RUN);
  try {
    const model = make(false);
    const input = (model.inputs[0].shape as number[]).slice(1);
    model.dispose();
    return {
      model: name, input, batch: options.batch, budgetBytes: options.budgetBytes,
      naive: await planMode(make, false, options),
      efficient: await planMode(make, true, options),
    };
  } finally {
    if (previous) await tf.setBackend(previous);
  }
}

export function formatPlan(p: MemoryPlan): string {
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  const row = (mode: string, m: ModePlan) =>
    `${mode.padEnd(10)} ${mb(m.peakBytes).padStart(12)} ${mb(m.peakBufferBytes).padStart(12)} ${mb(m.bytesPerImage).padStart(12)} ${mb(m.fixedBytes).padStart(10)} ${String(m.maxBatch).padStart(10)}`;
  return [
    `${p.model}, input ${p.input.join('x')}, batch ${p.batch}, budget ${(p.budgetBytes / 1e9).toFixed(2)} GB`,
    `${'mode'.padEnd(10)} ${'peak'.padStart(12)} ${'allocated'.padStart(12)} ${'per image'.padStart(12)} ${'fixed'.padStart(10)} ${'max batch'.padStart(10)}`,
    row('naive', p.naive),
    row('efficient', p.efficient),
  ].join('\n');
}

