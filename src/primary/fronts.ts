/**
 * @module The front processes: N slots kept filled, replaced when they die, rolled on SIGHUP.
 *
 * - A front that dies (a bug, OOM, kill -9) is replaced at once; the sockets stay open in the
 *   primary, so connections wait in the kernel's queue meanwhile and nobody is refused. Only the
 *   requests in flight on the dead front are lost.
 * - One that dies again soon after its start is replaced after a growing pause. One that cannot
 *   even get ready CRASH_LOOP_LIMIT times in a row makes the primary give up
 *   (W2N_ERR_FRONT_CRASH_LOOP) and exit non-zero, so systemd or Kubernetes take over instead of
 *   a silent restart loop. A front that was ready and then died never counts towards giving up:
 *   that death may have been caused by a client, and giving up would hand the client the outage.
 * - SIGHUP replaces the fronts one at a time: a new one is started on the same sockets, and only
 *   once it is ready is the old one told to stop (it finishes its requests). A new front that
 *   cannot start leaves the old one in place. The new process loads the server's code afresh,
 *   so an upgraded package is picked up without a dropped connection.
 */
import { EventEmitter } from 'node:events';
import { ReportedFatal, ServerError } from '../errors/index.js';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import { FrontProcess } from './front-process.js';
import type { FrontMessage, PrimaryMessage } from './messages.js';

/** A front that dies within this of its start is replaced after a pause that grows with each. */
const QUICK_DEATH_MS = 10_000;
/** That many starts in a row of one slot that never got ready: the primary gives up. */
const CRASH_LOOP_LIMIT = 5;
/** Pause before the n-th quick restart (the first is immediate). */
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 5_000;
/** A stopping front that outlives its graceful timeout by this much is killed. */
const STOP_MARGIN_MS = 10_000;

type StartMessage = Extract<PrimaryMessage, { type: 'start' }>;

interface Slot {
  readonly index: number;
  front: FrontProcess | null;
  quickDeaths: number;
  /** Starts in a row that died before they were ready. */
  failedStarts: number;
  restartTimer: NodeJS.Timeout | null;
}

export interface FrontsOptions {
  count: number;
  /** The start message of front `index` (its share of the workers, its descriptors). */
  startMessage: (index: number) => StartMessage;
  stdio: readonly number[];
  gracefulTimeoutMs: number;
  log: Logger;
}

export interface FrontsEvents {
  /** The crash-loop limit was reached: the server cannot serve. */
  gaveUp: [error: ServerError];
  /** A front was started to replace one that died. */
  restarted: [];
  /** A message a front sent that the primary answers (metrics). */
  message: [front: FrontProcess, message: FrontMessage];
}

export class Fronts extends EventEmitter<FrontsEvents> {
  private readonly slots: Slot[];
  private isStopping = false;
  private reloading: Promise<{ replaced: number; failed: number }> | null = null;
  private reloadAgain = false;

  constructor(private readonly options: FrontsOptions) {
    super();
    this.slots = Array.from({ length: options.count }, (_, n) => ({ index: n + 1, front: null, quickDeaths: 0, failedStarts: 0, restartTimer: null }));
  }

  /** The live fronts (any state but exited). */
  get live(): FrontProcess[] {
    const fronts: FrontProcess[] = [];
    for (const front of this.all) if (front.state !== 'exited') fronts.push(front);
    return fronts;
  }

  /** Every front process this supervisor holds, old ones of a rolling replace included. */
  private readonly all = new Set<FrontProcess>();

  /**
   * Starts every front; resolves with the first one's start-up lines once all are ready, or
   * rejects with the first one's fatal line (a configuration the fronts refuse: exit with it).
   */
  async start(onListening: () => void): Promise<string[]> {
    const started = this.slots.map((slot) => {
      slot.front = this.launch(slot, 'start');
      return slot.front;
    });
    // The sockets accept from the first listen on; the seed's `starting on` lines say so then.
    started[0]?.once('listening', onListening);
    const results = await Promise.all(started.map((front) => this.untilReady(front)));
    const failed = results.find((result) => 'fatal' in result);
    if (failed !== undefined && 'fatal' in failed) {
      this.killAll();
      throw new ReportedFatal(failed.fatal.line, failed.fatal.exitCode);
    }
    for (const [index, slot] of this.slots.entries()) this.watch(slot, started[index]!);
    const first = results[0];
    return first !== undefined && 'lines' in first ? first.lines : [];
  }

  private launch(slot: Slot, reason: 'start' | 'replace' | 'reload'): FrontProcess {
    const front = new FrontProcess({ index: slot.index, stdio: this.options.stdio, start: this.options.startMessage(slot.index), log: this.options.log });
    this.all.add(front);
    front.on('message', (message) => this.emit('message', front, message));
    void front.exited.then(() => this.all.delete(front));
    LogEvents.frontStarted(this.options.log, { index: slot.index, pid: front.pid, reason });
    return front;
  }

  /** Ready (with its lines), or why not: a fatal line, or an exit before either. */
  private untilReady(front: FrontProcess): Promise<{ lines: string[] } | { fatal: { line: string; exitCode: number } }> {
    return new Promise((resolve) => {
      const onReady = (lines: string[]): void => {
        done();
        LogEvents.frontReady(this.options.log, { index: front.index, pid: front.pid, startupMs: Date.now() - front.startedAt });
        resolve({ lines });
      };
      const onFatal = (line: string, exitCode: number): void => { done(); resolve({ fatal: { line, exitCode } }); };
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        done();
        resolve({ fatal: { line: new ServerError('W2N_ERR_FRONT_START', { index: front.index, reason: `it exited (${signal ?? `code ${code}`}) before it was ready` }).message, exitCode: 1 } });
      };
      const done = (): void => {
        front.off('ready', onReady);
        front.off('fatal', onFatal);
        front.off('exit', onExit);
      };
      front.on('ready', onReady);
      front.on('fatal', onFatal);
      front.on('exit', onExit);
    });
  }

  /** Makes `front` the slot's front, and replaces it when it dies unasked. */
  private watch(slot: Slot, front: FrontProcess): void {
    slot.front = front;
    front.once('exit', (code, signal) => {
      if (slot.front !== front) return; // replaced by a reload: it was asked to go
      if (this.isStopping || front.stopAsked) {
        LogEvents.frontExited(this.options.log, { index: slot.index, pid: front.pid, code, signal });
        return;
      }
      this.onDeath(slot, front, code, signal);
    });
  }

  private onDeath(slot: Slot, dead: FrontProcess, code: number | null, signal: NodeJS.Signals | null): void {
    const lived = Date.now() - dead.startedAt;
    slot.quickDeaths = lived < QUICK_DEATH_MS ? slot.quickDeaths + 1 : 1;
    slot.failedStarts = dead.readyAt === null ? slot.failedStarts + 1 : 0;
    const restartInMs = slot.quickDeaths <= 1 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (slot.quickDeaths - 2));
    LogEvents.frontDied(this.options.log, { index: slot.index, pid: dead.pid, code, signal, failures: slot.quickDeaths, restartInMs });
    if (slot.failedStarts >= CRASH_LOOP_LIMIT) {
      this.emit('gaveUp', new ServerError('W2N_ERR_FRONT_CRASH_LOOP', { index: slot.index, failures: slot.failedStarts, last: signal ?? `exit code ${code}` }));
      return;
    }
    slot.front = null;
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (this.isStopping) return;
      const fresh = this.launch(slot, 'replace');
      this.watch(slot, fresh);
      // Counted when started: it takes connections before all its workers are ready.
      this.emit('restarted');
      void this.untilReady(fresh).then((result) => {
        // A replacement that cannot start exits; its exit is the next death of the slot.
        if (!('lines' in result) && fresh.state !== 'exited') fresh.kill();
      });
    }, restartInMs);
  }

  /**
   * SIGHUP: replaces the fronts one at a time, each new one ready before its old one stops.
   * Signals that come during a reload make one more reload after it (the newest code wins).
   */
  reload(): Promise<{ replaced: number; failed: number }> {
    if (this.reloading !== null) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      const counts = { replaced: 0, failed: 0 };
      do {
        this.reloadAgain = false;
        for (const slot of this.slots) {
          if (this.isStopping) return counts;
          if (await this.replaceForReload(slot)) counts.replaced += 1;
          else counts.failed += 1;
        }
      } while (this.reloadAgain && !this.isStopping);
      return counts;
    })().finally(() => { this.reloading = null; });
    return this.reloading;
  }

  /** True once the slot's new front is ready (and its old one gone); false if it kept the old one. */
  private async replaceForReload(slot: Slot): Promise<boolean> {
    if (slot.restartTimer !== null) {
      // Its front died and a replacement was due: this one is it.
      clearTimeout(slot.restartTimer);
      slot.restartTimer = null;
    }
    const old = slot.front;
    const fresh = this.launch(slot, 'reload');
    const result = await this.untilReady(fresh);
    if (!('lines' in result)) {
      LogEvents.frontReloadFailed(this.options.log, { index: slot.index, reason: result.fatal.line });
      if (fresh.state !== 'exited') fresh.kill();
      return false;
    }
    if (this.isStopping) {
      fresh.stop('stopping');
      return false;
    }
    slot.quickDeaths = 0;
    slot.failedStarts = 0;
    this.watch(slot, fresh);
    // Its drain may last until idle connections time out: the next slot need not wait for it.
    if (old !== null) void this.stopOne(old, 'SIGHUP', true);
    return true;
  }

  private async stopOne(front: FrontProcess, signal: string, handOver = false): Promise<void> {
    front.stop(signal, handOver);
    const timer = setTimeout(() => front.kill(), this.options.gracefulTimeoutMs + STOP_MARGIN_MS);
    await front.exited;
    clearTimeout(timer);
  }

  /** Graceful stop of every front (each finishes its requests within the graceful timeout). */
  async stop(signal: string): Promise<void> {
    this.isStopping = true;
    for (const slot of this.slots) if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
    await Promise.all([...this.all].map((front) => this.stopOne(front, signal)));
  }

  /** Now: every front and its workers. */
  killAll(): void {
    this.isStopping = true;
    for (const slot of this.slots) if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
    for (const front of this.all) front.kill();
  }

  /** Sends `message` to every live front. */
  broadcast(message: PrimaryMessage): void {
    for (const front of this.live) front.send(message);
  }
}
