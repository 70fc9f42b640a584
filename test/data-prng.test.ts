import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashKeys, permutation, Rng, shuffleInPlace } from '../src/random/prng';

test('xoshiro128** matches the reference sequence for state 1, 2, 3, 4', () => {
  const rng = Rng.fromState({ algorithm: 'xoshiro128**', words: [1, 2, 3, 4] });
  assert.deepEqual([1, 2, 3, 4, 5].map(() => rng.uint32()), [11520, 0, 5927040, 70819200, 2031721883]);
});

test('the same keys give the same stream, different keys a different one', () => {
  const draw = (rng: Rng) => Array.from({ length: 8 }, () => rng.uint32());
  assert.deepEqual(draw(Rng.from(42, 3)), draw(Rng.from(42, 3)));
  assert.notDeepEqual(draw(Rng.from(42, 3)), draw(Rng.from(42, 4)));
  assert.notDeepEqual(draw(Rng.from(42, 3)), draw(Rng.from(3, 42)));
  // Keys beyond 32 bits are hashed whole, not truncated.
  assert.notEqual(hashKeys([2 ** 40 + 1]), hashKeys([1]));
  assert.notEqual(hashKeys([-1]), hashKeys([2 ** 32 - 1]));
});

test('state survives a JSON round trip and continues the stream exactly', () => {
  const rng = Rng.from(7);
  for (let i = 0; i < 100; i++) rng.uint32();
  const saved = JSON.parse(JSON.stringify(rng.getState()));
  const expected = Array.from({ length: 50 }, () => rng.float());
  const restored = Rng.fromState(saved);
  assert.deepEqual(Array.from({ length: 50 }, () => restored.float()), expected);
  const clone = Rng.from(9).clone();
  assert.equal(clone.uint32(), Rng.from(9).uint32());
});

test('invalid states are rejected with the reason', () => {
  assert.throws(() => Rng.fromState({ algorithm: 'xoshiro128**', words: [0, 0, 0, 0] }), /not all zero/);
  assert.throws(() => Rng.fromState({ algorithm: 'xoshiro128**', words: [1, 2, 3] as never }), /four unsigned 32-bit words/);
  assert.throws(() => Rng.fromState({ algorithm: 'mt19937' as never, words: [1, 2, 3, 4] }), /xoshiro128\*\*/);
  assert.throws(() => Rng.from(1.5), /safe integers/);
});

test('int(n) stays in range and is close to uniform; float in [0, 1)', () => {
  const rng = Rng.from(123);
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 20000; i++) {
    const v = rng.int(10);
    assert.ok(v >= 0 && v < 10 && Number.isInteger(v));
    counts[v]++;
  }
  for (const c of counts) assert.ok(Math.abs(c - 2000) < 200, `bucket count ${c} too far from 2000`);
  for (let i = 0; i < 1000; i++) {
    const f = rng.float();
    assert.ok(f >= 0 && f < 1);
  }
  assert.throws(() => rng.int(0), /integer n/);
});

test('permutation holds every index once; shuffle is deterministic', () => {
  const p = permutation(1000, Rng.from(5));
  assert.deepEqual(Array.from(p).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  assert.notDeepEqual(Array.from(p), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(shuffleInPlace([1, 2, 3, 4, 5], Rng.from(1)), shuffleInPlace([1, 2, 3, 4, 5], Rng.from(1)));
});
