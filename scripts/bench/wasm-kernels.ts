// Per-kernel timings on the wasm backend: tfjs 4.22's own kernels ("before")
// against src/backend/wasm-kernels.ts ("after").
//
//   node dist/scripts/bench/wasm-kernels.js [reps=5]
//
// Every run gets freshly copied inputs, as in training (weights change every
// step): XNNPACK caches its packed "weights" per tensor, and reusing one input
// tensor across runs would time that cache instead of the kernel. Printed: the
// fastest run's wall-clock ms and, in brackets, its process CPU ms (the wasm
// backend is single-threaded, so CPU time is the kernel's own cost even when
// other processes share the machine).
import * as tf from '../../src/tf';
import { init } from '../../src/backend';
import { registerWasmGradientKernels, unregisterWasmGradientKernels } from '../../src/backend/wasm-kernels';

type Op = (...inputs: tf.Tensor[]) => tf.Tensor | tf.Tensor[];

interface Case {
  name: string;
  inputs: () => tf.Tensor[];
  op: Op;
}

interface Timing {
  wall: number;
  cpu: number;
}

interface ConvShape {
  label: string;
  x: [number, number, number, number];
  filter: [number, number, number, number];
  stride: number;
}

const CONVS: ConvShape[] = [
  { label: '3x3 48->12, batch 16, 32x32', x: [16, 32, 32, 48], filter: [3, 3, 48, 12], stride: 1 },
  { label: '1x1 192->48, batch 16, 32x32', x: [16, 32, 32, 192], filter: [1, 1, 192, 48], stride: 1 },
  { label: '3x3/2 48->48 (conv2dTranspose 16->32), batch 16', x: [16, 32, 32, 48], filter: [3, 3, 48, 48], stride: 2 },
  { label: '7x7/2 stem 3->64, batch 2, 224x224', x: [2, 224, 224, 3], filter: [7, 7, 3, 64], stride: 2 },
];

function outShape(c: ConvShape): number[] {
  const [n, h, w] = c.x;
  return [n, Math.ceil(h / c.stride), Math.ceil(w / c.stride), c.filter[3]];
}

function convCases(c: ConvShape): Case[] {
  const x = (): tf.Tensor => tf.randomNormal(c.x);
  const w = (): tf.Tensor => tf.randomNormal(c.filter);
  const dy = (): tf.Tensor => tf.randomNormal(outShape(c));
  return [
    { name: `${c.label}: forward conv`, inputs: () => [x(), w()], op: (a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, 'same') },
    {
      name: `${c.label}: input gradient (Conv2DBackpropInput)`,
      inputs: () => [dy(), w()],
      op: (g, b) => tf.conv2dTranspose(g as tf.Tensor4D, b as tf.Tensor4D, c.x, c.stride, 'same'),
    },
    {
      name: `${c.label}: filter gradient (Conv2DBackpropFilter)`,
      inputs: () => [x(), dy()],
      op: (a, g) => tf.engine().runKernel('Conv2DBackpropFilter', { x: a, dy: g }, {
        strides: [c.stride, c.stride], pad: 'same', dataFormat: 'NHWC', filterShape: c.filter,
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
    },
  ];
}

function otherCases(): Case[] {
  const act = [16, 32, 32, 96];
  const r = (shape: number[]) => (): tf.Tensor => tf.randomNormal(shape);
  return [
    { name: 'dense dA = dy w^T (matMul transposeB) [16384,48]x[192,48]^T', inputs: () => [r([16384, 48])(), r([192, 48])()], op: (g, w) => tf.matMul(g, w, false, true) },
    { name: 'dense dW = a^T dy (matMul transposeA) [16384,192]^T x [16384,48]', inputs: () => [r([16384, 192])(), r([16384, 48])()], op: (a, g) => tf.matMul(a, g, true, false) },
    { name: 'batched matMul 8x [256,64]x[64,128]', inputs: () => [r([8, 256, 64])(), r([8, 64, 128])()], op: (a, b) => tf.matMul(a, b) },
    {
      name: 'batchNorm (batch moments) forward+backward, [16,32,32,96]',
      inputs: () => [r(act)(), r([96])(), r([96])(), r(act)()],
      op: (x, g, b, dy) => tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
        const { mean, variance } = tf.moments(xx, [0, 1, 2]);
        return tf.sum(tf.mul(tf.batchNorm(xx, mean, variance, bb, gg, 1e-5), dy));
      })([x, g, b]),
    },
    {
      name: 'maxPool 3x3/2 same forward+backward, [16,32,32,96]',
      inputs: () => [r(act)()],
      op: (x) => tf.grads((xx: tf.Tensor) => tf.sum(tf.maxPool(xx as tf.Tensor4D, 3, 2, 'same')))([x]),
    },
    {
      name: 'concat 96+12 channels forward+backward, [16,32,32,*]',
      inputs: () => [r(act)(), r([16, 32, 32, 12])(), r([16, 32, 32, 108])()],
      op: (a, b, dy) => tf.grads((aa: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(tf.concat([aa, bb], 3), dy)))([a, b]),
    },
  ];
}

/** One timed run on fresh copies of the inputs; null when a kernel is missing. */
function runOnce(c: Case, inputs: tf.Tensor[]): Timing | null {
  const fresh = inputs.map((t) => tf.add(t, 0));
  fresh.forEach((t) => t.dataSync());
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  let out: tf.Tensor | tf.Tensor[];
  try {
    out = c.op(...fresh);
  } catch (err) {
    tf.dispose(fresh);
    if (/not registered/.test((err as Error).message)) return null;
    throw err;
  }
  const outs = Array.isArray(out) ? out : [out];
  outs.forEach((t) => t.dataSync());
  const wall = Number(process.hrtime.bigint() - wall0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  tf.dispose([...outs, ...fresh]);
  return { wall, cpu: (cpu.user + cpu.system) / 1e3 };
}

/** The fastest of `reps` runs (after one warm-up), or null when the kernel is missing. */
function best(c: Case, reps: number): Timing | null {
  const inputs = c.inputs();
  let result: Timing | null = runOnce(c, inputs);
  if (result) {
    for (let i = 0; i < reps; i++) {
      const t = runOnce(c, inputs) as Timing;
      result = { wall: Math.min(result.wall, t.wall), cpu: Math.min(result.cpu, t.cpu) };
    }
  }
  tf.dispose(inputs);
  return result;
}

function format(t: Timing | null | undefined): string {
  return t ? `${t.wall.toFixed(1)} (${t.cpu.toFixed(1)})` : 'missing';
}

async function main(): Promise<void> {
  const reps = Number(process.argv[2] ?? 5);
  await init('wasm', { log: null });
  const cases = [...CONVS.flatMap(convCases), ...otherCases()];
  const results = new Map<string, { before?: Timing | null; after?: Timing | null }>();
  for (const c of cases) {
    unregisterWasmGradientKernels();
    const before = best(c, reps);
    registerWasmGradientKernels();
    const after = best(c, reps);
    results.set(c.name, { before, after });
  }
  const width = Math.max(...cases.map((c) => c.name.length));
  console.log(`wasm backend, fastest of ${reps} runs on fresh inputs: wall ms (cpu ms)`);
  console.log(`${'kernel'.padEnd(width)}  ${'before (tfjs 4.22)'.padStart(18)}  ${'after'.padStart(14)}`);
  for (const [name, r] of results) console.log(`${name.padEnd(width)}  ${format(r.before).padStart(18)}  ${format(r.after).padStart(14)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
