/**
 * @module The pool's time: what "now" is, repeating timers, and the next event-loop turn.
 *
 * The dispatcher (queue wait, shedding), the channel (request deadlines) and the answer pacer
 * (turns) take a Clock instead of calling Date.now/setInterval/setImmediate, so their unit tests
 * run in simulated time (test/helpers/simulated-clock.ts): a test moves time forward by exactly
 * the milliseconds it means, and nothing depends on how busy the machine is. Why not node:test's
 * `mock.timers`: it patches the globals of the whole test process (the sockets and streams of a
 * test too), its Date mocking needs Node 20.11+, and it is experimental on Node 20; an injected
 * clock touches only the code under test. Production code uses `systemClock`, which is the
 * globals, so nothing changes at run time.
 */

/** A repeating timer; cancel() stops it. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch, as Date.now(). */
  now(): number;
  /** Calls `fn` every `ms` until cancelled; never keeps the process alive (unref). */
  every(ms: number, fn: () => void): Timer;
  /** Calls `fn` in the check phase of this event-loop turn (setImmediate): after the poll phase has read the sockets. */
  nextTurn(fn: () => void): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  every(ms, fn) {
    const interval = setInterval(fn, ms).unref();
    return { cancel: () => clearInterval(interval) };
  },
  nextTurn(fn) {
    setImmediate(fn);
  },
};
