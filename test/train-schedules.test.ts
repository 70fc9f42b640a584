import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learningRateAt, milestoneSteps, ScheduleConfig } from '../src/train/schedules';
import { applyOverrides, defaultRecipe, RECIPES, resolveConfig } from '../src/train/recipes';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ${a} != ${b}`);

const base: ScheduleConfig = { schedule: 'step', lr: 0.1, milestones: [0.5, 0.75], stepFactor: 0.1, epochDecay: 0.995 };

test('step schedule: the paper\'s 300 epochs divide lr by 10 at the first steps of epochs 150 and 225', () => {
  const clock = { stepsPerEpoch: 782, totalSteps: 300 * 782 };
  assert.deepEqual(milestoneSteps([0.5, 0.75], clock.totalSteps), [150 * 782, 225 * 782]);
  close(learningRateAt(base, clock, 0), 0.1, 'step 0');
  close(learningRateAt(base, clock, 150 * 782 - 1), 0.1, 'last step of epoch 149');
  close(learningRateAt(base, clock, 150 * 782), 0.01, 'first step of epoch 150');
  close(learningRateAt(base, clock, 225 * 782 - 1), 0.01, 'last step of epoch 224');
  close(learningRateAt(base, clock, 225 * 782), 0.001, 'first step of epoch 225');
  close(learningRateAt(base, clock, 300 * 782 - 1), 0.001, 'last step');
});

test('step schedule on a short run: 10 steps -> milestones at steps 5 and 8 (0.75 * 10 rounds to 8)', () => {
  const clock = { stepsPerEpoch: 4, totalSteps: 10 };
  const rates = Array.from({ length: 10 }, (_, s) => learningRateAt(base, clock, s));
  const expected = [0.1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001];
  rates.forEach((r, i) => close(r, expected[i], `step ${i}`));
});

test('exponential schedule: lr * 0.995^epoch, constant within an epoch', () => {
  const cfg: ScheduleConfig = { ...base, schedule: 'exponential', lr: 1e-3 };
  const clock = { stepsPerEpoch: 10, totalSteps: 1000 };
  close(learningRateAt(cfg, clock, 0), 1e-3, 'epoch 0');
  close(learningRateAt(cfg, clock, 9), 1e-3, 'end of epoch 0');
  close(learningRateAt(cfg, clock, 10), 1e-3 * 0.995, 'epoch 1');
  close(learningRateAt(cfg, clock, 25), 1e-3 * 0.995 * 0.995, 'epoch 2');
  close(learningRateAt(cfg, clock, 999), 1e-3 * 0.995 ** 99, 'epoch 99');
});

test('cosine schedule: lr at 0, half at the middle, lr/2 * (1 + cos(pi/4)) at a quarter, 0 at the end', () => {
  const cfg: ScheduleConfig = { ...base, schedule: 'cosine' };
  const clock = { stepsPerEpoch: 5, totalSteps: 100 };
  close(learningRateAt(cfg, clock, 0), 0.1, 'start');
  close(learningRateAt(cfg, clock, 25), 0.05 * (1 + Math.SQRT1_2), 'quarter');
  close(learningRateAt(cfg, clock, 50), 0.05, 'middle');
  assert.ok(learningRateAt(cfg, clock, 100) < 1e-15);
  assert.ok(learningRateAt(cfg, clock, 150) < 1e-15, 'past the end it stays at 0');
});

test('constant schedule and bad clocks', () => {
  close(learningRateAt({ ...base, schedule: 'constant' }, { stepsPerEpoch: 3, totalSteps: 9 }, 7), 0.1, 'constant');
  assert.throws(() => learningRateAt(base, { stepsPerEpoch: 0, totalSteps: 9 }, 0), /stepsPerEpoch must be a positive integer/);
  assert.throws(() => learningRateAt(base, { stepsPerEpoch: 3, totalSteps: 9 }, -1), /step must be an integer >= 0/);
});

test('recipes carry the papers\' numbers', () => {
  const c = RECIPES['densenet-cifar'];
  assert.deepEqual(
    [c.optimizer, c.momentum, c.nesterov, c.weightDecay, c.weightDecayScope, c.batchSize, c.epochs, c.lr, c.schedule, c.milestones, c.stepFactor],
    ['sgd', 0.9, true, 1e-4, 'all', 64, 300, 0.1, 'step', [0.5, 0.75], 0.1],
  );
  const i = RECIPES['densenet-imagenet'];
  assert.deepEqual([i.batchSize, i.epochs, i.lr], [256, 90, 0.1]);
  assert.deepEqual(milestoneSteps(i.milestones, 90), [30, 60], 'ImageNet: divide at epochs 30 and 60');
  const t = RECIPES.tiramisu;
  assert.deepEqual([t.optimizer, t.lr, t.schedule, t.epochDecay, t.weightDecay, t.weightDecayScope, t.batchSize, t.crop],
    ['rmsprop', 1e-3, 'exponential', 0.995, 1e-4, 'kernels-and-scales', 3, 224]);
  assert.equal(t.weightDecayForm, 'loss', 'tiramisu: 1e-4 * sum(w^2) in the loss, as the authors\' Lasagne code');
  assert.equal(defaultRecipe('fc-densenet'), 'tiramisu');
  assert.equal(defaultRecipe('densenet', 'cifar'), 'densenet-cifar');
  assert.equal(defaultRecipe('densenet', 'imagenet'), 'densenet-imagenet');
});

test('every flag overrides the recipe; unset flags keep its defaults; the recipe itself is not changed', () => {
  const c = resolveConfig('densenet-cifar', {
    lr: 0.05, batchSize: 32, epochs: 0.25, schedule: 'cosine', optimizer: 'rmsprop', weightDecay: 0, momentum: 0.5,
    nesterov: false, augment: false, seed: 7, maxSteps: 12, evalLimit: 100, freezeBackbone: true, logEvery: 3,
    checkpointEvery: 4, crop: 32, weightDecayScope: 'kernels', epochDecay: 0.9, milestones: [0.3], stepFactor: 0.5,
  });
  assert.deepEqual(
    [c.lr, c.batchSize, c.epochs, c.schedule, c.optimizer, c.weightDecay, c.momentum, c.nesterov, c.augment, c.seed, c.maxSteps,
      c.evalLimit, c.freezeBackbone, c.logEvery, c.checkpointEvery, c.crop, c.weightDecayScope, c.epochDecay, c.milestones, c.stepFactor],
    [0.05, 32, 0.25, 'cosine', 'rmsprop', 0, 0.5, false, false, 7, 12, 100, true, 3, 4, 32, 'kernels', 0.9, [0.3], 0.5],
  );
  assert.equal(c.recipe, 'densenet-cifar');
  const unset = resolveConfig('tiramisu', { lr: undefined, batchSize: 2 });
  assert.equal(unset.lr, 1e-3);
  assert.equal(unset.batchSize, 2);
  assert.equal(RECIPES['densenet-cifar'].lr, 0.1);
  assert.equal(applyOverrides(unset, { epochs: 3 }).epochs, 3);
});

test('bad recipe names and values are refused with the value named', () => {
  assert.throws(() => resolveConfig('resnet'), /unknown recipe 'resnet'; expected one of densenet-cifar, densenet-imagenet, tiramisu/);
  assert.throws(() => resolveConfig('densenet-cifar', { lr: -1 }), /learning rate must be a positive number, got -1/);
  assert.throws(() => resolveConfig('densenet-cifar', { batchSize: 2.5 }), /batch size must be a positive integer, got 2.5/);
  assert.throws(() => resolveConfig('densenet-cifar', { epochs: 0 }), /epochs must be a positive number, got 0/);
  assert.throws(() => resolveConfig('densenet-cifar', { backboneLrMult: -1 }), /backbone lr multiplier must be >= 0, got -1/);
  assert.throws(() => resolveConfig('densenet-cifar', { freezeBackbone: true, backboneLrMult: 0.1 }), /give freezeBackbone or backboneLrMult, not both/);
  assert.throws(() => resolveConfig('densenet-cifar', { momentum: 1 }), /momentum must be in \[0, 1\), got 1/);
});
