// The data layer: datasets by name, and the pieces they are made of.
import { CamVid } from './camvid';
import { Cifar } from './cifar';
import type { Dataset, Normalization } from './dataset';
import { FashionMnist } from './fashion-mnist';
import { FashionMosaics, MosaicOptions } from './mosaics';
import { ImageFolder, ImageFolderOptions } from './image-folder';
import { SegmentationFolder, SegmentationFolderOptions } from './segmentation-folder';

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
export * from './image-folder';
export * from './segmentation-folder';
export { IMAGE_EXTENSIONS } from './folder-files';
export { DecoderChoice, DecoderName, resolveDecoder } from './image-decoder';
export { closeDecodePools } from './decode-pool';

export const DATASET_NAMES = ['fashion-mnist', 'cifar10', 'cifar100', 'camvid', 'fashion-mosaics', 'image-folder', 'segmentation-folder'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export interface OpenDatasetOptions {
  /** Data directory (`--data DIR`); required for cifar10, cifar100 and camvid. */
  dir?: string;
  /** Use these statistics instead of the dataset's own (e.g. the ones a checkpoint recorded). */
  normalization?: Normalization;
  /** fashion-mosaics only. */
  mosaic?: Omit<MosaicOptions, 'dir' | 'normalization'>;
  /** image-folder and segmentation-folder: how to read the folder (checkpoints record them). */
  folder?: FolderOptions;
  /** Told what a dataset found when opened (segmentation-folder: the classes' pixel frequencies). */
  note?: (line: string) => void;
}

export type FolderOptions = Omit<ImageFolderOptions, 'dir' | 'normalization'> & Omit<SegmentationFolderOptions, 'dir' | 'normalization' | 'note'>;

const IMAGE_FOLDER_ONLY = ['inputShape', 'augmentation', 'decoder', 'workers', 'prefetch'] as const;
const SEGMENTATION_FOLDER_ONLY = ['palette', 'ignoreIndex'] as const;

/** The folder options of one kind of folder; one that belongs to the other kind is an error. */
function folderOptions(name: string, folder: FolderOptions, refused: readonly (keyof FolderOptions)[]): FolderOptions {
  const wrong = refused.filter((k) => folder[k] !== undefined);
  if (wrong.length) throw new Error(`dataset ${name} takes no ${wrong.join(', ')} option (${wrong.length > 1 ? 'they apply' : 'it applies'} to the other kind of folder)`);
  return folder;
}

const DOWNLOAD_HINTS: Record<'cifar10' | 'cifar100' | 'camvid' | 'image-folder' | 'segmentation-folder', string> = {
  cifar10: 'the folder of the CIFAR-10 binary version (cifar-10-batches-bin with data_batch_1.bin ... test_batch.bin)',
  cifar100: 'the folder of the CIFAR-100 binary version (cifar-100-binary with train.bin and test.bin)',
  camvid: 'a CamVid folder in the SegNet layout (train/, trainannot/, val/, valannot/, test/, testannot/)',
  'image-folder': 'a folder with a sub-folder of images per class (DIR/<class>/*.jpg, or DIR/train/<class>/... and DIR/val/...)',
  'segmentation-folder': 'a folder with images/ and masks/ of the same file stems',
};

function requireDir(name: keyof typeof DOWNLOAD_HINTS, dir: string | undefined): string {
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
    case 'image-folder':
      return new ImageFolder({ ...folderOptions(name, opts.folder ?? {}, SEGMENTATION_FOLDER_ONLY), dir: requireDir('image-folder', dir), normalization });
    case 'segmentation-folder':
      return new SegmentationFolder({ ...folderOptions(name, opts.folder ?? {}, IMAGE_FOLDER_ONLY), dir: requireDir('segmentation-folder', dir), normalization, note: opts.note });
    default:
      throw new Error(`unknown dataset '${name}'; expected one of ${DATASET_NAMES.join(', ')}`);
  }
}
