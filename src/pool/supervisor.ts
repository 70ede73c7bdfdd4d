/**
 * @module The worker pool: how many workers, starting them, replacing the dead, recycling, stopping.
 *
 * The pool keeps `processes` slots, each with one active worker. A worker that dies unexpectedly
 * fails only its own in-flight requests (its channel does that) and is replaced at once; one that
 * keeps dying soon after start is replaced with an exponential backoff, so a broken app does not
 * fork-bomb the machine. At start, a worker that cannot load the application stops the whole
 * start with Python's message (W2N_ERR_APP_IMPORT): a configuration error, not a crash to retry.
 *
 * Recycling (max requests, max RSS, max lifetime, SIGHUP reload) never lowers capacity: the fresh
 * worker is started first; only once it is ready does the old one stop taking requests, finish
 * those it has, and leave (SHUTDOWN). If the fresh one cannot start, the old one stays.
 */
import { rssOf } from '../observability/rss.js';
import { ServerError } from '../errors/index.js';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { OLDEST_SHOWN, type InFlightRow, type WorkerRow } from '../observability/status-data.js';
import { AnswerPacer } from './answer-pacer.js';
import { Dispatcher } from './dispatcher.js';
import type { Exchange } from './exchange.js';
import { WorkerProcess, type WorkerHandshake } from './worker.js';

export interface RecycleLimits {
  /** Requests before a worker is recycled; 0 = never. */
  maxRequests: number;
  /** Random 0..N added per worker to maxRequests. */
  maxRequestsJitter: number;
  /** Resident memory limit in bytes; 0 = none. */
  maxRssBytes: number;
  /** Lifetime limit in ms; 0 = none. */
  maxLifetimeMs: number;
}

export interface RequestDeadline {
  /** A request running longer than this gets 504 and is interrupted; 0 = no limit. */
  timeoutMs: number;
  /** How long after that it may still run before its worker is replaced. */
  graceMs: number;
}

export interface PoolOptions {
  processes: number;
  deadline: RequestDeadline;
  python: string;
  handshake: WorkerHandshake;
  maxInApp: number | null;
  queueSize: number;
  queueTimeoutMs: number;
  /** `--queue-target` in ms; null = off. */
  queueTargetMs: number | null;
  recycle: RecycleLimits;
  log: Logger;
  metrics: Metrics | null;
  /** Told the process ids of the live workers whenever one starts or exits (the primary kills them if this front dies). */
  onWorkersChanged?: (pids: number[]) => void;
}

export type RecycleReason = 'max-requests' | 'max-rss' | 'max-lifetime' | 'reload';

/** A worker that dies sooner than this after its start counts as a start failure (backoff). */
const EARLY_DEATH_MS = 5_000;
const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 10_000;
/** RSS is sampled this often; this many samples in a row above the limit recycle the worker. */
const RSS_SAMPLE_MS = 1_000;
const RSS_STRIKES = 3;
/** After a fresh worker failed to start for a recycle, wait this long before trying again. */
const RECYCLE_RETRY_MS = 10_000;
/** Request deadlines are checked this often. */
const DEADLINE_SWEEP_MS = 250;
/** Time a hung worker gets to print its Python stacks before it is killed. */
const STACK_DUMP_WAIT_MS = 300;

interface Slot {
  /** The worker that takes this slot's share of requests. */
  worker: WorkerProcess | null;
  /** Old workers finishing their requests after a recycle. */
  retiring: Set<WorkerProcess>;
  startedAt: number;
  /** Workers started in this slot after its first (deaths and recycles), and why the last one left. */
  restarts: number;
  lastExit: string | null;
  earlyDeaths: number;
  respawnTimer: NodeJS.Timeout | null;
  /** The recycle in progress, if any (one at a time per slot). */
  recycling: Promise<boolean> | null;
  recycleNotBefore: number;
}

interface WorkerBookkeeping {
  served: number;
  isHung: boolean;
  requestLimit: number;
  rssStrikes: number;
  lifetimeTimer: NodeJS.Timeout | null;
}

export class Pool {
  private readonly slots: Slot[] = [];
  private readonly dispatcher: Dispatcher;
  /** Whole answers to clients, paced to the arrivals (answer-pacer.ts); one for all workers. */
  private readonly pacer = new AnswerPacer();
  private readonly books = new WeakMap<WorkerProcess, WorkerBookkeeping>();
  private nextWorkerId = 1;
  private isStopping = false;
  private rssTimer: NodeJS.Timeout | null = null;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private readonly log: Logger;

  constructor(private readonly options: PoolOptions) {
    this.log = options.log.child({ component: 'pool' });
    this.dispatcher = new Dispatcher(() => this.liveWorkers(), {
      maxInApp: options.maxInApp, queueSize: options.queueSize, queueTimeoutMs: options.queueTimeoutMs,
      queueTargetMs: options.queueTargetMs, log: this.log,
      onRejected: (why) => options.metrics?.queueRejected(why),
      onWaited: (ms) => options.metrics?.queueWaited(ms),
    });
  }

  /** At least one worker can take requests, and the pool is not stopping. */
  get isReady(): boolean {
    return !this.isStopping && this.slots.some((slot) => slot.worker?.state === 'ready');
  }

  get stats(): { workers: number; ready: number; running: number; queued: number; rejected: number } {
    const workers = this.liveWorkers();
    return {
      workers: workers.length,
      ready: workers.filter((w) => w.state === 'ready').length,
      running: this.dispatcher.running,
      queued: this.dispatcher.queued,
      rejected: this.dispatcher.rejectedTotal,
    };
  }

  /**
   * The status page's worker table and the requests in the application, oldest first. RSS is
   * read from /proc now (null where it cannot be: not Linux, or the worker just left).
   */
  async statusRows(front: number, maxRssBytes: number): Promise<{ workers: WorkerRow[]; inflight: InFlightRow[] }> {
    const now = Date.now();
    const workers: WorkerRow[] = [];
    const inflight: InFlightRow[] = [];
    for (const slot of this.slots) {
      const members = [...(slot.worker === null ? [] : [slot.worker]), ...slot.retiring];
      for (const worker of members) {
        if (worker.state === 'exited') continue;
        workers.push({
          front, pid: worker.pid ?? null, state: slot.retiring.has(worker) ? 'retiring' : worker.state,
          inFlight: worker.inFlight, served: this.books.get(worker)?.served ?? 0,
          rssBytes: await rssOf(worker.pid), maxRssBytes: maxRssBytes > 0 ? maxRssBytes : null,
          ageSeconds: worker.ageMs / 1000, restarts: slot.restarts, lastExit: slot.lastExit,
        });
        for (const request of worker.runningRequests()) inflight.push({ front, method: request.method, path: request.path, seconds: (now - request.startedAtMs) / 1000 });
      }
    }
    inflight.sort((a, b) => b.seconds - a.seconds);
    return { workers, inflight: inflight.slice(0, OLDEST_SHOWN) };
  }

  /** Starts every worker; resolves when all are ready, rejects with the first start failure. */
  start(): Promise<{ pythonVersion: string; workerClass: string; capacity: number }> {
    if (this.options.recycle.maxRssBytes > 0) this.rssTimer = setInterval(() => void this.sampleRss(), RSS_SAMPLE_MS).unref();
    if (this.options.deadline.timeoutMs > 0) this.deadlineTimer = setInterval(() => this.enforceDeadlines(), DEADLINE_SWEEP_MS).unref();
    return new Promise((resolve, reject) => {
      let readyCount = 0;
      let hasSettled = false;
      for (let index = 0; index < this.options.processes; index += 1) {
        const slot: Slot = {
          worker: null, retiring: new Set(), startedAt: 0, restarts: 0, lastExit: null, earlyDeaths: 0, respawnTimer: null, recycling: null, recycleNotBefore: 0,
        };
        this.slots.push(slot);
        const worker = this.spawn(slot, false);
        worker.once('ready', () => {
          readyCount += 1;
          if (readyCount === this.options.processes && !hasSettled) {
            hasSettled = true;
            resolve({ pythonVersion: worker.pythonVersion, workerClass: worker.workerClass, capacity: worker.capacity });
          }
        });
        worker.once('startFailed', (error) => {
          if (hasSettled) return;
          hasSettled = true;
          reject(error);
        });
      }
    });
  }

  dispatch(exchange: Exchange): void {
    if (this.isStopping && this.liveWorkers().length === 0) {
      exchange.settle();
      exchange.sink.fail({ error: new ServerError('W2N_ERR_NOT_READY') });
      return;
    }
    this.pacer.noteArrival();
    this.dispatcher.dispatch(exchange);
  }

  /** SIGHUP: replace every worker, one slot at a time, each fresh one ready before the old leaves. */
  async reload(): Promise<{ replaced: number; failed: number }> {
    let replaced = 0;
    let failed = 0;
    for (const slot of this.slots) {
      if (this.isStopping) break;
      slot.recycleNotBefore = 0;
      if (await this.recycle(slot, 'reload')) replaced += 1;
      else failed += 1;
    }
    return { replaced, failed };
  }

  /** Resolves once nothing is queued or running (a graceful stop waits for it, up to its deadline). */
  whenIdle(): Promise<void> {
    return this.dispatcher.whenIdle();
  }

  /** Drains every worker (SHUTDOWN), then kills what is still alive after `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    this.isStopping = true;
    if (this.rssTimer !== null) clearInterval(this.rssTimer);
    if (this.deadlineTimer !== null) clearInterval(this.deadlineTimer);
    this.dispatcher.failQueued(() => new ServerError('W2N_ERR_NOT_READY'));
    const exits: Promise<void>[] = [];
    for (const worker of this.allWorkers()) {
      if (worker.state === 'exited') continue;
      exits.push(new Promise((resolve) => worker.once('exited', () => resolve())));
      // A worker still starting has no requests: stop it rather than have it load the app first.
      if (worker.state === 'starting') worker.terminate();
      else worker.drain();
    }
    for (const slot of this.slots) if (slot.respawnTimer !== null) clearTimeout(slot.respawnTimer);
    const timer = setTimeout(() => {
      for (const worker of this.allWorkers()) worker.terminate();
    }, timeoutMs);
    await Promise.all(exits);
    clearTimeout(timer);
  }

  /** Stop at once (second signal, fatal start). */
  kill(): void {
    this.isStopping = true;
    if (this.rssTimer !== null) clearInterval(this.rssTimer);
    if (this.deadlineTimer !== null) clearInterval(this.deadlineTimer);
    for (const slot of this.slots) if (slot.respawnTimer !== null) clearTimeout(slot.respawnTimer);
    for (const worker of this.allWorkers()) worker.terminate();
  }

  private allWorkers(): WorkerProcess[] {
    const workers: WorkerProcess[] = [];
    for (const slot of this.slots) {
      if (slot.worker !== null) workers.push(slot.worker);
      for (const old of slot.retiring) workers.push(old);
    }
    return workers;
  }

  /** Called by the dispatcher for every request: one pass, one array. */
  private liveWorkers(): WorkerProcess[] {
    const workers: WorkerProcess[] = [];
    for (const slot of this.slots) {
      if (slot.worker !== null && slot.worker.state !== 'exited') workers.push(slot.worker);
      for (const old of slot.retiring) if (old.state !== 'exited') workers.push(old);
    }
    return workers;
  }

  /** Makes a worker for a slot; the caller decides whether it is the slot's active one. */
  private createWorker(slot: Slot, isReplacement: boolean): WorkerProcess {
    if (isReplacement) slot.restarts += 1;
    const worker = new WorkerProcess({
      workerId: this.nextWorkerId++,
      isReplacement,
      python: this.options.python,
      handshake: this.options.handshake,
      log: this.log,
      pacer: this.pacer,
    });
    const { maxRequests, maxRequestsJitter } = this.options.recycle;
    const book: WorkerBookkeeping = {
      served: 0,
      isHung: false,
      requestLimit: maxRequests === 0 ? 0 : maxRequests + Math.floor(Math.random() * (maxRequestsJitter + 1)),
      rssStrikes: 0,
      lifetimeTimer: null,
    };
    this.books.set(worker, book);
    // After the caller has put it in its slot (or among the recycling ones).
    queueMicrotask(() => this.reportPids());
    worker.on('ready', () => {
      if (this.options.recycle.maxLifetimeMs > 0) {
        book.lifetimeTimer = setTimeout(() => this.requestRecycle(worker, 'max-lifetime'), this.options.recycle.maxLifetimeMs).unref();
      }
      this.dispatcher.pump();
    });
    worker.on('exchangeEnded', () => {
      this.dispatcher.release();
      book.served += 1;
      if (book.requestLimit > 0 && book.served >= book.requestLimit) this.requestRecycle(worker, 'max-requests');
    });
    worker.on('exited', ({ wasExpected }) => {
      if (book.lifetimeTimer !== null) clearTimeout(book.lifetimeTimer);
      const reason = book.isHung ? 'hung' : !wasExpected ? 'died' : this.isStopping ? 'stopped' : 'recycled';
      this.options.metrics?.workerExited(reason);
      slot.lastExit = reason;
      slot.retiring.delete(worker);
      this.reportPids();
      // Requests it was running have been failed by its channel; give their slots back.
      this.dispatcher.pump();
      if (!wasExpected && !this.isStopping && slot.worker === worker) this.replace(slot);
    });
    return worker;
  }

  private reportPids(): void {
    if (this.options.onWorkersChanged === undefined) return;
    const pids: number[] = [];
    for (const slot of this.slots) {
      if (slot.worker?.pid !== undefined && slot.worker.state !== 'exited') pids.push(slot.worker.pid);
      for (const old of slot.retiring) if (old.pid !== undefined && old.state !== 'exited') pids.push(old.pid);
    }
    this.options.onWorkersChanged(pids);
  }

  private spawn(slot: Slot, isReplacement = true): WorkerProcess {
    const worker = this.createWorker(slot, isReplacement);
    slot.worker = worker;
    slot.startedAt = Date.now();
    return worker;
  }

  private replace(slot: Slot): void {
    const lived = Date.now() - slot.startedAt;
    slot.earlyDeaths = lived < EARLY_DEATH_MS ? slot.earlyDeaths + 1 : 0;
    const delayMs = slot.earlyDeaths <= 1 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (slot.earlyDeaths - 1));
    if (delayMs === 0) {
      this.spawn(slot);
      return;
    }
    LogEvents.workerRespawnScheduled(this.log, { workerId: slot.worker?.id ?? 0, delayMs, failures: slot.earlyDeaths });
    slot.respawnTimer = setTimeout(() => {
      slot.respawnTimer = null;
      if (!this.isStopping) this.spawn(slot);
    }, delayMs);
  }

  private requestRecycle(worker: WorkerProcess, reason: RecycleReason): void {
    const slot = this.slots.find((candidate) => candidate.worker === worker);
    if (slot === undefined || worker.state !== 'ready') return;
    void this.recycle(slot, reason);
  }

  /**
   * Replaces the slot's worker: fresh one first, then the old one drains. Resolves true once the
   * fresh worker took over, false if it could not start (the old one then stays).
   */
  private recycle(slot: Slot, reason: RecycleReason): Promise<boolean> {
    if (slot.recycling !== null) return slot.recycling;
    const old = slot.worker;
    if (this.isStopping || old === null || old.state !== 'ready' || Date.now() < slot.recycleNotBefore) return Promise.resolve(false);
    LogEvents.workerRecycling(this.log, { workerId: old.id, pid: old.pid, reason, served: this.books.get(old)?.served ?? 0 });
    const fresh = this.createWorker(slot, true);
    slot.recycling = new Promise<boolean>((resolve) => {
      const onReady = (): void => {
        fresh.off('startFailed', onFailed);
        slot.worker = fresh;
        slot.startedAt = Date.now();
        slot.earlyDeaths = 0;
        slot.retiring.add(old);
        old.drain();
        this.dispatcher.pump();
        LogEvents.workerRecycled(this.log, { workerId: old.id, replacedBy: fresh.id, reason });
        resolve(true);
      };
      const onFailed = (error: ServerError): void => {
        fresh.off('ready', onReady);
        slot.recycleNotBefore = Date.now() + RECYCLE_RETRY_MS;
        LogEvents.workerRecycleFailed(this.log, { workerId: old.id, reason, message: error.message });
        resolve(false);
      };
      fresh.once('ready', onReady);
      fresh.once('startFailed', onFailed);
    }).finally(() => { slot.recycling = null; });
    return slot.recycling;
  }

  /** 504 for requests past --timeout; a worker that cannot stop one within the grace is replaced. */
  private enforceDeadlines(): void {
    const { timeoutMs, graceMs } = this.options.deadline;
    const now = Date.now();
    for (const worker of this.liveWorkers()) {
      const { isHung, timedOut } = worker.expireRequests(now, timeoutMs, graceMs, timeoutMs / 1000);
      for (let i = 0; i < timedOut; i += 1) this.options.metrics?.requestTimedOut();
      if (!isHung) continue;
      const book = this.books.get(worker);
      if (book !== undefined) book.isHung = true;
      const error = new ServerError('W2N_ERR_WORKER_HUNG', { workerId: worker.id, pid: worker.pid ?? 0, graceSeconds: graceMs / 1000 });
      LogEvents.workerHung(this.log, { workerId: worker.id, pid: worker.pid, code: error.code, message: error.message });
      worker.killHung(STACK_DUMP_WAIT_MS);
    }
  }

  /** Reads each ready worker's VmRSS; three samples in a row over the limit recycle it. */
  private async sampleRss(): Promise<void> {
    const limit = this.options.recycle.maxRssBytes;
    for (const slot of this.slots) {
      const worker = slot.worker;
      if (worker === null || worker.state !== 'ready' || worker.pid === undefined) continue;
      const book = this.books.get(worker);
      if (book === undefined) continue;
      const rssBytes = await rssOf(worker.pid);
      if (rssBytes === null) continue; // it exited meanwhile
      book.rssStrikes = rssBytes > limit ? book.rssStrikes + 1 : 0;
      if (book.rssStrikes >= RSS_STRIKES) {
        book.rssStrikes = 0;
        LogEvents.workerOverMemory(this.log, { workerId: worker.id, pid: worker.pid, rssBytes, limitBytes: limit });
        this.requestRecycle(worker, 'max-rss');
      }
    }
  }
}

