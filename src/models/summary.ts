// A paper-style table of a built model: per stem, dense block, transition and head,
// the channels in and out, dense layers, output resolution, parameters and FLOPs
// (multiply-adds), read from the model's own layers.
import * as tf from '../tf';
import { DenseBlock } from '../layers/dense-block';
import { stageName, stageOfLayer } from '../layers/layer-names';
import { PreActivationConv } from '../layers/pre-activation-conv';

export interface StageSummary {
  stage: string;
  /** Dense layers in a block; 0 elsewhere. */
  layers: number;
  channelsIn: number;
  /** For a dense block: its input plus every layer's new maps (the seed's "m"). */
  channelsOut: number;
  resolution: [number, number];
  params: number;
  flops: number;
}

export interface ModelSummary {
  name: string;
  inputShape: number[];
  stages: StageSummary[];
  totalParams: number;
  totalFlops: number;
}

function shapeOf(t: tf.SymbolicTensor | tf.SymbolicTensor[]): number[] {
  return (Array.isArray(t) ? t[0] : t).shape as number[];
}

function trainableParams(layer: tf.layers.Layer): number {
  return layer.trainableWeights.reduce((s, w) => s + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
}

/** Multiply-adds of one forward pass of `layer` for a single image. */
function layerFlops(layer: tf.layers.Layer): number {
  const cls = layer.getClassName();
  const out = shapeOf(layer.output as tf.SymbolicTensor);
  const inp = shapeOf(layer.input as tf.SymbolicTensor);
  const kernels = layer.trainableWeights.filter((w) => w.originalName.endsWith('kernel'));
  const kernelSize = (w: tf.LayerVariable) => (w.shape as number[]).reduce((a, b) => a * b, 1);
  if (cls === 'Dense') return kernelSize(kernels[0]);
  if (cls === 'Conv2DTranspose') return inp[1] * inp[2] * kernelSize(kernels[0]);
  // Stride-1 convs inside custom layers and plain convs: every kernel applied at every output pixel.
  if (cls === 'Conv2D' || cls === DenseBlock.className || cls === PreActivationConv.className) {
    // A transition that pools before its conv computes a quarter of this; the table gives the architecture's count.
    const at = layer instanceof PreActivationConv && layer.pool ? inp : out;
    return at[1] * at[2] * kernels.reduce((s, w) => s + kernelSize(w), 0);
  }
  return 0;
}

export function summarize(model: tf.LayersModel): ModelSummary {
  const stages: StageSummary[] = [];
  for (const layer of model.layers) {
    const at = stageOfLayer(layer.name);
    if (!at) continue;
    const name = stageName(at);
    const out = shapeOf(layer.output as tf.SymbolicTensor);
    const inp = shapeOf(layer.input as tf.SymbolicTensor);
    let stage = stages.find((s) => s.stage === name);
    if (!stage) {
      stage = { stage: name, layers: 0, channelsIn: inp[inp.length - 1], channelsOut: 0, resolution: [1, 1], params: 0, flops: 0 };
      stages.push(stage);
    }
    if (layer instanceof DenseBlock) {
      stage.layers += layer.numLayers;
      stage.channelsOut = layer.inputChannels + layer.numLayers * layer.growthRate;
    } else {
      stage.channelsOut = out[out.length - 1];
    }
    stage.resolution = out.length === 4 ? [out[1], out[2]] : [1, 1];
    stage.params += trainableParams(layer);
    stage.flops += layerFlops(layer);
  }
  return {
    name: model.name,
    inputShape: (model.inputs[0].shape as number[]).slice(1),
    stages,
    totalParams: stages.reduce((s, x) => s + x.params, 0),
    totalFlops: stages.reduce((s, x) => s + x.flops, 0),
  };
}

/** Channel count after each dense block, in order (FC-DenseNet103: 112 ... 256). */
export function blockChannels(summary: ModelSummary): number[] {
  return summary.stages.filter((s) => s.layers > 0).map((s) => s.channelsOut);
}

export function formatSummary(s: ModelSummary): string {
  const rows = s.stages.map((x) => [
    x.stage, x.layers ? String(x.layers) : '', String(x.channelsIn), String(x.channelsOut), `${x.resolution[0]}x${x.resolution[1]}`,
    x.params.toLocaleString('en-US'), formatFlops(x.flops),
  ]);
  const header = ['stage', 'layers', 'ch in', 'ch out', 'output', 'params', 'MACs'];
  const total = ['total', '', '', '', '', s.totalParams.toLocaleString('en-US'), formatFlops(s.totalFlops)];
  const table = [header, ...rows, total];
  const widths = header.map((_, i) => Math.max(...table.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [`${s.name}, input ${s.inputShape.join('x')}`, line(header), ...rows.map(line), line(total)].join('\n');
}

function formatFlops(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  return `${(n / 1e3).toFixed(1)}K`;
}
