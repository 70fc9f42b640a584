// The papers' training recipes as named presets, and the one function that turns a recipe plus
// the user's overrides into a complete, checked training configuration. Numbers come from
// the papers (see shared/reference/numbers.md); a flag given by the user always wins.
import { checkOptimizerConfig, OptimizerConfig, OPTIMIZER_NAMES } from './optimizers';
import { ScheduleConfig, SCHEDULE_NAMES } from './schedules';

export interface TrainConfig extends OptimizerConfig, ScheduleConfig {
  /** The recipe the defaults came from. */
  recipe: RecipeName;
  batchSize: number;
  /** Planned length in epochs; may be fractional (0.25 = a quarter of the training set). */
  epochs: number;
  /** Stop when the global step reaches this (the schedule still follows `epochs`). */
  maxSteps?: number;
  /** Random crop/flip (pad 4 + crop + flip for classification; crop + flip for segmentation). */
  augment: boolean;
  /** Segmentation: side of the random training crop; images smaller than it are used whole. */
  crop?: number;
  /** Data order, augmentation and dropout seed. */
  seed: number;
  /** Write a progress line / metrics.jsonl entry every this many steps. */
  logEvery: number;
  /** Evaluate on at most this many samples of the evaluation split. */
  evalLimit?: number;
  /** Also evaluate (and checkpoint) every this many steps, besides every epoch and the end. */
  evalEvery?: number;
  /** Evaluation batch size (default: the training batch size, at least 64, for classification; one full image for segmentation). */
  evalBatchSize?: number;
  /** Also write the `last` checkpoint every this many steps (besides every epoch and the end). */
  checkpointEvery?: number;
  /** Fine-tuning: train the classifier only; the backbone runs in inference mode (BatchNorm statistics fixed). */
  freezeBackbone: boolean;
  /** Fine-tuning: the backbone's learning rate as a multiple of the classifier's (1: one learning rate). */
  backboneLrMult: number;
}

export const RECIPE_NAMES = ['densenet-cifar', 'densenet-imagenet', 'tiramisu'] as const;
export type RecipeName = (typeof RECIPE_NAMES)[number];

const COMMON = {
  momentum: 0.9, nesterov: true, rho: 0.9, epsilon: 1e-6, milestones: [0.5, 0.75], stepFactor: 0.1, epochDecay: 0.995,
  augment: true, seed: 0, logEvery: 50, freezeBackbone: false, backboneLrMult: 1,
} as const;

/** Complete defaults of each recipe. */
export const RECIPES: Record<RecipeName, TrainConfig> = {
  // CIFAR/SVHN (DenseNet paper, section 4.2): SGD, Nesterov 0.9 without dampening, wd 1e-4 on
  // every weight, batch 64, 300 epochs, lr 0.1 divided by 10 at 50% and 75% of training.
  'densenet-cifar': {
    ...COMMON, milestones: [0.5, 0.75], recipe: 'densenet-cifar', optimizer: 'sgd', lr: 0.1, weightDecay: 1e-4,
    weightDecayScope: 'all', schedule: 'step', batchSize: 64, epochs: 300,
  },
  // ImageNet: 90 epochs, batch 256, lr 0.1 divided by 10 at epochs 30 and 60.
  'densenet-imagenet': {
    ...COMMON, milestones: [1 / 3, 2 / 3], recipe: 'densenet-imagenet', optimizer: 'sgd', lr: 0.1, weightDecay: 1e-4,
    weightDecayScope: 'all', schedule: 'step', batchSize: 256, epochs: 90,
  },
  // Tiramisu on CamVid, as the authors' code trains it: RMSprop lr 1e-3, x0.995 per epoch,
  // 1e-4 * sum(w^2) added to the loss over the conv kernels and BatchNorm scales (Lasagne's
  // regularizable parameters), batch 3, random 224x224 crops + flips. The paper trains until the
  // validation score stops improving; 1000 epochs here is a ceiling, to be set with --epochs.
  tiramisu: {
    ...COMMON, milestones: [], recipe: 'tiramisu', optimizer: 'rmsprop', lr: 1e-3, weightDecay: 1e-4,
    weightDecayScope: 'kernels-and-scales', weightDecayForm: 'loss', schedule: 'exponential', batchSize: 3, epochs: 1000, crop: 224,
  },
};

/**
 * The dropout a recipe asks for when the user names none: the DenseNet paper trains its CIFAR/SVHN
 * models without augmentation with dropout 0.2 after every conv but the first, and with none otherwise.
 */
export function recipeDropRate(config: TrainConfig): number | undefined {
  return config.recipe === 'densenet-cifar' && !config.augment ? 0.2 : undefined;
}

/**
 * FC-DenseNet's BatchNorm statistics at inference under a recipe, when the user names none: the
 * Tiramisu authors normalise with each image's own statistics in validation and test ('batch').
 */
export function recipeInferenceStats(config: TrainConfig, family: 'densenet' | 'fc-densenet'): 'batch' | undefined {
  return config.recipe === 'tiramisu' && family === 'fc-densenet' ? 'batch' : undefined;
}

/** The recipe a model trains with when none is named: Tiramisu for FC-DenseNet, else by the model's stem. */
export function defaultRecipe(family: 'densenet' | 'fc-densenet', stem?: 'imagenet' | 'cifar'): RecipeName {
  if (family === 'fc-densenet') return 'tiramisu';
  return stem === 'imagenet' ? 'densenet-imagenet' : 'densenet-cifar';
}

export function recipe(name: string): TrainConfig {
  if (!(RECIPE_NAMES as readonly string[]).includes(name)) {
    throw new Error(`unknown recipe '${name}'; expected one of ${RECIPE_NAMES.join(', ')}`);
  }
  return structuredClone(RECIPES[name as RecipeName]);
}

/** Keys of the overrides whose value is undefined are ignored (an unset flag), so they never erase a default. */
export type ConfigOverrides = Partial<Omit<TrainConfig, 'recipe'>>;

/** `base` with every defined override applied, then checked. */
export function applyOverrides(base: TrainConfig, overrides: ConfigOverrides): TrainConfig {
  const out: TrainConfig = structuredClone(base);
  for (const [k, v] of Object.entries(overrides)) {
    if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  }
  checkConfig(out);
  return out;
}

/** The recipe's defaults with the user's overrides. */
export function resolveConfig(recipeName: string, overrides: ConfigOverrides = {}): TrainConfig {
  return applyOverrides(recipe(recipeName), overrides);
}

function positiveInt(name: string, v: number | undefined, optional = false): void {
  if (v === undefined && optional) return;
  if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
}

export function checkConfig(c: TrainConfig): void {
  if (!OPTIMIZER_NAMES.includes(c.optimizer)) throw new Error(`unknown optimizer '${c.optimizer}'; expected one of ${OPTIMIZER_NAMES.join(', ')}`);
  if (!SCHEDULE_NAMES.includes(c.schedule)) throw new Error(`unknown schedule '${c.schedule}'; expected one of ${SCHEDULE_NAMES.join(', ')}`);
  if (!(Number.isFinite(c.lr) && c.lr > 0)) throw new Error(`learning rate must be a positive number, got ${c.lr}`);
  if (!(Number.isFinite(c.epochs) && c.epochs > 0)) throw new Error(`epochs must be a positive number, got ${c.epochs}`);
  positiveInt('batch size', c.batchSize);
  positiveInt('max steps', c.maxSteps, true);
  positiveInt('log every', c.logEvery);
  positiveInt('eval limit', c.evalLimit, true);
  positiveInt('eval batch size', c.evalBatchSize, true);
  positiveInt('eval every', c.evalEvery, true);
  positiveInt('checkpoint every', c.checkpointEvery, true);
  positiveInt('crop', c.crop, true);
  if (!Number.isSafeInteger(c.seed)) throw new Error(`seed must be an integer, got ${c.seed}`);
  if (!(Number.isFinite(c.backboneLrMult) && c.backboneLrMult >= 0)) throw new Error(`backbone lr multiplier must be >= 0, got ${c.backboneLrMult}`);
  if (c.freezeBackbone && c.backboneLrMult !== 1) throw new Error('a frozen backbone has no learning rate: give freezeBackbone or backboneLrMult, not both');
  checkOptimizerConfig(c);
  if (!c.milestones.every((m) => m > 0 && m < 1)) throw new Error(`milestones must be fractions of training in (0, 1), got ${c.milestones.join(', ')}`);
  if (!(c.stepFactor > 0)) throw new Error(`step factor must be > 0, got ${c.stepFactor}`);
  if (!(c.epochDecay > 0)) throw new Error(`epoch decay must be > 0, got ${c.epochDecay}`);
}
