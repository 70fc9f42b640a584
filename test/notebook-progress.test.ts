// The notebook reporter: one display per run, redrawn in place and throttled, ending on the final
// state; and defaultReporter() choosing it inside a tslab kernel only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import { inTslabKernel } from '../src/viz/display';
import { NotebookReporter, notebookReporter } from '../src/train/notebook-progress';
import { EvalReport, LineReporter, StepReport, defaultReporter, formatEval } from '../src/train/progress';

/** Records every html() call, as tslab's newDisplay() entry would replace its output. */
class FakeDisplay {
  readonly outputs: string[] = [];
  html(s: string): void {
    this.outputs.push(s);
  }
  get latest(): string {
    return this.outputs[this.outputs.length - 1] ?? '';
  }
}

function fakeNotebook(stepMs: number) {
  const displays: FakeDisplay[] = [];
  let clock = 0;
  const reporter = notebookReporter({
    newDisplay: () => {
      const d = new FakeDisplay();
      displays.push(d);
      return d;
    },
    minRedrawMs: 250,
    now: () => clock,
  });
  return { displays, reporter, tick: () => (clock += stepMs) };
}

function stepReport(step: number, stopStep: number): StepReport {
  return {
    epoch: Math.floor((step - 1) / 100) + 1, epochs: Math.max(1, stopStep / 100), step, stopStep,
    loss: 2 / (1 + step / 50) + 0.0001234, accuracy: Math.min(0.99, step / stopStep), lr: 0.1 * (1 - step / stopStep) + 1e-4,
    imagesPerSecond: 321.5, etaSeconds: (stopStep - step) * 0.01,
  };
}

const evalReport: EvalReport = {
  split: 'test', step: 100, epoch: 1, loss: 0.8765, metrics: { accuracy: 0.7125 }, count: 2000, seconds: 3,
};

test('a run draws into one display, throttled, and ends on the last step at stop()', () => {
  const { displays, reporter, tick } = fakeNotebook(0.9);
  reporter.note('training tiny net on fake data');
  reporter.start(0, 1000);
  for (let step = 1; step <= 1000; step++) {
    tick();
    reporter.step(stepReport(step, 1000), step % 50 === 0);
  }
  assert.equal(displays.length, 1, 'one display for the run');
  const [display] = displays;
  const beforeStop = display.outputs.length;
  // 1000 steps over 0.9 s of fake clock: about 4 redraws a second, plus the note and start().
  assert.ok(beforeStop >= 3 && beforeStop <= 8, `redraws during 1000 steps: ${beforeStop}`);
  assert.doesNotMatch(display.latest, /step 1000\/1000/, 'the throttle skipped the last step');

  reporter.stop();
  assert.equal(displays.length, 1, 'stop() redraws the same display');
  assert.equal(display.outputs.length, beforeStop + 1);
  const last = stepReport(1000, 1000);
  assert.match(display.latest, /<b>finished<\/b>/);
  assert.match(display.latest, /step 1000\/1000/);
  assert.ok(display.latest.includes(`loss ${last.loss.toFixed(4)}`), display.latest);
  assert.match(display.latest, /acc 99\.00%/);
  assert.match(display.latest, /321\.5 img\/s/);
  assert.match(display.latest, /lr 0\.000100/);
  assert.match(display.latest, /<svg[^>]*>.*<polyline[^>]*points="([\d.]+,[\d.]+ ){19}[\d.]+,[\d.]+"/, 'the loss curve has the 20 logged steps');
  assert.match(display.latest, /training tiny net on fake data/, 'the note stays visible');
});

test('steps in a tight loop redraw once, however many there are', () => {
  const { displays, reporter } = fakeNotebook(0);
  reporter.start(0, 5000);
  for (let step = 1; step <= 5000; step++) reporter.step(stepReport(step, 5000), step % 50 === 0);
  reporter.stop();
  // start() and stop() draw regardless; the steps fall inside the first 250 ms.
  assert.equal(displays[0].outputs.length, 2);
  assert.match(displays[0].latest, /step 5000\/5000/);
});

test('evaluation progress and its result show in the same display, and the result stays', () => {
  const { displays, reporter, tick } = fakeNotebook(300);
  reporter.start(0, 200);
  for (let step = 1; step <= 100; step++) reporter.step(stepReport(step, 200), step % 50 === 0);
  tick();
  reporter.evalProgress(3, 10);
  const display = displays[0];
  assert.match(display.latest, /<b>evaluating<\/b> batch 3\/10/);
  assert.match(display.latest, /width:30\.0%/, 'the evaluation bar is at 30%');

  reporter.eval(evalReport);
  assert.doesNotMatch(display.latest, /batch 3\/10/, 'progress gives way to the result');
  assert.ok(display.latest.includes(formatEval(evalReport)), display.latest);
  assert.match(display.latest, /eval loss/, 'the curve gets the evaluation loss');

  tick();
  reporter.step(stepReport(101, 200), false);
  assert.match(display.latest, /step 101\/200/);
  assert.ok(display.latest.includes(formatEval(evalReport)), 'the last evaluation stays visible while training goes on');
  reporter.stop();
  assert.equal(displays.length, 1);
});

test('evaluation without training shows its progress and result', () => {
  const { displays, reporter } = fakeNotebook(300);
  reporter.evalProgress(1, 4);
  reporter.eval(evalReport);
  reporter.stop();
  assert.equal(displays.length, 1);
  assert.ok(displays[0].latest.includes(formatEval(evalReport)));
  assert.doesNotMatch(displays[0].latest, /training|finished/);
});

test('a reporter used again gives the next run its own display', () => {
  const { displays, reporter } = fakeNotebook(300);
  for (const stopStep of [10, 20]) {
    reporter.start(0, stopStep);
    reporter.step(stepReport(stopStep, stopStep), true);
    reporter.stop();
  }
  assert.equal(displays.length, 2);
  assert.match(displays[0].latest, /step 10\/10/);
  assert.match(displays[1].latest, /step 20\/20/);
  assert.match(displays[1].latest, /<polyline[^>]*points="[\d.]+,[\d.]+"/, 'the second curve starts afresh');
});

test('a loss that is not finite keeps the curve drawable', () => {
  const { displays, reporter, tick } = fakeNotebook(300);
  reporter.start(0, 3);
  for (const [step, loss] of [[1, 1], [2, NaN], [3, 0.5]]) {
    tick();
    reporter.step({ ...stepReport(step, 3), loss }, true);
    assert.match(displays[0].latest, new RegExp(`step ${step}/3 loss ${loss.toFixed(4)}`));
    assert.doesNotMatch(displays[0].latest.match(/<svg.*<\/svg>/)?.[0] ?? '', /NaN/, 'the curve leaves the NaN out');
  }
  reporter.stop();
});

test('outside a kernel defaultReporter() is the terminal or plain one', () => {
  assert.equal(inTslabKernel(), false);
  const pipe = Object.assign(new Writable({ write: (_c, _e, done) => done() }), { isTTY: false }) as unknown as NodeJS.WriteStream;
  assert.ok(defaultReporter(pipe) instanceof LineReporter);
});

// Inside a kernel, tslab's launcher is require.main; a stand-in tslab package with the same layout
// shows that defaultReporter() then draws through tslab's newDisplay().
test('inside a tslab kernel defaultReporter() draws through newDisplay()', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-tslab-'));
  try {
    const tslab = path.join(dir, 'node_modules', 'tslab');
    fs.mkdirSync(path.join(tslab, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(tslab, 'package.json'), JSON.stringify({ name: 'tslab', main: 'public.js' }));
    fs.writeFileSync(path.join(tslab, 'public.js'), `
      exports.displays = [];
      exports.newDisplay = () => { const d = { outputs: [], html(s) { this.outputs.push(s); } }; exports.displays.push(d); return d; };`);
    fs.writeFileSync(path.join(tslab, 'bin', 'tslab'), `
      const progress = require(${JSON.stringify(require.resolve('../src/train/progress'))});
      const reporter = progress.defaultReporter();
      reporter.start(0, 2);
      reporter.step({ epoch: 1, epochs: 1, step: 2, stopStep: 2, loss: 0.5, accuracy: 0.5, lr: 0.1, imagesPerSecond: 10, etaSeconds: 0 }, true);
      reporter.stop();
      const { displays } = require('tslab');
      console.log(JSON.stringify({ reporter: reporter.constructor.name, displays: displays.length, latest: displays[0].outputs.pop() }));`);
    const run = spawnSync(process.execPath, [path.join(tslab, 'bin', 'tslab')], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const seen = JSON.parse(run.stdout) as { reporter: string; displays: number; latest: string };
    assert.equal(seen.reporter, NotebookReporter.name);
    assert.equal(seen.displays, 1);
    assert.match(seen.latest, /<b>finished<\/b> epoch 1\/1 step 2\/2 loss 0\.5000/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
