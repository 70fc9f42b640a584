// Per-kernel timings of the wasm training kernels, tfjs's own ("before") against
// src/backend/wasm-kernels.ts ("after").  Run: node dist/bench/wasm-kernels.js [reps]
import * as tf from '../src/tf';
import { init } from '../src/backend';
import { registerWasmGradientKernels, unregisterWasmGradientKernels } from '../src/backend/wasm-kernels';

interface ConvCase {
  name: string;
  x: [number, number, number, number];
  filter: [number, number, number, number];
  stride: number;
  pad: 'same' | 'valid';
}

const CONV_CASES: ConvCase[] = [
  { name: '3x3 48->12', x: [16, 32, 32, 48], filter: [3, 3, 48, 12], stride: 1, pad: 'same' },
  { name: '1x1 192->48', x: [16, 32, 32, 192], filter: [1, 1, 192, 48], stride: 1, pad: 'same' },
  { name: '3x3/2 (conv2dTranspose 48->48, 16->32)', x: [16, 32, 32, 48], filter: [3, 3, 48, 48], stride: 2, pad: 'same' },
  { name: '7x7/2 stem 3->64, batch 2 224x224', x: [2, 224, 224, 3], filter: [7, 7, 3, 64], stride: 2, pad: 'same' },
];

/** Median wall time in ms of `f` (whose result is read back and freed), after one warm-up call. */
function timeMs(f: () => tf.Tensor, reps: number): number {
  const once = (): number => {
    const start = process.hrtime.bigint();
    const t = f();
    t.dataSync();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    t.dispose();
    return ms;
  };
  once();
  const times = Array.from({ length: reps }, once).sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** Times `f`, or says why it cannot run (a missing kernel). */
function timeOrWhy(f: () => tf.Tensor, reps: number): string {
  try {
    return timeMs(f, reps).toFixed(1);
  } catch (err) {
    return /not registered/.test((err as Error).message) ? 'missing' : `error: ${(err as Error).message}`;
  }
}

type Row = { kernel: string; before: string; after: string };

function convRows(c: ConvCase, reps: number, phase: 'before' | 'after', rows: Map<string, Row>): void {
  const x = tf.randomNormal(c.x) as tf.Tensor4D;
  const w = tf.randomNormal(c.filter) as tf.Tensor4D;
  const y = tf.conv2d(x, w, c.stride, c.pad);
  const dy = tf.randomNormal(y.shape) as tf.Tensor4D;
  const ops: Record<string, () => tf.Tensor> = {
    'forward conv': () => tf.conv2d(x, w, c.stride, c.pad),
    'input gradient (Conv2DBackpropInput)': () => tf.conv2dTranspose(dy, w, c.x, c.stride, c.pad),
    'filter gradient (Conv2DBackpropFilter)': () =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
        strides: [c.stride, c.stride], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: c.filter,
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
  };
  for (const [op, f] of Object.entries(ops)) {
    const key = `${c.name}: ${op}`;
    const row = rows.get(key) ?? { kernel: key, before: '', after: '' };
    row[phase] = timeOrWhy(f, reps);
    rows.set(key, row);
  }
  tf.dispose([x, w, y, dy]);
}

function matMulRows(reps: number, phase: 'before' | 'after', rows: Map<string, Row>): void {
  // A dense layer's gradients: 16384 rows (16x32x32), 192 -> 48.
  const a = tf.randomNormal([16384, 192]);
  const w = tf.randomNormal([192, 48]);
  const dy = tf.randomNormal([16384, 48]);
  const ba = tf.randomNormal([8, 256, 64]);
  const bb = tf.randomNormal([8, 64, 128]);
  const ops: Record<string, () => tf.Tensor> = {
    'matMul [16384,192]x[192,48]': () => tf.matMul(a, w),
    'matMul dA = dy w^T (transposeB)': () => tf.matMul(dy, w, false, true),
    'matMul dW = a^T dy (transposeA)': () => tf.matMul(a, dy, true, false),
    'batched matMul 8x[256,64]x[64,128]': () => tf.matMul(ba, bb),
  };
  for (const [op, f] of Object.entries(ops)) {
    const row = rows.get(op) ?? { kernel: op, before: '', after: '' };
    row[phase] = timeOrWhy(f, reps);
    rows.set(op, row);
  }
  tf.dispose([a, w, dy, ba, bb]);
}

async function main(): Promise<void> {
  const reps = Number(process.argv[2] ?? 5);
  await init('wasm', { log: null });
  const rows = new Map<string, Row>();
  for (const phase of ['before', 'after'] as const) {
    if (phase === 'before') unregisterWasmGradientKernels();
    else registerWasmGradientKernels();
    for (const c of CONV_CASES) convRows(c, reps, phase, rows);
    matMulRows(reps, phase, rows);
  }
  const width = Math.max(...[...rows.keys()].map((k) => k.length));
  console.log(`wasm backend, median of ${reps} runs, ms (before = tfjs 4.22's wasm kernels, after = densenet-zoo's)`);
  console.log(`${'kernel'.padEnd(width)}  ${'before'.padStart(8)}  ${'after'.padStart(8)}`);
  for (const r of rows.values()) console.log(`${r.kernel.padEnd(width)}  ${r.before.padStart(8)}  ${r.after.padStart(8)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
