// `bench memory --timeline`: the recorder's peak is the engine's, what it lists at the peak adds
// up to it, and the engine is left as it was found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import { stepTimeline, zooFactory } from '../src/measure/memory';
import { peakByRole, recordTimeline, timelineReport } from '../src/measure/tensor-timeline';
import { trainingHarness } from '../src/measure/training-step';

const SMALL = zooFactory('densenet-bc-100-k12', { depth: 16, inputShape: [16, 16, 3] });

test('the timeline of a training step peaks where tf.profile does, and its tensors at the peak add up to the peak', async () => {
  await init('wasm', { log: null });
  const model = SMALL(false);
  const harness = trainingHarness(model, 2);
  try {
    await harness.step(); // optimizer slots
    const profiled = await tf.profile(() => harness.step());
    const timeline = await recordTimeline(() => harness.step());
    // tf.profile samples after each kernel, the timeline after every allocation: the same peak or a
    // little above it (what a kernel makes and frees inside itself).
    assert.ok(timeline.peakBytes >= profiled.peakBytes, `timeline ${timeline.peakBytes} < tf.profile ${profiled.peakBytes}`);
    assert.ok(timeline.peakBytes < profiled.peakBytes * 1.01, `timeline ${timeline.peakBytes} vs tf.profile ${profiled.peakBytes}`);
    const atPeak = timeline.atPeak.reduce((s, g) => s + g.bytes, 0);
    assert.equal(atPeak, timeline.peakBytes - timeline.baselineBytes + timeline.releasedBeforePeakBytes);
    assert.ok(timeline.peakBufferBytes <= timeline.peakBytes, 'a view or clone adds no buffer');
    assert.ok(timeline.peakBufferBytes > timeline.baselineBytes);
    const phases = new Set(timeline.curve.map((p) => p.phase));
    assert.ok(phases.has('forward') && phases.has('backward'), `phases seen: ${[...phases]}`);
    // Forward tensors are attributed to the layer that made them.
    const layerNames = new Set(model.layers.map((l) => l.name));
    assert.ok(timeline.atPeak.some((g) => g.phase === 'forward' && layerNames.has(g.scope)));
    const roles = peakByRole(timeline);
    assert.equal(roles.reduce((s, r) => s + r.bytes, 0), atPeak);
    assert.ok(timeline.curve.length <= 2000 && timeline.curve.length > 0);
  } finally {
    harness.dispose();
    model.dispose();
  }
});

test('the recorder restores the engine and Layer.apply, also when the step throws', async () => {
  await init('wasm', { log: null });
  const engine = tf.engine() as unknown as Record<string, unknown>;
  const apply = tf.layers.Layer.prototype.apply;
  await assert.rejects(() => recordTimeline(() => {
    tf.tidy(() => { tf.ones([4]).add(1); });
    throw new Error('step failed');
  }), /step failed/);
  for (const key of ['trackTensor', 'disposeTensor', 'runKernelFunc']) assert.ok(!Object.prototype.hasOwnProperty.call(engine, key), `${key} restored`);
  assert.equal(tf.layers.Layer.prototype.apply, apply);
  const before = tf.memory().numTensors;
  tf.tidy(() => { tf.ones([4]).add(1); });
  assert.equal(tf.memory().numTensors, before);
});

test('memory-efficient mode holds fewer bytes at its peak than naive, and the report says so per mode', async () => {
  await init('wasm', { log: null });
  const naive = await stepTimeline(SMALL, false, 4);
  const efficient = await stepTimeline(SMALL, true, 4);
  assert.ok(efficient.peakBytes < naive.peakBytes, `efficient ${efficient.peakBytes} >= naive ${naive.peakBytes}`);
  const report = timelineReport({ model: 'densenet-bc-16', batch: 4, backend: 'wasm', naive, efficient }, 5);
  assert.match(report, /### naive: peak [\d.]+ MB/);
  assert.match(report, /### efficient: peak [\d.]+ MB/);
});
