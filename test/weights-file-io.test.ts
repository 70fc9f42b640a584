import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import {
  fileSystem, loadLayersModelFromFile, ModelFileError, registerFileRouter, saveLayersModelToFile,
} from '../src/weights/file-io';
import { randomiseWeights, seededValues, tinyDenseNet } from './weights-tiny-model';

const CONFIG = {
  growthRate: 4, blockConfig: [2, 2], numInitFeatures: 8, bnSize: 2, numClasses: 5,
  inputShape: [32, 32, 3] as [number, number, number],
};

before(async () => {
  await init('cpu', { log: null });
});

async function tempDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'densenet-file-io-'));
}

function sampleInput(): tf.Tensor4D {
  return tf.tensor4d(seededValues(2 * 32 * 32 * 3, 99), [2, 32, 32, 3]);
}

async function predict(model: tf.LayersModel): Promise<Float32Array> {
  const x = sampleInput();
  const y = model.predict(x) as tf.Tensor;
  const out = (await y.data()) as Float32Array;
  tf.dispose([x, y]);
  return out;
}

async function savedModel(dir: string, options = {}): Promise<{ model: tf.LayersModel; expected: Float32Array }> {
  const model = tinyDenseNet(CONFIG);
  randomiseWeights(model, 3);
  await model.save(fileSystem(dir, options));
  return { model, expected: await predict(model) };
}

test('save then load gives identical predictions and weights', async () => {
  const dir = await tempDir();
  const { model, expected } = await savedModel(dir);
  const files = (await fsp.readdir(dir)).sort();
  assert.equal(files.length, 2);
  assert.equal(files[0], 'model.json');
  assert.match(files[1], /^weights\.[0-9a-f]{12}\.bin$/);
  const loaded = await tf.loadLayersModel(fileSystem(path.join(dir, 'model.json')));
  assert.deepEqual(await predict(loaded), expected);
  assert.equal(loaded.weights.length, model.weights.length);
  loaded.weights.forEach((w, i) => {
    assert.equal(w.originalName, model.weights[i].originalName);
    assert.deepEqual(w.read().dataSync(), model.weights[i].read().dataSync(), w.originalName);
  });
});

test('sharded save writes several shards and loads back identically; re-saving removes stale shards', async () => {
  const dir = await tempDir();
  const { model, expected } = await savedModel(dir, { maxShardBytes: 4096 });
  const files = (await fsp.readdir(dir)).sort();
  const shards = files.filter((f) => f.endsWith('.bin'));
  assert.ok(shards.length > 2, `expected several shards, got ${files.join(', ')}`);
  assert.ok(shards.every((s) => /^group1-shard\d+of\d+\.[0-9a-f]{12}\.bin$/.test(s)));
  assert.deepEqual(await predict(await loadLayersModelFromFile(dir)), expected);

  await saveLayersModelToFile(model, dir);
  const after = (await fsp.readdir(dir)).sort();
  assert.equal(after.length, 2, `old shards removed, no temp files: ${after.join(', ')}`);
  assert.match(after[1], /^weights\.[0-9a-f]{12}\.bin$/);
  assert.deepEqual(await predict(await loadLayersModelFromFile(dir)), expected);
});

test('file:// URLs work once the router is registered', async () => {
  const dir = await tempDir();
  const { expected } = await savedModel(dir);
  assert.equal(registerFileRouter(), true);
  assert.equal(registerFileRouter(), false, 'a second registration would make tfjs refuse file:// URLs');
  const loaded = await tf.loadLayersModel(`file://${dir}/model.json`);
  assert.deepEqual(await predict(loaded), expected);
  const dir2 = await tempDir();
  await loaded.save(`file://${dir2}`);
  assert.deepEqual(await predict(await loadLayersModelFromFile(dir2)), expected);
});

test('missing model.json is named', async () => {
  const dir = await tempDir();
  await assert.rejects(tf.loadLayersModel(fileSystem(dir)),
    (e: Error) => e instanceof ModelFileError && e.message === `${path.join(dir, 'model.json')}: model.json not found`);
});

test('truncated or corrupt model.json says so', async () => {
  const dir = await tempDir();
  await savedModel(dir);
  const file = path.join(dir, 'model.json');
  const text = await fsp.readFile(file, 'utf8');
  await fsp.writeFile(file, text.slice(0, Math.floor(text.length / 2)));
  await assert.rejects(loadLayersModelFromFile(dir), new RegExp(`${file}: corrupt or truncated model.json: not valid JSON`));
  await fsp.writeFile(file, JSON.stringify({ weightsManifest: [] }));
  await assert.rejects(loadLayersModelFromFile(dir), /corrupt model.json: no modelTopology/);
  await fsp.writeFile(file, JSON.stringify({ ...JSON.parse(text), weightsManifest: [{ paths: 'weights.bin', weights: [] }] }));
  await assert.rejects(loadLayersModelFromFile(dir), /weightsManifest\[0\]\.paths is not a list of file names/);
});

async function shardFiles(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((f) => f.endsWith('.bin')).sort();
}

test('a missing shard is named', async () => {
  const dir = await tempDir();
  await savedModel(dir);
  const [shard] = await shardFiles(dir);
  await fsp.rm(path.join(dir, shard));
  await assert.rejects(loadLayersModelFromFile(dir),
    new RegExp(`${path.join(dir, shard)}: weight shard listed in ${path.join(dir, 'model.json')} is missing`));
});

test('a truncated or overlong shard: its size does not match the manifest', async () => {
  const dir = await tempDir();
  await savedModel(dir, { maxShardBytes: 4096 });
  const shard = path.join(dir, (await shardFiles(dir))[0]);
  const bytes = await fsp.readFile(shard);
  await fsp.writeFile(shard, bytes.subarray(0, bytes.length - 100));
  await assert.rejects(loadLayersModelFromFile(dir),
    /model\.json: weight group 1: the manifest describes (\d+) bytes of weights but the shard files hold \d+ .*group1-shard1of\d+\.\w+\.bin 3996.*a shard is truncated/);
  await fsp.writeFile(shard, Buffer.concat([bytes, Buffer.alloc(8)]));
  await assert.rejects(loadLayersModelFromFile(dir), /a shard is too long or does not belong to this model.json/);
});

test('a topology tfjs cannot build is reported with the file name', async () => {
  const dir = await tempDir();
  await savedModel(dir);
  const file = path.join(dir, 'model.json');
  const json = JSON.parse(await fsp.readFile(file, 'utf8'));
  json.modelTopology.config.layers[1].class_name = 'NoSuchLayer';
  await fsp.writeFile(file, JSON.stringify(json));
  await assert.rejects(loadLayersModelFromFile(dir), new RegExp(`${file}: cannot build the model from model.json: .*NoSuchLayer`));
});

test('saving is all-or-nothing: a failed save removes what it wrote, new shards never overwrite old ones', async () => {
  const dir = await tempDir();
  const { expected } = await savedModel(dir);
  const oldShards = await shardFiles(dir);
  const other = tinyDenseNet(CONFIG);
  randomiseWeights(other, 8);

  // The last step of a save, renaming model.json into place, fails when a directory is in the way.
  const blocked = await tempDir();
  await fsp.mkdir(path.join(blocked, 'model.json'));
  await assert.rejects(other.save(fileSystem(blocked)));
  assert.deepEqual(await fsp.readdir(blocked), ['model.json'], 'new shards and temp files removed');

  // Shards are named by content, so the old model.json keeps its own shards until it is replaced.
  const scratch = await tempDir();
  await other.save(fileSystem(scratch));
  const newShards = await shardFiles(scratch);
  assert.equal(newShards.filter((s) => oldShards.includes(s)).length, 0);
  assert.deepEqual(await predict(await loadLayersModelFromFile(dir)), expected);
});
