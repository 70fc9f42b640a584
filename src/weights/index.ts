// Weights I/O: safetensors files, tfjs model.json on the local file system, and torchvision/timm
// DenseNet state dicts mapped onto the zoo's models.
export * from './safetensors';
export * from './file-io';
export * from './mapping';
export * from './tfjs-weights';
export {
  WeightBinding, WeightKind, TorchvisionLoadOptions, TorchvisionLoadReport, bindWeights, exportTorchvisionStateDict,
  loadTorchvisionSafetensors, loadTorchvisionStateDict, normaliseTorchKey, saveTorchvisionSafetensors, torchvisionKeyOf,
} from './torchvision';
export { writeFileAtomic } from './atomic';
/** The package's folder (the one holding package.json, weights/ and experiments/). */
export { PACKAGE_ROOT } from '../package-root';
