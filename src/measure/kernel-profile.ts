// `bench kernels`: where a training step's time goes, kernel by kernel, naive against
// memory-efficient (tf.profile's per-kernel times, averaged over a few profiled steps).
import * as tf from '../tf';
import { BenchOptions, ModelFactory, zooFactory } from './memory';
import { trainingHarness } from './training-step';

export interface KernelTime {
  kernel: string;
  /** Mean ms per step spent in the kernel, and how many times it ran per step. */
  naiveMs: number;
  naiveCalls: number;
  efficientMs: number;
  efficientCalls: number;
}

export interface KernelProfileResult {
  model: string;
  batch: number;
  backend: string;
  steps: number;
  /** Wall-clock ms per profiled step (profiling waits for each kernel, so a little above an unprofiled step). */
  naiveStepMs: number;
  efficientStepMs: number;
  kernels: KernelTime[];
}

interface ModeProfile {
  stepMs: number;
  byKernel: Map<string, { ms: number; calls: number }>;
}

async function profileMode(make: ModelFactory, memoryEfficient: boolean, batch: number, steps: number): Promise<ModeProfile> {
  const model = make(memoryEfficient);
  const harness = trainingHarness(model, batch);
  const byKernel = new Map<string, { ms: number; calls: number }>();
  let wall = 0;
  try {
    await harness.step(); // optimizer slots, first-call set-up
    for (let s = 0; s < steps; s++) {
      const start = performance.now();
      const profile = await tf.profile(() => harness.step());
      wall += performance.now() - start;
      // Only registered kernels: custom-gradient ops and scopes are profiled too, around kernels already counted.
      for (const k of profile.kernels.filter((k) => tf.getKernel(k.name, tf.getBackend()) != null)) {
        const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
        entry.ms += (await k.kernelTimeMs) as number;
        entry.calls += 1;
        byKernel.set(k.name, entry);
      }
    }
  } finally {
    harness.dispose();
    model.dispose();
  }
  for (const entry of byKernel.values()) {
    entry.ms /= steps;
    entry.calls /= steps;
  }
  return { stepMs: wall / steps, byKernel };
}

export async function profileKernels(name: string, options: BenchOptions): Promise<KernelProfileResult> {
  const make = zooFactory(name, options);
  const steps = options.steps ?? 2;
  const naive = await profileMode(make, false, options.batch, steps);
  const efficient = await profileMode(make, true, options.batch, steps);
  const names = new Set([...naive.byKernel.keys(), ...efficient.byKernel.keys()]);
  const kernels = [...names].map((kernel) => ({
    kernel,
    naiveMs: naive.byKernel.get(kernel)?.ms ?? 0,
    naiveCalls: naive.byKernel.get(kernel)?.calls ?? 0,
    efficientMs: efficient.byKernel.get(kernel)?.ms ?? 0,
    efficientCalls: efficient.byKernel.get(kernel)?.calls ?? 0,
  })).sort((a, b) => b.efficientMs + b.naiveMs - (a.efficientMs + a.naiveMs));
  return { model: name, batch: options.batch, backend: tf.getBackend(), steps, naiveStepMs: naive.stepMs, efficientStepMs: efficient.stepMs, kernels };
}

/** Markdown table: ms per step and share of the step for each kernel, in both modes, and the difference. */
export function kernelTable(r: KernelProfileResult, top = 15): string {
  type Mode = 'naiveMs' | 'efficientMs';
  const sum = (kernels: KernelTime[], mode: Mode) => kernels.reduce((s, k) => s + k[mode], 0);
  const [naiveTotal, efficientTotal] = [sum(r.kernels, 'naiveMs'), sum(r.kernels, 'efficientMs')];
  const share = (ms: number, of: number) => `${((100 * ms) / of).toFixed(1)}%`;
  const rows = r.kernels.slice(0, top).map((k) => `| ${[
    k.kernel, k.naiveMs.toFixed(1), share(k.naiveMs, naiveTotal), k.naiveCalls.toFixed(0),
    k.efficientMs.toFixed(1), share(k.efficientMs, efficientTotal), k.efficientCalls.toFixed(0), (k.efficientMs - k.naiveMs).toFixed(1),
  ].join(' | ')} |`);
  const rest = r.kernels.slice(top);
  const restMs = (mode: Mode) => sum(rest, mode);
  return [
    `${r.model}, batch ${r.batch}, ${r.backend}: ms per profiled step naive ${r.naiveStepMs.toFixed(0)}, efficient ${r.efficientStepMs.toFixed(0)} (mean of ${r.steps})`,
    '',
    '| kernel | naive ms | naive share | naive calls | efficient ms | efficient share | efficient calls | efficient - naive ms |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    `| ${rest.length} others | ${restMs('naiveMs').toFixed(1)} | ${share(restMs('naiveMs'), naiveTotal)} | | ${restMs('efficientMs').toFixed(1)} | ${share(restMs('efficientMs'), efficientTotal)} | | ${(restMs('efficientMs') - restMs('naiveMs')).toFixed(1)} |`,
    `| all kernels | ${naiveTotal.toFixed(1)} | | | ${efficientTotal.toFixed(1)} | | | ${(efficientTotal - naiveTotal).toFixed(1)} |`,
  ].join('\n');
}
