// The weights the project trained itself ship in weights/: a manifest (written by the
// experiments in experiments/) lists them with their metadata; the zoo offers them as tags.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { PACKAGE_ROOT } from '../package-root';
import type { ShippedWeights, WeightsSource } from './records';


export const MANIFEST_FILE = path.join(PACKAGE_ROOT, 'weights', 'manifest.json');

const REQUIRED: Array<keyof ShippedWeights> = ['model', 'tag', 'description', 'url', 'format', 'numClasses', 'inChannels', 'sha256'];

/** Reads and checks a manifest; a missing file is an empty one. */
export function readManifest(file = MANIFEST_FILE): ShippedWeights[] {
  if (!fs.existsSync(file)) return [];
  let records: unknown;
  try {
    records = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(records)) throw new Error(`${file}: expected an array of weight records`);
  records.forEach((r, i) => {
    const missing = REQUIRED.filter((k) => (r as Record<string, unknown>)?.[k] === undefined);
    if (missing.length) throw new Error(`${file}: record ${i} lacks ${missing.join(', ')}`);
  });
  return records as ShippedWeights[];
}

/** The weight files a tfjs model.json points at, in its manifest's order. */
export function weightDataFiles(modelJson: string): string[] {
  let manifest: Array<{ paths?: string[] }> | undefined;
  try {
    manifest = JSON.parse(fs.readFileSync(modelJson, 'utf8')).weightsManifest;
  } catch (err) {
    throw new Error(`${modelJson}: cannot read the tfjs model.json (${(err as Error).message})`);
  }
  if (!Array.isArray(manifest)) throw new Error(`${modelJson}: no weightsManifest; expected a tfjs model.json`);
  return manifest.flatMap((group) => (group.paths ?? []).map((p) => path.join(path.dirname(modelJson), p)));
}

/** sha256 of a safetensors file, or of the weight data of a tfjs model.json (its .bin files in order). */
export function weightsDigest(file: string, format: 'safetensors' | 'tfjs'): string {
  const hash = crypto.createHash('sha256');
  for (const f of format === 'tfjs' ? weightDataFiles(file) : [file]) hash.update(fs.readFileSync(f));
  return hash.digest('hex');
}

/** Throws when local weights do not have the sha256 their record gives. */
export function verifyWeights(source: WeightsSource): void {
  if (!source.sha256) return;
  const digest = weightsDigest(source.url, source.format);
  const what = source.format === 'tfjs' ? `the weight data of ${source.url}` : source.url;
  if (digest !== source.sha256) {
    throw new Error(`${what}: sha256 ${digest} does not match the zoo's ${source.sha256} (tag '${source.tag}'); the file is damaged or replaced`);
  }
}
