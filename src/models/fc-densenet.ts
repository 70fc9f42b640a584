// Builder for FC-DenseNet / "Tiramisu" (Jegou et al. 2017): a dense-block encoder with
// max-pooling transitions, a bottleneck block, and a decoder whose transposed convs
// upsample only the previous block's new feature maps before joining the skip. Any input size
// works, as in the authors' code: pooling floors, and each transposed conv's output (2n + 1) is
// cropped to its skip's size before they are joined (at even sizes, what a 'same' conv gives).
import * as tf from '../tf';
import { MaskDropout } from '../layers/dropout';
import { PreActivationConv } from '../layers/pre-activation-conv';
import { FIRST_CONV, INPUT_LAYER, SEGMENTATION_HEAD, layerName, stages } from '../layers/layer-names';
import { BuildOptions, DenseBlockSpec, channels, checkInputShape, concat, denseBlock } from './common';
import { KernelInit, tfjsKernelInitializer } from '../layers/initializers';

export interface FCDenseNetArch {
  family: 'fc-densenet';
  growthRate: number;
  /** Layers per encoder block; the decoder mirrors it. */
  downLayers: number[];
  bottleneckLayers: number;
  stemChannels: number;
  dropRate: number;
  /** Initialisation of every conv kernel (the authors': He-uniform). */
  kernelInit: KernelInit;
}

/** Every pooling halves the size (rounding down): the smallest side that survives them all. */
function minimumInputSide(arch: FCDenseNetArch): number {
  return 2 ** arch.downLayers.length;
}

function conv(name: string, filters: number, kernelSize: number, init: KernelInit): tf.layers.Layer {
  return tf.layers.conv2d({ name, filters, kernelSize, padding: 'same', useBias: true, kernelInitializer: tfjsKernelInitializer(init) });
}

function transitionDown(x: tf.SymbolicTensor, i: number, arch: FCDenseNetArch, { memoryEfficient, inferenceStats }: BuildOptions): tf.SymbolicTensor {
  const at = stages.transitionDown(i);
  let y = new PreActivationConv({ name: layerName(at), filters: channels(x), kernelSize: 1, useBias: true, memoryEfficient, kernelInit: arch.kernelInit, inferenceStats }).apply(x) as tf.SymbolicTensor;
  if (arch.dropRate > 0) y = new MaskDropout({ name: layerName(at, 'drop'), rate: arch.dropRate }).apply(y) as tf.SymbolicTensor;
  return tf.layers.maxPooling2d({ name: layerName(at, 'pool'), poolSize: 2, strides: 2 }).apply(y) as tf.SymbolicTensor;
}

function transitionUp(x: tf.SymbolicTensor, skip: tf.SymbolicTensor, i: number, init: KernelInit): tf.SymbolicTensor {
  const at = stages.transitionUp(i);
  let up = tf.layers
    .conv2dTranspose({ name: layerName(at, 'conv'), filters: channels(x), kernelSize: 3, strides: 2, padding: 'valid', useBias: true, kernelInitializer: tfjsKernelInitializer(init) })
    .apply(x) as tf.SymbolicTensor;
  const [extraH, extraW] = [1, 2].map((axis) => (up.shape[axis] as number) - (skip.shape[axis] as number));
  if (extraH > 0 || extraW > 0) {
    // The authors' centre crop: (extra // 2) rows before, the rest after; extra is 0 or 1 here.
    const cropping: [[number, number], [number, number]] = [[extraH >> 1, extraH - (extraH >> 1)], [extraW >> 1, extraW - (extraW >> 1)]];
    up = tf.layers.cropping2D({ name: layerName(at, 'crop'), cropping }).apply(up) as tf.SymbolicTensor;
  }
  return concat(layerName(at, 'concat'), [up, skip]);
}

export function buildFCDenseNet(arch: FCDenseNetArch, options: BuildOptions): tf.LayersModel {
  checkInputShape(options.name, options.inputShape, { min: minimumInputSide(arch) });
  const block = (name: string, numLayers: number, output: 'all' | 'new') => denseBlockSpec(arch, options, name, numLayers, output);
  const input = tf.input({ shape: options.inputShape, name: INPUT_LAYER });
  let x = conv(FIRST_CONV, arch.stemChannels, 3, arch.kernelInit).apply(input) as tf.SymbolicTensor;

  const skips: tf.SymbolicTensor[] = [];
  arch.downLayers.forEach((layers, i) => {
    const stack = denseBlock(x, block(layerName(stages.down(i + 1)), layers, 'all'));
    skips.push(stack);
    x = transitionDown(stack, i + 1, arch, options);
  });

  // Upsampling sees only the new maps of the block below; the last block's full stack feeds the classifier.
  let newMaps = denseBlock(x, block(layerName(stages.bottleneck), arch.bottleneckLayers, 'new'));
  const levels = arch.downLayers.length;
  [...arch.downLayers].reverse().forEach((layers, i) => {
    const joined = transitionUp(newMaps, skips[levels - 1 - i], i + 1, arch.kernelInit);
    newMaps = denseBlock(joined, block(layerName(stages.up(i + 1)), layers, i + 1 === levels ? 'all' : 'new'));
  });
  const logits = conv(SEGMENTATION_HEAD, options.numClasses, 1, arch.kernelInit).apply(newMaps) as tf.SymbolicTensor;
  return tf.model({ name: options.name, inputs: input, outputs: logits });
}

function denseBlockSpec(arch: FCDenseNetArch, options: BuildOptions, name: string, numLayers: number, output: 'all' | 'new'): DenseBlockSpec {
  return {
    name, numLayers, output, growthRate: arch.growthRate, bottleneckWidth: 0, useBias: true, dropRate: arch.dropRate,
    memoryEfficient: options.memoryEfficient, kernelInit: arch.kernelInit, inferenceStats: options.inferenceStats,
  };
}
