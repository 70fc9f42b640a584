// The "memory" and "gpu-recipes" experiments: their --quick / cheap modes write real result
// files, the measurements make sense (efficient below naive, the planner's figures positive),
// and every command the GPU recipes print gets through the real CLI's argument parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { polyfit, growthFit } from '../experiments/memory';
import { RECIPES, shellLine } from '../experiments/gpu-recipes';
import * as zoo from '../src/zoo';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

function runScript(name: string, args: string[]): { out: string; err: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'experiments', `${name}.js`), ...args], { encoding: 'utf8', timeout: 170_000 });
  assert.equal(r.status, 0, `${name} ${args.join(' ')} exited with ${r.status} (${r.signal ?? ''}):\n${r.stderr}`);
  return { out: r.stdout, err: r.stderr };
}

function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function readJson(file: string): Record<string, any> {
  assert.ok(fs.existsSync(file), `${file} was not written`);
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function assertRecordFields(record: Record<string, any>, experiment: string): void {
  assert.equal(record.experiment, experiment);
  for (const key of ['command', 'backend', 'machine', 'date', 'wallSeconds', 'data', 'table']) assert.ok(key in record, `${experiment}.json lacks '${key}'`);
  assert.ok('seed' in record);
  assert.ok(!Number.isNaN(Date.parse(record.date)));
  assert.ok(record.wallSeconds > 0);
}

test('polyfit recovers a quadratic exactly; growthFit tells quadratic from linear growth', () => {
  const x = [6, 10, 16, 24, 31, 41];
  const quad = x.map((n) => 3 + 0.5 * n + 0.02 * n * n);
  const f = polyfit(x, quad, 2);
  [3, 0.5, 0.02].forEach((c, i) => assert.ok(Math.abs(f.coefficients[i] - c) < 1e-9, `coefficient ${i}: ${f.coefficients[i]} vs ${c}`));
  assert.ok(Math.abs(f.r2 - 1) < 1e-12);
  const lin = x.map((n) => 7 + 0.25 * n);
  const g = growthFit(x, lin);
  assert.ok(Math.abs(g.quadraticShareAtDeepest!) < 1e-9);
  g.mbPerAddedLayer.forEach((v) => assert.ok(Math.abs(v - 0.25) < 1e-12));
  const q = growthFit(x, quad);
  assert.ok(q.quadraticShareAtDeepest! > 0.3);
  assert.ok(q.mbPerAddedLayer[q.mbPerAddedLayer.length - 1] > q.mbPerAddedLayer[0]);
  assert.throws(() => polyfit([1, 2], [1, 2], 2), /at least 3 points/);
});

test('exp:memory --quick writes the step table, the depth sweep with its plots and the PyTorch rows', () => {
  const out = tmpDir('exp-memory-');
  try {
    const { out: stdout } = runScript('memory', ['--quick', '--out', out]);
    assert.match(stdout, /wrote .*memory\.json/);
    const record = readJson(path.join(out, 'memory.json'));
    assertRecordFields(record, 'memory');
    assert.match(record.command, /exp:memory -- --quick/);
    const data = record.data;
    assert.equal(data.quick, true);
    assert.equal(data.backend.name, record.backend);

    // (a) naive against efficient, each peak beside the planner's prediction.
    assert.equal(data.step.length, 3);
    for (const r of data.step) {
      for (const mode of ['naive', 'efficient']) {
        assert.ok(r[mode].peakBytes > 0, `${r.spec.label} ${mode}: ${JSON.stringify(r[mode])}`);
        assert.ok(r[mode].maxRssBytes > r[mode].peakBytes, `${r.spec.label} ${mode}: the process holds at least its tensors`);
        assert.equal(r[mode].tensorsAfterStep2, r[mode].tensorsAfterLastStep, `${r.spec.label} ${mode} leaks tensors`);
        assert.ok(r.plan[mode].peakBytes > 0);
        assert.ok(Number.isFinite(r.planErrorPct[mode]));
      }
      assert.ok(r.efficient.peakBytes < r.naive.peakBytes, `${r.spec.label}: efficient ${r.efficient.peakBytes} >= naive ${r.naive.peakBytes}`);
      assert.ok(r.plan.efficient.peakBytes < r.plan.naive.peakBytes);
      assert.ok(r.peakRatio > 0 && r.peakRatio < 1);
    }
    assert.equal(typeof data.planner.within10Pct, 'boolean');
    assert.ok(data.planner.peaksCompared >= 6);

    // (b) the sweep: naive grows faster per added layer than efficient, and faster with depth.
    const { rows, fits } = data.sweep;
    assert.deepEqual(rows.map((r: any) => r.depth), data.sweep.depths);
    for (const r of rows) assert.ok(r.efficient < r.naive, `depth ${r.depth}`);
    const last = (a: number[]) => a[a.length - 1];
    assert.ok(last(fits.naive.mbPerAddedLayer) > last(fits.efficient.mbPerAddedLayer));
    assert.ok(last(fits.naive.mbPerAddedLayer) > fits.naive.mbPerAddedLayer[0]);
    assert.ok(fits.naive.quadratic.coefficients[2] > fits.efficient.quadratic.coefficients[2]);
    const png = fs.readFileSync(path.join(out, 'memory-depth.png'));
    assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
    assert.match(fs.readFileSync(path.join(out, 'memory-depth.html'), 'utf8'), /peak training memory against depth/);

    // (c) PyTorch: a measured row or one that says why not, for every model and mode.
    const torchRows = data.pytorch.rows.filter((r: any) => /pytorch/i.test(r.implementation));
    assert.equal(torchRows.length, 6);
    for (const r of torchRows) assert.ok('error' in r.result ? r.result.error.length > 0 : r.result.msPerStep > 0, JSON.stringify(r));
    assert.ok(torchRows.filter((r: any) => r.model === 'fc-densenet56').every((r: any) => /no PyTorch counterpart/.test(r.result.error)));

    const md = fs.readFileSync(path.join(out, 'memory.md'), 'utf8');
    for (const heading of ['## One training step', '## Peak memory against depth', '## Beside PyTorch']) assert.ok(md.includes(heading), heading);
    assert.match(md, /technical report, PyTorch on a GPU \| 32x32x3 \| 64 \| naive \| 2863/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('exp:gpu-recipes writes the recipe table with the planner\'s memory (CIFAR recipe only: cheap)', () => {
  const out = tmpDir('exp-gpu-');
  try {
    runScript('gpu-recipes', ['--only', 'cifar10', '--out', out]);
    const record = readJson(path.join(out, 'gpu-recipes.json'));
    assertRecordFields(record, 'gpu-recipes');
    const [recipe] = record.data.recipes;
    assert.equal(recipe.id, 'cifar10');
    const [m] = recipe.memory;
    assert.equal(m.batch, 64);
    assert.ok(m.efficient.peakBytes > 0 && m.efficient.peakBytes < m.naive.peakBytes, JSON.stringify(m));
    assert.ok(m.efficient.maxBatch > m.naive.maxBatch && m.naive.maxBatch > 0);
    const md = fs.readFileSync(path.join(out, 'gpu-recipes.md'), 'utf8');
    assert.ok(md.includes('npx densenet --backend tensorflow-gpu train densenet-bc-100-k12 --dataset cifar10'));
    assert.match(md, /4\.51%/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

const helpCache = new Map<string, string>();
function helpOf(command: string): string {
  if (!helpCache.has(command)) {
    const r = spawnSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    helpCache.set(command, r.stdout);
  }
  return helpCache.get(command)!;
}

test('every GPU recipe command gets through the real CLI\'s argument parsing', () => {
  const cwd = tmpDir('exp-gpu-cli-'); // no datasets or runs here: train and eval stop at the missing folder
  try {
    for (const recipe of RECIPES) {
      assert.ok(recipe.expected.length > 0 && recipe.memory.length > 0, recipe.id);
      if (!recipe.runnable) assert.ok(recipe.caveats.some((c) => /cannot train/.test(c)), `${recipe.id} must say why the CLI cannot run it`);
      else assert.ok(recipe.steps.some((s) => s.args.includes('train')), `${recipe.id} has no train command`);
      for (const step of recipe.steps) {
        const args = [...step.args];
        const b = args.indexOf('--backend');
        if (b >= 0) args.splice(b, 2, '--backend', 'cpu'); // no GPU here; the flags are what is checked
        const command = args.find((a) => !a.startsWith('-') && a !== 'cpu')!;
        if (command === 'train' || command === 'eval') {
          const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd, timeout: 60_000 });
          assert.notEqual(r.status, 0);
          assert.doesNotMatch(r.stderr, /unknown option|unknown command|invalid|too many arguments|missing required|unknown model/i, shellLine(step));
          assert.match(r.stderr, /no such (directory|file)/, `${shellLine(step)}: expected to stop at the missing data, got:\n${r.stderr}`);
        } else {
          // plan is minutes at ImageNet size, predict downloads weights: check the flags against --help.
          const help = helpOf(command);
          const model = args[args.indexOf(command) + 1];
          if (command !== 'doctor') assert.doesNotThrow(() => zoo.info(model), `${shellLine(step)}: '${model}' is not a zoo model`);
          for (const flag of args.filter((a) => a.startsWith('--') && a !== '--backend')) assert.ok(help.includes(flag), `${shellLine(step)}: ${command} has no ${flag}`);
        }
      }
      assert.deepEqual(fs.readdirSync(cwd), [], 'the commands wrote nothing');
    }
  } finally {
    fs.rmSync(cwd, { recursive: true, force: true });
  }
});
