// The data layer: datasets by name, and the pieces they are made of.
import { CamVid } from './camvid';
import { Cifar } from './cifar';
import type { Dataset, Normalization } from './dataset';
import { FashionMnist } from './fashion-mnist';
import { FashionMosaics, MosaicOptions } from './mosaics';

export * from './dataset';
export * from './errors';
export * from '../random/prng';
export * from './augment';
export * from './streaming';
export * from './idx';
export * from './fashion-mnist';
export * from './cifar';
export * from './camvid';
export * from './mosaics';
export * from './tensors';

export const DATASET_NAMES = ['fashion-mnist', 'cifar10', 'cifar100', 'camvid', 'fashion-mosaics'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export interface OpenDatasetOptions {
  /** Data directory (`--data DIR`); required for cifar10, cifar100 and camvid. */
  dir?: string;
  /** Use these statistics instead of the dataset's own (e.g. the ones a checkpoint recorded). */
  normalization?: Normalization;
  /** fashion-mosaics only. */
  mosaic?: Omit<MosaicOptions, 'dir' | 'normalization'>;
}

const DOWNLOAD_HINTS: Record<'cifar10' | 'cifar100' | 'camvid', string> = {
  cifar10: 'the folder of the CIFAR-10 binary version (cifar-10-batches-bin with data_batch_1.bin ... test_batch.bin)',
  cifar100: 'the folder of the CIFAR-100 binary version (cifar-100-binary with train.bin and test.bin)',
  camvid: 'a CamVid folder in the SegNet layout (train/, trainannot/, val/, valannot/, test/, testannot/)',
};

function requireDir(name: 'cifar10' | 'cifar100' | 'camvid', dir: string | undefined): string {
  if (!dir) throw new Error(`dataset ${name} has no default location; pass --data DIR with ${DOWNLOAD_HINTS[name]}`);
  return dir;
}

export function openDataset(name: string, opts: OpenDatasetOptions = {}): Dataset {
  const { dir, normalization } = opts;
  switch (name as DatasetName) {
    case 'fashion-mnist':
      return new FashionMnist({ dir, normalization });
    case 'cifar10':
    case 'cifar100':
      return new Cifar(name as 'cifar10' | 'cifar100', { dir: requireDir(name as 'cifar10', dir), normalization });
    case 'camvid':
      return new CamVid({ dir: requireDir('camvid', dir), normalization });
    case 'fashion-mosaics':
      return new FashionMosaics({ ...opts.mosaic, dir, normalization });
    default:
      throw new Error(`unknown dataset '${name}'; expected one of ${DATASET_NAMES.join(', ')}`);
  }
}
