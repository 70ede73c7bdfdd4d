/**
 * AnswerPacer (src/pool/answer-pacer.ts): a burst of whole answers is written a share per
 * event-loop turn, in order; the share grows with the requests that arrived the turn before.
 * Turns are simulated (test/helpers/simulated-clock.ts): `clock.turn()` is one event-loop turn.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerPacer } from '../../src/pool/answer-pacer.js';
import { SimulatedClock } from '../helpers/simulated-clock.js';

test('a burst: the first share now, the rest a share per turn, first in first out', () => {
  const clock = new SimulatedClock();
  const pacer = new AnswerPacer(4, clock);
  const written: number[] = [];
  for (let n = 0; n < 10; n++) pacer.write(() => written.push(n));
  assert.deepEqual(written, [0, 1, 2, 3], 'this turn writes its share at once');
  assert.equal(pacer.waitingCount, 6);
  clock.turn();
  assert.deepEqual(written, [0, 1, 2, 3, 4, 5, 6, 7]);
  clock.turn();
  assert.deepEqual(written, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(pacer.waitingCount, 0);
});

test('an answer never overtakes one that waits, even when the turn has room again', () => {
  const clock = new SimulatedClock();
  const pacer = new AnswerPacer(2, clock);
  const written: string[] = [];
  for (const tag of ['a', 'b', 'c']) pacer.write(() => written.push(tag));
  clock.turn(); // writes 'c'; this turn's share (2) has room for one more
  pacer.write(() => written.push('d'));
  assert.deepEqual(written, ['a', 'b', 'c', 'd']);
});

test('requests that arrived in a turn raise the next turn\'s share', () => {
  const clock = new SimulatedClock();
  const pacer = new AnswerPacer(2, clock);
  const written: number[] = [];
  for (let n = 0; n < 12; n++) pacer.write(() => written.push(n));
  for (let n = 0; n < 8; n++) pacer.noteArrival();
  clock.turn();
  assert.equal(written.length, 2 + 8, 'eight arrivals: eight answers the next turn');
  clock.turn();
  assert.equal(written.length, 12, 'then the least share again (2)');
});

test('an answer that throws does not stop the ones behind it', () => {
  const clock = new SimulatedClock();
  const pacer = new AnswerPacer(1, clock);
  const written: string[] = [];
  pacer.write(() => written.push('a'));
  pacer.write(() => { throw new Error('client gone'); });
  pacer.write(() => written.push('c'));
  assert.throws(() => clock.turn(), /client gone/);
  clock.turn();
  assert.deepEqual(written, ['a', 'c']);
  assert.equal(pacer.waitingCount, 0);
});

test('nothing to write: no turn stays scheduled', () => {
  const clock = new SimulatedClock();
  const pacer = new AnswerPacer(2, clock);
  pacer.write(() => undefined);
  clock.turn();
  assert.equal(clock.pendingTurnCount, 0, 'an idle pacer schedules nothing');
});
