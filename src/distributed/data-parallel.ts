// Data-parallel training over a Communicator: every rank takes a contiguous shard of the
// global batch, scales its loss by its share of the batch, and the gradients are summed over
// the ranks, so the update is the global batch's on every rank. Optionally BatchNorm's batch
// statistics are reduced too (synchronised BatchNorm): then N ranks on B/N images each
// compute exactly what one process computes on B.
import * as tf from '../tf';
import type { Batch } from '../data/dataset';
import type { BatchStatsReducer, Moments } from '../core/bn-relu-conv';
import type { Communicator } from './communicator';

/** At most this many floats per collective: large enough to fill the link, small enough to copy cheaply. */
export const BUCKET_FLOATS = 4 << 20;

/** Backends whose tensors live in host memory: synchronised BatchNorm reads its moments synchronously. */
const HOST_BACKENDS = ['cpu', 'wasm', 'torch-cpu', 'tensorflow'];

export interface DataParallelOptions {
  syncBatchNorm: boolean;
}

/** [start, end) of `rank`'s samples in a batch of `count`. */
export function shardRange(count: number, rank: number, size: number): [number, number] {
  return [Math.floor((rank * count) / size), Math.floor(((rank + 1) * count) / size)];
}

/** Float32 arrays of at most BUCKET_FLOATS (one array may exceed it alone), with where each input lies. */
function packBuckets(arrays: Float32Array[]): { buckets: Float32Array[]; places: Array<{ bucket: number; offset: number }> } {
  const sizes: number[] = [];
  const places = arrays.map((a) => {
    const last = sizes.length - 1;
    if (last < 0 || sizes[last] + a.length > BUCKET_FLOATS) {
      sizes.push(a.length);
      return { bucket: sizes.length - 1, offset: 0 };
    }
    sizes[last] += a.length;
    return { bucket: last, offset: sizes[last] - a.length };
  });
  const buckets = sizes.map((n) => new Float32Array(n));
  arrays.forEach((a, i) => buckets[places[i].bucket].set(a, places[i].offset));
  return { buckets, places };
}

function unpack(buckets: Float32Array[], places: Array<{ bucket: number; offset: number }>, lengths: number[]): Float32Array[] {
  return places.map((p, i) => buckets[p.bucket].subarray(p.offset, p.offset + lengths[i]));
}

export class DataParallel {
  /** Sample count of this rank's shard and of the global batch, for the step being computed. */
  private counts = { local: 0, global: 0 };

  constructor(readonly comm: Communicator, readonly options: DataParallelOptions) {
    if (options.syncBatchNorm && !HOST_BACKENDS.includes(tf.getBackend())) {
      throw new Error(`--sync-bn reduces BatchNorm moments inside the forward pass, which needs a backend with host memory ` +
        `(${HOST_BACKENDS.join(', ')}); this run is on ${tf.getBackend()}`);
    }
  }

  get rank(): number {
    return this.comm.rank;
  }

  get size(): number {
    return this.comm.size;
  }

  get isLeader(): boolean {
    return this.comm.rank === 0;
  }

  /** This rank's contiguous share of a global batch; the loss weight of the step follows from it. */
  shard(batch: Batch): Batch {
    if (batch.count < this.size) {
      throw new Error(`batch ${batch.index + 1} holds ${batch.count} samples, fewer than the ${this.size} ranks: ` +
        'choose a batch size that leaves every rank at least one sample in the last batch of the epoch');
    }
    const [lo, hi] = shardRange(batch.count, this.rank, this.size);
    const imageFloats = batch.images.length / batch.count;
    const labelsPer = batch.labels.length / batch.count;
    this.counts = { local: hi - lo, global: batch.count };
    return {
      ...batch,
      images: batch.images.subarray(lo * imageFloats, hi * imageFloats),
      labels: batch.labels.subarray(lo * labelsPer, hi * labelsPer),
      count: hi - lo,
      shape: [hi - lo, batch.shape[1], batch.shape[2], batch.shape[3]],
      sampleIndices: batch.sampleIndices.subarray(lo, hi),
    };
  }

  /** The factor of this rank's mean loss in the global batch's mean loss: its share of the samples. */
  get lossWeight(): number {
    return this.counts.local / this.counts.global;
  }

  /**
   * Sums gradients (of loss x lossWeight) and `figures` over the ranks, in place for the figures;
   * returns the summed gradients as new tensors and disposes the given ones.
   */
  async reduceGradients(grads: tf.Tensor[], figures: Float32Array): Promise<tf.Tensor[]> {
    const host = (await Promise.all(grads.map((g) => g.data()))) as Float32Array[];
    const { buckets, places } = packBuckets(host);
    this.comm.allreduce([...buckets, figures], 'sum');
    const summed = unpack(buckets, places, host.map((h) => h.length));
    const out = grads.map((g, i) => tf.tensor(summed[i], g.shape, 'float32'));
    tf.dispose(grads);
    return out;
  }

  /** Makes every rank's values rank 0's: float32 arrays, written back in place. */
  broadcastArrays(arrays: Float32Array[]): void {
    const { buckets, places } = packBuckets(arrays);
    this.comm.broadcast(buckets, 0);
    unpack(buckets, places, arrays.map((a) => a.length)).forEach((v, i) => arrays[i].set(v));
  }

  /** Gives every rank rank 0's values of these variables (weights, running statistics). */
  async broadcastVariables(variables: tf.LayerVariable[]): Promise<void> {
    const values = (await Promise.all(variables.map((v) => v.read().data()))).map((d) => Float32Array.from(d as Float32Array));
    this.broadcastArrays(values);
    variables.forEach((v, i) => tf.tidy(() => {
      v.write(tf.tensor(values[i], v.read().shape, 'float32'));
    }));
  }

  /** Synchronised BatchNorm's reductions, or undefined when BatchNorm uses each rank's own shard. */
  batchStatsReducer(): BatchStatsReducer | undefined {
    return this.options.syncBatchNorm ? new SyncBatchNorm(this.comm) : undefined;
  }
}

/** Moments and BN-gradient sums reduced over the ranks, combined in float64. */
class SyncBatchNorm implements BatchStatsReducer {
  constructor(private readonly comm: Communicator) {}

  moments(local: Moments, count: number): Moments {
    const c = local.mean.shape[0];
    // An allgather as a sum: each rank fills its own slot of [count, mean..., variance...].
    const slot = 1 + 2 * c;
    const all = new Float32Array(slot * this.comm.size);
    const at = this.comm.rank * slot;
    all[at] = count;
    all.set(local.mean.dataSync() as Float32Array, at + 1);
    all.set(local.variance.dataSync() as Float32Array, at + 1 + c);
    this.comm.allreduce([all], 'sum');
    // Chan et al.'s parallel variance: sum of the ranks' squared deviations about the global mean.
    const mean = new Float64Array(c);
    const m2 = new Float64Array(c);
    let total = 0;
    for (let r = 0; r < this.comm.size; r++) total += all[r * slot];
    for (let r = 0; r < this.comm.size; r++) {
      const n = all[r * slot];
      for (let j = 0; j < c; j++) mean[j] += (n * all[r * slot + 1 + j]) / total;
    }
    for (let r = 0; r < this.comm.size; r++) {
      const n = all[r * slot];
      for (let j = 0; j < c; j++) {
        const d = all[r * slot + 1 + j] - mean[j];
        m2[j] += n * (all[r * slot + 1 + c + j] + d * d);
      }
    }
    return {
      mean: tf.tensor1d(Float32Array.from(mean), 'float32'),
      variance: tf.tensor1d(Float32Array.from(m2, (v) => v / total), 'float32'),
    };
  }

  gradientSums(sumDy: tf.Tensor1D, sumDyX: tf.Tensor1D, count: number): { sumDy: tf.Tensor1D; sumDyX: tf.Tensor1D; count: number } {
    const c = sumDy.shape[0];
    const buffer = new Float32Array(1 + 2 * c);
    buffer[0] = count;
    buffer.set(sumDy.dataSync() as Float32Array, 1);
    buffer.set(sumDyX.dataSync() as Float32Array, 1 + c);
    this.comm.allreduce([buffer], 'sum');
    return { count: buffer[0], sumDy: tf.tensor1d(buffer.subarray(1, 1 + c)), sumDyX: tf.tensor1d(buffer.subarray(1 + c)) };
  }
}
