// The one table of layer and weight names (src/layers/layer-names.ts): the names the builders
// produce are the ones checkpoints and the shipped weights are keyed by, every weight name
// parses back to its place and formats to the same string, and torchvision covers DenseNets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'crypto';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import * as zoo from '../src/zoo';
import { formatWeightName, parseWeightName, stageName, stageOfLayer } from '../src/layers/layer-names';
import { baseName } from '../src/weights/mapping';
import { bindWeights, torchvisionKeyOf } from '../src/weights/torchvision';

function fingerprint(names: string[]): string {
  return createHash('sha256').update(names.join('\n')).digest('hex').slice(0, 16);
}

// Generated from the builders before the names moved into one table: the full lists, in model order.
const EXPECTED: Record<string, { weights: number; weightsSha: string; layersSha: string; layers?: string }> = {
  // Layers: as generated then, less each transition's pool, which is part of the transition layer when no dropout
  // comes between them (the pool runs before the 1x1 conv), and with final_norm, final_relu and final_pool as one
  // layer, final_norm; weight names unchanged.
  densenet121: {
    weights: 606, weightsSha: 'd035b28ab5d789ff', layersSha: '32e2a9a0fc25b5ab',
    layers: 'image stem_pad stem_conv stem_norm stem_relu stem_pool_pad stem_pool block1 transition1 block2 ' +
      'transition2 block3 transition3 block4 final_norm classifier',
  },
  'densenet-bc-100-k12': {
    weights: 497, weightsSha: '91962754856f408d', layersSha: '4fa62abe1cfdd890',
    layers: 'image stem_conv block1 transition1 block2 transition2 block3 final_norm classifier',
  },
  // Layers: as generated then, plus a crop after each transposed conv (any input size); weight names unchanged.
  'fc-densenet56': {
    weights: 308, weightsSha: 'd8f9b0a3022839cb', layersSha: 'b02dcbb77bbeb785',
    layers: 'image stem_conv ' + [1, 2, 3, 4, 5].map((i) => `down${i} transition_down${i} transition_down${i}_drop transition_down${i}_pool`).join(' ') +
      ' bottleneck ' + [1, 2, 3, 4, 5].map((i) => `transition_up${i}_conv transition_up${i}_crop transition_up${i}_concat up${i}`).join(' ') + ' head_conv',
  },
};

function withModel(name: string, use: (model: tf.LayersModel) => void): void {
  const model = zoo.create(name, { seed: 1 });
  try {
    use(model);
  } finally {
    model.dispose();
  }
}

test('the builders name layers and weights exactly as before', async () => {
  await init('cpu', { log: null });
  for (const [name, want] of Object.entries(EXPECTED)) {
    withModel(name, (model) => {
      const weights = model.weights.map((w) => w.originalName);
      const layers = model.layers.map((l) => l.name);
      if (want.layers) assert.equal(layers.join(' '), want.layers, name);
      assert.equal(weights.length, want.weights, name);
      assert.equal(fingerprint(weights), want.weightsSha, `${name}: weight names changed`);
      assert.equal(fingerprint(layers), want.layersSha, `${name}: layer names changed`);
    });
  }
});

test('every weight name parses to its place and formats back to itself; every layer but the input has a stage', async () => {
  await init('cpu', { log: null });
  for (const name of Object.keys(EXPECTED)) {
    withModel(name, (model) => {
      for (const w of model.weights) {
        const place = parseWeightName(w.originalName);
        assert.ok(place, `${name}: '${w.originalName}' does not parse`);
        assert.equal(formatWeightName(place), w.originalName);
        assert.ok(w.originalName.startsWith(stageName(place.stage)), w.originalName);
      }
      for (const layer of model.layers.slice(1)) assert.ok(stageOfLayer(layer.name), `${name}: layer '${layer.name}' has no stage`);
      assert.equal(stageOfLayer(model.layers[0].name), undefined);
    });
  }
});

test('the torchvision mapping covers every weight of the DenseNets, and only theirs', async () => {
  await init('cpu', { log: null });
  for (const name of ['densenet121', 'densenet-bc-100-k12']) {
    withModel(name, (model) => {
      const bindings = bindWeights(model);
      assert.equal(bindings.length, model.weights.length);
      assert.deepEqual(bindings.map((b) => b.tfName).sort(), model.weights.map(baseName).sort());
    });
  }
  withModel('fc-densenet56', (model) => assert.throws(() => bindWeights(model), /no torchvision DenseNet counterpart/));
  assert.deepEqual(torchvisionKeyOf('block3/layer7/norm2/moving_variance'), { key: 'features.denseblock3.denselayer7.norm2.running_var', kind: 'vector' });
  assert.deepEqual(torchvisionKeyOf('classifier/kernel'), { key: 'classifier.weight', kind: 'linear' });
  // A part as a layer of its own, as older checkpoints name it.
  assert.deepEqual(torchvisionKeyOf('transition1_conv/kernel'), { key: 'features.transition1.conv.weight', kind: 'conv' });
  assert.equal(torchvisionKeyOf('stem_norm/kernel'), undefined);
  assert.equal(torchvisionKeyOf('block1/norm/gamma'), undefined);
});
