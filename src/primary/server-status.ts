/**
 * @module GET /status.json for the whole server: every front's part added up, with the primary's own.
 *
 * As /metrics (server-metrics.ts): the front that got the request asks the primary, which asks
 * every live front for its part (front-collection.ts), merges them (status-data.ts), adds what
 * only it knows (uptime, listeners, reloads, fronts, schedulers, its own recent events) and
 * sends the JSON back.
 */
import { serverVersion } from '../version.js';
import type { Config } from '../config/settings.js';
import { mergeStatus, type FrontStatus, type SchedulerRow, type ServerFacts } from '../observability/status-data.js';
import { HISTORY_SECONDS, type SecondSample } from '../observability/status-history.js';
import type { RecentEvents } from '../observability/recent-events.js';
import { FrontCollection } from './front-collection.js';
import type { FrontProcess } from './front-process.js';


export interface StatusFacts {
  listeners: readonly string[];
  fronts: number;
  /** SIGHUP reloads done since the start. */
  reloads: number;
}

/** A few settings worth seeing at a glance. Never a secret: no password, key, token or path to one. */
function configSummary(config: Readonly<Config>, workerClass: string): Record<string, string | number> {
  return {
    processes: config.processes,
    [workerClass === 'gevent' ? 'greenlets' : 'threads']: workerClass === 'gevent' ? config.greenlets : workerClass === 'sync' ? 1 : config.threads,
    '-w': config.workers ?? 'unlimited',
    'queue size': config.queueSize,
    'max connections': config.maxConnections,
    timeout: config.timeoutMs === 0 ? 'none' : `${config.timeoutMs / 1000} s`,
    'graceful timeout': `${config.gracefulTimeoutMs / 1000} s`,
  };
}

export class ServerStatus {
  private readonly startedAt = Date.now();
  private readonly collection: FrontCollection<FrontStatus>;
  /**
   * Each front's history as far as the primary has it, by pid. A poll asks a front only for the
   * seconds after the last one kept (the page polls every second: about one sample instead of
   * HISTORY_SECONDS of histograms, which were most of a poll's cost, over IPC each time).
   */
  private readonly histories = new Map<number, SecondSample[]>();

  constructor(
    liveFronts: () => FrontProcess[],
    private readonly config: Readonly<Config>,
    private readonly facts: StatusFacts,
    private readonly events: RecentEvents,
    private readonly schedulers: (() => SchedulerRow[]) | null,
  ) {
    this.collection = new FrontCollection(liveFronts, (front, id) => front.send({ type: 'collect-status', id, historySince: this.lastSecondOf(front.pid) }));
  }

  /** Gathers every front's part and answers `asker`'s pending request `id`. */
  answer(asker: FrontProcess, id: number): void {
    void this.gather().then(
      (status) => asker.send({ type: 'status', id, json: JSON.stringify(status) }),
      () => asker.send({ type: 'status', id, json: null }),
    );
  }

  collected(front: FrontProcess, id: number, status: FrontStatus | null): void {
    this.collection.answered(front, id, status);
  }

  /** Every live front's own part, with its whole history (the `server.stats` line reads them). */
  async frontParts(): Promise<FrontStatus[]> {
    const fronts = await this.collection.gather();
    const answered = new Set<number>();
    for (const status of fronts) {
      answered.add(status.pid);
      const kept = this.histories.get(status.pid) ?? [];
      const last = kept.at(-1)?.t ?? 0;
      // Two polls at once may both bring the same new seconds: each second is kept once.
      const history = [...kept, ...status.history.filter((sample) => sample.t > last)].slice(-HISTORY_SECONDS);
      this.histories.set(status.pid, history);
      status.history = history;
    }
    // A front gone (or that did not answer: it sends its whole history next time) is forgotten.
    for (const pid of this.histories.keys()) if (!answered.has(pid)) this.histories.delete(pid);
    return fronts;
  }

  private lastSecondOf(pid: number | undefined): number {
    return (pid === undefined ? undefined : this.histories.get(pid)?.at(-1)?.t) ?? 0;
  }

  private async gather(): Promise<ReturnType<typeof mergeStatus>> {
    const fronts = await this.frontParts();
    fronts.sort((a, b) => a.front - b.front);
    const workerClass = fronts[0]?.workerClass ?? 'unknown';
    const server: ServerFacts = {
      version: serverVersion,
      uptimeSeconds: (Date.now() - this.startedAt) / 1000,
      listeners: [...this.facts.listeners],
      workerClass,
      fronts: this.facts.fronts,
      reloads: this.facts.reloads,
      config: configSummary(this.config, workerClass),
    };
    const schedulers = this.schedulers?.() ?? [];
    return mergeStatus(server, fronts, schedulers, this.events.list());
  }
}
