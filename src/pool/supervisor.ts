/**
 * @module The worker pool: how many workers, starting them, replacing the dead, stopping.
 *
 * The pool keeps `processes` workers alive. A worker that dies unexpectedly fails only its own
 * in-flight requests (its channel does that) and is replaced at once; one that keeps dying soon
 * after start is replaced with an exponential backoff, so a broken app does not fork-bomb the
 * machine. At start, a worker that cannot load the application stops the whole start with
 * Python's message (W2N_ERR_APP_IMPORT): that is a configuration error, not a crash to retry.
 */
import { ServerError } from '../errors/index.js';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import { Dispatcher } from './dispatcher.js';
import type { Exchange } from './exchange.js';
import { WorkerProcess, type WorkerHandshake } from './worker.js';

export interface PoolOptions {
  processes: number;
  python: string;
  handshake: WorkerHandshake;
  maxInApp: number | null;
  queueSize: number;
  queueTimeoutMs: number;
  log: Logger;
}

/** A worker that dies sooner than this after its start counts as a start failure (backoff). */
const EARLY_DEATH_MS = 5_000;
const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 10_000;

interface Slot {
  worker: WorkerProcess | null;
  startedAt: number;
  earlyDeaths: number;
  respawnTimer: NodeJS.Timeout | null;
}

export class Pool {
  private readonly slots: Slot[] = [];
  private readonly dispatcher: Dispatcher;
  private nextWorkerId = 1;
  private isStopping = false;
  private readonly log: Logger;

  constructor(private readonly options: PoolOptions) {
    this.log = options.log.child({ component: 'pool' });
    this.dispatcher = new Dispatcher(() => this.liveWorkers(), {
      maxInApp: options.maxInApp, queueSize: options.queueSize, queueTimeoutMs: options.queueTimeoutMs, log: this.log,
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

  get workerPids(): number[] {
    return this.liveWorkers().map((w) => w.pid).filter((pid): pid is number => pid !== undefined);
  }

  /** Starts every worker; resolves when all are ready, rejects with the first start failure. */
  start(): Promise<{ pythonVersion: string; workerClass: string; capacity: number }> {
    return new Promise((resolve, reject) => {
      let readyCount = 0;
      let hasSettled = false;
      for (let index = 0; index < this.options.processes; index += 1) {
        const slot: Slot = { worker: null, startedAt: 0, earlyDeaths: 0, respawnTimer: null };
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
    this.dispatcher.dispatch(exchange);
  }

  /** Waits until nothing is queued or running, or the deadline passes. Returns what was left. */
  async settle(deadlineMs: number): Promise<number> {
    while (this.dispatcher.queued + this.dispatcher.running > 0 && Date.now() < deadlineMs) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return this.dispatcher.queued + this.dispatcher.running;
  }

  /** Drains every worker (SHUTDOWN), then kills what is still alive after `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    this.isStopping = true;
    this.dispatcher.failQueued(() => new ServerError('W2N_ERR_NOT_READY'));
    const exits: Promise<void>[] = [];
    for (const slot of this.slots) {
      if (slot.respawnTimer !== null) clearTimeout(slot.respawnTimer);
      const worker = slot.worker;
      if (worker === null || worker.state === 'exited') continue;
      exits.push(new Promise((resolve) => worker.once('exited', () => resolve())));
      // A worker still starting has no requests: stop it rather than have it load the app first.
      if (worker.state === 'starting') worker.terminate();
      else worker.drain();
    }
    const timer = setTimeout(() => {
      for (const slot of this.slots) slot.worker?.terminate();
    }, timeoutMs);
    await Promise.all(exits);
    clearTimeout(timer);
  }

  /** Stop at once (second signal, fatal start). */
  kill(): void {
    this.isStopping = true;
    for (const slot of this.slots) {
      if (slot.respawnTimer !== null) clearTimeout(slot.respawnTimer);
      slot.worker?.terminate();
    }
  }

  private liveWorkers(): WorkerProcess[] {
    const workers: WorkerProcess[] = [];
    for (const slot of this.slots) if (slot.worker !== null && slot.worker.state !== 'exited') workers.push(slot.worker);
    return workers;
  }

  private spawn(slot: Slot, isReplacement = true): WorkerProcess {
    const worker = new WorkerProcess({
      workerId: this.nextWorkerId++,
      isReplacement,
      python: this.options.python,
      handshake: this.options.handshake,
      log: this.log,
    });
    slot.worker = worker;
    slot.startedAt = Date.now();
    worker.on('ready', () => this.dispatcher.pump());
    worker.on('exchangeEnded', () => this.dispatcher.release());
    worker.on('exited', ({ wasExpected }) => {
      // Requests it was running have been failed by its channel; give their slots back.
      this.dispatcher.pump();
      if (!wasExpected && !this.isStopping) this.replace(slot);
    });
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
}
