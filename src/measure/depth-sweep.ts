// Memory against depth: DenseNet-BC at growth rate k for several depths L, naive and
// efficient, to show the quadratic-versus-linear growth of the stored activations.
import { buildDenseNet, DenseNetArch } from '../models/densenet';
import { MemoryBenchResult, benchMemory } from './memory';

export function densenetBC(depth: number, growthRate: number): DenseNetArch {
  const perBlock = (depth - 4) / 6;
  if (!Number.isInteger(perBlock) || perBlock < 1) {
    throw new Error(`DenseNet-BC depth ${depth}: (L - 4) must be a positive multiple of 6 (40, 64, 100, 148, 190, 250, ...)`);
  }
  return {
    family: 'densenet', growthRate, blockLayers: [perBlock, perBlock, perBlock], stemChannels: 2 * growthRate,
    stem: 'cifar', bottleneckFactor: 4, compression: 0.5, dropRate: 0,
  };
}

export interface SweepOptions {
  depths: number[];
  growthRate: number;
  batch: number;
  inputShape: [number, number, number];
  steps?: number;
}

export async function depthSweep(options: SweepOptions, onResult?: (r: MemoryBenchResult) => void): Promise<MemoryBenchResult[]> {
  const results: MemoryBenchResult[] = [];
  for (const depth of options.depths) {
    const name = `densenet-bc-${depth}-k${options.growthRate}`;
    const arch = densenetBC(depth, options.growthRate);
    const make = (memoryEfficient: boolean) =>
      buildDenseNet(arch, { name, inputShape: options.inputShape, numClasses: 10, memoryEfficient });
    const r = await benchMemory(name, { batch: options.batch, inputShape: options.inputShape, steps: options.steps }, make);
    results.push(r);
    onResult?.(r);
  }
  return results;
}
