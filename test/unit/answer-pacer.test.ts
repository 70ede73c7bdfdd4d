/**
 * AnswerPacer (src/pool/answer-pacer.ts): a burst of whole answers is written a share per
 * event-loop turn, in order; the share grows with the requests that arrived the turn before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerPacer } from '../../src/pool/answer-pacer.js';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('a burst: the first share now, the rest a share per turn, first in first out', async () => {
  const pacer = new AnswerPacer(4);
  const written: number[] = [];
  for (let n = 0; n < 10; n++) pacer.write(() => written.push(n));
  assert.deepEqual(written, [0, 1, 2, 3], 'this turn writes its share at once');
  assert.equal(pacer.waitingCount, 6);
  await nextTurn();
  assert.deepEqual(written, [0, 1, 2, 3, 4, 5, 6, 7]);
  await nextTurn();
  assert.deepEqual(written, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(pacer.waitingCount, 0);
});

test('an answer never overtakes one that waits, even when the turn has room again', async () => {
  const pacer = new AnswerPacer(2);
  const written: string[] = [];
  for (const tag of ['a', 'b', 'c']) pacer.write(() => written.push(tag));
  await nextTurn(); // writes 'c'; this turn's share (2) has room for one more
  pacer.write(() => written.push('d'));
  assert.deepEqual(written, ['a', 'b', 'c', 'd']);
});

test('requests that arrived in a turn raise the next turn\'s share', async () => {
  const pacer = new AnswerPacer(2);
  const written: number[] = [];
  for (let n = 0; n < 12; n++) pacer.write(() => written.push(n));
  for (let n = 0; n < 8; n++) pacer.noteArrival();
  await nextTurn();
  assert.equal(written.length, 2 + 8, 'eight arrivals: eight answers the next turn');
  await nextTurn();
  assert.equal(written.length, 12, 'then the least share again (2)');
});
