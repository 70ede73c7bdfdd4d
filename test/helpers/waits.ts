/**
 * How tests wait, named so a reader (and lint) can tell the kinds apart. A test awaits a signal
 * whenever there is one: an event, a log line (waitForLog), a fixture app's "request started"
 * line (waitForStarted), a count of answers (Tally). Two kinds of wait have no signal and live
 * here only:
 * - polling (`waitUntil`, `pollPause`): the condition is a fact read from outside (a /proc entry,
 *   a file's content, a metric, a socket's text) that nothing announces; it is read again after a
 *   short pause until it holds or a deadline passes. The pause is not a timing assumption: a
 *   slower machine only takes more rounds.
 * - `deliberateWait(ms, why)`: a fixed wait that is the point of the test (proving that nothing
 *   happens for a while, pacing a scenario). Each call says why. eslint.config.js forbids bare
 *   sleeps (`setTimeout(resolve, ms)`) in test/e2e, so `grep -rn deliberateWait test/e2e` lists
 *   every fixed wait there is.
 */

/** The pause between two reads of a polled condition. */
export function pollPause(ms = 20): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` until it holds; fails naming `what` after `timeoutMs`. */
export async function waitUntil(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pollPause();
  }
}

/**
 * A fixed wait that no signal can replace; `why` says what it is for (kept in the code for the
 * reader and grep, unused at run time).
 */
export function deliberateWait(ms: number, why: string): Promise<void> {
  void why;
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Counts events (answers of a load, say) and resolves waiters once the count reaches theirs. */
export class Tally {
  private counted = 0;
  private waiters: { target: number; resolve: () => void }[] = [];

  get count(): number {
    return this.counted;
  }

  add(): void {
    this.counted += 1;
    const due = this.waiters.filter(({ target }) => target <= this.counted);
    this.waiters = this.waiters.filter(({ target }) => target > this.counted);
    for (const { resolve } of due) resolve();
  }

  /** Resolves once the count has reached `target`; fails after `timeoutMs` (a stalled load). */
  reached(target: number, timeoutMs = 15_000): Promise<void> {
    if (this.counted >= target) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(`count stuck at ${this.counted}, waiting for ${target}`)), timeoutMs);
      this.waiters.push({ target, resolve: () => { clearTimeout(guard); resolve(); } });
    });
  }

  /** Resolves once `more` further events have been counted. */
  more(more: number, timeoutMs?: number): Promise<void> {
    return this.reached(this.counted + more, timeoutMs);
  }
}
