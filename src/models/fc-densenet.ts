// Builder for FC-DenseNet / "Tiramisu" (Jegou et al. 2017): a dense-block encoder with
// max-pooling transitions, a bottleneck block, and a decoder whose transposed convs
// upsample only the previous block's new feature maps before joining the skip.
import * as tf from '../tf';
import { BuildOptions, batchNorm, channels, checkInputShape, concat, denseBlock, relu } from './common';

export interface FCDenseNetArch {
  family: 'fc-densenet';
  growthRate: number;
  /** Layers per encoder block; the decoder mirrors it. */
  downLayers: number[];
  bottleneckLayers: number;
  stemChannels: number;
  dropRate: number;
}

export function inputMultiple(arch: FCDenseNetArch): number {
  return 2 ** arch.downLayers.length;
}

function conv(name: string, filters: number, kernelSize: number): tf.layers.Layer {
  return tf.layers.conv2d({ name, filters, kernelSize, padding: 'same', useBias: true, kernelInitializer: 'heUniform' });
}

function transitionDown(x: tf.SymbolicTensor, i: number, dropRate: number): tf.SymbolicTensor {
  const p = `transition_down${i}`;
  let y = batchNorm(`${p}_norm`).apply(x) as tf.SymbolicTensor;
  y = relu(`${p}_relu`).apply(y) as tf.SymbolicTensor;
  y = conv(`${p}_conv`, channels(x), 1).apply(y) as tf.SymbolicTensor;
  if (dropRate > 0) y = tf.layers.dropout({ name: `${p}_drop`, rate: dropRate }).apply(y) as tf.SymbolicTensor;
  return tf.layers.maxPooling2d({ name: `${p}_pool`, poolSize: 2, strides: 2 }).apply(y) as tf.SymbolicTensor;
}

function transitionUp(newMaps: tf.SymbolicTensor[], skip: tf.SymbolicTensor, i: number): tf.SymbolicTensor {
  const x = concat(`transition_up${i}_input`, newMaps);
  const up = tf.layers
    .conv2dTranspose({ name: `transition_up${i}_conv`, filters: channels(x), kernelSize: 3, strides: 2, padding: 'same', useBias: true, kernelInitializer: 'heUniform' })
    .apply(x) as tf.SymbolicTensor;
  return concat(`transition_up${i}_concat`, [up, skip]);
}

export function buildFCDenseNet(arch: FCDenseNetArch, options: BuildOptions): tf.LayersModel {
  checkInputShape(options.name, options.inputShape, { multipleOf: inputMultiple(arch) });
  const block = (prefix: string, layers: number) => ({
    prefix, layers, growthRate: arch.growthRate, bottleneckWidth: 0, useBias: true, dropRate: arch.dropRate,
    memoryEfficient: options.memoryEfficient,
  });
  const input = tf.input({ shape: options.inputShape, name: 'image' });
  let x = conv('stem_conv', arch.stemChannels, 3).apply(input) as tf.SymbolicTensor;

  const skips: tf.SymbolicTensor[] = [];
  arch.downLayers.forEach((layers, i) => {
    const created = denseBlock([x], block(`down${i + 1}`, layers));
    const stack = concat(`down${i + 1}_concat`, [x, ...created]);
    skips.push(stack);
    x = transitionDown(stack, i + 1, arch.dropRate);
  });

  let newMaps = denseBlock([x], block('bottleneck', arch.bottleneckLayers));
  let joined = x;
  [...arch.downLayers].reverse().forEach((layers, i) => {
    joined = transitionUp(newMaps, skips[skips.length - 1 - i], i + 1);
    newMaps = denseBlock([joined], block(`up${i + 1}`, layers));
  });
  // Only the last block's full stack (not just its new maps) feeds the classifier.
  const stack = concat(`up${arch.downLayers.length}_concat`, [joined, ...newMaps]);
  const logits = conv('head_conv', options.numClasses, 1).apply(stack) as tf.SymbolicTensor;
  return tf.model({ name: options.name, inputs: input, outputs: logits });
}
