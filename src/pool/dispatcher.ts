/**
 * @module Who runs the next request: a bounded FIFO queue in front of the workers' free slots.
 *
 * A request goes straight to the ready worker with the fewest requests in flight when one has
 * room and the `-w` limit (most requests inside the application at once, across the pool)
 * allows; otherwise it waits in the queue, which is bounded: past `queueSize` the answer is an
 * immediate 503 (counted, and logged once per burst). A queued request whose client leaves is
 * dropped without reaching Python (Exchange.cancel → settle → onSettled here).
 */
import { ServerError } from '../errors/index.js';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { Exchange } from './exchange.js';
import type { WorkerProcess } from './worker.js';

export interface DispatcherOptions {
  /** Most requests in the application at once across the pool; null = the workers' capacity. */
  maxInApp: number | null;
  queueSize: number;
  /** A request queued longer than this is answered 503. */
  queueTimeoutMs: number;
  log: Logger;
  /** Told of every 503 the queue answers (metrics). */
  onRejected: (why: 'queue full' | 'queue timeout') => void;
}

/** How often the queue's oldest entries are checked against queueTimeoutMs. */
const QUEUE_SWEEP_MS = 100;

export class Dispatcher {
  /** FIFO with a moving head; slots behind the head are cleared so finished requests can be collected. */
  private queue: (Exchange | undefined)[] = [];
  private queueHead = 0;
  private queuedCount = 0;
  private inApp = 0;
  private rejectedInBurst = 0;
  private rotation = 0;
  private sweepTimer: NodeJS.Timeout | null = null;
  rejectedTotal = 0;

  constructor(private readonly workers: () => readonly WorkerProcess[], private readonly options: DispatcherOptions) {}

  get queued(): number {
    return this.queuedCount;
  }

  get running(): number {
    return this.inApp;
  }

  dispatch(exchange: Exchange): void {
    if (exchange.isCancelled) return;
    if (this.queuedCount === 0 && this.tryRun(exchange)) return;
    if (this.queuedCount >= this.options.queueSize) {
      this.reject(exchange, 'queue full');
      return;
    }
    exchange.state = 'queued';
    exchange.queuedAt = Date.now();
    exchange.onSettled = () => { this.queuedCount -= 1; };
    this.queue.push(exchange);
    this.queuedCount += 1;
    this.sweepTimer ??= setInterval(() => this.expireQueued(), QUEUE_SWEEP_MS).unref();
  }

  /** FIFO: the oldest are at the head; answer 503 to those past the queue timeout. */
  private expireQueued(): void {
    const oldestAllowed = Date.now() - this.options.queueTimeoutMs;
    for (let exchange = this.peek(); exchange !== undefined && exchange.queuedAt < oldestAllowed; exchange = this.peek()) {
      this.queue[this.queueHead] = undefined;
      this.queueHead += 1;
      this.queuedCount -= 1;
      exchange.onSettled = null;
      this.reject(exchange, 'queue timeout');
    }
    if (this.queuedCount === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  /** A slot may have opened (a request ended, a worker became ready): start queued requests. */
  pump(): void {
    while (this.queuedCount > 0) {
      const exchange = this.peek();
      if (exchange === undefined) break;
      exchange.onSettled = null;
      if (!this.tryRun(exchange)) {
        exchange.onSettled = () => { this.queuedCount -= 1; };
        break;
      }
      this.queue[this.queueHead] = undefined;
      this.queueHead += 1;
      this.queuedCount -= 1;
    }
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
      this.queue[this.queueHead] = undefined;
      this.queueHead += 1;
      this.queuedCount -= 1;
      exchange.onSettled = null;
      exchange.settle();
      exchange.sink.fail({ error: error() });
    }
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

  private reject(exchange: Exchange, why: 'queue full' | 'queue timeout'): void {
    this.rejectedTotal += 1;
    this.options.onRejected(why);
    this.rejectedInBurst += 1;
    if (this.rejectedInBurst === 1) {
      LogEvents.queueFull(this.options.log, { why, queued: this.queuedCount, limit: this.options.queueSize, timeoutMs: this.options.queueTimeoutMs });
    }
    exchange.settle();
    exchange.sink.fail({ error: why === 'queue full'
      ? new ServerError('W2N_ERR_QUEUE_FULL', { queued: this.queuedCount })
      : new ServerError('W2N_ERR_QUEUE_TIMEOUT', { waitedMs: Date.now() - exchange.queuedAt }) });
  }
}
