/**
 * @module GET /metrics for the whole server: every front's metrics added up, plus the primary's.
 *
 * A `/metrics` request reaches one front; that front asks the primary, which asks every live
 * front for its registry (prom-client JSON), adds them up with prom-client's own aggregator
 * (counters and gauges summed, so `w2n_requests_in_app` is the server's, not one front's) and
 * sends the text back (front-collection.ts: a front that does not answer is left out).
 */
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';

/** One process's metrics as `registry.getMetricsAsJSON()` makes them. */
type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
import type { FrontProcess } from './front-process.js';
import { FrontCollection } from './front-collection.js';
import type { SchedulerRow } from '../observability/status-data.js';

/** What the scheduler supervisor tells /metrics. */
interface SchedulerCounts { readonly running: number; readonly count: number; readonly restarts: number; facts(): SchedulerRow[] }

export class ServerMetrics {
  private readonly registry = new Registry();
  private readonly restarts: Counter;
  private readonly collection: FrontCollection<MetricsJson>;

  constructor(liveFronts: () => FrontProcess[], schedulers: SchedulerCounts | null = null) {
    this.collection = new FrontCollection(liveFronts, (front, id) => front.send({ type: 'collect-metrics', id }));
    const registers = [this.registry];
    this.restarts = new Counter({ name: 'w2n_front_restarts_total', help: 'Front processes started to replace one that died.', registers });
    const fronts = liveFronts;
    new Gauge({ name: 'w2n_fronts', help: 'Front processes alive now.', registers, collect() { this.set(fronts().length); } });
    if (schedulers !== null) {
      new Gauge({ name: 'w2n_scheduler_processes', help: 'web2py scheduler processes (-K) alive now.', registers, collect() { this.set(schedulers.running); } });
      new Gauge({ name: 'w2n_scheduler_processes_wanted', help: 'web2py scheduler processes (-K) the server keeps running: -K entries times --scheduler-workers.', registers, collect() { this.set(schedulers.count); } });
      // A counter the supervisor keeps; read at scrape time.
      new Counter({ name: 'w2n_scheduler_restarts_total', help: 'web2py scheduler processes started to replace one that died.', registers, collect() { this.reset(); this.inc(schedulers.restarts); } });
      new Gauge({
        name: 'w2n_scheduler_heartbeat_age_seconds', labelNames: ['scheduler'], registers,
        help: 'Seconds since each running scheduler process (-K entry, #n with --scheduler-workers) last recorded its heartbeat in scheduler_worker; absent until its first one is seen.',
        collect() {
          this.reset();
          for (const row of schedulers.facts()) if (row.heartbeatAgeSeconds !== null) this.set({ scheduler: row.name }, row.heartbeatAgeSeconds);
        },
      });
    }
  }

  frontRestarted(): void {
    this.restarts.inc();
  }

  /** Gathers every front's metrics and answers `asker`'s pending request `id`. */
  answer(asker: FrontProcess, id: number): void {
    void this.gather().then(
      (text) => asker.send({ type: 'metrics', id, text }),
      () => asker.send({ type: 'metrics', id, text: null }),
    );
  }

  /** A front's answer to `collect-metrics`. */
  collected(front: FrontProcess, collectionId: number, metrics: unknown[]): void {
    this.collection.answered(front, collectionId, metrics as MetricsJson);
  }

  private async gather(): Promise<string> {
    const gathered = await this.collection.gather([await this.registry.getMetricsAsJSON()]);
    return AggregatorRegistry.aggregate(gathered).metrics();
  }
}
