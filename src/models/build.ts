// One switch per family: an architecture and its build options become a tf.LayersModel, its
// kernels initialised as the architecture says.
import * as tf from '../tf';
import type { BuildOptions } from './common';
import { redrawHeNormalKernels } from '../layers/initializers';
import { buildDenseNet, DenseNetArch } from './densenet';
import { buildFCDenseNet, FCDenseNetArch } from './fc-densenet';

export type Architecture = DenseNetArch | FCDenseNetArch;

export function buildArchitecture(arch: Architecture, options: BuildOptions): tf.LayersModel {
  const model = arch.family === 'densenet' ? buildDenseNet(arch, options) : buildFCDenseNet(arch, options);
  if (arch.kernelInit === 'he-normal') redrawHeNormalKernels(model);
  return model;
}
