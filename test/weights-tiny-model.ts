// Test helper (no tests of its own): a small DenseNet in tfjs that follows the zoo's weight-naming
// convention and torchvision's architecture (inference only), so the weights code can be tested
// without the zoo's builders. One custom layer per dense layer, as the zoo does.
import * as tf from '../src/tf';

const EPS = 1e-5;

interface DenseLayerArgs {
  name: string;
  growthRate: number;
  bnSize: number;
  bottleneck: boolean;
}

/** BN(eval)-ReLU-Conv1x1(bn_size*k)-BN-ReLU-Conv3x3(k); weights `norm1/*`, `conv1/kernel`, ... */
export class TinyDenseLayer extends tf.layers.Layer {
  static className = 'WeightsTestTinyDenseLayer';
  private readonly growthRate: number;
  private readonly bnSize: number;
  private readonly bottleneck: boolean;
  private parts: Record<string, tf.LayerVariable> = {};

  constructor(args: DenseLayerArgs) {
    super({ name: args.name });
    this.growthRate = args.growthRate;
    this.bnSize = args.bnSize;
    this.bottleneck = args.bottleneck;
  }

  private addNorm(prefix: string, channels: number): void {
    const add = (n: string, init: ReturnType<typeof tf.initializers.ones>, trainable: boolean) => {
      this.parts[`${prefix}/${n}`] = this.addWeight(`${prefix}/${n}`, [channels], 'float32', init, undefined, trainable);
    };
    add('gamma', tf.initializers.ones(), true);
    add('beta', tf.initializers.zeros(), true);
    add('moving_mean', tf.initializers.zeros(), false);
    add('moving_variance', tf.initializers.ones(), false);
  }

  private addConv(name: string, size: number, cin: number, cout: number): void {
    this.parts[`${name}/kernel`] = this.addWeight(`${name}/kernel`, [size, size, cin, cout], 'float32', tf.initializers.heNormal({}));
  }

  build(inputShape: tf.Shape | tf.Shape[]): void {
    const cin = (inputShape as number[])[3];
    const mid = this.bnSize * this.growthRate;
    this.addNorm('norm1', cin);
    if (this.bottleneck) {
      this.addConv('conv1', 1, cin, mid);
      this.addNorm('norm2', mid);
      this.addConv('conv2', 3, mid, this.growthRate);
    } else {
      this.addConv('conv1', 3, cin, this.growthRate);
    }
    this.built = true;
  }

  computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = inputShape as number[];
    return [s[0], s[1], s[2], this.growthRate];
  }

  private bnRelu(x: tf.Tensor4D, prefix: string): tf.Tensor4D {
    const p = (n: string) => this.parts[`${prefix}/${n}`].read() as tf.Tensor1D;
    return tf.relu(tf.batchNorm(x, p('moving_mean'), p('moving_variance'), p('beta'), p('gamma'), EPS));
  }

  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const k = (n: string) => this.parts[`${n}/kernel`].read() as tf.Tensor4D;
      if (!this.bottleneck) return tf.conv2d(this.bnRelu(x, 'norm1'), k('conv1'), 1, 'same');
      const h = tf.conv2d(this.bnRelu(x, 'norm1'), k('conv1'), 1, 'valid');
      return tf.conv2d(this.bnRelu(h, 'norm2'), k('conv2'), 1, 'same');
    });
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), growthRate: this.growthRate, bnSize: this.bnSize, bottleneck: this.bottleneck };
  }
}
tf.serialization.registerClass(TinyDenseLayer);

export interface TinyDenseNetConfig {
  growthRate: number;
  blockConfig: number[];
  numInitFeatures: number;
  bnSize: number;
  numClasses: number;
  inputShape: [number, number, number];
  bottleneck?: boolean;
}

function bnLayer(name: string): tf.layers.Layer {
  return tf.layers.batchNormalization({ name, epsilon: EPS, axis: -1 });
}

/** torchvision's DenseNet (ImageNet stem, eval mode) with the zoo's layer names. */
export function tinyDenseNet(cfg: TinyDenseNetConfig): tf.LayersModel {
  const input = tf.input({ shape: cfg.inputShape });
  // torchvision pads symmetrically (3 for the 7x7/2 conv, 1 for the 3x3/2 max pool);
  // tfjs 'same' would pad bottom/right only, so pad explicitly.
  let x = tf.layers.zeroPadding2d({ padding: 3 }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: 'stem_conv', filters: cfg.numInitFeatures, kernelSize: 7, strides: 2, useBias: false }).apply(x) as tf.SymbolicTensor;
  x = bnLayer('stem_norm').apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU().apply(x) as tf.SymbolicTensor;
  x = tf.layers.zeroPadding2d({ padding: 1 }).apply(x) as tf.SymbolicTensor; // after ReLU, so 0 never wins a max wrongly
  x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2 }).apply(x) as tf.SymbolicTensor;
  let channels = cfg.numInitFeatures;
  cfg.blockConfig.forEach((layers, b) => {
    for (let l = 1; l <= layers; l++) {
      const layer = new TinyDenseLayer({
        name: `block${b + 1}_layer${l}`, growthRate: cfg.growthRate, bnSize: cfg.bnSize, bottleneck: cfg.bottleneck ?? true,
      });
      const y = layer.apply(x) as tf.SymbolicTensor;
      x = tf.layers.concatenate({ axis: -1 }).apply([x, y]) as tf.SymbolicTensor;
      channels += cfg.growthRate;
    }
    if (b < cfg.blockConfig.length - 1) {
      const t = b + 1;
      x = bnLayer(`transition${t}_norm`).apply(x) as tf.SymbolicTensor;
      x = tf.layers.reLU().apply(x) as tf.SymbolicTensor;
      channels = Math.floor(channels / 2);
      x = tf.layers.conv2d({ name: `transition${t}_conv`, filters: channels, kernelSize: 1, useBias: false }).apply(x) as tf.SymbolicTensor;
      x = tf.layers.averagePooling2d({ poolSize: 2, strides: 2 }).apply(x) as tf.SymbolicTensor;
    }
  });
  x = bnLayer('final_norm').apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU().apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ name: 'classifier', units: cfg.numClasses }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: 'tiny_densenet' });
}

/** Deterministic pseudo-random values (tests must not depend on Math.random). */
export function seededValues(count: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = lo + (hi - lo) * (s / 0x100000000);
  }
  return out;
}

/** Gives every weight distinct values (variances kept positive) so round trips prove something. */
export function randomiseWeights(model: tf.LayersModel, seed = 1): void {
  model.weights.forEach((w, i) => {
    const n = (w.shape as number[]).reduce((a, b) => a * b, 1);
    const positive = /moving_variance/.test(w.originalName);
    const t = tf.tensor(seededValues(n, seed * 7919 + i, positive ? 0.5 : -0.5, positive ? 1.5 : 0.5), w.shape as number[]);
    w.write(t);
    t.dispose();
  });
}
