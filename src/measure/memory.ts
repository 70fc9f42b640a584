// `bench memory` and `bench speed`: peak tensor bytes and time of a training step,
// naive against memory-efficient, and training/inference throughput.
import * as tf from '../tf';
import * as zoo from '../zoo';
import { trainingHarness } from './training-step';
import { TensorTimeline, peakBufferGrowth, recordTimeline } from './tensor-timeline';

export interface ModeMeasurement {
  /** tf.profile's peakBytes during one step: weights, optimizer slots, activations, gradients. */
  peakBytes: number;
  /** Bytes in use before the step (weights and optimizer slots). */
  baselineBytes: number;
  bytesPerImage: number;
  /**
   * The most bytes of distinct buffers alive during the step: what is allocated. tfjs's count
   * (peakBytes) adds again every tensor that shares another's buffer (the tape's clones of saved inputs).
   */
  peakBufferBytes: number;
  /** (peakBufferBytes - baselineBytes) / batch: the memory each image of the batch adds. */
  bufferBytesPerImage: number;
  /** Median of the timed steps, which alternate with the other mode's (see benchMemory). */
  msPerStep: number;
  /** Every timed step, in order. */
  stepMs: number[];
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
  /** Timed steps (after two warm-up steps); default 5 for `bench memory`, 3 for `bench speed`. */
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

/** A model of one mode and its synthetic training step, built and torn down together. */
interface ModeRun {
  model: tf.LayersModel;
  harness: ReturnType<typeof trainingHarness>;
  dispose: () => void;
}

function startMode(make: ModelFactory, memoryEfficient: boolean, batch: number): ModeRun {
  const model = make(memoryEfficient);
  const harness = trainingHarness(model, batch);
  return { model, harness, dispose: () => { harness.dispose(); model.dispose(); } };
}

type PeakMeasurement = Omit<ModeMeasurement, 'msPerStep' | 'stepMs'>;

/** Peak bytes of one training step of a fresh run (its first step creates the optimizer slots). */
async function peakOf(run: ModeRun, batch: number): Promise<PeakMeasurement> {
  await run.harness.step();
  // Between steps no tensor shares another's buffer (weights, optimizer slots, the batch): tfjs's count is the buffers'.
  const baselineBytes = tf.memory().numBytes;
  let growth = 0;
  const profile = await tf.profile(async () => {
    growth = await peakBufferGrowth(() => run.harness.step());
  });
  const tensorsAfterStep2 = tf.memory().numTensors;
  await run.harness.step();
  return {
    peakBytes: profile.peakBytes, baselineBytes, bytesPerImage: profile.peakBytes / batch,
    peakBufferBytes: baselineBytes + growth, bufferBytesPerImage: growth / batch,
    tensorsAfterStep2, tensorsAfterLastStep: tf.memory().numTensors,
  };
}

/** Peak bytes of one training step, with only this mode's model alive. */
export async function measurePeak(make: ModelFactory, memoryEfficient: boolean, batch: number): Promise<PeakMeasurement> {
  const run = startMode(make, memoryEfficient, batch);
  try {
    return await peakOf(run, batch);
  } finally {
    run.dispose();
  }
}

async function timeSteps(run: ModeRun, steps: number): Promise<number[]> {
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const start = now();
    await run.harness.step();
    times.push(now() - start);
  }
  return times;
}

/** One mode alone (a process of its own, for its resident memory): the peak, then the median of `steps` timed steps. */
export async function measureMode(make: ModelFactory, memoryEfficient: boolean, options: BenchOptions): Promise<ModeMeasurement> {
  const run = startMode(make, memoryEfficient, options.batch);
  try {
    const peak = await peakOf(run, options.batch); // its three steps are the warm-up
    const stepMs = await timeSteps(run, options.steps ?? 5);
    return { ...peak, msPerStep: median(stepMs), stepMs };
  } finally {
    run.dispose();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Step times of both modes, taken in turn (naive, efficient, naive, ...) after two warm-up
 * steps each, so that whatever else the machine does falls on both alike.
 */
async function timeAlternating(make: ModelFactory, batch: number, steps: number): Promise<{ naive: number[]; efficient: number[] }> {
  const runs = [startMode(make, false, batch), startMode(make, true, batch)];
  const times: number[][] = [[], []];
  try {
    for (const run of runs) await timeSteps(run, 2);
    for (let s = 0; s < steps; s++) {
      for (const [m, run] of runs.entries()) times[m].push(...(await timeSteps(run, 1)));
    }
  } finally {
    runs.forEach((run) => run.dispose());
  }
  return { naive: times[0], efficient: times[1] };
}

async function attempt<T>(f: () => Promise<T>): Promise<T | { error: string }> {
  try {
    return await f();
  } catch (err) {
    // The wasm heap tops out at 4 GB: report the failure as a result, not a crash.
    return { error: (err as Error).message.split('\n')[0] };
  }
}

const measured = <T extends object>(r: T | { error: string }): r is T => !('error' in r);

export async function benchMemory(name: string, options: BenchOptions, make: ModelFactory = zooFactory(name, options)): Promise<MemoryBenchResult> {
  const peaks = [await attempt(() => measurePeak(make, false, options.batch)), await attempt(() => measurePeak(make, true, options.batch))];
  // Both models live at once while timing, so only when each fitted alone.
  const times = peaks.every(measured) ? await attempt(() => timeAlternating(make, options.batch, options.steps ?? 5)) : { error: 'not timed: a mode failed' };
  const [naive, efficient] = peaks.map((peak, m): ModeMeasurement | { error: string } => {
    if (!measured(peak)) return peak;
    if (!measured(times)) return times;
    const stepMs = m === 0 ? times.naive : times.efficient;
    return { ...peak, msPerStep: median(stepMs), stepMs };
  });
  const model = make(false);
  const input = (model.inputs[0].shape as number[]).slice(1);
  model.dispose();
  return {
    model: name,
    batch: options.batch,
    input,
    backend: tf.getBackend(),
    naive,
    efficient,
    ...(measured(naive) && measured(efficient) ? { peakRatio: efficient.peakBytes / naive.peakBytes, timeRatio: efficient.msPerStep / naive.msPerStep } : {}),
  };
}

/** The tensor timeline of one training step (after a warm-up step) of the model in one mode. */
export async function stepTimeline(make: ModelFactory, memoryEfficient: boolean, batch: number): Promise<TensorTimeline> {
  const run = startMode(make, memoryEfficient, batch);
  try {
    await run.harness.step();
    return await recordTimeline(() => run.harness.step());
  } finally {
    run.dispose();
  }
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
      await harness.step();
      const t0 = now();
      for (let i = 0; i < steps; i++) await harness.step();
      trainMs = (now() - t0) / steps;
    }
    await harness.predict();
    const start = now();
    for (let i = 0; i < steps; i++) await harness.predict();
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
