// One dense layer of a DenseNet or FC-DenseNet: concat(inputs) -> BN-ReLU-Conv
// [-> BN-ReLU-Conv3x3] [-> dropout], producing the layer's `growthRate` new maps.
// It takes the list of all earlier feature maps of its block, so the block's growing
// concatenation is never a tensor of its own between layers.
//
// Training runs through tf.customGrad with a hand-written backward. Naive mode keeps
// the concatenation, BN-ReLU outputs and bottleneck output for the backward pass;
// memory-efficient mode keeps only its inputs, weights and per-channel batch
// statistics, and recomputes the rest in the backward pass.
import * as tf from '../tf';
import {
  BatchNormWeights, ChannelStats, ConvWeights, batchMoments, bnRelu, bnReluBackward, channelStats, conv, convBackward,
} from '../core/bn-relu-conv';

export interface DenseLayerArgs {
  name?: string;
  growthRate: number;
  /** Channels of the 1x1 bottleneck conv (4k in DenseNet-B); 0 means no bottleneck. */
  bottleneckWidth: number;
  /** Convolutions carry a bias (FC-DenseNet) or not (DenseNet). */
  useBias: boolean;
  dropRate: number;
  memoryEfficient: boolean;
  epsilon?: number;
  /** Keras-style: moving = momentum * moving + (1 - momentum) * batch (torch's momentum 0.1). */
  momentum?: number;
}

interface Unit {
  prefix: string;
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
  kernel: tf.LayerVariable;
  bias?: tf.LayerVariable;
}

type Shape = Array<number | null>;

function asList<T>(x: T | T[]): T[] {
  return Array.isArray(x) ? x : [x];
}

function concatChannels(xs: tf.Tensor4D[]): tf.Tensor4D {
  return xs.length === 1 ? xs[0].clone() : tf.concat(xs, 3);
}

export class DenseLayer extends tf.layers.Layer {
  static className = 'DenseNetDenseLayer';
  readonly growthRate: number;
  readonly bottleneckWidth: number;
  readonly useBias: boolean;
  readonly dropRate: number;
  memoryEfficient: boolean;
  readonly epsilon: number;
  readonly momentum: number;
  private units: Unit[] = [];

  constructor(args: DenseLayerArgs) {
    super({ name: args.name });
    this.growthRate = args.growthRate;
    this.bottleneckWidth = args.bottleneckWidth;
    this.useBias = args.useBias;
    this.dropRate = args.dropRate;
    this.memoryEfficient = args.memoryEfficient;
    this.epsilon = args.epsilon ?? 1e-5;
    this.momentum = args.momentum ?? 0.9;
  }

  build(inputShape: Shape | Shape[]): void {
    const shapes = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as Shape[];
    const inChannels = shapes.reduce((sum, s) => sum + (s[3] as number), 0);
    if (this.bottleneckWidth > 0) {
      this.units = [
        this.addUnit('norm1', 'conv1', inChannels, 1, this.bottleneckWidth),
        this.addUnit('norm2', 'conv2', this.bottleneckWidth, 3, this.growthRate),
      ];
    } else {
      this.units = [this.addUnit('norm1', 'conv1', inChannels, 3, this.growthRate)];
    }
    this.built = true;
  }

  private addUnit(norm: string, convName: string, channels: number, size: number, filters: number): Unit {
    const weight = (name: string, shape: number[], initializer: ReturnType<typeof tf.initializers.ones>, trainable = true) =>
      this.addWeight(name, shape, 'float32', initializer, undefined, trainable);
    return {
      prefix: norm,
      gamma: weight(`${norm}/gamma`, [channels], tf.initializers.ones()),
      beta: weight(`${norm}/beta`, [channels], tf.initializers.zeros()),
      movingMean: weight(`${norm}/moving_mean`, [channels], tf.initializers.zeros(), false),
      movingVariance: weight(`${norm}/moving_variance`, [channels], tf.initializers.ones(), false),
      kernel: weight(`${convName}/kernel`, [size, size, channels, filters], tf.initializers.heNormal({})),
      bias: this.useBias ? weight(`${convName}/bias`, [filters], tf.initializers.zeros()) : undefined,
    };
  }

  computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const first = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    return [first[0], first[1], first[2], this.growthRate];
  }

  call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const xs = asList(inputs) as tf.Tensor4D[];
    return kwargs.training ? this.trainingForward(xs) : this.inferenceForward(xs);
  }

  private read(unit: Unit): { bn: BatchNormWeights; conv: ConvWeights } {
    return {
      bn: { gamma: unit.gamma.read() as tf.Tensor1D, beta: unit.beta.read() as tf.Tensor1D },
      conv: { kernel: unit.kernel.read() as tf.Tensor4D, bias: unit.bias?.read() as tf.Tensor1D | undefined },
    };
  }

  private inferenceForward(xs: tf.Tensor4D[]): tf.Tensor4D {
    return tf.tidy(() => {
      let h = concatChannels(xs);
      for (const unit of this.units) {
        const { bn, conv: w } = this.read(unit);
        const stats = channelStats(unit.movingMean.read() as tf.Tensor1D, unit.movingVariance.read() as tf.Tensor1D, this.epsilon);
        h = conv(bnRelu(h, bn, stats), w);
      }
      return h;
    });
  }

  private updateMovingStats(unit: Unit, mean: tf.Tensor1D, variance: tf.Tensor1D): void {
    const m = this.momentum;
    tf.tidy(() => {
      unit.movingMean.write(tf.add(tf.mul(unit.movingMean.read(), m), tf.mul(mean, 1 - m)));
      unit.movingVariance.write(tf.add(tf.mul(unit.movingVariance.read(), m), tf.mul(variance, 1 - m)));
    });
  }

  private trainingForward(xs: tf.Tensor4D[]): tf.Tensor4D {
    const weights = this.units.map((u) => this.read(u));
    const flatWeights = weights.flatMap(({ bn, conv: w }) => [bn.gamma, bn.beta, w.kernel, ...(w.bias ? [w.bias] : [])]);
    const numInputs = xs.length;
    const efficient = this.memoryEfficient;
    const layer = this;

    const run = tf.customGrad((...args: unknown[]) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const inputs = args.slice(0, numInputs) as tf.Tensor4D[];
      const forward = tf.tidy(() => {
        const x = concatChannels(inputs);
        const statsList: ChannelStats[] = [];
        const unitInputs: tf.Tensor4D[] = [x];
        const activations: tf.Tensor4D[] = [];
        let h = x;
        layer.units.forEach((unit, i) => {
          const { mean, variance } = batchMoments(h);
          layer.updateMovingStats(unit, mean, variance);
          const stats = channelStats(mean, variance, layer.epsilon);
          const r = bnRelu(h, weights[i].bn, stats);
          h = conv(r, weights[i].conv);
          statsList.push(stats);
          activations.push(r);
          if (i + 1 < layer.units.length) unitInputs.push(h);
        });
        const mask = layer.dropRate > 0 ? dropoutMask(h.shape, layer.dropRate) : undefined;
        const out = mask ? tf.mul(h, mask) : h;
        return { out, statsList, unitInputs, activations, mask } as unknown as tf.TensorContainer;
      }) as unknown as ForwardState;
      const { out, statsList, unitInputs, activations, mask } = forward;
      const kept = efficient ? [] : [...unitInputs, ...activations];
      save([...inputs, ...statsList.flatMap((s) => [s.mean, s.invStd]), ...(mask ? [mask] : []), ...kept]);
      if (efficient) tf.dispose([...unitInputs, ...activations]);

      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const savedInputs = saved.slice(0, numInputs) as tf.Tensor4D[];
        let at = numInputs;
        const stats: ChannelStats[] = layer.units.map(() => {
          const s = { mean: saved[at] as tf.Tensor1D, invStd: saved[at + 1] as tf.Tensor1D };
          at += 2;
          return s;
        });
        const savedMask = mask ? saved[at++] : undefined;
        let ins: tf.Tensor4D[];
        let acts: tf.Tensor4D[];
        if (efficient) {
          ({ ins, acts } = recompute(savedInputs, weights, stats));
        } else {
          ins = saved.slice(at, at + layer.units.length) as tf.Tensor4D[];
          acts = saved.slice(at + layer.units.length) as tf.Tensor4D[];
        }
        let d = (savedMask ? tf.mul(dy, savedMask) : dy) as tf.Tensor4D;
        const unitGrads: tf.Tensor[][] = [];
        for (let i = layer.units.length - 1; i >= 0; i--) {
          const c = convBackward(acts[i], weights[i].conv, d);
          const b = bnReluBackward(ins[i], acts[i], weights[i].bn, stats[i], c.dx);
          unitGrads.unshift([b.dGamma, b.dBeta, c.dKernel, ...(c.dBias ? [c.dBias] : [])]);
          d = b.dx;
        }
        const dInputs = numInputs === 1 ? [d] : tf.split(d, savedInputs.map((t) => t.shape[3]), 3);
        return [...dInputs, ...unitGrads.flat()];
      };
      return { value: out, gradFunc };
    });
    return run(...xs, ...flatWeights) as tf.Tensor4D;
  }

  getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      growthRate: this.growthRate,
      bottleneckWidth: this.bottleneckWidth,
      useBias: this.useBias,
      dropRate: this.dropRate,
      memoryEfficient: this.memoryEfficient,
      epsilon: this.epsilon,
      momentum: this.momentum,
    };
  }
}

interface ForwardState {
  out: tf.Tensor4D;
  statsList: ChannelStats[];
  unitInputs: tf.Tensor4D[];
  activations: tf.Tensor4D[];
  mask?: tf.Tensor;
}

function dropoutMask(shape: number[], rate: number): tf.Tensor {
  return tf.tidy(() => tf.div(tf.cast(tf.greaterEqual(tf.randomUniform(shape), rate), 'float32'), 1 - rate));
}

/** Rebuilds the unit inputs and BN-ReLU outputs from the layer's inputs and saved batch statistics. */
function recompute(
  inputs: tf.Tensor4D[],
  weights: Array<{ bn: BatchNormWeights; conv: ConvWeights }>,
  stats: ChannelStats[],
): { ins: tf.Tensor4D[]; acts: tf.Tensor4D[] } {
  const ins: tf.Tensor4D[] = [concatChannels(inputs)];
  const acts: tf.Tensor4D[] = [];
  weights.forEach((w, i) => {
    acts.push(bnRelu(ins[i], w.bn, stats[i]));
    if (i + 1 < weights.length) ins.push(conv(acts[i], w.conv));
  });
  return { ins, acts };
}

tf.serialization.registerClass(DenseLayer);
