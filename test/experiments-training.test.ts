// The training experiments (fashion-mnist, fashion-mosaics) in their --quick mode: train, evaluate,
// ship the weights with their hash, check the shipped copy, write results and figures; and the
// weights the repository ships: every manifest record verifies and loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PNG } from 'pngjs';
import * as zoo from '../src/zoo';
import { init } from '../src/backend';
import { readManifest, verifyWeights, weightsDigest } from '../src/zoo/shipped-weights';
import { tfjsWeightsDigest } from '../src/weights/digest';
import { loadTfjsWeights } from '../src/weights/tfjs-weights';

const EXPERIMENTS = path.join(__dirname, '../experiments');
const FASHION_MNIST = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz';
const skip = fs.existsSync(FASHION_MNIST) ? false : `Fashion-MNIST missing (${FASHION_MNIST}): apt-get install dataset-fashion-mnist`;

function runQuick(name: string): { out: string; result: Record<string, any> } {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `exp-${name}-`));
  const r = spawnSync(process.execPath, [path.join(EXPERIMENTS, `${name}.js`), '--quick', '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${name} --quick failed:\n${r.stderr}`);
  return { out, result: JSON.parse(fs.readFileSync(path.join(out, `${name}.json`), 'utf8')) };
}

async function checkRun(name: string, model: string, metric: string): Promise<{ out: string; result: Record<string, any> }> {
  const run = runQuick(name);
  const { out, result } = run;
  for (const k of ['command', 'backend', 'machine', 'date', 'seed', 'wallSeconds', 'table']) assert.ok(result[k] !== undefined, `${name}.json lacks ${k}`);
  const [record] = readManifest(path.join(out, 'weights', 'manifest.json'));
  assert.equal(record.model, model);
  assert.equal(record.tag, name);
  assert.equal(record.sha256, await weightsDigest(path.join(out, 'weights', model, name, 'model.json'), 'tfjs'));
  assert.equal(record.training?.steps, 3);
  assert.ok(record.command?.startsWith(`densenet train ${model}`));
  const ours = result.data.evaluation.metrics[metric];
  assert.ok(ours >= 0 && ours <= 1, `${metric} ${ours}`);
  assert.ok(Math.abs(result.data.tagEvaluation.metrics[metric] - ours) <= 0.001, 'the shipped copy scores as the checkpoint');
  assert.match(fs.readFileSync(path.join(out, `${name}.md`), 'utf8'), new RegExp(`\\| ${model} `));
  const curve = PNG.sync.read(fs.readFileSync(path.join(out, `${name}-curve.png`)));
  assert.ok(curve.width > 200 && curve.height > 150);
  return run;
}

test('exp:fashion-mnist --quick trains, ships the weights with their sha256 and checks the copy', { skip }, async () => {
  const { out, result } = await checkRun('fashion-mnist', 'densenet-bc-100-k12', 'top1');
  assert.equal(result.data.weights.numClasses, 10);
  assert.deepEqual(result.data.weights.inputShape, [28, 28, 1]);
  // Run again: the run folder holds a finished run, so it is continued (no new steps) and re-evaluated.
  const again = spawnSync(process.execPath, [path.join(EXPERIMENTS, 'fashion-mnist.js'), '--quick', '--out', out], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  const second = JSON.parse(fs.readFileSync(path.join(out, 'fashion-mnist.json'), 'utf8'));
  assert.equal(second.data.weights.sha256, result.data.weights.sha256);
  assert.equal(readManifest(path.join(out, 'weights', 'manifest.json')).length, 1, 'the record is replaced, not added');
});

test('exp:fashion-mosaics --quick also draws held-out predictions', { skip }, async () => {
  const { out } = await checkRun('fashion-mosaics', 'fc-densenet56', 'meanIoU');
  const figure = PNG.sync.read(fs.readFileSync(path.join(out, 'fashion-mosaics-predictions.png')));
  assert.ok(figure.height > figure.width, 'one row per mosaic');
});

const CAMVID = path.join(__dirname, '..', '..', '..', 'shared', 'data', 'camvid');
const noCamVid = fs.existsSync(CAMVID) ? false : `no CamVid at ${CAMVID} (see ../shared/data/README.md)`;

test('exp:camvid --quick: best checkpoint, BatchNorm mode chosen on val and shipped with the palette, both modes on test, paper table, figures', { skip: noCamVid, timeout: 300_000 }, async () => {
  const { out, result } = await checkRun('camvid', 'fc-densenet56', 'meanIoU');
  const { batchNorm, weights, checkpoint } = result.data;
  assert.equal(path.basename(checkpoint), 'best', 'the checkpoint picked by val mean IoU ships');
  assert.deepEqual(Object.keys(batchNorm.val).sort(), ['batch', 'running']);
  assert.deepEqual(Object.keys(batchNorm.test).sort(), ['batch', 'running']);
  const valIoU = (m: string) => batchNorm.val[m].metrics.meanIoU;
  assert.ok(valIoU(batchNorm.shipped) >= Math.max(valIoU('batch'), valIoU('running')), 'the mode shipped is the better one on val');
  assert.equal(weights.batchNorm, batchNorm.shipped);
  assert.equal(weights.ignoreLabel, 11);
  assert.deepEqual(weights.palette[3], [128, 64, 128], "CamVid's road colour");
  assert.equal(result.data.evaluation.perClassIoU.length, 11);
  assert.equal(result.data.paper['FC-DenseNet56'].meanIoU, 58.9);
  assert.ok(Math.abs(result.data.tagEvaluation.metrics.meanIoU - batchNorm.test[batchNorm.shipped].metrics.meanIoU) <= 0.001);
  const md = fs.readFileSync(path.join(out, 'camvid.md'), 'utf8');
  assert.match(md, /\| FC-DenseNet103 \(9.4M params\), paper .* \| 66.9 \| 91.5 \|/);
  assert.match(md, /\| Pedestrian \| [\d.]+ \| 37.9 \| 59.6 \|/);
  for (const f of ['camvid-test-frames.png', 'camvid-per-class-iou.png', 'camvid-confusion.png']) {
    assert.ok(PNG.sync.read(fs.readFileSync(path.join(out, f))).width > 300, f);
  }
  const noRun = spawnSync(process.execPath, [path.join(EXPERIMENTS, 'camvid.js'), '--quick', '--out', out, '--run', path.join(out, 'none'), '--no-train'], { encoding: 'utf8' });
  assert.equal(noRun.status, 1);
  assert.match(noRun.stderr, /--no-train: .*none holds no run; train one with `densenet train fc-densenet56 --dataset camvid --data \.\.\/shared\/data\/camvid/);
});

test('--quick refuses to write into the repository', () => {
  const r = spawnSync(process.execPath, [path.join(EXPERIMENTS, 'fashion-mnist.js'), '--quick'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--quick writes into --out/);
});

test('every shipped weight record verifies, loads as its tag and has its metadata', async () => {
  await init('cpu', { log: null });
  const shipped = readManifest();
  assert.deepEqual(shipped.map((r) => `${r.model}:${r.tag}`).sort(), ['densenet-bc-100-k12:fashion-mnist', 'fc-densenet56:camvid', 'fc-densenet56:fashion-mosaics']);
  assert.ok(zoo.info('densenet-bc-100-k12').weights.some((w) => w.tag === 'fashion-mnist'), 'the zoo offers the tag');
  for (const record of shipped) {
    const source = zoo.resolveWeights(record.model, record.tag);
    await verifyWeights(source);
    assert.ok(record.training && record.metrics && record.normalization && record.classNames, `${record.model} '${record.tag}' metadata`);
    const model = await zoo.load(record.model, { weights: record.tag });
    assert.deepEqual(model.inputs[0].shape.slice(1), record.inputShape);
    assert.equal((model.outputs[0].shape as number[]).at(-1), record.numClasses);
    model.dispose();
  }
});

test("tag 'camvid' brings its BatchNorm mode, CamVid's names, palette and void; `densenet predict --weights camvid --out` segments a street frame", async () => {
  const record = readManifest().find((r) => r.model === 'fc-densenet56' && r.tag === 'camvid');
  assert.ok(record, 'weights/manifest.json ships fc-densenet56:camvid');
  assert.equal(record.ignoreLabel, 11);
  assert.deepEqual(record.palette?.[3], [128, 64, 128], "CamVid's road colour");
  assert.ok(record.batchNorm === 'batch' || record.batchNorm === 'running', `batchNorm ${record.batchNorm}`);
  await init('cpu', { log: null });
  const model = await zoo.load('fc-densenet56', { weights: 'camvid' });
  assert.equal(model.card.spec.batchNorm, record.batchNorm);
  assert.equal(model.card.classNames[3], 'Road');
  assert.deepEqual(model.card.palette?.[3], [128, 64, 128]);
  model.dispose();

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'camvid-predict-'));
  // A real test frame where the data is here; else a grey 'street': a darker lower half under a lighter sky.
  const frame = noCamVid ? path.join(dir, 'street.png') : path.join(CAMVID, 'test', fs.readdirSync(path.join(CAMVID, 'test')).sort()[0]);
  if (noCamVid) {
    const png = new PNG({ width: 120, height: 90 });
    for (let i = 0; i < 120 * 90; i++) png.data.fill(i < 120 * 45 ? 200 : 70, i * 4, i * 4 + 3).fill(255, i * 4 + 3, i * 4 + 4);
    fs.writeFileSync(frame, PNG.sync.write(png));
  }
  const overlay = path.join(dir, 'overlay.png');
  const r = spawnSync(process.execPath, [path.join(__dirname, '../src/cli/main.js'), 'predict', 'fc-densenet56', frame, '--weights', 'camvid', '--out', overlay, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const fractions = Object.fromEntries(out.classes.map((c: { name: string; fraction: number }) => [c.name, c.fraction]));
  assert.ok(Math.abs(Object.values(fractions).reduce((a: number, b) => a + (b as number), 0) - 1) < 1e-6, 'every pixel gets a class');
  if (!noCamVid) {
    // The frame is a street seen from a car; its truth: building 30.6%, road 20.8%, sky 20.9% of the pixels.
    assert.ok(fractions.Road > 0.1 && fractions.Building > 0.1 && fractions.Sky > 0.1, `road ${fractions.Road}, building ${fractions.Building}, sky ${fractions.Sky}`);
  }
  const picture = PNG.sync.read(fs.readFileSync(overlay));
  assert.ok(picture.width >= 3 * out.width, 'input, prediction and overlay side by side');
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A model.json with two float32 weights, 'a' [2] then 'b' [2], over one shard. */
function twoWeightModel(dir: string, names = ['a', 'b']): string {
  const file = path.join(dir, 'model.json');
  const weights = names.map((name) => ({ name, shape: [2], dtype: 'float32' }));
  fs.writeFileSync(file, JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ['w.bin'], weights }] }));
  fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.from(new Float32Array([1, 2, 3, 4]).buffer));
  return file;
}

test('a damaged weights file is refused with the file and both hashes named', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'damaged-'));
  const url = twoWeightModel(dir);
  const specs = ['a', 'b'].map((name) => ({ name, shape: [2], dtype: 'float32' as const }));
  const good = tfjsWeightsDigest(specs, new Float32Array([1, 2, 3, 4]).buffer);
  const source = { tag: 't', description: '', url, format: 'tfjs' as const, numClasses: 1, inChannels: 1, sha256: good };
  await verifyWeights(source);
  const bytes = fs.readFileSync(path.join(dir, 'w.bin'));
  bytes[0] ^= 1;
  fs.writeFileSync(path.join(dir, 'w.bin'), bytes);
  await assert.rejects(verifyWeights(source), (e: Error) => e.message.startsWith(`${url}: sha256 of its weights`) && e.message.includes(good) && e.message.includes("tag 't'"));
});

test("the sha256 covers model.json's weight list: two tensors' names swapped fail the check", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swapped-'));
  const url = twoWeightModel(dir);
  const good = await weightsDigest(url, 'tfjs');
  twoWeightModel(dir, ['b', 'a']);
  const source = { tag: 't', description: '', url, format: 'tfjs' as const, numClasses: 1, inChannels: 1, sha256: good };
  await assert.rejects(verifyWeights(source), /sha256 of its weights .* not the .* of tag 't'; the files are damaged or replaced/);
});

test('a shipped model.json with swapped tensor names is refused when loaded by its tag', async () => {
  await init('cpu', { log: null });
  const [record] = readManifest();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swapped-tag-'));
  const shipped = zoo.resolveWeights(record.model, record.tag).url;
  const json = JSON.parse(fs.readFileSync(shipped, 'utf8'));
  const w = json.weightsManifest[0].weights;
  const [i, j] = [w.findIndex((x: any) => x.name.endsWith('moving_mean')), w.findIndex((x: any) => x.name.endsWith('moving_variance'))];
  [w[i].name, w[j].name] = [w[j].name, w[i].name]; // same shapes: only the hash can tell
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
  for (const p of json.weightsManifest[0].paths) fs.copyFileSync(path.join(path.dirname(shipped), p), path.join(dir, p));
  const model = zoo.create(record.model, { numClasses: record.numClasses, inputShape: record.inputShape });
  try {
    await assert.rejects(
      loadTfjsWeights(model, path.join(dir, 'model.json'), {}, { sha256: record.sha256!, owner: `tag '${record.tag}'` }),
      /sha256 of its weights/);
  } finally {
    model.dispose();
  }
});
