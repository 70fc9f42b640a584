// The fused BatchNorm-ReLU kernels on the wasm backend (src/backend/wasm-fused-kernels.ts)
// against the composite ops the dense layers use without them (src/core/bn-relu-conv.ts).
//
//   node dist/scripts/bench/wasm-fused-kernels.js [reps=7] [NxHxWxC ...]
//
// Printed per shape and kernel: the fastest run's wall-clock ms, in brackets its process
// CPU ms (the wasm backend is single-threaded, so CPU time is the kernel's own cost even
// when other processes share the machine), and tf.profile's peak bytes above the inputs.
// The "pieces" rows run the kernels as a dense layer in memory-efficient mode does: x as
// channel pieces (feature maps of 24 channels, the first taking the remainder) and dx
// split back into them, added to running gradients.
import * as tf from '../../src/tf';
import { init } from '../../src/backend';
import { batchNormBackward, BatchNormWeights, bnRelu, ChannelStats } from '../../src/core/bn-relu-conv';
import { BN_RELU_GRAD, pieceInputs } from '../../src/core/fused-kernels';
import { registerWasmFusedKernels, unregisterWasmFusedKernels } from '../../src/backend/wasm-fused-kernels';

interface Timing {
  wall: number;
  cpu: number;
  peakBytes: number;
}

interface Inputs {
  x: tf.Tensor4D;
  dr: tf.Tensor4D;
  bn: BatchNormWeights;
  stats: ChannelStats;
  /** x as channel pieces, and a running gradient for each. */
  pieces: tf.Tensor4D[];
  accs: tf.Tensor4D[];
}

/** Piece widths of C channels: 24 each, the first taking the remainder. */
function pieceWidths(c: number): number[] {
  const n = Math.max(1, Math.floor(c / 24));
  return [c - 24 * (n - 1), ...Array<number>(n - 1).fill(24)];
}

function makeInputs(shape: [number, number, number, number]): Inputs {
  const c = shape[3];
  return tf.tidy(() => ({
    x: tf.randomNormal(shape, 0.2, 1, 'float32', 1) as tf.Tensor4D,
    dr: tf.randomNormal(shape, 0, 1, 'float32', 2) as tf.Tensor4D,
    bn: { gamma: tf.randomUniform([c], 0.5, 1.5, 'float32', 3) as tf.Tensor1D, beta: tf.randomUniform([c], -0.5, 0.5, 'float32', 4) as tf.Tensor1D },
    stats: { mean: tf.fill([c], 0.2) as tf.Tensor1D, invStd: tf.ones([c]) as tf.Tensor1D },
    pieces: tf.split(tf.randomNormal(shape, 0.2, 1, 'float32', 1), pieceWidths(c), 3) as tf.Tensor4D[],
    accs: tf.split(tf.randomNormal(shape, 0, 1, 'float32', 5), pieceWidths(c), 3) as tf.Tensor4D[],
  }));
}

/** The composite backward bn-relu-conv.ts falls back to: ReLU mask from r, then the BN gradient. */
function compositeBackward(r: tf.Tensor4D, inp: Inputs): tf.Tensor[] {
  const mask = tf.step(r);
  const dy = tf.mul(inp.dr, mask) as tf.Tensor4D;
  mask.dispose();
  const b = batchNormBackward(inp.x, dy, inp.bn, inp.stats);
  dy.dispose();
  return [b.dx, b.dGamma, b.dBeta];
}

function fusedBackward(inp: Inputs): tf.Tensor[] {
  return tf.engine().runKernel(BN_RELU_GRAD, {
    x: inp.x, dr: inp.dr, gamma: inp.bn.gamma, beta: inp.bn.beta, mean: inp.stats.mean, invStd: inp.stats.invStd,
  }) as tf.Tensor[];
}

function fusedPiecesBackward(inp: Inputs): tf.Tensor[] {
  return tf.engine().runKernel(BN_RELU_GRAD, {
    ...pieceInputs(inp.pieces), ...pieceInputs(inp.accs, 'acc'),
    dr: inp.dr, gamma: inp.bn.gamma, beta: inp.bn.beta, mean: inp.stats.mean, invStd: inp.stats.invStd,
  } as unknown as tf.NamedTensorMap, { splits: inp.pieces.map((p) => p.shape[3]) }) as tf.Tensor[];
}

async function time(reps: number, f: () => tf.Tensor | tf.Tensor[]): Promise<Timing> {
  tf.dispose(f()); // warm-up
  let wall = Infinity;
  let cpu = Infinity;
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const out = f();
    const t1 = process.hrtime.bigint();
    const c = process.cpuUsage(c0);
    tf.dispose(out);
    wall = Math.min(wall, Number(t1 - t0) / 1e6);
    cpu = Math.min(cpu, (c.user + c.system) / 1e3);
  }
  const before = tf.memory().numBytes;
  const profile = await tf.profile(() => {
    tf.dispose(f());
  });
  return { wall, cpu, peakBytes: profile.peakBytes - before };
}

function row(label: string, t: Timing): string {
  return `  ${label.padEnd(34)} ${t.wall.toFixed(2).padStart(8)} ms  (${t.cpu.toFixed(2).padStart(7)} cpu)  peak +${(t.peakBytes / 2 ** 20).toFixed(1)} MiB`;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const reps = args.length > 0 && /^\d+$/.test(args[0]) ? Number(args.shift()) : 7;
  const shapes = (args.length > 0 ? args : ['16x32x32x216', '64x32x32x216'])
    .map((s) => s.split('x').map(Number) as [number, number, number, number]);
  await init('wasm', { log: null });
  for (const shape of shapes) {
    const inp = makeInputs(shape);
    console.log(`[${shape}] (${(inp.x.size * 4 / 2 ** 20).toFixed(1)} MiB per tensor), best of ${reps}:`);
    unregisterWasmFusedKernels();
    const r = bnRelu(inp.x, inp.bn, inp.stats);
    const fwdComposite = await time(reps, () => bnRelu(inp.x, inp.bn, inp.stats));
    const bwdComposite = await time(reps, () => compositeBackward(r, inp));
    await registerWasmFusedKernels();
    const fwdFused = await time(reps, () => bnRelu(inp.x, inp.bn, inp.stats));
    const bwdFused = await time(reps, () => fusedBackward(inp));
    const fwdPieces = await time(reps, () => bnRelu(inp.pieces, inp.bn, inp.stats));
    const bwdPieces = await time(reps, () => fusedPiecesBackward(inp));
    console.log(row('forward, composite ops', fwdComposite));
    console.log(row('forward, fused (DenseNetBnRelu)', fwdFused));
    console.log(row('backward, composite ops', bwdComposite));
    console.log(row('backward, fused (DenseNetBnReluGrad)', bwdFused));
    console.log(row(`forward, fused, ${inp.pieces.length} pieces`, fwdPieces));
    console.log(row(`backward, fused, ${inp.pieces.length} pieces + accs`, bwdPieces));
    console.log(`  speed-up: forward ${(fwdComposite.cpu / fwdFused.cpu).toFixed(1)}x, backward ${(bwdComposite.cpu / bwdFused.cpu).toFixed(1)}x (cpu time)`);
    tf.dispose([r, inp.x, inp.dr, inp.bn.gamma, inp.bn.beta, inp.stats.mean, inp.stats.invStd, ...inp.pieces, ...inp.accs]);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
