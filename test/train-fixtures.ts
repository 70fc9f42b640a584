// Shared pieces of the training tests: a tiny Fashion-MNIST in the real IDX format, a tiny
// DenseNet-BC variant, and helpers to run the CLI in a child process.
import { spawn, spawnSync, ChildProcess, SpawnSyncReturns } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { IdxSplit, writeFashionMnist } from './data-fixtures';
import { Rng } from '../src/random/prng';
import * as zoo from '../src/zoo';
import type { ModelOptions, ModelSpec } from '../src/zoo';
import type { Dataset } from '../src/data/dataset';
import { modelOptionsForDataset } from '../src/train/data-spec';

export const ROOT = resolve(__dirname, '../..');
/** The CLI built beside these tests. */
export const CLI = join(__dirname, '../src/cli/main.js');

/** DenseNet-BC with one bottleneck layer per block and growth 4: a second per step on the CPU. */
export const TINY_MODEL = 'densenet-bc-100-k12';
export const TINY_ARGS = ['--depth', '10', '--growth', '4'];
export const TINY_SPEC_OPTIONS = { depth: 10, growthRate: 4 };

/** The tiny DenseNet-BC spec that fits a dataset, with extra model options. */
export function tinySpec(dataset: Dataset, extra: ModelOptions = {}): ModelSpec {
  return zoo.resolve(TINY_MODEL, { ...TINY_SPEC_OPTIONS, ...modelOptionsForDataset(TINY_MODEL, dataset), ...extra }).spec;
}

/** n images of h x w whose class shows as a bright row (row = label % h) over seeded noise: learnable. */
export function learnableSplit(n: number, h: number, w: number, seed: number): IdxSplit {
  const rng = Rng.from(seed);
  const images = new Uint8Array(n * h * w);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = rng.int(10);
    labels.push(label);
    for (let p = 0; p < h * w; p++) images[i * h * w + p] = rng.int(60);
    const row = label % h;
    for (let x = 0; x < w; x++) images[i * h * w + row * w + x] = 200 + rng.int(56);
  }
  return { images, labels, h, w };
}

/** Writes a Fashion-MNIST folder (gzipped IDX) with `train` and `test` images of `size` x `size`. */
export function writeTinyFashion(dir: string, train = 24, test = 10, size = 8): void {
  writeFashionMnist(dir, { train: learnableSplit(train, size, size, 1), test: learnableSplit(test, size, size, 2) }, true);
}

export function runCli(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, '--backend', 'wasm', ...args], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000,
  });
}

export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [CLI, '--backend', 'wasm', ...args], { cwd: ROOT, env: { ...process.env, ...env } });
}

/** Everything a child process prints, as it prints it. */
export function collectOutput(child: ChildProcess): { stdout: string; stderr: string } {
  const seen = { stdout: '', stderr: '' };
  child.stdout!.on('data', (c: Buffer) => (seen.stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (seen.stderr += c.toString()));
  return seen;
}

/** Resolves when `text` appears in the stream's output; rejects when the process ends first. */
export function waitForOutput(child: ChildProcess, stream: 'stdout' | 'stderr', text: string | RegExp): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let seen = '';
    const source = child[stream]!;
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (typeof text === 'string' ? seen.includes(text) : text.test(seen)) {
        source.off('data', onData);
        resolvePromise(seen);
      }
    };
    source.on('data', onData);
    child.once('exit', (code) => reject(new Error(`process exited (${code}) before printing ${text}; it printed:\n${seen}`)));
  });
}

export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => r({ code, signal }));
  });
}

/** The weights of a checkpoint folder as name -> values (read from its tfjs model.json + shard). */
export function checkpointWeights(dir: string): Map<string, Float32Array> {
  const modelJson = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  const group = modelJson.weightsManifest[0];
  const bytes = Buffer.concat(group.paths.map((p: string) => readFileSync(join(dir, p))));
  const out = new Map<string, Float32Array>();
  let offset = 0;
  for (const w of group.weights as Array<{ name: string; shape: number[] }>) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    out.set(w.name, new Float32Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + 4 * n)));
    offset += 4 * n;
  }
  return out;
}

/** Names of the weights whose values differ (empty: identical). */
export function differingWeights(a: Map<string, Float32Array>, b: Map<string, Float32Array>): string[] {
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((n) => {
    const x = a.get(n);
    const y = b.get(n);
    return !x || !y || x.length !== y.length || x.some((v, i) => !Object.is(v, y[i]));
  });
}

export function stderrErrorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('densenet: error:'));
}
