/**
 * @module A count of work in flight, and promises for "it reached zero" and "or the deadline came".
 *
 * A graceful stop waits for the count to reach zero; it is told so by the decrement that got
 * there, instead of looking at the count every few milliseconds.
 */

/** Work that was opened and is not closed yet (responses of a front, for one). */
export class InFlight {
  private openCount = 0;
  private waiters: (() => void)[] = [];
  private readonly closeListeners: (() => void)[] = [];

  get count(): number {
    return this.openCount;
  }

  open(): void {
    this.openCount += 1;
  }

  /** One open piece of work ended (a close without an open is ignored: the count never goes below zero). */
  close(): void {
    if (this.openCount === 0) return;
    this.openCount -= 1;
    for (const listener of this.closeListeners) listener();
    if (this.openCount === 0) this.wake();
  }

  /** Calls `listener` after each close: for a drain that acts as each piece of work ends. */
  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  /** Resolves once nothing is in flight: at once when nothing is now. */
  drained(): Promise<void> {
    if (this.openCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}

/**
 * Resolves when `work` does or when the clock reaches `deadline` (a `Date.now()` value),
 * whichever comes first; its timer is cleared when `work` wins, so nothing is left pending.
 * A `work` that rejects first rejects this too (one that rejects later is ignored).
 */
export function untilDeadline(work: Promise<unknown>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeUp = new Promise<void>((resolve) => { timer = setTimeout(resolve, Math.max(0, deadline - Date.now())); });
  return Promise.race([work.then(() => undefined), timeUp]).finally(() => clearTimeout(timer));
}
