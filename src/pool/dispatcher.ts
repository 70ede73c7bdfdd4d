/**
 * @module Who runs the next request: a bounded FIFO queue in front of the workers' free slots.
 *
 * A request goes straight to the ready worker with the fewest requests in flight when one has
 * room and the `-w` limit (most requests inside the application at once, across the pool)
 * allows; otherwise it waits in the queue, which is bounded: past `queueSize` the answer is an
 * immediate 503 (counted, and logged once per burst). A queued request whose client leaves is
 * dropped without reaching Python (Exchange.cancel → settle → onSettled here).
 *
 * `--queue-target` (off by default) tells a burst from overload, as Facebook's adaptive queues
 * do (CoDel applied to request queues): a queue that has not been empty for STANDING_AFTER_MS is
 * standing, the arrivals outrun the workers, and a FIFO queue would then add its whole length to
 * every request it admits. While it stands, a request that has waited longer than the target is
 * answered 503 at once, oldest first, so the requests that do get in wait at most about the
 * target and keep the latency they have at capacity. A burst that drains within the interval
 * waits as before, up to `--queue-timeout`.
 */
import { ServerError } from '../errors/index.js';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { RejectReason } from '../observability/metrics.js';
import { systemClock, type Clock, type Timer } from './clock.js';
import type { Exchange } from './exchange.js';
import type { WorkerProcess } from './worker.js';

export interface DispatcherOptions {
  /** Most requests in the application at once across the pool; null = the workers' capacity. */
  maxInApp: number | null;
  queueSize: number;
  /** A request queued longer than this is answered 503. */
  queueTimeoutMs: number;
  /** `--queue-target`: in a standing queue, a request queued longer than this is answered 503; null = off. */
  queueTargetMs: number | null;
  log: Logger;
  /** Told of every 503 the queue answers (metrics). */
  onRejected: (why: RejectReason) => void;
  /** A request went to a worker after waiting `ms` in the queue (0: a worker had room at once). */
  onWaited?: (ms: number) => void;
  /** Time for queue waits and sweeps; tests pass a simulated one (clock.ts). */
  clock?: Clock;
}

/** How often the queue's oldest entries are checked against queueTimeoutMs. */
const QUEUE_SWEEP_MS = 100;
/**
 * A queue not empty for this long is standing (overload, not a burst): CoDel's interval. Half of
 * CoDel's 100 ms: the requests that wait while a new overload is being recognised are admitted
 * with that wait, and at 2× capacity 100 ms of them were enough to move the admitted p99.
 */
export const STANDING_AFTER_MS = 50;

export class Dispatcher {
  /** FIFO with a moving head; slots behind the head are cleared so finished requests can be collected. */
  private queue: (Exchange | undefined)[] = [];
  private queueHead = 0;
  private queuedCount = 0;
  private inApp = 0;
  private rejectedInBurst = 0;
  private rotation = 0;
  private sweepTimer: Timer | null = null;
  private readonly clock: Clock;
  /** When the queue last stopped being empty; null while it is empty. */
  private nonEmptySince: number | null = null;
  /** When the queue last became empty; null while it is not. */
  private emptySince: number | null;
  /**
   * The queue stands (`--queue-target`): set once it has not been empty for STANDING_AFTER_MS,
   * cleared only once it has been empty that long. Shedding itself may empty the queue for a
   * moment; that must not end the overload, or every other interval would queue unchecked.
   */
  private isStanding = false;
  /** whenIdle() callers, told when nothing is queued or running any more. */
  private idleWaiters: (() => void)[] = [];
  rejectedTotal = 0;

  constructor(private readonly workers: () => readonly WorkerProcess[], private readonly options: DispatcherOptions) {
    this.clock = options.clock ?? systemClock;
    this.emptySince = this.clock.now();
  }

  get queued(): number {
    return this.queuedCount;
  }

  get running(): number {
    return this.inApp;
  }

  dispatch(exchange: Exchange): void {
    if (exchange.isCancelled) return;
    if (this.queuedCount === 0 && this.tryRun(exchange)) {
      this.options.onWaited?.(0);
      return;
    }
    if (this.queuedCount >= this.options.queueSize) {
      this.reject(exchange, 'queue full');
      return;
    }
    exchange.state = 'queued';
    exchange.queuedAt = this.clock.now();
    exchange.onSettled = this.leftQueue;
    this.queue.push(exchange);
    this.queuedCount += 1;
    if (this.nonEmptySince === null) {
      this.nonEmptySince = exchange.queuedAt;
      if (this.emptySince !== null && exchange.queuedAt - this.emptySince >= STANDING_AFTER_MS) this.isStanding = false;
      this.emptySince = null;
    }
    const targetMs = this.options.queueTargetMs;
    this.sweepTimer ??= this.clock.every(targetMs === null ? QUEUE_SWEEP_MS : Math.max(1, Math.min(QUEUE_SWEEP_MS, targetMs)), () => this.expireQueued());
  }

  /** A queued request's client left (Exchange.settle while queued). */
  private readonly leftQueue = (): void => {
    this.queuedCount -= 1;
    if (this.queuedCount === 0) this.becameEmpty();
  };

  private becameEmpty(): void {
    this.nonEmptySince = null;
    this.emptySince ??= this.clock.now();
    // Every way out of the queue and out of the application (release → pump) ends here.
    if (this.inApp === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Resolves once nothing is queued or running: at once when nothing is now (a graceful stop waits for it). */
  whenIdle(): Promise<void> {
    if (this.queuedCount + this.inApp === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** FIFO: the oldest are at the head; answer 503 to those past the queue timeout, or past the target while the queue stands. */
  private expireQueued(): void {
    const now = this.clock.now();
    this.shed(now - this.options.queueTimeoutMs, 'queue timeout');
    this.shedIfStanding(now);
    if (this.queuedCount === 0 && this.sweepTimer !== null) {
      this.sweepTimer.cancel();
      this.sweepTimer = null;
    }
  }

  private shedIfStanding(now: number): void {
    const targetMs = this.options.queueTargetMs;
    if (targetMs === null) return;
    if (this.nonEmptySince !== null && now - this.nonEmptySince >= STANDING_AFTER_MS) this.isStanding = true;
    if (this.isStanding) this.shed(now - targetMs, 'queue standing');
  }

  /** Answers 503 to the queued requests that arrived before `oldestAllowed`, oldest first. */
  private shed(oldestAllowed: number, why: RejectReason): void {
    for (let exchange = this.peek(); exchange !== undefined && exchange.queuedAt < oldestAllowed; exchange = this.peek()) {
      this.dropHead();
      exchange.onSettled = null;
      this.reject(exchange, why);
    }
    if (this.queuedCount === 0) this.becameEmpty();
  }

  /** A slot may have opened (a request ended, a worker became ready): start queued requests. */
  pump(): void {
    // A freed slot goes to a request that has not waited past the target.
    if (this.queuedCount > 0) this.shedIfStanding(this.clock.now());
    while (this.queuedCount > 0) {
      const exchange = this.peek();
      if (exchange === undefined) break;
      exchange.onSettled = null;
      if (!this.tryRun(exchange)) {
        exchange.onSettled = this.leftQueue;
        break;
      }
      this.dropHead();
      this.options.onWaited?.(this.clock.now() - exchange.queuedAt);
    }
    if (this.queuedCount === 0) this.becameEmpty();
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    if (this.queuedCount < this.options.queueSize / 2) this.rejectedInBurst = 0;
  }

  /** Called by the pool when a running exchange ended on some worker. */
  release(): void {
    this.inApp -= 1;
    this.pump();
  }

  /** Fails every queued request (the pool is stopping for good). */
  failQueued(error: () => ServerError): void {
    for (let exchange = this.peek(); exchange !== undefined; exchange = this.peek()) {
      this.dropHead();
      exchange.onSettled = null;
      exchange.settle();
      exchange.sink.fail({ error: error() });
    }
    this.becameEmpty();
  }

  /** Takes the live entry peek() returned off the queue (it runs or is answered now). */
  private dropHead(): void {
    this.queue[this.queueHead] = undefined;
    this.queueHead += 1;
    this.queuedCount -= 1;
  }

  /** First live entry of the queue; skips entries settled while waiting (client left). */
  private peek(): Exchange | undefined {
    while (this.queueHead < this.queue.length) {
      const exchange = this.queue[this.queueHead];
      if (exchange !== undefined && exchange.state === 'queued') return exchange;
      this.queue[this.queueHead] = undefined;
      this.queueHead += 1;
    }
    this.queue = [];
    this.queueHead = 0;
    return undefined;
  }

  private tryRun(exchange: Exchange): boolean {
    if (this.options.maxInApp !== null && this.inApp >= this.options.maxInApp) return false;
    // Least loaded wins; ties go round-robin, so idle workers share the load (and warm up) evenly.
    const workers = this.workers();
    const count = workers.length;
    let best: WorkerProcess | undefined;
    for (let step = 0; step < count; step += 1) {
      const worker = workers[(this.rotation + step) % count]!;
      if (worker.hasRoom && (best === undefined || worker.inFlight < best.inFlight)) best = worker;
    }
    if (best === undefined) return false;
    this.rotation = (this.rotation + 1) % Math.max(1, count);
    this.inApp += 1;
    best.run(exchange);
    return true;
  }

  private reject(exchange: Exchange, why: RejectReason): void {
    this.rejectedTotal += 1;
    this.options.onRejected(why);
    this.rejectedInBurst += 1;
    if (this.rejectedInBurst === 1) {
      LogEvents.queueFull(this.options.log, {
        why, queued: this.queuedCount, limit: this.options.queueSize,
        timeoutMs: why === 'queue standing' ? this.options.queueTargetMs! : this.options.queueTimeoutMs,
      });
    }
    exchange.settle();
    exchange.sink.fail({ error: why === 'queue full'
      ? new ServerError('W2N_ERR_QUEUE_FULL', { queued: this.queuedCount })
      : new ServerError('W2N_ERR_QUEUE_TIMEOUT', { waitedMs: this.clock.now() - exchange.queuedAt }) });
  }
}
