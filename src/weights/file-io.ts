// A TensorFlow.js IOHandler for the local file system. tfjs registers `file://` only inside
// tfjs-node, which this package cannot depend on, so saving and loading `model.json` + binary
// weight shards goes through this handler on every backend:
//   await model.save(fileSystem('out/my-model'));
//   const m = await tf.loadLayersModel(fileSystem('out/my-model/model.json'));
import { createHash } from 'crypto';
import { existsSync, promises as fsp } from 'fs';
import * as path from 'path';
import { fileURLToPath } from 'url';
import * as tf from '../tf';
import { removeQuietly, tempNameFor } from './atomic';
import { jsonErrorReason } from '../json-error';
import { closeAll, containedPath, ContainedFileError, openRegularFile, OpenedFile, readBoundedFile, readOpened } from './contained-file';

type ModelArtifacts = tf.io.ModelArtifacts;
type ModelJSON = tf.io.ModelJSON;
type ManifestEntry = tf.io.WeightsManifestEntry;
type ManifestGroup = tf.io.WeightsManifestConfig[number];

export const MODEL_JSON = 'model.json';
/** Largest model.json read (the topology of DenseNet-264 is under 1 MB). */
export const MAX_MODEL_JSON_BYTES = 64 * 2 ** 20;
/** The content hash in a shard's name: `weights.<sha12>.bin`, `group1-shard1of2.<sha12>.bin`. */
const CONTENT_TAG = /\.([0-9a-f]{12})\.bin$/;

export class ModelFileError extends Error {
  constructor(readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
    this.name = 'ModelFileError';
  }
}

export interface FileSystemOptions {
  /**
   * Largest weight shard in bytes. Default: every weight in one `weights.bin` (as tfjs-node
   * writes); set it (e.g. 4 MiB, the tfjs converter's size) to serve the model over HTTP.
   */
  maxShardBytes?: number;
}

/** `path/to/model.json` or a folder (then `model.json` inside it); `file://` URLs are accepted. */
export function resolveModelJsonPath(pathToModelJsonOrDir: string): string {
  const p = pathToModelJsonOrDir.startsWith('file://') ? fileURLToPath(pathToModelJsonOrDir) : pathToModelJsonOrDir;
  return p.toLowerCase().endsWith('.json') ? path.resolve(p) : path.resolve(p, MODEL_JSON);
}

export class FileSystemHandler implements tf.io.IOHandler {
  readonly modelJsonPath: string;
  readonly dir: string;
  private readonly maxShardBytes?: number;

  constructor(pathToModelJsonOrDir: string, options: FileSystemOptions = {}) {
    this.modelJsonPath = resolveModelJsonPath(pathToModelJsonOrDir);
    this.dir = path.dirname(this.modelJsonPath);
    if (options.maxShardBytes !== undefined && !(options.maxShardBytes >= 4)) {
      throw new Error(`fileSystem: maxShardBytes must be at least 4, got ${options.maxShardBytes}`);
    }
    this.maxShardBytes = options.maxShardBytes;
  }

  async save(artifacts: ModelArtifacts): Promise<tf.io.SaveResult> {
    if (artifacts.modelTopology instanceof ArrayBuffer) {
      throw new ModelFileError(this.modelJsonPath, 'saving a binary (GraphDef) topology is not supported; only LayersModels');
    }
    const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? []));
    const shards = splitShards(weights, this.maxShardBytes);
    const names = shardNames(shards.length, contentTag(weights));
    const modelJson = toModelJson(artifacts, names);
    await fsp.mkdir(this.dir, { recursive: true });
    const previous = await this.previousShardFiles();
    // New shards get names of their own (a content hash), so until model.json is replaced
    // the old model.json still finds its own shards: a failed save changes nothing.
    try {
      await writeAllAtomic([
        ...shards.map((data, i) => ({ file: path.join(this.dir, names[i]), data })),
        { file: this.modelJsonPath, data: JSON.stringify(modelJson) },
      ]);
    } catch (err) {
      await this.removeShards(names, previous);
      throw err;
    }
    await this.removeShards(previous, names);
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  }

  async load(): Promise<ModelArtifacts> {
    const modelJson = await this.readModelJson();
    return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => this.readWeights(manifest));
  }

  private async readModelJson(): Promise<ModelJSON> {
    let text: string;
    try {
      text = new TextDecoder().decode(await readBoundedFile(this.modelJsonPath, MAX_MODEL_JSON_BYTES, 'model.json'));
    } catch (err) {
      if (!existsSync(this.modelJsonPath)) throw new ModelFileError(this.modelJsonPath, 'model.json not found');
      throw new ModelFileError(this.modelJsonPath, `cannot read model.json: ${(err as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new ModelFileError(this.modelJsonPath, `corrupt or truncated model.json: not valid JSON (${jsonErrorReason(err)})`);
    }
    validateModelJson(json, this.modelJsonPath);
    return json;
  }

  /**
   * Every shard is checked before any is read: a plain name inside the model's folder, a regular
   * file, and together the size the weight list describes. Shards named by their content hash
   * (`weights.<sha12>.bin`, as save() writes them) must then hash to that name.
   */
  private async readWeights(manifest: tf.io.WeightsManifestConfig): Promise<[ManifestEntry[], ArrayBuffer]> {
    const specs: ManifestEntry[] = [];
    const buffers: Uint8Array[] = [];
    for (const [g, group] of manifest.entries()) {
      const expected = groupByteLength(group, this.modelJsonPath);
      const opened = await this.openShards(group.paths);
      const actual = opened.reduce((n, o) => n + o.size, 0);
      if (actual !== expected) {
        await closeAll(opened);
        const sizes = opened.map((o, i) => `${group.paths[i]} ${o.size}`).join(', ');
        throw new ModelFileError(
          this.modelJsonPath,
          `weight group ${g + 1}: the manifest describes ${expected} bytes of weights but the shard files hold ${actual} ` +
            `(${sizes}); a shard is ${actual < expected ? 'truncated' : 'too long'} or does not belong to this model.json`,
        );
      }
      const groupBuffers: Uint8Array[] = [];
      for (const o of opened) groupBuffers.push(await readOpened(o));
      this.checkContentTag(group.paths, groupBuffers);
      specs.push(...group.weights);
      buffers.push(...groupBuffers);
    }
    return [specs, concat(buffers)];
  }

  private async openShards(paths: string[]): Promise<OpenedFile[]> {
    const opened: OpenedFile[] = [];
    const what = `weight shard listed in ${this.modelJsonPath}`;
    try {
      for (const p of paths) opened.push(await openRegularFile(containedPath(this.dir, p, what), what));
    } catch (err) {
      await closeAll(opened);
      throw err;
    }
    return opened;
  }

  private checkContentTag(paths: string[], buffers: Uint8Array[]): void {
    const tags = new Set(paths.map((p) => CONTENT_TAG.exec(path.basename(p))?.[1]));
    const [tag] = tags;
    if (tags.size !== 1 || tag === undefined) return;
    const actual = contentTag(new Uint8Array(concat(buffers)));
    if (actual !== tag) {
      throw new ModelFileError(path.join(this.dir, paths[0]),
        `weight data does not match the hash in its name (sha256 begins ${actual}, the name says ${tag}); the shard is damaged`);
    }
  }

  /** Shards named by the model.json being replaced (so they can be removed if unused). */
  private async previousShardFiles(): Promise<string[]> {
    try {
      const old = JSON.parse(await fsp.readFile(this.modelJsonPath, 'utf8')) as ModelJSON;
      return (old.weightsManifest ?? []).flatMap((g) => g.paths ?? []).filter(isPlainFileName);
    } catch {
      return [];
    }
  }

  /** Removes the shards in `names` that are not also in `keep`. */
  private async removeShards(names: string[], keep: string[]): Promise<void> {
    const kept = new Set(keep);
    await Promise.all(names.filter((p) => !kept.has(p)).map((p) => removeQuietly(path.join(this.dir, p))));
  }
}

/** The handler for `model.save(...)` and `tf.loadLayersModel(...)`. */
export function fileSystem(pathToModelJsonOrDir: string, options: FileSystemOptions = {}): FileSystemHandler {
  return new FileSystemHandler(pathToModelJsonOrDir, options);
}

/** Loads a LayersModel from disk, turning tfjs's deserialisation errors into ones that name the file. */
export async function loadLayersModelFromFile(pathToModelJsonOrDir: string): Promise<tf.LayersModel> {
  const handler = fileSystem(pathToModelJsonOrDir);
  try {
    return await tf.loadLayersModel(handler);
  } catch (err) {
    if (err instanceof ModelFileError || err instanceof ContainedFileError) throw err;
    throw new ModelFileError(handler.modelJsonPath, `cannot build the model from model.json: ${(err as Error).message}`);
  }
}

export async function saveLayersModelToFile(
  model: tf.LayersModel,
  pathToModelJsonOrDir: string,
  options: FileSystemOptions = {},
): Promise<tf.io.SaveResult> {
  return model.save(fileSystem(pathToModelJsonOrDir, options));
}

/**
 * Registers `file://` URLs for `tf.loadLayersModel('file://...')` and `model.save('file://...')`,
 * unless another handler (tfjs-node's) already claims them: two would make tfjs refuse the URL.
 */
export function registerFileRouter(): boolean {
  const probe = 'file:///densenet-zoo-probe/model.json';
  if (tf.io.getLoadHandlers(probe).length > 0 || tf.io.getSaveHandlers(probe).length > 0) return false;
  // tfjs's router type says IOHandler, but routers return null for URLs they do not handle.
  const route = ((url: string | string[]) =>
    typeof url === 'string' && url.startsWith('file://') ? fileSystem(url) : null) as unknown as Parameters<
    typeof tf.io.registerLoadRouter
  >[0];
  tf.io.registerLoadRouter(route);
  tf.io.registerSaveRouter(route);
  return true;
}

// ---------------------------------------------------------------------------------------------

function splitShards(weights: Uint8Array, maxShardBytes?: number): Uint8Array[] {
  if (!maxShardBytes || weights.byteLength <= maxShardBytes) return [weights];
  const shards: Uint8Array[] = [];
  for (let start = 0; start < weights.byteLength; start += maxShardBytes) {
    shards.push(weights.subarray(start, start + maxShardBytes));
  }
  return shards;
}

function contentTag(weights: Uint8Array): string {
  return createHash('sha256').update(weights).digest('hex').slice(0, 12);
}

function shardNames(count: number, tag: string): string[] {
  if (count === 1) return [`weights.${tag}.bin`];
  return Array.from({ length: count }, (_, i) => `group1-shard${i + 1}of${count}.${tag}.bin`);
}

function isPlainFileName(p: unknown): p is string {
  return typeof p === 'string' && p === path.basename(p) && p !== MODEL_JSON && p !== '.' && p !== '..';
}

function toModelJson(artifacts: ModelArtifacts, paths: string[]): ModelJSON {
  const json: ModelJSON = {
    modelTopology: artifacts.modelTopology as {},
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    weightsManifest: [{ paths, weights: artifacts.weightSpecs ?? [] }],
  };
  const optional = ['trainingConfig', 'signature', 'userDefinedMetadata', 'modelInitializer', 'initializerSignature'] as const;
  for (const key of optional) {
    if (artifacts[key] !== undefined) (json as unknown as Record<string, unknown>)[key] = artifacts[key];
  }
  return json;
}

/** Writes every file under a temporary name first, then renames them in order. */
async function writeAllAtomic(files: Array<{ file: string; data: Uint8Array | string }>): Promise<void> {
  const temps = files.map((f) => ({ ...f, tmp: tempNameFor(f.file) }));
  try {
    for (const t of temps) await fsp.writeFile(t.tmp, t.data);
    for (const t of temps) await fsp.rename(t.tmp, t.file);
  } catch (err) {
    await Promise.all(temps.map((t) => removeQuietly(t.tmp)));
    throw err;
  }
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
const QUANT_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };

/** Bytes the manifest group describes; a dtype of no fixed size (string) is refused, naming the weight. */
function groupByteLength(group: ManifestGroup, file: string): number {
  let total = 0;
  for (const w of group.weights) {
    const width = w.quantization ? QUANT_BYTES[w.quantization.dtype] : DTYPE_BYTES[w.dtype];
    if (width === undefined) {
      throw new ModelFileError(file, `weight '${w.name}' has dtype ${w.quantization?.dtype ?? w.dtype}; weight files hold ${Object.keys(DTYPE_BYTES).join(', ')} ` +
        `(or ${Object.keys(QUANT_BYTES).join(', ')} quantized)`);
    }
    total += w.shape.reduce((a, b) => a * b, 1) * width;
  }
  return total;
}

function validateModelJson(json: unknown, file: string): asserts json is ModelJSON {
  const bad = (what: string) => new ModelFileError(file, `corrupt model.json: ${what}`);
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw bad('expected a JSON object');
  const j = json as Record<string, unknown>;
  if (j.modelTopology === undefined || j.modelTopology === null) throw bad('no modelTopology');
  if (j.weightsManifest === undefined) return;
  if (!Array.isArray(j.weightsManifest)) throw bad('weightsManifest is not a list');
  j.weightsManifest.forEach((g: unknown, i: number) => {
    const group = g as Record<string, unknown>;
    if (!group || !Array.isArray(group.paths) || !group.paths.every((p) => typeof p === 'string')) {
      throw bad(`weightsManifest[${i}].paths is not a list of file names`);
    }
    if (!Array.isArray(group.weights)) throw bad(`weightsManifest[${i}].weights is not a list`);
    for (const w of group.weights as Array<Record<string, unknown>>) {
      const ok = w && typeof w.name === 'string' && typeof w.dtype === 'string' &&
        Array.isArray(w.shape) && w.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
      if (!ok) throw bad(`weightsManifest[${i}] has a malformed weight entry ${JSON.stringify(w)}`);
    }
  });
}

function concat(parts: Uint8Array[]): ArrayBuffer {
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out.buffer;
}
