// A dense block as one tfjs layer: layer l computes BN-ReLU-Conv [-> BN-ReLU-Conv3x3]
// [-> dropout] on the concatenation of the block input and every earlier layer's new
// maps. The whole block is one tf.customGrad op with a hand-written backward, because
// tfjs keeps every gradient tensor of a tape until the backward pass ends: per-layer
// ops would keep O(L^2) gradient pieces alive. Here the backward walks the layers in
// reverse with one running gradient per feature map, freeing as it goes.
//
// Naive mode keeps each layer's concatenation, BN-ReLU outputs and bottleneck output
// for the backward pass; memory-efficient mode keeps only the block input, the new maps
// and per-channel batch statistics, and recomputes the rest ("shared-buffer
// recomputation", Pleiss et al. 2017). Where the backend has the fused kernels,
// efficient mode never builds a concatenation at all: BN-ReLU reads the feature maps
// in place, and its backward writes straight into their running gradients.
//
// A feature map's batch moments are the same in every layer that reads it, so each
// map's are computed once and a layer's first BatchNorm assembles its own from them.
import * as tf from '../tf';
import {
  ChannelStats, Moments, UnitWeights, batchMoments, bnRelu, channelStats, concatChannels, conv, unitBackward, unitForward,
  unitWeightList,
} from '../core/bn-relu-conv';
import { dropoutMask } from '../core/dropout-mask';
import type { DropoutPlacement } from './dropout';
import { denseUnit } from './layer-names';
import { KernelInit } from './initializers';
import {
  BATCH_NORM_DEFAULTS, InferenceStats, UnitVariables, addUnitVariables, inferenceMoments, readUnit, updateMovingStats,
} from './unit-variables';

export interface DenseBlockArgs {
  name?: string;
  numLayers: number;
  growthRate: number;
  /** Channels of the 1x1 bottleneck conv (4k in DenseNet-B); 0 means none. */
  bottleneckWidth: number;
  /** Convolutions carry a bias (FC-DenseNet) or not (DenseNet). */
  useBias: boolean;
  dropRate: number;
  /** After each layer's last conv (default) or after every conv (the DenseNet paper's). */
  dropoutPlacement?: DropoutPlacement;
  memoryEfficient: boolean;
  /** 'all': concat(input, new maps) (DenseNet); 'new': the new maps only (FC-DenseNet's upsampling path). */
  output: 'all' | 'new';
  epsilon?: number;
  /** Keras-style: moving = momentum * moving + (1 - momentum) * batch (torch's momentum 0.1). */
  momentum?: number;
  /** Default he-normal. */
  kernelInit?: KernelInit;
  /** BatchNorm statistics outside training; default 'running'. */
  inferenceStats?: InferenceStats;
}

/** What the forward pass leaves for the backward pass of one dense layer. */
interface LayerRecord {
  stats: ChannelStats[];
  /** The dropout mask after each unit's conv, where there is one. */
  masks: Array<tf.Tensor | undefined>;
  /** Naive mode only: inputs of each unit (the concatenation first) and the BN-ReLU outputs. */
  unitInputs?: tf.Tensor4D[];
  activations?: tf.Tensor4D[];
}

type Shape = Array<number | null>;

export class DenseBlock extends tf.layers.Layer {
  static className = 'DenseNetDenseBlock';
  readonly numLayers: number;
  readonly growthRate: number;
  readonly bottleneckWidth: number;
  readonly useBias: boolean;
  readonly dropRate: number;
  readonly dropoutPlacement: DropoutPlacement;
  readonly outputMode: 'all' | 'new';
  readonly epsilon: number;
  readonly momentum: number;
  readonly kernelInit: KernelInit;
  readonly inferenceStats: InferenceStats;
  memoryEfficient: boolean;
  /** units[l][u]: unit u (0: norm1/conv1, 1: norm2/conv2) of layer l. */
  private units: UnitVariables[][] = [];

  constructor(args: DenseBlockArgs) {
    super({ name: args.name });
    this.numLayers = args.numLayers;
    this.growthRate = args.growthRate;
    this.bottleneckWidth = args.bottleneckWidth;
    this.useBias = args.useBias;
    this.dropRate = args.dropRate;
    this.dropoutPlacement = args.dropoutPlacement ?? 'last-conv';
    this.memoryEfficient = args.memoryEfficient;
    this.outputMode = args.output;
    this.epsilon = args.epsilon ?? BATCH_NORM_DEFAULTS.epsilon;
    this.momentum = args.momentum ?? BATCH_NORM_DEFAULTS.momentum;
    this.kernelInit = args.kernelInit ?? 'he-normal';
    this.inferenceStats = args.inferenceStats ?? 'running';
  }

  get inputChannels(): number {
    return this.units[0][0].gamma.shape[0] as number;
  }

  build(inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const c0 = shape[3] as number;
    this.units = [];
    for (let l = 1; l <= this.numLayers; l++) {
      const channels = c0 + (l - 1) * this.growthRate;
      const unit = (i: 1 | 2, inChannels: number, kernelSize: number, filters: number) => addUnitVariables(this, {
        ...denseUnit(l, i), channels: inChannels, kernelSize, filters, useBias: this.useBias, kernelInit: this.kernelInit,
      });
      this.units.push(this.bottleneckWidth > 0
        ? [unit(1, channels, 1, this.bottleneckWidth), unit(2, this.bottleneckWidth, 3, this.growthRate)]
        : [unit(1, channels, 3, this.growthRate)]);
    }
    this.built = true;
  }

  computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const added = this.numLayers * this.growthRate;
    return [s[0], s[1], s[2], this.outputMode === 'all' ? (s[3] as number) + added : added];
  }

  call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return kwargs.training ? this.trainingForward(x) : this.inferenceForward(x);
  }

  /** Whether unit `i` of a layer of `units` is followed by dropout in training. */
  private dropsAfter(i: number, units: number): boolean {
    return this.dropRate > 0 && (i === units - 1 || this.dropoutPlacement === 'every-conv');
  }

  private assemble(x: tf.Tensor4D, created: tf.Tensor4D[]): tf.Tensor4D {
    return this.outputMode === 'all' ? tf.concat([x, ...created], 3) : concatChannels(created);
  }

  private inferenceForward(x: tf.Tensor4D): tf.Tensor4D {
    // BN-ReLU on pieces has no registered gradient: under a gradient tape (input gradients,
    // saliency) the layer input is concatenated, and tfjs differentiates the whole-x kernel.
    const inPlace = !tf.engine().isTapeOn();
    return tf.tidy(() => {
      const features = [x];
      for (const layer of this.units) {
        let h: tf.Tensor4D | tf.Tensor4D[] = inPlace ? features.slice() : concatChannels(features);
        for (const u of layer) {
          const { mean, variance } = inferenceMoments(u, h, this.inferenceStats);
          const w = readUnit(u);
          h = conv(bnRelu(h, w.bn, channelStats(mean, variance, this.epsilon)), w.conv);
        }
        features.push(h as tf.Tensor4D); // a conv output: every layer has at least one unit
      }
      return this.assemble(x, features.slice(1));
    });
  }

  /**
   * One dense layer in training mode, given its input feature maps and their batch moments;
   * updates the moving statistics (only ever called in the forward pass).
   */
  private layerForward(features: tf.Tensor4D[], moments: Moments[], layer: UnitVariables[], weights: UnitWeights[]):
    { out: tf.Tensor4D; record: LayerRecord } {
    const naive = !this.memoryEfficient;
    const record: LayerRecord = { stats: [], masks: [], unitInputs: naive ? [] : undefined, activations: naive ? [] : undefined };
    let h: tf.Tensor4D | tf.Tensor4D[] = naive ? concatChannels(features) : features;
    layer.forEach((u, i) => {
      const unit = i === 0
        ? unitForward(h, weights[i], this.epsilon, joinMoments(moments))
        : unitForward(h as tf.Tensor4D, weights[i], this.epsilon);
      const { r, stats, mean, variance } = unit;
      updateMovingStats(u, mean, variance, this.momentum);
      record.stats.push(stats);
      const mask = this.dropsAfter(i, layer.length) ? dropoutMask(unit.out.shape, this.dropRate) : undefined;
      record.masks.push(mask);
      const out = mask ? applyMask(unit.out, mask) : unit.out;
      if (naive) {
        record.unitInputs!.push(h as tf.Tensor4D);
        record.activations!.push(r);
      } else {
        // Freed at once, not at the end of the block: this is where the memory goes.
        tf.dispose(h === features ? r : [h as tf.Tensor4D, r]);
      }
      h = out;
    });
    return { out: h as tf.Tensor4D, record };
  }

  private trainingForward(x: tf.Tensor4D): tf.Tensor4D {
    const weights = this.units.map((layer) => layer.map(readUnit));
    const flatWeights = weights.flat().flatMap(unitWeightList);

    const op = tf.customGrad((...args: unknown[]) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const input = args[0] as tf.Tensor4D;
      const created: tf.Tensor4D[] = [];
      const records: LayerRecord[] = [];
      const value = tf.tidy(() => {
        const moments = [batchMoments(input)];
        for (let l = 0; l < this.units.length; l++) {
          const { out, record } = this.layerForward([input, ...created], moments, this.units[l], weights[l]);
          created.push(tf.keep(out));
          moments.push(batchMoments(out));
          keepRecord(record);
          records.push(record);
        }
        return this.assemble(input, created);
      });
      const savedRecords = records.flatMap(recordTensors);
      save([input, ...created, ...savedRecords]);
      tf.dispose([...created, ...savedRecords]);
      const layout = records.map((r) => recordTensors(r).length);
      return { value, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => this.backward(dy as tf.Tensor4D, saved, weights, layout) };
    });
    return op(x, ...flatWeights) as tf.Tensor4D;
  }

  private backward(dy: tf.Tensor4D, saved: tf.Tensor[], weights: UnitWeights[][], layout: number[]): tf.Tensor[] {
    const L = this.units.length;
    const input = saved[0] as tf.Tensor4D;
    const created = saved.slice(1, 1 + L) as tf.Tensor4D[];
    let at = 1 + L;
    const records = layout.map((n, l) => {
      const r = this.unpackRecord(saved.slice(at, at + n), weights[l].length);
      at += n;
      return r;
    });
    const k = this.growthRate;
    // Running gradient of every feature map of the block: input first, then each layer's new maps.
    const sizes = this.outputMode === 'all' ? [input.shape[3], ...created.map(() => k)] : created.map(() => k);
    const pieces = tf.split(dy, sizes, 3) as tf.Tensor4D[];
    // tfjs would hold the incoming gradient until the whole backward pass ends; nothing reads it after this.
    dy.dispose();
    const grads: Array<tf.Tensor4D | null> = this.outputMode === 'all' ? pieces : [null, ...pieces];
    const weightGrads: tf.Tensor[][] = new Array(L);

    for (let l = L - 1; l >= 0; l--) {
      const dOut = grads[l + 1]!;
      const result = tf.tidy(() => {
        const rec = records[l];
        const features = [input, ...created.slice(0, l)];
        const { ins, acts } = rec.unitInputs
          ? { ins: rec.unitInputs, acts: rec.activations! }
          : recompute(features, weights[l], rec.stats, rec.masks);
        // The first unit's input gradient lands in the feature maps' running gradients.
        // Nothing but this layer reads the running gradients it adds to: it may give up each as it goes.
        const target = { splits: features.map((f) => f.shape[3]), accumulators: grads.slice(0, l + 1), consume: true };
        // d: the gradient of unit i's output, before its dropout.
        let d = dOut;
        const unitGrads: tf.Tensor[][] = [];
        let accumulated: tf.Tensor4D[] = [];
        for (let i = weights[l].length - 1; i >= 0; i--) {
          const mask = rec.masks[i];
          if (mask) d = applyMask(d, mask, d !== dOut);
          const x = ins[i] ?? features;
          const act = acts[i] ?? bnRelu(x, weights[l][i].bn, rec.stats[i]);
          const u = unitBackward(x, act, weights[l][i], rec.stats[i], d, {
            releaseActivation: true, releaseGradient: d !== dOut, target: i === 0 ? target : undefined,
          });
          if (d !== dOut) d.dispose();
          ins[i]?.dispose();
          unitGrads.unshift(u.weightGrads);
          if (i === 0) accumulated = u.dxs;
          else d = u.dxs[0];
        }
        return { accumulated, unitGrads: unitGrads.flat() };
      });
      // Free what this layer no longer needs: its incoming gradient and the superseded sums
      // (its unit inputs and activations went inside the loop).
      tf.dispose([dOut, ...grads.slice(0, l + 1).filter((g): g is tf.Tensor4D => g !== null)]);
      grads[l + 1] = null;
      result.accumulated.forEach((g, j) => (grads[j] = g as tf.Tensor4D));
      weightGrads[l] = result.unitGrads;
    }
    // Likewise the saved tensors: nothing reads them after this op.
    tf.dispose(saved);
    return [grads[0]!, ...weightGrads.flat()];
  }

  private unpackRecord(tensors: tf.Tensor[], units: number): LayerRecord {
    const stats: ChannelStats[] = [];
    for (let i = 0; i < units; i++) stats.push({ mean: tensors[2 * i] as tf.Tensor1D, invStd: tensors[2 * i + 1] as tf.Tensor1D });
    let at = 2 * units;
    const masks = stats.map((_, i) => (this.dropsAfter(i, units) ? tensors[at++] : undefined));
    if (this.memoryEfficient) return { stats, masks };
    return {
      stats, masks,
      unitInputs: tensors.slice(at, at + units) as tf.Tensor4D[],
      activations: tensors.slice(at + units, at + 2 * units) as tf.Tensor4D[],
    };
  }

  getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numLayers: this.numLayers,
      growthRate: this.growthRate,
      bottleneckWidth: this.bottleneckWidth,
      useBias: this.useBias,
      dropRate: this.dropRate,
      dropoutPlacement: this.dropoutPlacement,
      memoryEfficient: this.memoryEfficient,
      output: this.outputMode,
      kernelInit: this.kernelInit,
      inferenceStats: this.inferenceStats,
      epsilon: this.epsilon,
      momentum: this.momentum,
    };
  }
}

function recordTensors(r: LayerRecord): tf.Tensor[] {
  const masks = r.masks.filter((m): m is tf.Tensor => m !== undefined);
  return [...r.stats.flatMap((s) => [s.mean, s.invStd]), ...masks, ...(r.unitInputs ?? []), ...(r.activations ?? [])];
}

/** x * mask, disposing x unless it is still needed (`disposeInput` false). */
function applyMask(x: tf.Tensor4D, mask: tf.Tensor, disposeInput = true): tf.Tensor4D {
  const masked = tf.mul(x, mask) as tf.Tensor4D;
  if (disposeInput) x.dispose();
  return masked;
}

function keepRecord(r: LayerRecord): void {
  recordTensors(r).forEach((t) => tf.keep(t));
}

/** The moments of a layer's input, from those of its feature maps (each computed once). */
function joinMoments(moments: Moments[]): Moments {
  return { mean: tf.concat(moments.map((m) => m.mean)), variance: tf.concat(moments.map((m) => m.variance)) };
}

/**
 * Rebuilds a layer's unit inputs and BN-ReLU outputs from its feature maps and saved batch
 * statistics (and dropout masks). The first unit's input stays the pieces (ins[0] is null): the kernels read them in place.
 */
function recompute(features: tf.Tensor4D[], weights: UnitWeights[], stats: ChannelStats[], masks: Array<tf.Tensor | undefined>):
  { ins: Array<tf.Tensor4D | null>; acts: Array<tf.Tensor4D | null> } {
  const ins: Array<tf.Tensor4D | null> = [null];
  const acts: Array<tf.Tensor4D | null> = [];
  weights.forEach((w, i) => {
    const act = bnRelu(ins[i] ?? features, w.bn, stats[i]);
    if (i + 1 < weights.length) {
      const out = conv(act, w.conv);
      ins.push(masks[i] ? applyMask(out, masks[i]!) : out);
    }
    // The first unit's BN-ReLU output spans every feature map: made again when its backward comes,
    // rather than held through the later units' backward.
    if (i === 0 && weights.length > 1) {
      act.dispose();
      acts.push(null);
    } else {
      acts.push(act);
    }
  });
  return { ins, acts };
}

tf.serialization.registerClass(DenseBlock);
