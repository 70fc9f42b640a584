// What a checkpoint remembers of its training data, so that --resume on other data is refused
// instead of silently continuing (or, on a smaller split, never finding the next batch): the size
// of every split, and the sha256 of the first and last FINGERPRINT_SAMPLES training samples in file
// order, as the trainer sees them (normalised pixels and labels). Cheap on any dataset (16 samples
// are read), and it changes when the files are replaced, cut short, extended or reordered.
import { createHash } from 'crypto';
import type { Dataset, Split } from '../data/dataset';

export const FINGERPRINT_SAMPLES = 8;

export interface DataFingerprint {
  sizes: Partial<Record<Split, number>>;
  sha256: string;
}

export async function fingerprintData(dataset: Dataset): Promise<DataFingerprint> {
  const sizes = Object.fromEntries(dataset.splits.map((s) => [s, dataset.size(s)]));
  const opts = { batchSize: FINGERPRINT_SAMPLES, shuffle: false, augment: false };
  const last = dataset.numBatches('train', opts) - 1;
  const hash = createHash('sha256');
  for (const startBatch of new Set([0, last])) {
    for await (const batch of dataset.batches('train', { ...opts, startBatch })) {
      hash.update(new Uint8Array(batch.images.buffer, batch.images.byteOffset, batch.images.byteLength));
      hash.update(new Uint8Array(batch.labels.buffer, batch.labels.byteOffset, batch.labels.byteLength));
      break;
    }
  }
  return { sizes, sha256: hash.digest('hex') };
}

/** How the data differs from the checkpoint's, in words; undefined when it is the same. */
export function describeDataChange(saved: DataFingerprint, now: DataFingerprint): string | undefined {
  const splits = [...new Set([...Object.keys(saved.sizes), ...Object.keys(now.sizes)])] as Split[];
  const resized = splits.filter((s) => saved.sizes[s] !== now.sizes[s])
    .map((s) => `its ${s} split has ${now.sizes[s] ?? 'no'} samples, the run's had ${saved.sizes[s] ?? 'none'}`);
  if (resized.length) return resized.join('; ');
  return saved.sha256 !== now.sha256 ? `the first and last training samples differ from the run's (sha256 ${now.sha256.slice(0, 12)}, the run's ${saved.sha256.slice(0, 12)})` : undefined;
}
