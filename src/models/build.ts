// One switch per family: an architecture and its build options become a tf.LayersModel.
import * as tf from '../tf';
import type { BuildOptions } from './common';
import { buildDenseNet, DenseNetArch } from './densenet';
import { buildFCDenseNet, FCDenseNetArch } from './fc-densenet';

export type Architecture = DenseNetArch | FCDenseNetArch;

export function buildArchitecture(arch: Architecture, options: BuildOptions): tf.LayersModel {
  switch (arch.family) {
    case 'densenet':
      return buildDenseNet(arch, options);
    case 'fc-densenet':
      return buildFCDenseNet(arch, options);
  }
}
