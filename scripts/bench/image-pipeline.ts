// The image-folder data pipeline: can decoding keep up with training?
//
//   npx tsc -p tsconfig.json && node dist/scripts/bench/image-pipeline.js [--images 96] [--batch 16] [--steps 6] [--backend torch-cpu|wasm]
//
// Writes a folder of 500x375 JPEGs (two classes, seeded noise over gradients) to a temporary
// directory, then prints:
//  1. decode + resize of one 500x375 JPEG to 224x224, pure JS against sharp (median ms, main thread);
//  2. images/s of the pipeline alone (ImageFolder batches at 224x224, random-resized crops, workers);
//  3. training a small DenseNet (densenet121 layout with one layer per block, k 8) on those batches:
//     ms per step, ms per batch the step waited for data, and whether decoding keeps up.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as jpeg from 'jpeg-js';
import * as tf from '../../src/tf';
import { init } from '../../src/backend';
import { closeDecodePools, ImageFolder } from '../../src/data';
import { defaultWorkerCount } from '../../src/data/decode-pool';
import { decodeWithJs, decodeWithSharp, DecodeRequest, DecoderName, loadSharp } from '../../src/data/image-decoder';
import { Rng } from '../../src/random/prng';
import * as zoo from '../../src/zoo';
import { trainingHarness } from '../../src/measure/training-step';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const textFlag = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

const W = 500;
const H = 375;

function writeJpegs(dir: string, count: number): void {
  const rng = Rng.from(7);
  for (let i = 0; i < count; i++) {
    const cls = `class${i % 2}`;
    mkdirSync(join(dir, cls), { recursive: true });
    const data = Buffer.alloc(W * H * 4);
    for (let p = 0; p < W * H; p++) {
      const [x, y] = [p % W, Math.floor(p / W)];
      data.set([(x + i * 13) % 256, (y * (1 + (i % 2))) % 256, rng.int(256), 255], 4 * p);
    }
    writeFileSync(join(dir, cls, `img${i}.jpg`), jpeg.encode({ data, width: W, height: H }, 90).data);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function decodeMs(decoder: DecoderName, req: DecodeRequest, reps: number): Promise<number> {
  const sharp = loadSharp();
  const once = () => (decoder === 'js' ? Promise.resolve(decodeWithJs(req)) : decodeWithSharp(sharp!, req));
  await once();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await once();
    times.push(performance.now() - t0);
  }
  return median(times);
}

async function pipelineImagesPerSecond(ds: ImageFolder, batch: number): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  for await (const b of ds.batches('train', { batchSize: batch, augment: true, seed: 1 })) n += b.count;
  return n / ((performance.now() - t0) / 1000);
}

const smallDenseNet = () => zoo.create('densenet121', { blockLayers: [1, 1, 1, 1], growthRate: 8, numClasses: 2, seed: 1 });

/** ms per training step on one synthetic batch, with no decoding running beside it. */
async function baselineStepMs(batch: number, steps: number): Promise<number> {
  const model = smallDenseNet();
  const harness = trainingHarness(model, batch);
  await harness.step();
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    await harness.step();
    times.push(performance.now() - t0);
  }
  harness.dispose();
  model.dispose();
  return median(times);
}

async function trainWithPipeline(ds: ImageFolder, batch: number, steps: number) {
  const model = smallDenseNet();
  const optimizer = tf.train.momentum(0.01, 0.9, true);
  const stepMs: number[] = [];
  const waitMs: number[] = [];
  const iterator = ds.batches('train', { batchSize: batch, augment: true, seed: 2 });
  let count = 0;
  const t0 = performance.now();
  for (let s = 0; s <= steps; s++) {
    const w0 = performance.now();
    const next = await iterator.next();
    if (next.done) break;
    const waited = performance.now() - w0;
    const b = next.value;
    const s0 = performance.now();
    const loss = optimizer.minimize(() => tf.tidy(() => {
      const x = tf.tensor4d(b.images, b.shape);
      const y = tf.oneHot(tf.tensor1d(b.labels, 'int32'), 2);
      return tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
    }), true);
    loss?.dataSync();
    loss?.dispose();
    // Step 0 builds kernels and fills the prefetch queue: not counted.
    if (s > 0) {
      stepMs.push(performance.now() - s0);
      waitMs.push(waited);
      count += b.count;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  await iterator.return();
  model.dispose();
  optimizer.dispose();
  return { stepMs: median(stepMs), waitMs: median(waitMs), maxWaitMs: Math.max(...waitMs), imagesPerSecond: count / seconds };
}

async function main(): Promise<void> {
  const images = flag('--images', 96);
  const batch = flag('--batch', 16);
  const steps = flag('--steps', 6);
  const backend = await init(textFlag('--backend'));
  const dir = mkdtempSync(join(tmpdir(), 'densenet-pipeline-'));
  try {
    writeJpegs(dir, images);
    const req: DecodeRequest = { file: join(dir, 'class0', 'img0.jpg'), crop: { kind: 'whole' }, flip: false, height: 224, width: 224, channels: 3 };
    const hasSharp = !!loadSharp();
    const js = await decodeMs('js', req, 15);
    const sharp = hasSharp ? await decodeMs('sharp', req, 15) : undefined;
    console.log(`decode + resize 500x375 JPEG -> 224x224, one thread: js ${js.toFixed(1)} ms` +
      (sharp !== undefined ? `, sharp ${sharp.toFixed(1)} ms (${(js / sharp).toFixed(1)}x faster)` : ', sharp not installed'));
    const workers = defaultWorkerCount();
    const baseline = await baselineStepMs(batch, steps);
    console.log(`training step alone (synthetic batch ${batch}, 224x224, ${backend.name}): ${baseline.toFixed(0)} ms, ${((batch / baseline) * 1000).toFixed(1)} images/s`);
    const decoders: DecoderName[] = hasSharp ? ['sharp', 'js'] : ['js'];
    for (const decoder of decoders) {
      const ds = new ImageFolder({ dir, inputShape: [224, 224, 3], valFraction: 0, augmentation: 'imagenet', decoder });
      const alone = await pipelineImagesPerSecond(ds, batch);
      const run = await trainWithPipeline(ds, batch, steps);
      const decodePerBatch = (batch / alone) * 1000;
      console.log(`${decoder}, ${workers} workers: pipeline alone ${alone.toFixed(0)} images/s (${decodePerBatch.toFixed(0)} ms per batch of ${batch}); ` +
        `training on ${backend.name}: ${run.imagesPerSecond.toFixed(1)} images/s, step ${run.stepMs.toFixed(0)} ms, waited for data ${run.waitMs.toFixed(1)} ms per step (max ${run.maxWaitMs.toFixed(1)}): ` +
        // Keeping up: the step hardly waits, and decoding alone outpaces the step alone.
        (run.waitMs < 0.05 * run.stepMs && alone > (batch / baseline) * 1000 ? 'decoding keeps up' : 'decoding does NOT keep up') +
        ` (the step itself ${(100 * (run.stepMs / baseline - 1)).toFixed(0)}% slower than alone: decoding shares the cores)`);
    }
  } finally {
    await closeDecodePools();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
