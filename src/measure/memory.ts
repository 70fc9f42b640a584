// `bench memory` and `bench speed`: peak tensor bytes and time of a training step,
// naive against memory-efficient, and training/inference throughput.
import * as tf from '../tf';
import * as zoo from '../zoo';
import { trainingHarness } from './training-step';

export interface ModeMeasurement {
  /** tf.profile's peakBytes during one step: weights, optimizer slots, activations, gradients. */
  peakBytes: number;
  /** Bytes in use before the step (weights and optimizer slots). */
  baselineBytes: number;
  bytesPerImage: number;
  msPerStep: number;
  /** Tensors alive after step 2 and after the last step (equal when nothing leaks). */
  tensorsAfterStep2: number;
  tensorsAfterLastStep: number;
}

export interface MemoryBenchResult {
  model: string;
  batch: number;
  input: number[];
  backend: string;
  naive: ModeMeasurement | { error: string };
  efficient: ModeMeasurement | { error: string };
  /** efficient.peakBytes / naive.peakBytes, when both ran. */
  peakRatio?: number;
  /** efficient.msPerStep / naive.msPerStep, when both ran. */
  timeRatio?: number;
}

/** The model's options (the zoo's, so the bench measures the model create() builds) plus the batch. */
export interface BenchOptions extends Omit<zoo.ModelOptions, 'memoryEfficient'> {
  batch: number;
  /** Timed steps after the profiled one. */
  steps?: number;
}

function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export type ModelFactory = (memoryEfficient: boolean) => tf.LayersModel;

export function zooFactory(name: string, options: zoo.ModelOptions): ModelFactory {
  return (memoryEfficient) => zoo.create(name, { ...options, memoryEfficient });
}

/** Builds the model a spec describes, in either mode. */
export function specFactory(spec: zoo.ModelSpec): ModelFactory {
  return (memoryEfficient) => zoo.fromSpec({ ...spec, memoryEfficient });
}

/** Peak bytes and time of one training step of the model `make` builds. */
export async function measureMode(make: ModelFactory, memoryEfficient: boolean, options: BenchOptions): Promise<ModeMeasurement> {
  const model = make(memoryEfficient);
  const harness = trainingHarness(model, options.batch);
  try {
    harness.step(); // creates the optimizer slots
    const baselineBytes = tf.memory().numBytes;
    const profile = await tf.profile(() => harness.step());
    const tensorsAfterStep2 = tf.memory().numTensors;
    const steps = options.steps ?? 1;
    const start = now();
    for (let i = 0; i < steps; i++) harness.step();
    const msPerStep = (now() - start) / steps;
    return {
      peakBytes: profile.peakBytes,
      baselineBytes,
      bytesPerImage: profile.peakBytes / options.batch,
      msPerStep,
      tensorsAfterStep2,
      tensorsAfterLastStep: tf.memory().numTensors,
    };
  } finally {
    harness.dispose();
    model.dispose();
  }
}

async function attempt(f: () => Promise<ModeMeasurement>): Promise<ModeMeasurement | { error: string }> {
  try {
    return await f();
  } catch (err) {
    // The wasm heap tops out at 4 GB: report the failure as a result, not a crash.
    return { error: (err as Error).message.split('\n')[0] };
  }
}

export async function benchMemory(name: string, options: BenchOptions, make: ModelFactory = zooFactory(name, options)): Promise<MemoryBenchResult> {
  const naive = await attempt(() => measureMode(make, false, options));
  const efficient = await attempt(() => measureMode(make, true, options));
  const model = make(false);
  const input = (model.inputs[0].shape as number[]).slice(1);
  model.dispose();
  const both = 'peakBytes' in naive && 'peakBytes' in efficient;
  return {
    model: name,
    batch: options.batch,
    input,
    backend: tf.getBackend(),
    naive,
    efficient,
    ...(both ? { peakRatio: efficient.peakBytes / naive.peakBytes, timeRatio: efficient.msPerStep / naive.msPerStep } : {}),
  };
}

export interface SpeedBenchResult {
  model: string;
  batch: number;
  input: number[];
  backend: string;
  memoryEfficient: boolean;
  steps: number;
  /** Absent when training was not measured (`train: false`). */
  trainImagesPerSec?: number;
  inferenceImagesPerSec: number;
  inferenceMsPerBatch: number;
}

export async function benchSpeed(name: string, options: BenchOptions & { memoryEfficient?: boolean; train?: boolean }): Promise<SpeedBenchResult> {
  const memoryEfficient = options.memoryEfficient ?? false;
  const model = zooFactory(name, options)(memoryEfficient);
  const harness = trainingHarness(model, options.batch);
  const steps = options.steps ?? 3;
  try {
    let trainMs: number | undefined;
    if (options.train ?? true) {
      harness.step();
      const t0 = now();
      for (let i = 0; i < steps; i++) harness.step();
      trainMs = (now() - t0) / steps;
    }
    harness.predict();
    const start = now();
    for (let i = 0; i < steps; i++) harness.predict();
    const inferMs = (now() - start) / steps;
    return {
      model: name, batch: options.batch, input: (model.inputs[0].shape as number[]).slice(1), backend: tf.getBackend(),
      memoryEfficient, steps, ...(trainMs === undefined ? {} : { trainImagesPerSec: (1000 * options.batch) / trainMs }),
      inferenceImagesPerSec: (1000 * options.batch) / inferMs, inferenceMsPerBatch: inferMs,
    };
  } finally {
    harness.dispose();
    model.dispose();
  }
}
