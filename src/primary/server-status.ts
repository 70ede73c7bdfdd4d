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

  constructor(
    liveFronts: () => FrontProcess[],
    private readonly config: Readonly<Config>,
    private readonly facts: StatusFacts,
    private readonly events: RecentEvents,
    private readonly schedulers: (() => SchedulerRow[]) | null,
  ) {
    this.collection = new FrontCollection(liveFronts, (front, id) => front.send({ type: 'collect-status', id }));
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

  /** Every live front's own part, as each sent it (the `server.stats` line reads them). */
  async frontParts(): Promise<FrontStatus[]> {
    return this.collection.gather();
  }

  private async gather(): Promise<ReturnType<typeof mergeStatus>> {
    const fronts = await this.collection.gather();
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
