/**
 * @module A process's lifecycle as one object: starting → running → draining → stopped.
 *
 * A start is a series of steps; each step that takes hold of something (a log file, a pool of
 * worker processes, listening sockets) registers it as a component, with the steps its stop
 * needs (`Component`). Every stop then runs the components newest first: the last thing started
 * is the first stopped (the listeners before the pool that serves them, the pool before the log
 * it writes to), phase by phase:
 *
 *   stopAccepting  all at once: take no new work;
 *   drain          one after the other, each cut off at the graceful deadline; then the
 *                  in-flight counter is awaited too (until it drains or the deadline comes);
 *   close          one after the other: release what it holds.
 *
 * A start that fails releases what it had registered by the same components, newest first
 * (`kill`, else `close`), so there is one rollback path, not one per step. `kill()` is the
 * immediate stop (a second signal, a crash): every `kill`, newest first, nothing awaited.
 *
 * A component added later (a new subsystem of the front) registers its own steps with `add`
 * during the start; nothing else in the stop needs to change.
 */
import { InFlight, untilDeadline } from './in-flight.js';

export type LifecycleState = 'starting' | 'running' | 'draining' | 'stopped';

/** What a stop step is told. */
export interface StopContext {
  /** Why: the signal's name, `primary gone`, ... */
  readonly reason: string;
  /** Another process takes over (a reload): idle connections are handed over rather than cut. */
  readonly handOver: boolean;
  /** The graceful deadline, a `Date.now()` value: drains are cut off there. */
  readonly deadline: number;
}

/** The stop steps of one thing a start took hold of; each is optional. */
export interface Component {
  /** Graceful stop, at once: take no new work (stop listening, stop watching files). */
  stopAccepting?(stop: StopContext): void;
  /** Waits for this component's own work in flight; cut off at `stop.deadline` by the lifecycle. */
  drain?(stop: StopContext): Promise<void>;
  /** Releases what it holds, after every drain (not cut off: it bounds its own time). */
  close?(): void | Promise<void>;
  /** Releases it now: the immediate stop, and the rollback of a failed start (there `close` when absent). */
  kill?(): void;
}

export interface LifecycleOptions {
  /** Time a graceful stop gives the drains, from its start. */
  gracefulTimeoutMs: number;
  /** Told when a graceful stop begins, before any step, with what is in flight then. */
  onDraining?: (stop: StopContext, inFlight: number) => void;
  /** Told when a graceful stop ended, with what was still in flight at the deadline. */
  onStopped?: (stop: StopContext, unfinished: number) => void;
}

export interface StopOutcome {
  /** In flight when the drains ended: cut by the close. */
  unfinished: number;
}

const ignore = (): void => {};

export class Lifecycle {
  /** Responses (or other work) in flight; a graceful stop waits for it to drain. */
  readonly inFlight = new InFlight();
  private current: LifecycleState = 'starting';
  private readonly components: { name: string; steps: Component }[] = [];
  /** Settles once the start has settled and the state moved on (running, or stopped after the rollback). */
  private startSettled: Promise<void> | null = null;
  private stopping: Promise<StopOutcome> | null = null;

  constructor(private readonly options: LifecycleOptions) {}

  get state(): LifecycleState {
    return this.current;
  }

  /** A stop began (or ended): answers should say `Connection: close`, /health 503. */
  get isStopping(): boolean {
    return this.current === 'draining' || this.current === 'stopped';
  }

  /**
   * Registers what a start step took hold of, with its stop steps. Refused once a stop began:
   * a step that was still starting then fails the start, whose rollback releases the rest.
   */
  add(name: string, steps: Component): void {
    if (this.isStopping) throw new Error(`${name} was started after the stop (${this.current})`);
    this.components.push({ name, steps });
  }

  /**
   * Runs the start steps; once they resolve the state is `running`. When one throws, every
   * component registered so far is released (newest first) and the error goes up: `stopped`.
   */
  start<T>(run: () => Promise<T>): Promise<T> {
    if (this.startSettled !== null) throw new Error('the lifecycle was started already');
    const started = this.runStart(run);
    this.startSettled = started.then(ignore, ignore);
    return started;
  }

  /**
   * Graceful stop: stopAccepting, drains (until the deadline), then closes; the same promise
   * for every call. Asked while starting, it waits for the start to end: a start is never cut
   * half-way, so every step either finished (and is stopped here) or was rolled back.
   */
  stop(reason: string, { handOver = false } = {}): Promise<StopOutcome> {
    this.stopping ??= this.stopOnce(reason, handOver);
    return this.stopping;
  }

  /** Immediate stop: every component's `kill`, newest first; the process is about to exit. */
  kill(): void {
    this.current = 'stopped';
    for (const { steps } of this.newestFirst()) {
      try {
        steps.kill?.();
      } catch {
        // The others must still go; nothing waits for an answer from here on.
      }
    }
  }

  private async runStart<T>(run: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await run();
    } catch (error: unknown) {
      await this.rollBack();
      throw error;
    }
    if (this.current === 'stopped') {
      // Killed while starting: what started after the kill goes too.
      this.kill();
      throw new Error('stopped while starting');
    }
    this.current = 'running';
    return result;
  }

  /** A failed start: what it took hold of is released, newest first; the start's own error is the one reported. */
  private async rollBack(): Promise<void> {
    this.current = 'stopped';
    for (const { steps } of this.newestFirst()) {
      try {
        if (steps.kill !== undefined) steps.kill();
        else await steps.close?.();
      } catch {
        // Reporting this instead would hide why the start failed.
      }
    }
  }

  private async stopOnce(reason: string, handOver: boolean): Promise<StopOutcome> {
    if (this.current === 'starting' && this.startSettled !== null) await this.startSettled;
    if (this.current === 'stopped') return { unfinished: 0 };   // the start failed (rolled back) or was killed
    this.current = 'draining';
    const stop: StopContext = { reason, handOver, deadline: Date.now() + this.options.gracefulTimeoutMs };
    this.options.onDraining?.(stop, this.inFlight.count);
    const components = this.newestFirst();
    // Every step runs even when one before it threw; the first error is reported at the end.
    const errors: unknown[] = [];
    for (const { steps } of components) {
      try {
        steps.stopAccepting?.(stop);
      } catch (error: unknown) {
        errors.push(error);
      }
    }
    for (const { steps } of components) {
      const { drain } = steps;
      if (drain === undefined) continue;
      // The executor turns a drain that throws at once into a rejection like any other.
      await untilDeadline(new Promise<void>((resolve) => { resolve(drain.call(steps, stop)); }), stop.deadline)
        .catch((error: unknown) => { errors.push(error); });
    }
    await untilDeadline(this.inFlight.drained(), stop.deadline);
    const unfinished = this.inFlight.count;
    for (const { steps } of components) {
      try {
        await steps.close?.();
      } catch (error: unknown) {
        errors.push(error);
      }
    }
    this.current = 'stopped';
    this.options.onStopped?.(stop, unfinished);
    if (errors.length > 0) throw errors[0];
    return { unfinished };
  }

  private newestFirst(): { name: string; steps: Component }[] {
    return [...this.components].reverse();
  }
}
