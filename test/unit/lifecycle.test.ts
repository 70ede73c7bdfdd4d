/**
 * @module The lifecycle object: running → draining → stopped, the in-flight counter's drained(),
 * the order of the stop steps, one rollback path for a failed start, double stop, stop and kill
 * while starting. No sockets or processes: components are plain objects that record their steps.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { InFlight, untilDeadline } from '../../src/lifecycle/in-flight.js';
import { Lifecycle, type Component, type StopContext } from '../../src/lifecycle/lifecycle.js';

/** A day: a deadline no test reaches; the tests that want the deadline use 0. */
const NEVER_MS = 86_400_000;

/** A component whose every step appends `name.step` to `log`. */
function recorder(name: string, log: string[], extra: Partial<Component> = {}): Component {
  return {
    stopAccepting: () => { log.push(`${name}.stopAccepting`); },
    drain: async () => { log.push(`${name}.drain`); },
    close: () => { log.push(`${name}.close`); },
    kill: () => { log.push(`${name}.kill`); },
    ...extra,
  };
}

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => { resolve = done; });
  return { promise, resolve };
}

/** Whether `promise` has settled by the time the queued callbacks ran. */
async function hasSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => { settled = true; }, () => { settled = true; });
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

describe('InFlight', () => {
  test('drained() resolves at once when nothing is in flight', async () => {
    assert.equal(await hasSettled(new InFlight().drained()), true);
  });

  test('drained() resolves when the last piece of work closes, not before', async () => {
    const inFlight = new InFlight();
    inFlight.open();
    inFlight.open();
    const drained = inFlight.drained();
    inFlight.close();
    assert.equal(inFlight.count, 1);
    assert.equal(await hasSettled(drained), false);
    inFlight.close();
    assert.equal(await hasSettled(drained), true);
  });

  test('a close without an open leaves the count at zero', () => {
    const inFlight = new InFlight();
    inFlight.close();
    assert.equal(inFlight.count, 0);
  });

  test('untilDeadline: the work wins, or the deadline does', async () => {
    await untilDeadline(Promise.resolve(), Date.now() + NEVER_MS);   // would hang if the timer were waited for
    await untilDeadline(new Promise(() => {}), Date.now());            // never resolves: the deadline ends it
    await assert.rejects(untilDeadline(Promise.reject(new Error('drain broke')), Date.now() + NEVER_MS), /drain broke/);
  });
});

describe('Lifecycle', () => {
  test('starting → running → draining → stopped; drained() waited for', async () => {
    const life = new Lifecycle({ gracefulTimeoutMs: NEVER_MS });
    assert.equal(life.state, 'starting');
    await life.start(async () => {});
    assert.equal(life.state, 'running');
    assert.equal(life.isStopping, false);
    life.inFlight.open();
    const stopped = life.stop('SIGTERM');
    assert.equal(life.state, 'draining');
    assert.equal(life.isStopping, true);
    assert.equal(await hasSettled(stopped), false, 'a stop waits for the work in flight');
    life.inFlight.close();
    assert.deepEqual(await stopped, { unfinished: 0 });
    assert.equal(life.state, 'stopped');
  });

  test('the deadline ends the wait; what was left is reported as unfinished', async () => {
    const seen: { inFlight?: number; unfinished?: number; stop?: StopContext } = {};
    const life = new Lifecycle({
      gracefulTimeoutMs: 0,
      onDraining: (stop, inFlight) => { seen.inFlight = inFlight; seen.stop = stop; },
      onStopped: (_stop, unfinished) => { seen.unfinished = unfinished; },
    });
    await life.start(async () => {
      life.add('stuck', { drain: () => new Promise(() => {}) });
    });
    life.inFlight.open();
    life.inFlight.open();
    assert.deepEqual(await life.stop('SIGINT', { handOver: true }), { unfinished: 2 });
    assert.deepEqual([seen.inFlight, seen.unfinished, seen.stop?.reason, seen.stop?.handOver], [2, 2, 'SIGINT', true]);
  });

  test('the stop runs phase by phase, newest component first', async () => {
    const log: string[] = [];
    const life = new Lifecycle({ gracefulTimeoutMs: NEVER_MS });
    await life.start(async () => {
      life.add('log', recorder('log', log));
      life.add('pool', recorder('pool', log));
      life.add('listeners', recorder('listeners', log));
    });
    await life.stop('SIGTERM');
    assert.deepEqual(log, [
      'listeners.stopAccepting', 'pool.stopAccepting', 'log.stopAccepting',
      'listeners.drain', 'pool.drain', 'log.drain',
      'listeners.close', 'pool.close', 'log.close',
    ]);
  });

  test('a second stop gets the same promise; the steps run once', async () => {
    const log: string[] = [];
    const life = new Lifecycle({ gracefulTimeoutMs: NEVER_MS });
    await life.start(async () => { life.add('pool', recorder('pool', log)); });
    const first = life.stop('SIGTERM');
    const second = life.stop('SIGINT');
    assert.equal(first, second);
    await first;
    await life.stop('again');
    assert.deepEqual(log, ['pool.stopAccepting', 'pool.drain', 'pool.close']);
  });

  test('a failed start rolls back what it registered, newest first (kill, else close), and rethrows', async () => {
    const log: string[] = [];
    const life = new Lifecycle({ gracefulTimeoutMs: NEVER_MS });
    await assert.rejects(life.start(async () => {
      life.add('log', { close: async () => { log.push('log.close'); } });
      life.add('pool', recorder('pool', log));
      life.add('broken', { kill: () => { throw new Error('rollback step failed'); } });
      throw new Error('the application cannot be imported');
    }), /the application cannot be imported/);
    assert.deepEqual(log, ['pool.kill', 'log.close']);
    assert.equal(life.state, 'stopped');
    assert.deepEqual(await life.stop('SIGTERM'), { unfinished: 0 }, 'nothing is left to stop');
    assert.deepEqual(log, ['pool.kill', 'log.close']);
  });

  test('a stop asked while starting waits for the start, then stops what it started', async () => {
    const log: string[] = [];
    const life = new Lifecycle({ gracefulTimeoutMs: NEVER_MS });
    const workersReady = deferred();
    const started = life.start(async () => {
      life.add('pool', recorder('pool', log));
      await workersReady.promise;
      life.add('watcher', recorder('watcher', log));
    });
    const stopped = life.stop('SIGTERM');
    assert.equal(await hasSettled(stopped), false);
    assert.deepEqual(log, [], 'nothing is stopped half-way through the start');
    workersReady.resolve();
    await started;
    await stopped;
    assert.equal(life.state, 'stopped');
    assert.deepEqual(log, [
      'watcher.stopAccepting', 'pool.stopAccepting', 'watcher.drain', 'pool.drain', 'watcher.close', 'pool.close',
    ]);
  });

  test('a stop asked while a start fails: the rollback is the whole stop', async () => {
    const log: string[] = [];
    const life = new Lifecycle({ gracefulTimeoutMs: NEVER_MS });
    const fail = deferred();
    const started = life.start(async () => {
      life.add('pool', recorder('pool', log));
      await fail.promise;
      throw new Error('no workers');
    });
    const stopped = life.stop('SIGTERM');
    fail.resolve();
    await assert.rejects(started, /no workers/);
    assert.deepEqual(await stopped, { unfinished: 0 });
    assert.deepEqual(log, ['pool.kill']);
  });

  test('kill: every kill step now, newest first; a kill while starting fails the start', async () => {
    const log: string[] = [];
    const life = new Lifecycle({ gracefulTimeoutMs: NEVER_MS });
    const listening = deferred();
    const started = life.start(async () => {
      life.add('pool', recorder('pool', log));
      await listening.promise;
      life.add('listeners', recorder('listeners', log));   // refused: the kill came first
    });
    life.kill();
    assert.equal(life.state, 'stopped');
    listening.resolve();
    await assert.rejects(started, /listeners was started after the stop/);
    assert.deepEqual(log, ['pool.kill', 'pool.kill'], 'killed, then rolled back (a kill step is safe twice)');
  });

  test('a step that throws does not stop the others; the first error is reported', async () => {
    const log: string[] = [];
    const life = new Lifecycle({ gracefulTimeoutMs: NEVER_MS });
    await life.start(async () => {
      life.add('pool', recorder('pool', log));
      life.add('listeners', recorder('listeners', log, {
        drain: () => { throw new Error('drain threw'); },
        close: () => { throw new Error('close threw'); },
      }));
    });
    await assert.rejects(life.stop('SIGTERM'), /drain threw/);
    assert.deepEqual(log, ['listeners.stopAccepting', 'pool.stopAccepting', 'pool.drain', 'pool.close']);
    assert.equal(life.state, 'stopped');
  });
});
