// Builder for the DenseNet family (Huang et al. 2017): the ImageNet models with a
// 7x7/2 stem and four blocks, and the CIFAR models with a 3x3 stem and three.
import * as tf from '../tf';
import { DropoutPlacement, MaskDropout } from '../layers/dropout';
import { PreActivationConv } from '../layers/pre-activation-conv';
import { NormReluPool } from '../layers/norm-relu-pool';
import { BATCH_NORM_DEFAULTS } from '../layers/unit-variables';
import { CLASSIFIER, INPUT_LAYER, layerName, stages } from '../layers/layer-names';
import { BuildOptions, batchNorm, channels, checkInputShape, denseBlock, relu } from './common';
import { KernelInit, tfjsKernelInitializer } from '../layers/initializers';

export interface DenseNetArch {
  family: 'densenet';
  growthRate: number;
  blockLayers: number[];
  stemChannels: number;
  stem: 'imagenet' | 'cifar';
  /** BatchNorm-ReLU after the stem conv: always in the ImageNet stem, optional in the CIFAR one. */
  stemNorm: boolean;
  /** Initialisation of every conv kernel. */
  kernelInit: KernelInit;
  /** Bottleneck width as a multiple of the growth rate (4 in DenseNet-B); 0 means none. */
  bottleneckFactor: number;
  /** Transition compression theta: a transition keeps floor(theta * m) channels. */
  compression: number;
  dropRate: number;
  dropoutPlacement: DropoutPlacement;
}

/** Smallest input side that survives the stem and every transition. */
function minimumInputSide(arch: DenseNetArch): number {
  const transitions = arch.blockLayers.length - 1;
  return (arch.stem === 'imagenet' ? 4 : 1) * 2 ** transitions;
}

const stemLayer = (part: string) => layerName(stages.stem, part);

function stem(input: tf.SymbolicTensor, arch: DenseNetArch): tf.SymbolicTensor {
  if (arch.stem === 'cifar') {
    const x = tf.layers
      .conv2d({ name: stemLayer('conv'), filters: arch.stemChannels, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tfjsKernelInitializer(arch.kernelInit) })
      .apply(input) as tf.SymbolicTensor;
    return arch.stemNorm ? (relu(stemLayer('relu')).apply(batchNorm(stemLayer('norm')).apply(x)) as tf.SymbolicTensor) : x;
  }
  // torch pads 3 (conv) and 1 (pool) on every side; tf's 'same' would pad unevenly.
  let x = tf.layers.zeroPadding2d({ name: stemLayer('pad'), padding: 3 }).apply(input) as tf.SymbolicTensor;
  x = tf.layers
    .conv2d({ name: stemLayer('conv'), filters: arch.stemChannels, kernelSize: 7, strides: 2, padding: 'valid', useBias: false, kernelInitializer: tfjsKernelInitializer(arch.kernelInit) })
    .apply(x) as tf.SymbolicTensor;
  x = batchNorm(stemLayer('norm')).apply(x) as tf.SymbolicTensor;
  x = relu(stemLayer('relu')).apply(x) as tf.SymbolicTensor;
  // Zero padding equals torch's -inf padding here: the input is post-ReLU.
  x = tf.layers.zeroPadding2d({ name: stemLayer('pool_pad'), padding: 1 }).apply(x) as tf.SymbolicTensor;
  return tf.layers.maxPooling2d({ name: stemLayer('pool'), poolSize: 3, strides: 2, padding: 'valid' }).apply(x) as tf.SymbolicTensor;
}

function transition(x: tf.SymbolicTensor, t: number, arch: DenseNetArch, memoryEfficient: boolean): tf.SymbolicTensor {
  const filters = Math.floor(channels(x) * arch.compression);
  const at = stages.transition(t);
  // Dropout sits between the conv and the pool; without it the pool is part of the transition layer.
  const dropout = arch.dropRate > 0 && arch.dropoutPlacement === 'every-conv';
  let y = new PreActivationConv({
    name: layerName(at), filters, kernelSize: 1, useBias: false, memoryEfficient, kernelInit: arch.kernelInit, pool: !dropout,
  }).apply(x) as tf.SymbolicTensor;
  if (!dropout) return y;
  y = new MaskDropout({ name: layerName(at, 'drop'), rate: arch.dropRate }).apply(y) as tf.SymbolicTensor;
  return tf.layers.averagePooling2d({ name: layerName(at, 'pool'), poolSize: 2, strides: 2 }).apply(y) as tf.SymbolicTensor;
}

export function buildDenseNet(arch: DenseNetArch, options: BuildOptions): tf.LayersModel {
  checkInputShape(options.name, options.inputShape, { min: minimumInputSide(arch) });
  const input = tf.input({ shape: options.inputShape, name: INPUT_LAYER });
  let x = stem(input, arch);
  arch.blockLayers.forEach((layers, i) => {
    const b = i + 1;
    x = denseBlock(x, {
      name: layerName(stages.block(b)),
      numLayers: layers,
      growthRate: arch.growthRate,
      bottleneckWidth: arch.bottleneckFactor * arch.growthRate,
      useBias: false,
      dropRate: arch.dropRate,
      dropoutPlacement: arch.dropoutPlacement,
      memoryEfficient: options.memoryEfficient,
      kernelInit: arch.kernelInit,
      output: 'all',
    });
    if (b < arch.blockLayers.length) x = transition(x, b, arch, options.memoryEfficient);
  });
  x = new NormReluPool({ name: layerName(stages.final, 'norm'), ...BATCH_NORM_DEFAULTS }).apply(x) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ name: CLASSIFIER, units: options.numClasses }).apply(x) as tf.SymbolicTensor;
  return tf.model({ name: options.name, inputs: input, outputs: logits });
}
