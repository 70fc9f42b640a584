// One rank of the gradient-averaging test (started twice by test/data-parallel.test.ts with
// torchrun's variables): the gradients of this rank's shard, summed over the ranks by the
// communicator, against the two shards' gradients computed here one after the other.
import { writeFileSync } from 'node:fs';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import * as zoo from '../src/zoo';
import { Communicator } from '../src/distributed/communicator';
import { DataParallel, shardRange } from '../src/distributed/data-parallel';
import { worldFromEnv } from '../src/distributed/world';
import { Rng } from '../src/random/prng';
import { softmaxCrossEntropy } from '../src/train/losses';
import type { Batch } from '../src/data/dataset';

const GLOBAL_BATCH = 8;
const SHAPE: [number, number, number] = [8, 8, 3];

function syntheticBatch(): Batch {
  const rng = Rng.from(7);
  const images = Float32Array.from({ length: GLOBAL_BATCH * SHAPE[0] * SHAPE[1] * SHAPE[2] }, () => rng.float() * 2 - 1);
  const labels = Int32Array.from({ length: GLOBAL_BATCH }, () => rng.int(5));
  return { images, labels, count: GLOBAL_BATCH, shape: [GLOBAL_BATCH, ...SHAPE], index: 0, sampleIndices: Uint32Array.from({ length: GLOBAL_BATCH }, (_, i) => i) };
}

function gradientsOf(model: tf.LayersModel, batch: Batch, weight: number): tf.Tensor[] {
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const { grads, value } = tf.variableGrads(() => {
    const images = tf.tensor4d(batch.images, batch.shape);
    const logits = model.apply(images, { training: true }) as tf.Tensor;
    return tf.mul(softmaxCrossEntropy(logits, tf.tensor1d(batch.labels, 'int32')), weight) as tf.Scalar;
  }, vars);
  value.dispose();
  return vars.map((v) => grads[v.name]);
}

async function main(): Promise<void> {
  const [out, backend] = process.argv.slice(2);
  await init(backend);
  const world = worldFromEnv()!;
  const comm = Communicator.join(world, { timeoutMs: 60_000 });
  const parallel = new DataParallel(comm, { syncBatchNorm: false });
  const model = zoo.create('densenet-bc-100-k12', { depth: 10, growthRate: 4, inputShape: SHAPE, numClasses: 5, seed: 3 });
  const batch = syntheticBatch();

  const mine = parallel.shard(batch);
  const figures = Float32Array.of(mine.count);
  const reduced = await parallel.reduceGradients(gradientsOf(model, mine, parallel.lossWeight), figures);
  const pixels = SHAPE[0] * SHAPE[1] * SHAPE[2];
  const separate = [0, 1].map((r) => {
    const [lo, hi] = shardRange(batch.count, r, world.size);
    return gradientsOf(model, {
      ...batch, images: batch.images.subarray(lo * pixels, hi * pixels), labels: batch.labels.subarray(lo, hi), count: hi - lo, shape: [hi - lo, ...SHAPE],
    }, 1);
  });
  const flat = async (ts: tf.Tensor[]) => Array.from((await Promise.all(ts.map((t) => t.data()))).flatMap((d) => Array.from(d)));
  writeFileSync(out, JSON.stringify({
    rank: world.rank, samples: figures[0], reduced: await flat(reduced), rank0: await flat(separate[0]), rank1: await flat(separate[1]),
  }));
  comm.close();
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
