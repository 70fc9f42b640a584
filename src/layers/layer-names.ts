// Where every layer and weight of the zoo's models sits, and what it is called. The builders
// name their layers here, the custom layers their weights; the torchvision mapping, the
// summary and the zoo records read the names back here. Checkpoints and the shipped weights
// are keyed by these strings: a name changed here breaks every saved file.
//
//   DenseNet:    stem_conv, stem_norm, block{b}/layer{l}/norm1|conv1|norm2|conv2, transition{t}/norm|conv,
//                transition{t}_drop|_pool (with dropout; without, the pool is in transition{t}), final_norm (BN-ReLU-pool), classifier
//   FC-DenseNet: stem_conv, down{i}/layer{l}/..., transition_down{i}/norm|conv, transition_down{i}_drop|_pool,
//                bottleneck/layer{l}/..., transition_up{i}_conv|_concat, up{i}/layer{l}/..., head_conv
// A weight is `{scope}/{param}`: scope `stem_conv`, `block1/layer2/norm1`, ...; param kernel, gamma, ...

const NUMBERED_KINDS = ['block', 'transition', 'down', 'transition_down', 'transition_up', 'up'] as const;
const SINGLE_KINDS = ['stem', 'final', 'classifier', 'bottleneck', 'head'] as const;

/** A stage of a model: numbered ones (`block2`, `transition_down3`) come once per level, from 1. */
export type Stage = { kind: (typeof NUMBERED_KINDS)[number]; index: number } | { kind: (typeof SINGLE_KINDS)[number] };
type StageKind = Stage['kind'];

export const stages = {
  stem: { kind: 'stem' } as Stage,
  final: { kind: 'final' } as Stage,
  classifier: { kind: 'classifier' } as Stage,
  bottleneck: { kind: 'bottleneck' } as Stage,
  head: { kind: 'head' } as Stage,
  block: (index: number): Stage => ({ kind: 'block', index }),
  transition: (index: number): Stage => ({ kind: 'transition', index }),
  down: (index: number): Stage => ({ kind: 'down', index }),
  transitionDown: (index: number): Stage => ({ kind: 'transition_down', index }),
  transitionUp: (index: number): Stage => ({ kind: 'transition_up', index }),
  up: (index: number): Stage => ({ kind: 'up', index }),
};

/** Stages built as one custom layer (a dense block, a transition): their parts are scopes inside it, not layers. */
const CUSTOM_LAYER_KINDS: readonly StageKind[] = ['block', 'down', 'up', 'bottleneck', 'transition', 'transition_down'];

export function stageName(stage: Stage): string {
  return 'index' in stage ? `${stage.kind}${stage.index}` : stage.kind;
}

/** The stage's layer (`block1`, `classifier`) or a helper layer of its own (`stem_conv`, `transition1_pool`). */
export function layerName(stage: Stage, part?: string): string {
  return part === undefined ? stageName(stage) : `${stageName(stage)}_${part}`;
}

export const INPUT_LAYER = 'image';
/** The layer whose kernel adapts to other input channels (weight surgery). */
export const FIRST_CONV = layerName(stages.stem, 'conv');
export const CLASSIFIER = layerName(stages.classifier);
export const SEGMENTATION_HEAD = layerName(stages.head, 'conv');

// ---------------------------------------------------------------------------------------------
// Weights

const NORM_PARAMS = ['gamma', 'beta', 'moving_mean', 'moving_variance'] as const;
const CONV_PARAMS = ['kernel', 'bias'] as const;
export type WeightParam = (typeof NORM_PARAMS)[number] | (typeof CONV_PARAMS)[number];

/** A BN-ReLU-Conv unit's two parts: `norm`/`conv` in a transition, `norm1`/`conv1` (`norm2`/`conv2`: after the bottleneck) in a dense layer. */
export type UnitPart = 'norm' | 'conv' | 'norm1' | 'conv1' | 'norm2' | 'conv2';

export interface UnitScopes {
  norm: string;
  conv: string;
}

/** Weight scopes of a transition's unit, inside its layer. */
export const TRANSITION_UNIT: UnitScopes = { norm: 'norm', conv: 'conv' };

/** A part of dense layer `layer`, as a scope inside its block: `layer3/norm1`. */
function denseLayerScope(layer: number, part: UnitPart): string {
  return `layer${layer}/${part}`;
}

/** Weight scopes of unit `unit` (1, or 2 after a bottleneck) of dense layer `layer`, inside its block. */
export function denseUnit(layer: number, unit: 1 | 2): UnitScopes {
  return { norm: denseLayerScope(layer, `norm${unit}`), conv: denseLayerScope(layer, `conv${unit}`) };
}

export function weightName(scope: string, param: WeightParam): string {
  return `${scope}/${param}`;
}

/** Where a weight sits: its stage, dense layer (in a block), unit part and parameter. */
export interface WeightPlace {
  stage: Stage;
  /** The dense layer of a block, from 1; absent outside blocks. */
  layer?: number;
  /** Absent for a layer that is all one part (the classifier). */
  part?: UnitPart;
  param: WeightParam;
}

export function formatWeightName(place: WeightPlace): string {
  const { layer, part } = place;
  const owner = stageName(place.stage);
  let scope = owner;
  if (layer !== undefined && part !== undefined) scope = `${owner}/${denseLayerScope(layer, part)}`;
  else if (part !== undefined) scope = CUSTOM_LAYER_KINDS.includes(place.stage.kind) ? `${owner}/${part}` : layerName(place.stage, part);
  return weightName(scope, place.param);
}

const STAGE_PATTERN = `(?:${NUMBERED_KINDS.join('|')})\\d+|${SINGLE_KINDS.join('|')}`;
const STAGE_AT_START = new RegExp(`^(${STAGE_PATTERN})(?:$|_)`);
const PARAM_PATTERN = [...NORM_PARAMS, ...CONV_PARAMS].join('|');
/**
 * The end of a weight name (name scopes may come before it). A part may be a layer of its own
 * (`transition1_conv/kernel`, as older checkpoints have it) or a scope inside one: `_` or `/`.
 */
const WEIGHT_AT_END = new RegExp(`(?:^|/)(${STAGE_PATTERN})(?:[_/]layer(\\d+)/((?:norm|conv)[12])|[_/](norm|conv))?/(${PARAM_PATTERN})$`);

function parseStage(name: string): Stage {
  const numbered = /^([a-z_]+?)(\d+)$/.exec(name);
  return numbered
    ? { kind: numbered[1] as (typeof NUMBERED_KINDS)[number], index: Number(numbered[2]) }
    : { kind: name as (typeof SINGLE_KINDS)[number] };
}

/** The stage of a layer by its name (`transition1_pool` -> transition1); undefined for layers outside every stage (the input). */
export function stageOfLayer(name: string): Stage | undefined {
  const m = STAGE_AT_START.exec(name);
  return m ? parseStage(m[1]) : undefined;
}

/** The place of a weight by its name; undefined if the name follows none of the rules above. */
export function parseWeightName(name: string): WeightPlace | undefined {
  const m = WEIGHT_AT_END.exec(name);
  if (!m) return undefined;
  const [, stage, layer, layerPart, unitPart, param] = m;
  const part = (layerPart ?? unitPart) as UnitPart | undefined;
  // Norms hold the BatchNorm parameters, convs and part-less layers (dense, conv) kernel and bias.
  const isNormParam = (NORM_PARAMS as readonly string[]).includes(param);
  if (isNormParam !== (part?.startsWith('norm') ?? false)) return undefined;
  return {
    stage: parseStage(stage),
    ...(layer !== undefined ? { layer: Number(layer) } : {}),
    ...(part !== undefined ? { part } : {}),
    param: param as WeightParam,
  };
}
