// Weight files as an attacker (or a damaged disk) makes them: shard paths that leave their folder
// or name a device or FIFO (refused before anything is opened for reading), shards that do not
// hash to their name, NaN or infinite values, negative BatchNorm variances, non-float dtypes,
// a shipped manifest whose url leaves weights/, downloads that fail or have no end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import * as zoo from '../src/zoo';
import { saveLayersModelToFile } from '../src/weights/file-io';
import { loadTfjsWeights, readTfjsWeights } from '../src/weights/tfjs-weights';
import { downloadBytes } from '../src/weights/download';
import { shippedFile } from '../src/zoo/shipped-weights';
import { tempDir } from './data-fixtures';
import { TINY_MODEL, TINY_SPEC_OPTIONS } from './train-fixtures';

const tmp = tempDir('weights-untrusted');
const OPTIONS = { ...TINY_SPEC_OPTIONS, inputShape: [8, 8, 1] as [number, number, number], numClasses: 10 };
let saved: string;

const tiny = () => zoo.create(TINY_MODEL, { ...OPTIONS, seed: 1 });

/** A saved copy of the tiny model in a folder of its own, its model.json edited by `edit`. */
async function savedCopy(name: string, edit: (json: any) => void = () => {}): Promise<string> {
  const dir = path.join(tmp.dir, name);
  fs.cpSync(saved, dir, { recursive: true });
  const file = path.join(dir, 'model.json');
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(json);
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

async function refusedLoad(modelJson: string, pattern: RegExp): Promise<void> {
  const model = tiny();
  try {
    await assert.rejects(loadTfjsWeights(model, modelJson), (e: Error) => {
      assert.match(e.message, pattern);
      assert.ok(!e.message.includes('\n'), 'one line');
      return true;
    });
  } finally {
    model.dispose();
  }
}

before(async () => {
  await init('cpu', { log: null });
  saved = path.join(tmp.dir, 'saved');
  const model = tiny();
  await saveLayersModelToFile(model, saved);
  model.dispose();
});
after(() => tmp.cleanup());

test('shard paths that leave the folder are refused before anything is opened (a FIFO there would hang a read)', { timeout: 20_000 }, async () => {
  const fifo = path.join(tmp.dir, 'outside.fifo');
  execFileSync('mkfifo', [fifo]);
  for (const bad of ['../outside.fifo', fifo, '/dev/zero', 'sub/../../outside.fifo']) {
    const file = await savedCopy(`traversal-${bad.replace(/\W/g, '_')}`, (json) => (json.weightsManifest[0].paths = [bad]));
    await refusedLoad(file, /is not a plain relative name inside its folder \(no '\.\.', no absolute path\)/);
  }
});

test('a shard that is a symlink out of the folder, or a FIFO inside it, is refused without reading it', { timeout: 20_000 }, async () => {
  const file = await savedCopy('symlinked');
  const [shard] = JSON.parse(fs.readFileSync(file, 'utf8')).weightsManifest[0].paths;
  fs.rmSync(path.join(path.dirname(file), shard));
  fs.symlinkSync('/dev/zero', path.join(path.dirname(file), shard));
  await refusedLoad(file, /weight shard listed in .*model\.json leads outside .* \(to \/dev\/zero\); it must be inside that folder/);

  const withFifo = await savedCopy('fifo', (json) => (json.weightsManifest[0].paths = ['w.fifo']));
  execFileSync('mkfifo', [path.join(path.dirname(withFifo), 'w.fifo')]);
  await refusedLoad(withFifo, /w\.fifo: weight shard listed in .* is not a regular file \(a device, FIFO or folder\)/);
});

test('a model.json that is a device is refused, not read', { timeout: 20_000 }, async () => {
  const dir = path.join(tmp.dir, 'device-json');
  fs.mkdirSync(dir);
  fs.symlinkSync('/dev/zero', path.join(dir, 'model.json'));
  await refusedLoad(path.join(dir, 'model.json'), /cannot read model\.json: .*is not a regular file/);
});

test('a checkpoint shard whose bytes do not hash to its name (weights.<sha12>.bin) is refused', async () => {
  const file = await savedCopy('flipped');
  const [shard] = JSON.parse(fs.readFileSync(file, 'utf8')).weightsManifest[0].paths;
  assert.match(shard, /^weights\.[0-9a-f]{12}\.bin$/);
  const bytes = fs.readFileSync(path.join(path.dirname(file), shard));
  bytes[bytes.length - 1] ^= 0x01;
  fs.writeFileSync(path.join(path.dirname(file), shard), bytes);
  await refusedLoad(file, new RegExp(`${shard}: weight data does not match the hash in its name \\(sha256 begins [0-9a-f]{12}, the name says ${shard.slice(8, 20)}\\); the shard is damaged`));
});

/** Saves the tiny model after `poison` changed one of its weights. */
async function savedWith(name: string, poison: (model: zoo.ZooModel) => void): Promise<string> {
  const model = tiny();
  poison(model);
  const dir = path.join(tmp.dir, name);
  await saveLayersModelToFile(model, dir);
  model.dispose();
  return path.join(dir, 'model.json');
}

function setFirst(model: zoo.ZooModel, suffix: string, value: number): string {
  const w = model.weights.find((v) => v.originalName.endsWith(suffix))!;
  const values = Float32Array.from(w.read().dataSync() as Float32Array);
  values[1] = value;
  w.write(tf.tensor(values, w.shape as number[]));
  return w.originalName;
}

test('weights holding NaN or infinities, or a negative BatchNorm variance, are refused naming the tensor', async () => {
  let name = '';
  const nan = await savedWith('nan', (m) => (name = setFirst(m, 'kernel', NaN)));
  await refusedLoad(nan, new RegExp(`tensor '${name}' holds NaN at index 1; weights must be finite numbers`));
  const inf = await savedWith('inf', (m) => (name = setFirst(m, 'gamma', Infinity)));
  await refusedLoad(inf, new RegExp(`tensor '${name}' holds Infinity at index 1`));
  const negative = await savedWith('negative-variance', (m) => (name = setFirst(m, 'moving_variance', -0.5)));
  await refusedLoad(negative, new RegExp(`tensor '${name}' is a BatchNorm running variance and holds -0\\.5 at index 1; variances cannot be negative`));
});

test('classify refuses to print NaN probabilities from non-finite weights', async () => {
  const model = tiny();
  try {
    setFirst(model, 'classifier/bias', NaN);
    const image = { width: 8, height: 8, rgba: new Uint8Array(8 * 8 * 4).fill(100) };
    await assert.rejects(model.classify(image), /the class probabilities are NaN: the model's weights hold NaN or infinite values/);
  } finally {
    model.dispose();
  }
});

test('int32 or string as the dtype of model weights is refused naming the file and the weight', async () => {
  const asInt = await savedCopy('int32', (json) => (json.weightsManifest[0].weights[0].dtype = 'int32'));
  await refusedLoad(asInt, /model\.json: weight '.*' has dtype int32; model weights are float32/);
  const asString = await savedCopy('string', (json) => (json.weightsManifest[0].weights[0].dtype = 'string'));
  await refusedLoad(asString, /model\.json: weight '.*' has dtype string; weight files hold float32, int32, bool, complex64/);
});

test("the shipped manifest's url must stay inside weights/", () => {
  const root = path.join(tmp.dir, 'package');
  const manifest = path.join(root, 'weights', 'manifest.json');
  fs.mkdirSync(path.join(root, 'weights', 'm'), { recursive: true });
  fs.writeFileSync(path.join(root, 'weights', 'm', 'model.json'), '{}');
  fs.writeFileSync(path.join(root, 'secret.json'), '{}');
  assert.equal(shippedFile('weights/m/model.json', manifest), fs.realpathSync(path.join(root, 'weights', 'm', 'model.json')));
  assert.throws(() => shippedFile('weights/../../../../etc/passwd', manifest), /is not a plain relative name inside its folder/);
  assert.throws(() => shippedFile('/etc/passwd', manifest), /is not a plain relative name inside its folder/);
  assert.throws(() => shippedFile('secret.json', manifest), /weights file of a record in .*manifest\.json is not a plain relative name inside its folder/);
  fs.symlinkSync(path.join(root, 'secret.json'), path.join(root, 'weights', 'link.json'));
  assert.throws(() => shippedFile('weights/link.json', manifest), /leads outside/);
});

test('downloads: a missing remote shard names its URL; a body past the size limit is cut off', async () => {
  const body = Buffer.alloc(100, 1);
  const modelJson = fs.readFileSync(path.join(saved, 'model.json'));
  const server = http.createServer((req, res) => {
    if (req.url === '/m/model.json') res.end(modelJson);
    else if (req.url === '/big') res.end(body);
    else {
      res.statusCode = 404;
      res.end('no');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const [shard] = JSON.parse(modelJson.toString()).weightsManifest[0].paths;
    await assert.rejects(readTfjsWeights(`${base}/m/model.json`), new RegExp(`${base}/m/${shard.replace(/\./g, '\\.')}: download failed: HTTP 404`));
    await assert.rejects(downloadBytes(`${base}/big`, 10), new RegExp(`${base}/big: download failed: the server announces 100 bytes, more than the 10 allowed`));
  } finally {
    server.close();
  }
});
