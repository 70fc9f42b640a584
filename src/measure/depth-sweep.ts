// Memory against depth: DenseNet-BC at growth rate k for several depths L, naive and
// efficient, to show the quadratic-versus-linear growth of the stored activations.
import * as zoo from '../zoo';
import { MemoryBenchResult, benchMemory, specFactory } from './memory';

/** DenseNet-BC of depth L and growth rate k on 10 classes: the zoo's BC-100 record with those options. */
export function densenetBC(depth: number, growthRate: number, inputShape: [number, number, number] = [32, 32, 3]): zoo.ResolvedModel {
  return zoo.resolve('densenet-bc-100-k12', { depth, growthRate, inputShape, numClasses: 10 });
}

export interface SweepOptions {
  depths: number[];
  growthRate: number;
  batch: number;
  inputShape: [number, number, number];
  /** Timed steps per mode; default 1: the sweep is about memory. */
  steps?: number;
}

export async function depthSweep(options: SweepOptions, onResult?: (r: MemoryBenchResult) => void): Promise<MemoryBenchResult[]> {
  const results: MemoryBenchResult[] = [];
  for (const depth of options.depths) {
    const name = `densenet-bc-${depth}-k${options.growthRate}`;
    const make = specFactory(densenetBC(depth, options.growthRate, options.inputShape).spec);
    const r = await benchMemory(name, { batch: options.batch, inputShape: options.inputShape, steps: options.steps ?? 1 }, make);
    results.push(r);
    onResult?.(r);
  }
  return results;
}
