// The two optimizers of the papers, written out so that their state (one slot tensor per weight)
// can be saved and restored exactly, and so that weight decay is explicit:
//
// - SGD with (Nesterov) momentum, no dampening, as torch.optim.SGD and the DenseNet code:
//     g = grad + wd * w;  v = momentum * v + g;  w -= lr * (g + momentum * v)   (Nesterov)
//                                                w -= lr * v                    (plain momentum)
// - RMSprop as Lasagne's (the Tiramisu code): a = rho * a + (1 - rho) * g^2;  w -= lr * g / sqrt(a + eps)
//
// Weight decay is L2 (coupled), in one of two forms: 'gradient' adds wd * w to the gradient (torch's
// weight_decay, the DenseNet code), 'loss' adds wd * sum(w^2) to the loss, so 2 * wd * w to the
// gradient (the Tiramisu code's lasagne.regularization.l2). Which weights it applies to is a choice
// of the recipe: 'all' trainable weights (the DenseNet LuaTorch code decays its whole flat
// parameter vector, BatchNorm scales and shifts included), only conv/dense 'kernels', or
// 'kernels-and-scales': Lasagne's regularizable parameters, kernels and BatchNorm's gamma (not
// biases, not beta).
import * as tf from '../tf';
import { baseName } from '../weights/mapping';

export const OPTIMIZER_NAMES = ['sgd', 'rmsprop'] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];
export const WEIGHT_DECAY_SCOPES = ['all', 'kernels', 'kernels-and-scales'] as const;
export type WeightDecayScope = (typeof WEIGHT_DECAY_SCOPES)[number];
export const WEIGHT_DECAY_FORMS = ['gradient', 'loss'] as const;
export type WeightDecayForm = (typeof WEIGHT_DECAY_FORMS)[number];

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
  /** Default 'gradient'. */
  weightDecayForm?: WeightDecayForm;
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

/** True for conv and dense kernels. */
export function isKernel(name: string): boolean {
  return /(^|\/)(depthwise_)?kernel$/.test(name);
}

function decays(scope: WeightDecayScope, name: string): boolean {
  return scope === 'all' || isKernel(name) || (scope === 'kernels-and-scales' && /(^|\/)gamma$/.test(name));
}

/** The model's trainable weights as Params, named by their layer-qualified base names. */
export function trainableParams(model: tf.LayersModel, scope: WeightDecayScope): Param[] {
  const seen = new Set<string>();
  return model.trainableWeights.map((w) => {
    const name = baseName(w);
    if (seen.has(name)) throw new Error(`model ${model.name}: two trainable weights are both named '${name}'; checkpoints need unique names`);
    seen.add(name);
    return { name, variable: w.read() as tf.Variable, decay: decays(scope, name), lrScale: 1 };
  });
}

export class Optimizer {
  /** Slot variables by `${param}/${slot}`, created with zeros for every param up front. */
  private readonly slots = new Map<string, tf.Variable>();
  private readonly slotName: string;

  constructor(readonly config: OptimizerConfig, readonly params: Param[]) {
    checkOptimizerConfig(config);
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
    const { momentum, nesterov, rho, epsilon } = this.config;
    const weightDecay = this.config.weightDecay * (this.config.weightDecayForm === 'loss' ? 2 : 1);
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

export function checkOptimizerConfig(c: OptimizerConfig): void {
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
  if (!WEIGHT_DECAY_SCOPES.includes(c.weightDecayScope)) {
    throw new Error(`weight decay scope must be one of ${WEIGHT_DECAY_SCOPES.join(', ')}, got '${c.weightDecayScope}'`);
  }
  if (c.weightDecayForm !== undefined && !WEIGHT_DECAY_FORMS.includes(c.weightDecayForm)) {
    throw new Error(`weight decay form must be one of ${WEIGHT_DECAY_FORMS.join(', ')}, got '${c.weightDecayForm}'`);
  }
}
