/**
 * @module web2py's scheduler, supervised: `-K` entries × `--scheduler-workers` processes kept running.
 *
 * - A scheduler process that dies is started again at once; one that dies again within
 *   QUICK_DEATH_MS of its start waits a pause that doubles each time (a broken application must
 *   not spin the CPU), and after GIVE_UP_AFTER such deaths in a row it is given up with its last
 *   output in the log (`scheduler.gave_up`), so the operator learns why; the web server goes on.
 *   SIGHUP starts given-up ones again.
 * - Stop: every process gets SIGTERM, and `--scheduler-stop-timeout` later its process group is
 *   killed (see scheduler-process.ts), all at once, so a server stop takes at most that long for
 *   the schedulers.
 * - SIGHUP: one at a time, each process is stopped as above and a fresh one started (new
 *   application code), so the other workers of a group keep taking tasks meanwhile.
 */
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import { SchedulerProcess } from './scheduler-process.js';
import type { SchedulerRow } from '../observability/status-data.js';

/** A scheduler that dies within this of its start is restarted after a pause. */
const QUICK_DEATH_MS = 10_000;
const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;
/** Quick deaths in a row after which a slot is given up. */
const GIVE_UP_AFTER = 5;

export interface SchedulersOptions {
  /** `-K` entries, `APP[:GROUP...]`. */
  entries: readonly string[];
  workersPerEntry: number;
  python: string;
  folder: string;
  stopTimeoutMs: number;
  log: Logger;
}

interface Slot {
  readonly entry: string;
  readonly name: string;
  process: SchedulerProcess | null;
  quickDeaths: number;
  restartTimer: NodeJS.Timeout | null;
  gaveUp: boolean;
  /** Processes started in this slot to replace one that died. */
  restarts: number;
}

export class Schedulers {
  private readonly slots: Slot[];
  private stopping = false;

  constructor(private readonly options: SchedulersOptions) {
    this.slots = options.entries.flatMap((entry) => Array.from({ length: options.workersPerEntry }, (_, n) => ({
      entry,
      name: options.workersPerEntry === 1 ? entry : `${entry}#${n + 1}`,
      process: null, quickDeaths: 0, restartTimer: null, gaveUp: false, restarts: 0,
    })));
  }

  get count(): number {
    return this.slots.length;
  }

  /** Scheduler processes started to replace one that died. */
  get restarts(): number {
    return this.slots.reduce((total, slot) => total + slot.restarts, 0);
  }

  /** Alive now. */
  get running(): number {
    return this.slots.filter((slot) => slot.process !== null).length;
  }

  /** One row per slot, for the status page. */
  facts(): SchedulerRow[] {
    const now = Date.now();
    return this.slots.map((slot) => ({
      name: slot.name,
      pid: slot.process?.pid ?? null,
      uptimeSeconds: slot.process === null ? null : (now - slot.process.startedAt) / 1000,
      restarts: slot.restarts,
      gaveUp: slot.gaveUp,
      heartbeatAgeSeconds: slot.process?.lastHeartbeat == null ? null : (now - slot.process.lastHeartbeat.at) / 1000,
      heartbeatStatus: slot.process?.lastHeartbeat?.status ?? null,
    }));
  }

  start(): void {
    for (const slot of this.slots) this.launch(slot, 'start');
  }

  private launch(slot: Slot, reason: 'start' | 'replace' | 'reload'): void {
    const { python, folder, log } = this.options;
    const process = new SchedulerProcess({ entry: slot.entry, name: slot.name, python, folder, log });
    slot.process = process;
    LogEvents.schedulerStarted(log, { name: slot.name, schedulerPid: process.pid, reason });
    void process.exited.then(({ code, signal }) => this.exited(slot, process, code, signal));
  }

  private exited(slot: Slot, process: SchedulerProcess, code: number | null, signal: NodeJS.Signals | null): void {
    const uptimeMs = Date.now() - process.startedAt;
    const expected = process.stopAsked;
    LogEvents.schedulerExited(this.options.log, { name: slot.name, schedulerPid: process.pid, code, signal, expected, uptimeMs });
    if (slot.process === process) slot.process = null;
    if (expected || this.stopping) return;
    // Any group killed with it (task processes) goes too: a new scheduler must not race them.
    process.kill();
    slot.quickDeaths = uptimeMs < QUICK_DEATH_MS ? slot.quickDeaths + 1 : 0;
    if (slot.quickDeaths >= GIVE_UP_AFTER) {
      slot.gaveUp = true;
      LogEvents.schedulerGaveUp(this.options.log, { name: slot.name, failures: slot.quickDeaths, lastOutput: process.lastOutput });
      return;
    }
    const delayMs = slot.quickDeaths <= 1 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (slot.quickDeaths - 2));
    if (delayMs > 0) LogEvents.schedulerRestartScheduled(this.options.log, { name: slot.name, delayMs, failures: slot.quickDeaths });
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (this.stopping) return;
      slot.restarts += 1;
      this.launch(slot, 'replace');
    }, delayMs);
  }

  private async stopSlot(slot: Slot): Promise<void> {
    if (slot.restartTimer !== null) {
      clearTimeout(slot.restartTimer);
      slot.restartTimer = null;
    }
    const process = slot.process;
    if (process === null) return;
    const killed = await process.stop(this.options.stopTimeoutMs);
    if (killed) LogEvents.schedulerKilled(this.options.log, { name: slot.name, schedulerPid: process.pid, afterMs: this.options.stopTimeoutMs });
  }

  /** Every scheduler asked to leave at once; resolves when all are gone (at most the stop timeout). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.slots.map((slot) => this.stopSlot(slot)));
  }

  /** Now (a second signal, or the server giving up). */
  killAll(): void {
    this.stopping = true;
    for (const slot of this.slots) {
      if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
      slot.process?.kill();
    }
  }

  /** SIGHUP: each process replaced in turn (given-up ones get a fresh try). */
  async reload(): Promise<void> {
    for (const slot of this.slots) {
      if (this.stopping) return;
      await this.stopSlot(slot);
      if (this.stopping) return;
      slot.quickDeaths = 0;
      slot.gaveUp = false;
      this.launch(slot, 'reload');
    }
  }
}
