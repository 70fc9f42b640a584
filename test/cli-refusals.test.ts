// Arguments the CLI refuses with one clear line instead of a raw typed-array error, and the
// warning for predictions of a model without trained weights.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rgbPng, tempDir } from './data-fixtures';
import { runCli, stderrErrorLines } from './train-fixtures';

const tmp = tempDir('cli-refusals');
after(() => tmp.cleanup());

for (const [args, message] of [
  [['--input', '100000x100000x3'], /--batch 64 of 100000x100000x3 inputs is 1\.92e\+12 values; the planner takes input batches of at most 2147483648 values/],
  [['--batch', '1000000000'], /--batch 1000000000 of 224x224x3 inputs is 1\.51e\+14 values/],
  [['--budget', '1e400GB'], /--budget '1e400GB': expected a size below 9007199254740991 bytes/],
] as const) {
  test(`plan ${args.join(' ')} is refused in one line`, () => {
    const r = runCli(['plan', 'densenet121', ...args]);
    assert.equal(r.status, 1, r.stderr);
    const errors = stderrErrorLines(r.stderr);
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0], message);
  });
}

test('predict without --weights warns that the predictions mean nothing', () => {
  const image = join(tmp.dir, 'image.png');
  writeFileSync(image, rgbPng(32, 32, (y, x) => [y * 8, x * 8, 100]));
  const r = runCli(['predict', 'densenet-bc-100-k12', image, '--top', '2']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /densenet: warning: no --weights: densenet-bc-100-k12 has random weights, so its predictions mean nothing; give --weights fashion-mnist, a weights file or a checkpoint folder/);
});
