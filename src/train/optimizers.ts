// The two optimizers of the papers, written out so that their state (one slot tensor per weight)
// can be saved and restored exactly, and so that weight decay is explicit:
//
// - SGD with (Nesterov) momentum, no dampening, as torch.optim.SGD and the DenseNet code:
//     g = grad + wd * w;  v = momentum * v + g;  w -= lr * (g + momentum * v)   (Nesterov)
//                                                w -= lr * v                    (plain momentum)
// - RMSprop as Lasagne's (the Tiramisu code): a = rho * a + (1 - rho) * g^2;  w -= lr * g / sqrt(a + eps)
//
// Weight decay is L2 added to the gradient (coupled). Which weights it applies to is a choice
// of the recipe: 'all' trainable weights (the DenseNet LuaTorch code decays its whole flat
// parameter vector, BatchNorm scales and shifts included) or only conv/dense 'kernels' (Lasagne's
// regularizable parameters, which leave out biases and BatchNorm's gamma and beta).
import * as tf from '../tf';
import { baseName } from '../weights/mapping';

export const OPTIMIZER_NAMES = ['sgd', 'rmsprop'] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];
export type WeightDecayScope = 'all' | 'kernels';

export interface OptimizerConfig {
  optimizer: OptimizerName;
  /** SGD momentum (0 = plain SGD). */
  momentum: number;
  nesterov: boolean;
  /** RMSprop moving-average factor and epsilon. */
  rho: number;
  epsilon: number;
  weightDecay: number;
  weightDecayScope: WeightDecayScope;
}

/** One trainable weight, by the name it has in checkpoints. */
export interface Param {
  name: string;
  variable: tf.Variable;
  /** Whether weight decay applies to it. */
  decay: boolean;
  /** Its learning rate as a multiple of the schedule's (fine-tuning's backbone multiplier). */
  lrScale: number;
}

/** A slot's value as plain data, for checkpoints. */
export interface SlotValue {
  shape: number[];
  data: Float32Array;
}

/** True for conv and dense kernels (the weights that Lasagne regularizes). */
export function isKernel(name: string): boolean {
  return /(^|\/)(depthwise_)?kernel$/.test(name);
}

/** The model's trainable weights as Params, named by their layer-qualified base names. */
export function trainableParams(model: tf.LayersModel, scope: WeightDecayScope): Param[] {
  const seen = new Set<string>();
  return model.trainableWeights.map((w) => {
    const name = baseName(w);
    if (seen.has(name)) throw new Error(`model ${model.name}: two trainable weights are both named '${name}'; checkpoints need unique names`);
    seen.add(name);
    return { name, variable: w.read() as tf.Variable, decay: scope === 'all' || isKernel(name), lrScale: 1 };
  });
}

export class Optimizer {
  /** Slot variables by `${param}/${slot}`, created with zeros for every param up front. */
  private readonly slots = new Map<string, tf.Variable>();
  private readonly slotName: string;

  constructor(readonly config: OptimizerConfig, readonly params: Param[]) {
    checkConfig(config);
    this.slotName = config.optimizer === 'sgd' ? 'momentum' : 'rms';
    for (const p of params) {
      if (this.slots.has(this.key(p))) throw new Error(`optimizer: two weights are both named '${p.name}'`);
      // Unnamed: tfjs variable names are global to the process, and several optimizers may coexist.
      this.slots.set(this.key(p), tf.tidy(() => tf.variable(tf.zerosLike(p.variable), false)));
    }
  }

  private key(p: Param): string {
    return `${p.name}/${this.slotName}`;
  }

  /** Applies one update with learning rate `baseLr` (times each param's lrScale); `grads[i]` belongs to `params[i]`. Does not dispose grads. */
  apply(grads: readonly tf.Tensor[], baseLr: number): void {
    if (grads.length !== this.params.length) {
      throw new Error(`optimizer: ${grads.length} gradients for ${this.params.length} weights`);
    }
    const { momentum, nesterov, rho, epsilon, weightDecay } = this.config;
    this.params.forEach((p, i) => {
      const slot = this.slots.get(this.key(p))!;
      const lr = baseLr * p.lrScale;
      if (lr === 0) return; // a frozen weight: no update, and its momentum stays as it was
      tf.tidy(() => {
        const w = p.variable;
        const g = p.decay && weightDecay > 0 ? tf.add(grads[i], tf.mul(w, weightDecay)) : grads[i];
        if (this.config.optimizer === 'sgd') {
          if (momentum === 0) {
            w.assign(tf.sub(w, tf.mul(g, lr)));
            return;
          }
          const v = tf.add(tf.mul(slot, momentum), g);
          slot.assign(v);
          const update = nesterov ? tf.add(g, tf.mul(v, momentum)) : v;
          w.assign(tf.sub(w, tf.mul(update, lr)));
        } else {
          const a = tf.add(tf.mul(slot, rho), tf.mul(tf.square(g), 1 - rho));
          slot.assign(a);
          w.assign(tf.sub(w, tf.div(tf.mul(g, lr), tf.sqrt(tf.add(a, epsilon)))));
        }
      });
    });
  }

  /** Every slot's value, keyed `${param}/${slot}`. */
  async readSlots(): Promise<Map<string, SlotValue>> {
    const out = new Map<string, SlotValue>();
    for (const [name, v] of this.slots) out.set(name, { shape: [...v.shape], data: (await v.data()) as Float32Array });
    return out;
  }

  /** Restores every slot; all must be present with the right shapes (a checkpoint of the same model and optimizer). */
  loadSlots(values: Map<string, SlotValue>, source: string): void {
    const problems: string[] = [];
    for (const [name, v] of this.slots) {
      const s = values.get(name);
      if (!s) problems.push(`missing slot '${name}'`);
      else if (s.shape.join('x') !== v.shape.join('x')) problems.push(`slot '${name}' has shape [${s.shape}] but the weight needs [${v.shape}]`);
    }
    for (const name of values.keys()) if (!this.slots.has(name)) problems.push(`unexpected slot '${name}'`);
    if (problems.length) {
      throw new Error(`${source}: the optimizer state does not fit this model and optimizer (${this.config.optimizer}): ` +
        problems.slice(0, 10).join('; ') + (problems.length > 10 ? `; and ${problems.length - 10} more` : ''));
    }
    for (const [name, v] of this.slots) {
      const s = values.get(name)!;
      tf.tidy(() => v.assign(tf.tensor(s.data, s.shape, 'float32')));
    }
  }

  dispose(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
  }
}

function checkConfig(c: OptimizerConfig): void {
  if (!OPTIMIZER_NAMES.includes(c.optimizer)) {
    throw new Error(`unknown optimizer '${c.optimizer}'; expected one of ${OPTIMIZER_NAMES.join(', ')}`);
  }
  const inRange = (name: string, v: number, lo: number, hi: number, hiOpen = true) => {
    if (!(Number.isFinite(v) && v >= lo && (hiOpen ? v < hi : v <= hi))) {
      throw new Error(`optimizer ${name} must be in [${lo}, ${hi}${hiOpen ? ')' : ']'}, got ${v}`);
    }
  };
  inRange('momentum', c.momentum, 0, 1);
  inRange('rho', c.rho, 0, 1);
  if (!(c.epsilon > 0)) throw new Error(`optimizer epsilon must be > 0, got ${c.epsilon}`);
  if (!(Number.isFinite(c.weightDecay) && c.weightDecay >= 0)) throw new Error(`weight decay must be >= 0, got ${c.weightDecay}`);
  if (c.weightDecayScope !== 'all' && c.weightDecayScope !== 'kernels') {
    throw new Error(`weight decay scope must be 'all' or 'kernels', got '${c.weightDecayScope}'`);
  }
}
