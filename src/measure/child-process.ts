// One training mode measured in a node process of its own, so that peak resident memory is
// that mode's alone, and PyTorch's reference script (scripts/bench/pytorch_reference.py) run
// the same way: what `npm run exp:memory` and scripts/bench/side-by-side.ts both measure with.
// A script calls runInChild(__filename, job) and, when started with `--child <job>`, answers
// with printChildResult(...): one JSON line on stdout.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { InputShape } from '../models/common';
import { PACKAGE_ROOT } from '../package-root';
import { peakRssBytes } from '../process-memory';
import type { ModelOptions } from '../zoo';
import { ModeMeasurement, measureMode, zooFactory } from './memory';

export type Mode = 'naive' | 'efficient';
export const MODES: readonly Mode[] = ['naive', 'efficient'];

/** Why a child gave no result: a crash, out of memory, a missing interpreter. */
export interface ChildFailure {
  error: string;
}

/** One mode of one zoo model, with the batch and steps of the measurement. */
export interface ModeJob {
  zoo: string;
  options?: ModelOptions;
  input: InputShape;
  batch: number;
  mode: Mode;
  /** Timed steps after the profiled one (their median is msPerStep). */
  steps: number;
}

export interface Measured extends ModeMeasurement {
  maxRssBytes: number;
}

export const CHILD_FLAG = '--child';

/** The last line of a child's stdout as JSON, or the reason there is none. */
function lastJsonLine<T>(r: { stdout: string; stderr: string; status: number | null; signal?: NodeJS.Signals | null; error?: Error }): T | ChildFailure {
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    if (r.error) return { error: r.error.message };
    const why = (r.stderr || r.stdout || '').trim().split('\n').filter(Boolean).pop();
    return { error: why ?? (r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`) };
  }
}

function runForJson<T>(command: string, args: string[]): T | ChildFailure {
  return lastJsonLine<T>(spawnSync(command, args, { encoding: 'utf8', env: process.env, maxBuffer: 1 << 24 }));
}

/** Parent: runs `node script ...args --child <job as JSON>` and returns the JSON line it printed. */
export function runInChild<T>(script: string, job: object, args: string[] = []): T | ChildFailure {
  return runForJson<T>(process.execPath, [script, ...args, CHILD_FLAG, JSON.stringify(job)]);
}

/** Child: the job's training step measured in this process (the backend already chosen). */
export async function measureJob(job: ModeJob): Promise<Measured> {
  const make = zooFactory(job.zoo, { ...job.options, inputShape: job.input });
  const m = await measureMode(make, job.mode === 'efficient', { batch: job.batch, inputShape: job.input, steps: job.steps });
  return { ...m, maxRssBytes: peakRssBytes() };
}

/** Child: the one line runInChild reads. */
export function printChildResult(result: object): void {
  process.stdout.write(JSON.stringify(result) + '\n');
}

// ---------------------------------------------------------------------------------------------
// PyTorch

export const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';
const PYTORCH_REFERENCE = path.join(PACKAGE_ROOT, 'scripts', 'bench', 'pytorch_reference.py');

/** A run of pytorch_reference.py: `model` is a name it knows (torchvision DenseNets, CIFAR DenseNet-BC). */
export interface PyTorchJob {
  model: string;
  batch: number;
  input: InputShape;
  mode: Mode;
  threads: number;
  steps: number;
}

/** What pytorch_reference.py prints. */
export interface PyTorchRow {
  framework: string;
  msPerStep: number;
  trainImagesPerSec: number;
  inferenceImagesPerSec?: number;
  maxRssBytes: number;
}

/** Why the reference cannot run here, or null when it can. */
export function pytorchMissing(): string | null {
  if (!fs.existsSync(PYTORCH_REFERENCE)) return `${PYTORCH_REFERENCE} is missing`;
  const r = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON}: ${r.error.message}`;
  if (r.status !== 0) return `${PYTHON} cannot import torch/torchvision (apt-get install python3-torch python3-torchvision): ${r.stderr.trim().split('\n').pop()}`;
  return null;
}

export function runPyTorchReference(job: PyTorchJob): PyTorchRow | ChildFailure {
  return runForJson<PyTorchRow>(PYTHON, [PYTORCH_REFERENCE, '--model', job.model, '--batch', String(job.batch), '--input', job.input.join('x'),
    '--mode', job.mode, '--threads', String(job.threads), '--steps', String(job.steps)]);
}
