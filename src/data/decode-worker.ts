// A decode worker thread: requests in, pixels out (their buffer transferred, not copied).
// Errors travel back as messages, so the file they name reaches the user unchanged.
import { parentPort, workerData } from 'node:worker_threads';
import { decodeSample, DecodeRequest, DecoderName, loadSharp } from './image-decoder';

interface Job {
  id: number;
  request: DecodeRequest;
}

const decoder = (workerData as { decoder: DecoderName }).decoder;
// One libvips thread per worker: the pool already has a worker per core.
if (decoder === 'sharp') loadSharp()?.concurrency(1);

parentPort!.on('message', (job: Job) => {
  decodeSample(decoder, job.request).then(
    (pixels) => parentPort!.postMessage({ id: job.id, pixels }, [pixels.buffer as ArrayBuffer]),
    (err: Error) => parentPort!.postMessage({ id: job.id, error: err.message }),
  );
});
