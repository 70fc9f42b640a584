// torch.save files (scripts/make-pytorch-fixtures.py, written by Debian's python3-torch): a state
// dict, a training checkpoint wrapping one, a DataParallel one and a CIFAR DenseNet-BC with key
// names of its own give PyTorch's logits; a pickle that would run code is refused.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import * as zoo from '../src/zoo';
import { parseKeyRule, parsePytorchCheckpoint, readPytorchCheckpoint } from '../src/weights/pytorch';
import { readSafetensors } from '../src/weights/safetensors';
import { FIXTURES, readTinyDensenetFixture, TinyDensenetFixture } from './helpers';
import { runCli, stderrErrorLines } from './train-fixtures';
import { tempDir } from './data-fixtures';

const PTH = path.join(FIXTURES, 'pytorch');
let cfg: TinyDensenetFixture;

before(async () => {
  await init('cpu', { log: null });
  cfg = await readTinyDensenetFixture();
});

/** The key rules that turn the CIFAR fixture's own names into torchvision's. */
export const CIFAR_KEY_RULES = [
  '^conv0\\.=features.conv0.', '^bn0\\.=features.norm0.',
  '^dense(\\d)\\.unit(\\d+)\\.bn_a\\.=features.denseblock$1.denselayer$2.norm1.',
  '^dense(\\d)\\.unit(\\d+)\\.conv_a\\.=features.denseblock$1.denselayer$2.conv1.',
  '^dense(\\d)\\.unit(\\d+)\\.bn_b\\.=features.denseblock$1.denselayer$2.norm2.',
  '^dense(\\d)\\.unit(\\d+)\\.conv_b\\.=features.denseblock$1.denselayer$2.conv2.',
  '^trans(\\d)\\.bn\\.=features.transition$1.norm.', '^trans(\\d)\\.conv\\.=features.transition$1.conv.', '^bn_final\\.=features.norm5.', '^fc\\.=classifier.',
];
const CIFAR_OPTIONS: zoo.ModelOptions = { depth: 16, growthRate: 6, stemNorm: true, numClasses: 10 };

async function maxLogitError(model: tf.LayersModel, io: string): Promise<number> {
  const file = await readSafetensors(io);
  const x = tf.tensor(file.read('input_nhwc'), file.shape('input_nhwc'));
  const y = model.predict(x) as tf.Tensor;
  const got = await y.data();
  const want = file.read('logits');
  tf.dispose([x, y]);
  return want.reduce((m, v, i) => Math.max(m, Math.abs(v - got[i])), 0);
}

const tinyOptions = (): zoo.ModelOptions => ({
  growthRate: cfg.growth_rate, blockLayers: cfg.block_config, stemChannels: cfg.num_init_features, inputShape: cfg.input_hwc,
  numClasses: cfg.num_classes,
});

for (const [file, under, prefix] of [['state-dict.pth', '', false], ['checkpoint.pth', 'state_dict', false], ['dataparallel.pth', '', true]] as const) {
  test(`${file}: zoo.load gives PyTorch's logits within 1e-4`, async () => {
    const ckpt = await readPytorchCheckpoint(path.join(PTH, file));
    assert.equal(ckpt.foundUnder, under);
    assert.equal(ckpt.strippedModulePrefix, prefix);
    assert.equal(ckpt.names().length, cfg.state_dict_tensors);
    if (under) assert.deepEqual(ckpt.otherEntries.sort(), ['arch', 'best_acc1', 'epoch', 'optimizer']);
    const model = await zoo.load('densenet121', { ...tinyOptions(), weights: path.join(PTH, file) });
    try {
      assert.deepEqual(model.card.weights, { source: path.join(PTH, file), format: 'pytorch', headLoaded: true });
      const err = await maxLogitError(model, path.join(FIXTURES, 'tiny-densenet-io.safetensors'));
      assert.ok(err < 1e-4, `max |zoo - pytorch| = ${err}`);
    } finally {
      model.dispose();
    }
  });
}

test('a CIFAR DenseNet-BC with a stem BatchNorm and its own key names loads through key rules', async () => {
  const file = path.join(PTH, 'cifar-bc.pth');
  await assert.rejects(zoo.load('densenet-bc-100-k12', { ...CIFAR_OPTIONS, weights: file }), (err: Error) => {
    assert.match(err.message, /missing tensor 'features\.conv0\.weight' \(model weight 'stem_conv\/kernel', expected shape \[12,3,3,3\]\)/,
      'names the zoo keys it did not find');
    assert.match(err.message, /unexpected tensor 'conv0\.weight' \[12,3,3,3\] matches no weight/, 'and the file keys it did not use, with shapes');
    return true;
  });
  const rules = CIFAR_KEY_RULES.map(parseKeyRule);
  const model = await zoo.load('densenet-bc-100-k12', { ...CIFAR_OPTIONS, weights: file, keyMap: rules });
  try {
    const err = await maxLogitError(model, path.join(PTH, 'cifar-bc-io.safetensors'));
    assert.ok(err < 1e-4, `max |zoo - pytorch| = ${err}`);
  } finally {
    model.dispose();
  }
  // A function does what a regular expression cannot (here: the same renaming, written as code).
  const byFunction = await zoo.load('densenet-bc-100-k12', {
    ...CIFAR_OPTIONS, weights: file, keyMap: (key) => rules.reduce((k, r) => k.replace(r.from, r.to), key),
  });
  byFunction.dispose();
});

test('dtypes, strides and storage offsets are read as PyTorch stores them', async () => {
  const ckpt = await readPytorchCheckpoint(path.join(PTH, 'tensors.pth'));
  for (const name of ['f64', 'f16', 'bf16', 'i64', 'transposed', 'offset_slice']) {
    assert.deepEqual(ckpt.shape(name), ckpt.shape(`${name}_as_f32`), name);
    assert.deepEqual(ckpt.read(name), ckpt.read(`${name}_as_f32`), name);
  }
  assert.deepEqual(ckpt.shape('transposed'), [5, 3]);
});

test('a pickle that calls anything outside the state-dict vocabulary is refused, and nothing runs', async () => {
  await assert.rejects(readPytorchCheckpoint(path.join(PTH, 'evil.pth')),
    /evil\.pth \(.*data\.pkl\): names '(posix|os)\.system', which is not part of a state dict; refusing to load it \(a pickle can run code\) \(byte \d+ of the pickle\)/);
  const bytes = new Uint8Array(fs.readFileSync(path.join(PTH, 'state-dict.pth')));
  assert.throws(() => parsePytorchCheckpoint(bytes.subarray(0, bytes.length / 2), 'half.pth'), /half\.pth: not a readable torch\.save zip archive/);
  assert.throws(() => parsePytorchCheckpoint(new Uint8Array([0x80, 0x02, 0x8a, 0x0a]), 'old.pth'), /a legacy torch\.save file/);
  assert.throws(() => parseKeyRule('no-equals-sign'), /expected from_regex=to/);
});

test('densenet convert reads a .pth with --key-map and the architecture flags; the tfjs copy gives the same logits', async () => {
  const tmp = tempDir('convert-pth-');
  try {
    const out = path.join(tmp.dir, 'cifar-bc');
    const args = ['convert', path.join(PTH, 'cifar-bc.pth'), '--arch', 'densenet-bc-100-k12', '--depth', '16', '--growth', '6', '--stem-norm',
      '--out', out, ...CIFAR_KEY_RULES.flatMap((r) => ['--key-map', r]), '--mean', '0.49,0.48,0.45', '--std', '0.25,0.24,0.26'];
    const r = runCli(args);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /wrote .*model\.json: \d+ tensors from .*cifar-bc\.pth \(found under 'model'\)/);
    const model = await zoo.load('densenet-bc-100-k12', { ...CIFAR_OPTIONS, weights: path.join(out, 'model.json') });
    try {
      assert.ok((await maxLogitError(model, path.join(PTH, 'cifar-bc-io.safetensors'))) < 1e-4);
      assert.deepEqual(model.card.preprocessing.mean, [0.49, 0.48, 0.45], 'the normalisation given at conversion travels with the weights');
      assert.deepEqual(model.card.preprocessing.std, [0.25, 0.24, 0.26]);
    } finally {
      model.dispose();
    }
    const bad = runCli(['convert', path.join(PTH, 'cifar-bc.pth'), '--arch', 'densenet-bc-100-k12', '--depth', '16', '--growth', '6', '--out', path.join(tmp.dir, 'x')]);
    assert.notEqual(bad.status, 0);
    assert.match(stderrErrorLines(bad.stderr)[0], /cifar-bc\.pth/);
    assert.ok(!fs.existsSync(path.join(tmp.dir, 'x', 'model.json')), 'nothing half-written');
  } finally {
    tmp.cleanup();
  }
});
