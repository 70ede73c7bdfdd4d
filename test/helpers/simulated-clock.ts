/**
 * A Clock (src/pool/clock.ts) whose time moves only when the test says: `advance(ms)` fires the
 * timers due on the way, each at its own instant and in time order, and `turn()` runs one
 * event-loop turn's callbacks. Unit tests of the dispatcher, the channel's deadlines and the
 * answer pacer run on it, so they assert what happens at a given time without ever sleeping.
 */
import type { Clock, Timer } from '../../src/pool/clock.js';

interface Repeating {
  dueMs: number;
  everyMs: number;
  fn: () => void;
  isCancelled: boolean;
  /** Creation order: timers due at the same instant fire in the order they were made. */
  order: number;
}

export class SimulatedClock implements Clock {
  private nowMs: number;
  private timers: Repeating[] = [];
  private turnQueue: (() => void)[] = [];
  private made = 0;

  constructor(startMs = 1_000_000) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  every(ms: number, fn: () => void): Timer {
    const timer: Repeating = { dueMs: this.nowMs + Math.max(1, ms), everyMs: Math.max(1, ms), fn, isCancelled: false, order: this.made++ };
    this.timers.push(timer);
    return { cancel: () => { timer.isCancelled = true; } };
  }

  nextTurn(fn: () => void): void {
    this.turnQueue.push(fn);
  }

  /** Live repeating timers (cancelled ones are not counted). */
  get timerCount(): number {
    return this.timers.filter((timer) => !timer.isCancelled).length;
  }

  /** Callbacks waiting for the next turn. */
  get pendingTurnCount(): number {
    return this.turnQueue.length;
  }

  /** Runs one event-loop turn: the callbacks queued before it began (those they queue wait for the next). */
  turn(): void {
    const callbacks = this.turnQueue;
    this.turnQueue = [];
    for (const fn of callbacks) fn();
  }

  /** Moves time forward by `ms`, firing each timer at every instant it is due on the way. */
  advance(ms: number): void {
    const endMs = this.nowMs + ms;
    for (;;) {
      this.timers = this.timers.filter((timer) => !timer.isCancelled);
      let next: Repeating | undefined;
      for (const timer of this.timers) {
        if (timer.dueMs > endMs) continue;
        if (next === undefined || timer.dueMs < next.dueMs || (timer.dueMs === next.dueMs && timer.order < next.order)) next = timer;
      }
      if (next === undefined) break;
      this.nowMs = next.dueMs;
      next.dueMs += next.everyMs;
      next.fn();
    }
    this.nowMs = endMs;
  }
}
