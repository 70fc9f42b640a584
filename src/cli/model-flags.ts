// The architecture options of the one road (zoo.resolve) as command-line flags, shared by every
// command that builds a model, so `--depth 40 --growth 12` means the same to train, plan and bench.
import { Command, Option } from 'commander';
import { DROPOUT_PLACEMENTS, DropoutPlacement } from '../layers/dropout';
import { KERNEL_INITS, KernelInit } from '../layers/initializers';
import { INFERENCE_STATS, InferenceStats } from '../layers/unit-variables';
import type { ModelOptions } from '../zoo';

export interface ArchitectureFlags {
  depth?: number;
  growth?: number;
  blockLayers?: number[];
  stemChannels?: number;
  stemNorm?: boolean;
  dropRate?: number;
  dropoutPlacement?: DropoutPlacement;
  kernelInit?: KernelInit;
  bnStats?: InferenceStats;
}

function parseNumber(flag: string, check: (x: number) => boolean, expected: string) {
  return (text: string): number => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || !check(n)) throw new Error(`${flag} '${text}': expected ${expected}`);
    return n;
  };
}

export const parsePositiveInt = (flag: string) => parseNumber(flag, (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
export const parsePositive = (flag: string) => parseNumber(flag, (x) => x > 0, 'a positive number');
export const parseNonNegative = (flag: string) => parseNumber(flag, (x) => x >= 0, 'a number >= 0');
export const parseFraction = (flag: string) => parseNumber(flag, (x) => x >= 0 && x < 1, 'a number in [0, 1)');
export const parseInteger = (flag: string) => parseNumber(flag, (x) => Number.isSafeInteger(x), 'an integer');

export function parseList(flag: string) {
  return (text: string): number[] => {
    const values = text.split(',').map((v) => Number(v.trim()));
    if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1)) {
      throw new Error(`${flag} '${text}': expected a comma-separated list of positive integers`);
    }
    return values;
  };
}

/** Parses `HxWxC` or `HxW`. */
export function parseInputShape(text: string): [number, number, number] | [number, number] {
  const parts = text.toLowerCase().split('x').map((p) => Number(p));
  if ((parts.length !== 2 && parts.length !== 3) || parts.some((p) => !Number.isInteger(p) || p < 1)) {
    throw new Error(`--input '${text}': expected HxWxC or HxW with positive integers, e.g. 224x224x3`);
  }
  return parts as [number, number, number] | [number, number];
}

/** --bn-stats: FC-DenseNet's BatchNorm statistics at inference (also for eval and predict of trained weights). */
export function bnStatsOption(): Option {
  return new Option('--bn-stats <stats>', 'FC-DenseNet: BatchNorm statistics at inference, running averages or each batch\'s own (the authors\' evaluation, the tiramisu recipe\'s default)')
    .choices(INFERENCE_STATS as unknown as string[]);
}

export function addArchitectureFlags(cmd: Command): Command {
  return cmd
    .option('--depth <L>', 'CIFAR DenseNets: a shallower/deeper variant of depth L (BC: 6n+4, e.g. 40)', parsePositiveInt('--depth'))
    .option('--growth <k>', 'growth rate k of the variant', parsePositiveInt('--growth'))
    .option('--block-layers <list>', 'layers of each dense block, e.g. 6,12,24,16 (FC-DenseNet: of each encoder block)', parseList('--block-layers'))
    .option('--stem-channels <n>', 'channels of the stem conv', parsePositiveInt('--stem-channels'))
    .option('--stem-norm', 'CIFAR DenseNets: a BatchNorm-ReLU after the stem conv (as many public CIFAR checkpoints have)')
    .option('--drop-rate <x>', 'dropout rate of the model', parseFraction('--drop-rate'))
    .addOption(new Option('--dropout-placement <where>', 'DenseNet: dropout after every conv but the stem\'s (the paper\'s, default) or after each dense layer\'s last conv (torchvision\'s)')
      .choices(DROPOUT_PLACEMENTS as unknown as string[]))
    .addOption(new Option('--kernel-init <init>', 'conv kernel initialisation (default: torchvision\'s he-normal for DenseNet, the authors\' he-uniform for FC-DenseNet)')
      .choices(KERNEL_INITS as unknown as string[]))
    .addOption(bnStatsOption());
}

export function architectureOptions(f: ArchitectureFlags): ModelOptions {
  return {
    depth: f.depth, growthRate: f.growth, blockLayers: f.blockLayers, stemChannels: f.stemChannels, stemNorm: f.stemNorm, dropRate: f.dropRate,
    dropoutPlacement: f.dropoutPlacement,
    kernelInit: f.kernelInit, batchNorm: f.bnStats,
  };
}
