/**
 * @module The `server.stats` line: every `--stats-interval`, one line for the whole server.
 *
 * What an operator of the seed watched, as one line per interval for the server rather than one
 * per process: resident memory of the primary, the fronts, the Python workers and the
 * schedulers; connections, requests in the application and in the queue now; requests answered
 * and 5xx errors since the previous line. The primary gathers it as it gathers /status.json
 * (every live front's part over IPC, within FrontCollection's limit), so between lines it costs
 * the fronts nothing.
 *
 * Requests are counted from each front's own totals (responses by class since it started): a
 * line takes the difference from what the same front process said for the previous one. A front
 * started since (a replacement, a SIGHUP) counts from its start; one that did not answer in time
 * is counted in the next line; a front that died takes the answers it had not yet reported with
 * it (at most one interval's).
 */
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import { rssOf } from '../observability/rss.js';
import type { FrontStatus } from '../observability/status-data.js';

const MB = 1024 * 1024;

export interface StatsSources {
  /** Every live front's status part (ServerStatus.frontParts). */
  fronts: () => Promise<FrontStatus[]>;
  /** The process ids of the fronts alive now (a front's last totals are kept while it lives). */
  livePids: () => number[];
  /** The scheduler processes' ids (-K), or null when there are none. */
  schedulerPids: (() => (number | null)[]) | null;
}

/** What one line says, before rounding. */
export interface StatsCounts {
  requests: number;
  errors: number;
  connections: number;
  inApp: number;
  queued: number;
  fronts: number;
  workers: number;
  frontsRssBytes: number;
  workersRssBytes: number;
}

/**
 * One line's counts from the fronts' parts and each front's totals at the previous line
 * (`previous`, by front pid; a front not in it counts from its start). Pure, for the unit test.
 */
export function countStats(fronts: readonly FrontStatus[], previous: ReadonlyMap<number, readonly number[]>): StatsCounts {
  const counts: StatsCounts = { requests: 0, errors: 0, connections: 0, inApp: 0, queued: 0, fronts: fronts.length, workers: 0, frontsRssBytes: 0, workersRssBytes: 0 };
  for (const front of fronts) {
    const before = previous.get(front.pid) ?? [];
    front.responseTotals.forEach((total, statusClass) => {
      const delta = Math.max(0, total - (before[statusClass] ?? 0));
      counts.requests += delta;
      if (statusClass === 5) counts.errors += delta;
    });
    counts.connections += front.connections;
    counts.inApp += front.inApp;
    counts.queued += front.queued;
    counts.workers += front.workers.length;
    counts.frontsRssBytes += front.rssBytes ?? 0;
    for (const worker of front.workers) counts.workersRssBytes += worker.rssBytes ?? 0;
  }
  return counts;
}

const mb = (bytes: number): number => Math.round((bytes / MB) * 10) / 10;

export class ServerStatsLine {
  private timer: NodeJS.Timeout | null = null;
  private isStopped = false;
  /** Each front's response totals at the previous line, by front pid. */
  private previous = new Map<number, readonly number[]>();
  private previousAt = Date.now();

  constructor(private readonly intervalMs: number, private readonly sources: StatsSources, private readonly log: Logger) {}

  /** The first line comes one interval from now; `--stats-interval 0`: never. */
  start(): void {
    if (this.intervalMs <= 0 || this.isStopped) return;
    // One line at a time: the next interval starts once a line is written (a gather takes up to 1 s).
    this.timer = setTimeout(() => {
      // Nothing in a line is expected to throw; if it did, that line is lost (the next one counts
      // its requests), never the primary.
      void this.write().catch(() => undefined).then(() => this.start());
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.isStopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async write(): Promise<void> {
    const fronts = await this.sources.fronts();
    const schedulerRss = this.sources.schedulerPids === null ? null : await Promise.all(this.sources.schedulerPids().map((pid) => rssOf(pid)));
    if (this.isStopped) return;
    const now = Date.now();
    const counts = countStats(fronts, this.previous);
    const next = new Map<number, readonly number[]>();
    const live = new Set(this.sources.livePids());
    // A live front that did not answer keeps its old totals: its requests go in the next line.
    for (const [pid, totals] of this.previous) if (live.has(pid)) next.set(pid, totals);
    for (const front of fronts) next.set(front.pid, front.responseTotals);
    this.previous = next;
    const primaryRssBytes = process.memoryUsage.rss();
    const schedulersRssBytes = schedulerRss === null ? 0 : schedulerRss.reduce<number>((total, rss) => total + (rss ?? 0), 0);
    LogEvents.serverStats(this.log, {
      seconds: Math.round((now - this.previousAt) / 100) / 10,
      requests: counts.requests, errors: counts.errors,
      connections: counts.connections, inApp: counts.inApp, queued: counts.queued, fronts: counts.fronts, workers: counts.workers,
      rssMb: mb(primaryRssBytes + counts.frontsRssBytes + counts.workersRssBytes + schedulersRssBytes),
      primaryRssMb: mb(primaryRssBytes), frontsRssMb: mb(counts.frontsRssBytes), workersRssMb: mb(counts.workersRssBytes),
      schedulersRssMb: schedulerRss === null ? undefined : mb(schedulersRssBytes),
    });
    this.previousAt = now;
  }
}
