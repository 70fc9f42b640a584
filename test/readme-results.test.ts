// The README's results section is generated from experiments/results/*.json, never typed by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BEGIN, END, README, renderResultsSection, withResults } from '../experiments/readme';

test('the README results section is what npm run exp:readme generates from experiments/results', () => {
  const readme = fs.readFileSync(README, 'utf8');
  const section = readme.slice(readme.indexOf(BEGIN), readme.indexOf(END) + END.length);
  assert.equal(section, renderResultsSection(), 'README.md is out of date: run npm run exp:readme');
});

test('every result gets its table, its command line and figure links relative to the README', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'results-'));
  const result = {
    experiment: 'demo', command: 'npm run exp:demo', backend: 'cpu', machine: 'test machine', date: '2026-11-28T00:00:00Z',
    wallSeconds: 12.3, seed: 1, table: '| a |\n|---|\n| 1 |', notes: '![curve](demo-curve.png) and [site](https://example.org)',
  };
  fs.writeFileSync(path.join(dir, 'demo.json'), JSON.stringify(result));
  const section = renderResultsSection(dir);
  assert.ok(section.startsWith(BEGIN) && section.endsWith(END));
  assert.match(section, /### demo\n\n\| a \|\n\|---\|\n\| 1 \|/);
  assert.match(section, /_`npm run exp:demo` — cpu, test machine, 2026-11-28, 12 s, seed 1\._/);
  const rel = path.relative(path.dirname(README), dir).split(path.sep).join('/');
  assert.ok(section.includes(`](${rel}/demo-curve.png)`), section);
  assert.ok(section.includes('](https://example.org)'));
  assert.equal(withResults(`top\n${BEGIN}\nold\n${END}\nbottom`, section), `top\n${section}\nbottom`);
  assert.throws(() => withResults('no markers', section), /no results section/);
  fs.writeFileSync(path.join(dir, 'broken.json'), JSON.stringify({ experiment: 'broken' }));
  assert.throws(() => renderResultsSection(dir), /broken\.json: no 'command'/);
});
