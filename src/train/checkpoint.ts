// Training checkpoints: a folder holding everything a run needs to continue exactly where it was.
//
//   model.json + weights.<hash>.bin   the weights (BatchNorm statistics included), tfjs format, so
//                                      `zoo.load(name, { weights: 'run/best/model.json' })` reads them too
//   optimizer.safetensors             one slot tensor per weight (momentum or RMS average)
//   checkpoint.json                   model spec, data spec, configuration, position, random state
//
// Writing is atomic at the folder level: everything goes into a temporary sibling folder, which is
// flushed to disk and then renamed into place. Replacing an existing checkpoint takes two renames
// (old -> `<name>.old`, new -> `<name>`); a process killed between them leaves `<name>.old`, which
// `resolveCheckpointDir` finds. So at every moment one complete checkpoint can be loaded.
import { promises as fsp, existsSync, readFileSync } from 'fs';
import * as path from 'path';
import * as tf from '../tf';
import type { Normalization, Split } from '../data/dataset';
import type { RngState } from '../random/prng';
import { encodeSafetensors, parseSafetensors } from '../weights/safetensors';
import { MODEL_JSON, saveLayersModelToFile } from '../weights/file-io';
import { loadTfjsWeights } from '../weights/tfjs-weights';
import type { Optimizer, SlotValue } from './optimizers';
import type { TrainConfig } from './recipes';
import * as zoo from '../zoo';
import type { ModelSpec, WeightsProvenance, ZooModel } from '../zoo';
import type { InputShape } from '../models/common';
import type { DataFingerprint } from './data-fingerprint';

export const CHECKPOINT_FORMAT = 'densenet-zoo-checkpoint';
export const CHECKPOINT_VERSION = 1;
export const CHECKPOINT_JSON = 'checkpoint.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
/** Test hook: `stage@step` makes the writer stop and wait at that point, so a test can kill it there. */
export const PAUSE_ENV = 'DENSENET_CHECKPOINT_TEST_PAUSE';
export type PauseStage = 'writing' | 'swapping';

/** How to open the data again (eval, predict, resume) and how it was normalised. */
export interface DataSpec {
  dataset: string;
  /** Absolute data directory, when one was given. */
  dir?: string;
  /** fashion-mosaics options. */
  mosaic?: Record<string, unknown>;
  /** image-folder and segmentation-folder options (input size, split fraction, augmentation, palette). */
  folder?: Record<string, unknown>;
  task: 'classification' | 'segmentation';
  imageShape: [number, number, number];
  normalization: Normalization;
  classNames: string[];
  ignoreLabel?: number;
  palette?: Array<[number, number, number]>;
  /** The split evaluated during training. */
  evalSplit: Split;
}

/** Where the next training step starts. */
export interface Position {
  /** Global steps done. */
  step: number;
  /** Epoch of the next batch (0-based). */
  epoch: number;
  /** Index of the next batch within that epoch. */
  batch: number;
}

export interface EvalSummary {
  step: number;
  epoch: number;
  split: Split;
  loss: number;
  metrics: Record<string, number>;
}

export interface CheckpointState {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  savedAt: string;
  model: ModelSpec;
  /** The weights training started from (fine-tuning); absent for a run from fresh weights. */
  initialWeights?: WeightsProvenance;
  data: DataSpec;
  config: TrainConfig;
  stepsPerEpoch: number;
  totalSteps: number;
  position: Position;
  /** The trainer's random stream (dropout masks) after `position.step` steps. */
  rng: RngState;
  /** The best evaluation so far (what `best/` holds). */
  best?: EvalSummary & { metric: string };
  lastEval?: EvalSummary;
  /** Wall-clock seconds spent training so far, over all runs. */
  trainSeconds: number;
  /** The training data's split sizes and fingerprint; --resume refuses other data. Absent in older checkpoints. */
  trainData?: DataFingerprint;
  /** Settings changed by a --resume, at the step where each took effect. */
  configChanges?: ConfigChange[];
}

export interface ConfigChange {
  step: number;
  setting: string;
  from: unknown;
  to: unknown;
}

export interface LoadedCheckpoint {
  /** The folder actually read (`<name>.old` after an interrupted swap). */
  dir: string;
  state: CheckpointState;
}

// ---------------------------------------------------------------------------------------------
// Writing

let tmpCounter = 0;

function tempDirFor(target: string): string {
  return path.join(path.dirname(target), `.tmp-${path.basename(target)}-${process.pid}-${Date.now()}-${tmpCounter++}`);
}

/** Removes temporary folders left by killed writers (`.tmp-*` in the run folder). */
export async function removeStaleTemporaries(runDir: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(runDir);
  } catch {
    return;
  }
  await Promise.all(names.filter((n) => n.startsWith('.tmp-')).map((n) => fsp.rm(path.join(runDir, n), { recursive: true, force: true })));
}

async function fsyncPath(p: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(p, 'r');
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on folders; the rename order still protects against a killed process.
  } finally {
    await handle?.close();
  }
}

/** A checkpoint being written; `abandoned` makes it stop before it replaces anything. */
interface Write {
  abandoned: boolean;
  /** Ends a test-hook pause early. */
  wake?: () => void;
}

const writes = new Set<Write>();
const afterWrites: Array<() => void> = [];

class WriteAbandoned extends Error {
  constructor(target: string) {
    super(`${target}: checkpoint write abandoned (a second Ctrl-C); the previous checkpoint is kept`);
  }
}

/**
 * Stops the checkpoint writes in progress before they replace anything (one already swapping
 * finishes), then calls `then` synchronously, before the abandoned write's error reaches anyone:
 * so the caller can exit with one complete checkpoint on disk.
 */
export function abandonCheckpointWrites(then: () => void): void {
  if (writes.size === 0) return then();
  afterWrites.push(then);
  for (const w of writes) {
    w.abandoned = true;
    w.wake?.();
  }
}

function endWrite(w: Write): void {
  writes.delete(w);
  if (writes.size === 0) for (const then of afterWrites.splice(0)) then();
}

async function pauseIfAsked(w: Write, stage: PauseStage, step: number): Promise<void> {
  const wanted = process.env[PAUSE_ENV];
  if (!wanted || wanted !== `${stage}@${step}` || w.abandoned) return;
  process.stderr.write(`checkpoint writer paused at ${stage} (step ${step}) by ${PAUSE_ENV}\n`);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 2 ** 31 - 1);
    w.wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
}

function slotsToSafetensors(slots: Map<string, SlotValue>): Uint8Array {
  return encodeSafetensors(new Map([...slots].map(([k, v]) => [k, { shape: v.shape, data: v.data }])));
}

/** Writes a complete checkpoint to `target` (a folder), replacing any checkpoint there atomically. */
export async function saveCheckpoint(
  target: string, model: tf.LayersModel, optimizer: Optimizer | undefined, state: CheckpointState,
): Promise<void> {
  const w: Write = { abandoned: false };
  writes.add(w);
  try {
    await writeAndSwap(w, target, model, optimizer, state);
  } finally {
    endWrite(w);
  }
}

async function writeAndSwap(
  w: Write, target: string, model: tf.LayersModel, optimizer: Optimizer | undefined, state: CheckpointState,
): Promise<void> {
  const tmp = tempDirFor(target);
  await fsp.mkdir(tmp, { recursive: true });
  try {
    await saveLayersModelToFile(model, tmp);
    if (optimizer) await fsp.writeFile(path.join(tmp, OPTIMIZER_FILE), slotsToSafetensors(await optimizer.readSlots()));
    await pauseIfAsked(w, 'writing', state.position.step);
    await fsp.writeFile(path.join(tmp, CHECKPOINT_JSON), JSON.stringify(state, null, 2) + '\n');
    for (const name of await fsp.readdir(tmp)) await fsyncPath(path.join(tmp, name));
    await fsyncPath(tmp);
    if (w.abandoned) throw new WriteAbandoned(target);
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw err;
  }
  await swapInto(w, tmp, target, state.position.step);
}

async function swapInto(w: Write, tmp: string, target: string, step: number): Promise<void> {
  const old = `${target}.old`;
  if (existsSync(target)) {
    // `target` is complete (it only ever appears by rename), so an older `.old` can go.
    await fsp.rm(old, { recursive: true, force: true });
    await fsp.rename(target, old);
  }
  // Otherwise `.old` may be the only complete checkpoint (an earlier swap was cut short): keep it until the new one is in place.
  await pauseIfAsked(w, 'swapping', step);
  await fsp.rename(tmp, target);
  await fsyncPath(path.dirname(target));
  await fsp.rm(old, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Reading

export function isCheckpointDir(p: string): boolean {
  try {
    resolveCheckpointDir(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * The folder holding a complete checkpoint for `p`: `p` itself, `p.old` (a swap was interrupted),
 * or, for a run folder, its `last` checkpoint.
 */
export function resolveCheckpointDir(p: string): string {
  const candidates = [p, `${p}.old`, path.join(p, 'last'), path.join(p, 'last.old')];
  const found = candidates.find((c) => existsSync(path.join(c, CHECKPOINT_JSON)));
  if (!found) {
    throw new Error(`${p}: no checkpoint here (no ${CHECKPOINT_JSON} in it, in ${path.basename(p)}.old or in last/); ` +
      `'densenet train ... --out DIR' writes DIR/last and DIR/best`);
  }
  return found;
}

export function readCheckpointState(p: string): LoadedCheckpoint {
  const dir = resolveCheckpointDir(p);
  const file = path.join(dir, CHECKPOINT_JSON);
  let state: CheckpointState;
  try {
    state = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not a readable checkpoint (${(err as Error).message})`);
  }
  if (state?.format !== CHECKPOINT_FORMAT) throw new Error(`${file}: not a densenet-zoo checkpoint (format ${JSON.stringify(state?.format)})`);
  if (state.version !== CHECKPOINT_VERSION) {
    throw new Error(`${file}: checkpoint version ${state.version}; this densenet-zoo reads version ${CHECKPOINT_VERSION}`);
  }
  for (const key of ['model', 'data', 'config', 'position', 'rng'] as const) {
    if (!state[key]) throw new Error(`${file}: corrupt checkpoint: no '${key}'`);
  }
  return { dir, state };
}

/** Loads the checkpoint's weights into `model` (built from its spec), every weight checked by name and shape. */
export async function loadCheckpointWeights(model: tf.LayersModel, dir: string): Promise<void> {
  await loadTfjsWeights(model, path.join(dir, MODEL_JSON), { skipClassifier: false, adaptInputChannels: false });
}

/** The optimizer slots saved in the checkpoint. */
export async function readOptimizerSlots(dir: string): Promise<Map<string, SlotValue>> {
  const file = path.join(dir, OPTIMIZER_FILE);
  let bytes: Uint8Array;
  try {
    bytes = await fsp.readFile(file);
  } catch (err) {
    throw new Error(`${file}: cannot read the optimizer state (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const st = parseSafetensors(bytes, file);
  return new Map(st.names().map((n) => [n, { shape: st.shape(n), data: st.read(n) }]));
}

/** The checkpoint's model (at `inputShape`, default the training one) with its weights, its card from the training data. */
export async function loadCheckpointModel(
  p: string, inputShape?: InputShape, inference: Pick<ModelSpec, 'batchNorm'> = {},
): Promise<{ model: ZooModel } & LoadedCheckpoint> {
  const loaded = readCheckpointState(p);
  const { state, dir } = loaded;
  const batchNorm = inference.batchNorm ?? state.model.batchNorm;
  const model = zoo.fromSpec(batchNorm ? { ...state.model, batchNorm } : state.model, inputShape);
  try {
    await loadCheckpointWeights(model, dir);
  } catch (err) {
    model.dispose();
    throw err;
  }
  const { data } = state;
  Object.assign(model.card, {
    classNames: [...data.classNames],
    preprocessing: { inputShape: model.card.spec.inputShape, mean: [...data.normalization.mean], std: [...data.normalization.std] },
    weights: { source: dir, format: 'tfjs', headLoaded: true },
    ...(data.ignoreLabel !== undefined ? { ignoreLabel: data.ignoreLabel } : {}),
    ...(data.palette ? { palette: data.palette } : {}),
  });
  return { model, ...loaded };
}
