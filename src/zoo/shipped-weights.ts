// The weights the project trained itself ship in weights/: a manifest (written by the
// experiments in experiments/) lists them with their metadata; the zoo offers them as tags.
import * as fs from 'fs';
import * as path from 'path';
import { PACKAGE_ROOT } from '../package-root';
import * as tf from '../tf';
import type { ShippedWeights, WeightsSource } from './records';
import { checkRelativeName, containedPath } from '../weights/contained-file';
import { checkDigest, sha256Hex, tfjsWeightsDigest } from '../weights/digest';
import { fileSystem } from '../weights/file-io';
import { jsonErrorReason } from '../json-error';

export const MANIFEST_FILE = path.join(PACKAGE_ROOT, 'weights', 'manifest.json');

const REQUIRED: Array<keyof ShippedWeights> = ['model', 'tag', 'description', 'url', 'format', 'numClasses', 'inChannels', 'sha256'];

/** Reads and checks a manifest; a missing file is an empty one. */
export function readManifest(file = MANIFEST_FILE): ShippedWeights[] {
  if (!fs.existsSync(file)) return [];
  let records: unknown;
  try {
    records = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${jsonErrorReason(err)})`);
  }
  if (!Array.isArray(records)) throw new Error(`${file}: expected an array of weight records`);
  records.forEach((r, i) => {
    const missing = REQUIRED.filter((k) => (r as Record<string, unknown>)?.[k] === undefined);
    if (missing.length) throw new Error(`${file}: record ${i} lacks ${missing.join(', ')}`);
  });
  return records as ShippedWeights[];
}

/** The weight files a tfjs model.json points at, in its manifest's order; each must lie inside the model's folder. */
export function weightDataFiles(modelJson: string): string[] {
  let manifest: Array<{ paths?: string[] }> | undefined;
  try {
    manifest = JSON.parse(fs.readFileSync(modelJson, 'utf8')).weightsManifest;
  } catch (err) {
    throw new Error(`${modelJson}: cannot read the tfjs model.json (${(err as Error).message})`);
  }
  if (!Array.isArray(manifest)) throw new Error(`${modelJson}: no weightsManifest; expected a tfjs model.json`);
  const what = `weight shard listed in ${modelJson}`;
  return manifest.flatMap((group) => (group.paths ?? []).map((p) => containedPath(path.dirname(modelJson), p, what)));
}

/**
 * sha256 of a safetensors or PyTorch file's bytes, or of a tfjs model's weights: its model.json's weight list
 * (names, shapes, dtypes, in order) and then the shard data (see weights/digest.ts).
 */
export async function weightsDigest(file: string, format: WeightsSource['format']): Promise<string> {
  if (format !== 'tfjs') return sha256Hex(await fs.promises.readFile(file));
  const artifacts = await fileSystem(file).load();
  return tfjsWeightsDigest(artifacts.weightSpecs ?? [], tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? []));
}

/** Throws when local weights do not have the sha256 their record gives. */
export async function verifyWeights(source: WeightsSource): Promise<void> {
  if (!source.sha256) return;
  const expected = { sha256: source.sha256, owner: `tag '${source.tag}'` };
  const what = source.format === 'tfjs' ? 'its weights (the weight list of model.json and the shard data)' : 'the file';
  checkDigest(source.url, what, await weightsDigest(source.url, source.format), expected);
}

/** The file a manifest record's relative `url` names, which must be inside weights/ (symlinks resolved). */
export function shippedFile(url: string, manifest = MANIFEST_FILE): string {
  const weightsDir = path.dirname(manifest);
  const relative = path.relative(weightsDir, path.join(path.dirname(weightsDir), checkRelativeName(url, `url of a record in ${manifest}`)));
  return containedPath(weightsDir, relative, `weights file of a record in ${manifest}`);
}
