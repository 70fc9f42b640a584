// The zoo as data: one record per model. Adding a variant is adding a record.
import type { DenseNetArch } from '../models/densenet';
import type { FCDenseNetArch } from '../models/fc-densenet';
import { CLASSIFIER, FIRST_CONV, SEGMENTATION_HEAD } from '../layers/layer-names';

export type Task = 'classification' | 'segmentation';

export interface InputSpec {
  /** Height, width, channels the model is defined for. */
  shape: [number, number, number];
  /** Per-channel normalisation on [0, 1] pixel values. */
  mean: number[];
  std: number[];
  /** Shorter side is resized to this before a center crop of `shape` (classification). */
  resize?: number;
}

export interface WeightsSource {
  tag: string;
  description: string;
  /** `.safetensors` (torchvision/timm keys) or tfjs `model.json`; URL, or a path relative to the package root. */
  url: string;
  format: 'safetensors' | 'pytorch' | 'tfjs';
  numClasses: number;
  inChannels: number;
  /** Input the weights were trained at, when it differs from the record's. */
  inputShape?: [number, number, number];
  /** sha256 of the file (safetensors) or of the weight data a model.json points at (tfjs), checked on load. */
  sha256?: string;
  /** Preprocessing the weights expect on [0, 1] pixels, when it differs from the record's. */
  normalization?: { mean: number[]; std: number[] };
  /** FC-DenseNet: the BatchNorm statistics the weights are evaluated with (default running averages). */
  batchNorm?: 'running' | 'batch';
  /** Class names of the weights' head, when they differ from the record's. */
  classNames?: string[];
  /** Segmentation: the dataset's colour of each class (e.g. CamVid's), for overlays. */
  palette?: Array<[number, number, number]>;
  /** Segmentation: the label the dataset marks unlabelled pixels with (CamVid's void, 11). */
  ignoreLabel?: number;
  /** The project's own weights: where they come from and how well they do. */
  training?: TrainingProvenance;
  metrics?: Record<string, number>;
  /** How the weights were made (for the project's own). */
  command?: string;
}

export interface TrainingProvenance {
  dataset: string;
  /** Dataset options that define the data (e.g. the mosaics' size and counts). */
  datasetOptions?: Record<string, unknown>;
  recipe: string;
  /** Settings that differ from the recipe (epochs, schedule, batch...). */
  config: Record<string, unknown>;
  steps: number;
  epochs: number;
  backend: string;
  trainSeconds: number;
  /** Split and number of images the metrics were measured on. */
  evaluation: { split: string; count: number };
  /** The experiment script that made and checks them. */
  experiment: string;
}

/** One record of weights/manifest.json: weights the project trained itself, for a zoo model. */
export interface ShippedWeights extends WeightsSource {
  model: string;
}

export interface ZooEntry {
  name: string;
  task: Task;
  arch: DenseNetArch | FCDenseNetArch;
  input: InputSpec;
  numClasses: number;
  classNames: 'imagenet' | string[];
  /** Layer names of the first conv and of the classifier, for weight surgery. */
  firstConv: string;
  classifier: string;
  paper: { reference: string; results: Record<string, number> };
  /** Trainable parameters at the record's defaults (checked by the tests). */
  params: number;
  weights: WeightsSource[];
}

const IMAGENET_INPUT: InputSpec = { shape: [224, 224, 3], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], resize: 256 };
const CIFAR_INPUT: InputSpec = { shape: [32, 32, 3], mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };
const CAMVID_INPUT: InputSpec = { shape: [224, 224, 3], mean: [0.4119, 0.4251, 0.4327], std: [0.2741, 0.2851, 0.2828] };

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
export const CAMVID_CLASSES = [
  'sky', 'building', 'pole', 'road', 'sidewalk', 'tree', 'sign', 'fence', 'car', 'pedestrian', 'bicyclist',
];

const DENSENET_PAPER = 'Huang, Liu, van der Maaten, Weinberger. Densely Connected Convolutional Networks. CVPR 2017';
const TIRAMISU_PAPER =
  'Jegou, Drozdzal, Vazquez, Romero, Bengio. The One Hundred Layers Tiramisu: Fully Convolutional DenseNets for Semantic Segmentation. CVPRW 2017';

function imagenet(name: string, growthRate: number, blockLayers: number[], stemChannels: number, params: number,
  results: Record<string, number>, torchvisionWeights: boolean): ZooEntry {
  return {
    name,
    task: 'classification',
    arch: { family: 'densenet', growthRate, blockLayers, stemChannels, stem: 'imagenet', stemNorm: true, kernelInit: 'he-normal', bottleneckFactor: 4, compression: 0.5, dropRate: 0, dropoutPlacement: 'every-conv' },
    input: IMAGENET_INPUT,
    numClasses: 1000,
    classNames: 'imagenet',
    firstConv: FIRST_CONV,
    classifier: CLASSIFIER,
    paper: { reference: DENSENET_PAPER, results },
    params,
    weights: torchvisionWeights
      ? [{
          tag: 'imagenet',
          description: 'torchvision ImageNet-1k weights, as safetensors published by timm',
          url: `https://huggingface.co/timm/${name}.tv_in1k/resolve/main/model.safetensors`,
          format: 'safetensors', numClasses: 1000, inChannels: 3,
        }]
      : [],
  };
}

/** Layers of each of the three blocks of a CIFAR DenseNet of total depth L: (L-4)/6 with bottlenecks (BC), (L-4)/3 without. */
export function cifarBlockLayers(name: string, depth: number, bc: boolean): number[] {
  const perLayer = bc ? 6 : 3;
  const layers = (depth - 4) / perLayer;
  if (!Number.isInteger(layers) || layers < 1) {
    throw new Error(`${name}: depth ${depth} does not give whole blocks; ${bc ? 'DenseNet-BC' : 'DenseNet'} depth is ` +
      `${perLayer} x (layers per block) + 4, e.g. ${perLayer + 4}, ${2 * perLayer + 4}, ${3 * perLayer + 4}`);
  }
  return [layers, layers, layers];
}

function cifar(name: string, depth: number, growthRate: number, bc: boolean, params: number, results: Record<string, number>): ZooEntry {
  return {
    name,
    task: 'classification',
    arch: {
      family: 'densenet', growthRate, blockLayers: cifarBlockLayers(name, depth, bc),
      stemChannels: bc ? 2 * growthRate : 16, stem: 'cifar', stemNorm: false, kernelInit: 'he-normal', bottleneckFactor: bc ? 4 : 0, compression: bc ? 0.5 : 1, dropRate: 0, dropoutPlacement: 'every-conv',
    },
    input: CIFAR_INPUT,
    numClasses: 10,
    classNames: CIFAR10_CLASSES,
    firstConv: FIRST_CONV,
    classifier: CLASSIFIER,
    paper: { reference: DENSENET_PAPER, results },
    params,
    weights: [],
  };
}

function tiramisu(name: string, growthRate: number, downLayers: number[], bottleneckLayers: number, params: number,
  results: Record<string, number>): ZooEntry {
  return {
    name,
    task: 'segmentation',
    arch: { family: 'fc-densenet', growthRate, downLayers, bottleneckLayers, stemChannels: 48, dropRate: 0.2, kernelInit: 'he-uniform' },
    input: CAMVID_INPUT,
    numClasses: 11,
    classNames: CAMVID_CLASSES,
    firstConv: FIRST_CONV,
    classifier: SEGMENTATION_HEAD,
    paper: { reference: TIRAMISU_PAPER, results },
    params,
    weights: [],
  };
}

/** CIFAR error rates (%) of the paper's Table 2: C10, C10+ (augmented), C100, C100+. */
const cifarErrors = (c10: number, c10p: number, c100: number, c100p: number) =>
  Object.fromEntries(Object.entries({ c10ErrorPct: c10, c10PlusErrorPct: c10p, c100ErrorPct: c100, c100PlusErrorPct: c100p })
    .filter(([, v]) => !Number.isNaN(v)));

export const ZOO: ZooEntry[] = [
  imagenet('densenet121', 32, [6, 12, 24, 16], 64, 7978856, { top1ErrorPct: 25.02, torchvisionTop1Pct: 74.434 }, true),
  imagenet('densenet169', 32, [6, 12, 32, 32], 64, 14149480, { top1ErrorPct: 23.8, torchvisionTop1Pct: 75.6 }, true),
  imagenet('densenet201', 32, [6, 12, 48, 32], 64, 20013928, { top1ErrorPct: 22.58, torchvisionTop1Pct: 76.896 }, true),
  imagenet('densenet264', 32, [6, 12, 64, 48], 64, 33337704, { top1ErrorPct: 22.15 }, false),
  imagenet('densenet161', 48, [6, 12, 36, 24], 96, 28681000, { torchvisionTop1Pct: 77.138 }, true),
  cifar('densenet-40-k12', 40, 12, false, 1019722, cifarErrors(7.0, 5.24, 27.55, 24.42)),
  cifar('densenet-100-k12', 100, 12, false, 6979642, cifarErrors(5.77, 4.1, 23.79, 20.2)),
  cifar('densenet-100-k24', 100, 24, false, 27249082, cifarErrors(5.83, 3.74, 23.42, 19.25)),
  cifar('densenet-bc-100-k12', 100, 12, true, 769162, cifarErrors(5.92, 4.51, 24.15, 22.27)),
  cifar('densenet-bc-250-k24', 250, 24, true, 15324406, cifarErrors(5.19, 3.62, 19.64, 17.6)),
  cifar('densenet-bc-190-k40', 190, 40, true, 25624430, cifarErrors(NaN, 3.46, NaN, 17.18)),
  tiramisu('fc-densenet56', 12, [4, 4, 4, 4, 4], 4, 1376795, { camvidMeanIoUPct: 58.9, camvidGlobalAccuracyPct: 88.9 }),
  tiramisu('fc-densenet67', 16, [5, 5, 5, 5, 5], 5, 3463243, { camvidMeanIoUPct: 65.8, camvidGlobalAccuracyPct: 90.8 }),
  tiramisu('fc-densenet103', 16, [4, 5, 7, 10, 12], 15, 9322091, { camvidMeanIoUPct: 66.9, camvidGlobalAccuracyPct: 91.5 }),
];
