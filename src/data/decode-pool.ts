// A small pool of decode workers (one per core), shared by every dataset of the process. A worker
// keeps the process alive only while it has work, so a finished run exits without closing it.
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { decodeSample, DecodeRequest, DecoderName } from './image-decoder';

interface Pending {
  resolve: (pixels: Uint8Array) => void;
  reject: (err: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  pending: Map<number, Pending>;
}

export function defaultWorkerCount(): number {
  return Math.max(1, typeof availableParallelism === 'function' ? availableParallelism() : cpus().length);
}

export class DecodePool {
  private readonly workers: PoolWorker[] = [];
  private nextId = 0;

  constructor(readonly decoder: DecoderName, readonly size: number = defaultWorkerCount()) {
    for (let i = 0; i < size; i++) this.workers.push(this.spawn());
  }

  decode(request: DecodeRequest): Promise<Uint8Array> {
    // The least busy worker: results depend only on the request, so any worker gives the same bytes.
    const target = this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (target.pending.size === 0) target.worker.ref();
      target.pending.set(id, { resolve, reject });
      target.worker.postMessage({ id, request });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }

  private spawn(): PoolWorker {
    const worker = new Worker(join(__dirname, 'decode-worker.js'), { workerData: { decoder: this.decoder } });
    const entry: PoolWorker = { worker, pending: new Map() };
    worker.unref();
    worker.on('message', (msg: { id: number; pixels?: Uint8Array; error?: string }) => {
      const job = entry.pending.get(msg.id);
      if (!job) return;
      entry.pending.delete(msg.id);
      if (entry.pending.size === 0) worker.unref();
      if (msg.error !== undefined) job.reject(new Error(msg.error));
      else job.resolve(msg.pixels!);
    });
    worker.on('error', (err) => this.replace(entry, err));
    return entry;
  }

  /** A crashed worker fails its own jobs (there is no telling which file did it) and is replaced. */
  private replace(entry: PoolWorker, err: Error): void {
    for (const job of entry.pending.values()) job.reject(new Error(`image decode worker failed: ${err.message}`));
    entry.pending.clear();
    const i = this.workers.indexOf(entry);
    if (i >= 0) this.workers[i] = this.spawn();
  }
}

const pools = new Map<string, DecodePool>();

/** The process's pool for a decoder and size, started on first use. */
export function sharedDecodePool(decoder: DecoderName, size = defaultWorkerCount()): DecodePool {
  const key = `${decoder}/${size}`;
  let pool = pools.get(key);
  if (!pool) pools.set(key, (pool = new DecodePool(decoder, size)));
  return pool;
}

/** Decodes in worker threads, or in this thread when `workers` is 0. */
export function decoderFunction(decoder: DecoderName, workers: number): (request: DecodeRequest) => Promise<Uint8Array> {
  if (workers === 0) return (request) => decodeSample(decoder, request);
  // Workers start with the first image, not when a dataset is merely opened.
  return (request) => sharedDecodePool(decoder, workers).decode(request);
}

export async function closeDecodePools(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((p) => p.close()));
}
