/**
 * @module GET /metrics for the whole server: every front's metrics added up, plus the primary's.
 *
 * A `/metrics` request reaches one front; that front asks the primary, which asks every live
 * front for its registry (prom-client JSON), adds them up with prom-client's own aggregator
 * (counters and gauges summed, so `w2n_requests_in_app` is the server's, not one front's) and
 * sends the text back. A front that does not answer within COLLECT_WAIT_MS is left out rather
 * than holding the scrape.
 */
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';

/** One process's metrics as `registry.getMetricsAsJSON()` makes them. */
type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
import type { FrontProcess } from './front-process.js';

const COLLECT_WAIT_MS = 1_000;

/** What the scheduler supervisor tells /metrics. */
interface SchedulerCounts { readonly running: number; readonly count: number; readonly restarts: number }

interface Collection {
  waiting: Set<FrontProcess>;
  gathered: MetricsJson[];
  finish: () => void;
}

export class ServerMetrics {
  private readonly registry = new Registry();
  private readonly restarts: Counter;
  private readonly collections = new Map<number, Collection>();
  private nextCollectionId = 1;

  constructor(private readonly liveFronts: () => FrontProcess[], schedulers: SchedulerCounts | null = null) {
    const registers = [this.registry];
    this.restarts = new Counter({ name: 'w2n_front_restarts_total', help: 'Front processes started to replace one that died.', registers });
    const fronts = liveFronts;
    new Gauge({ name: 'w2n_fronts', help: 'Front processes alive now.', registers, collect() { this.set(fronts().length); } });
    if (schedulers !== null) {
      new Gauge({ name: 'w2n_scheduler_processes', help: 'web2py scheduler processes (-K) alive now.', registers, collect() { this.set(schedulers.running); } });
      new Gauge({ name: 'w2n_scheduler_processes_wanted', help: 'web2py scheduler processes (-K) the server keeps running: -K entries times --scheduler-workers.', registers, collect() { this.set(schedulers.count); } });
      // A counter the supervisor keeps; read at scrape time.
      new Counter({ name: 'w2n_scheduler_restarts_total', help: 'web2py scheduler processes started to replace one that died.', registers, collect() { this.reset(); this.inc(schedulers.restarts); } });
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
    const collection = this.collections.get(collectionId);
    if (collection === undefined || !collection.waiting.delete(front)) return;
    collection.gathered.push(metrics as MetricsJson);
    if (collection.waiting.size === 0) collection.finish();
  }

  private async gather(): Promise<string> {
    const id = this.nextCollectionId++;
    const fronts = this.liveFronts().filter((front) => front.state === 'ready' || front.state === 'stopping');
    const gathered: MetricsJson[] = [await this.registry.getMetricsAsJSON()];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => finish(), COLLECT_WAIT_MS);
      const finish = (): void => {
        clearTimeout(timer);
        this.collections.delete(id);
        resolve();
      };
      this.collections.set(id, { waiting: new Set(fronts), gathered, finish });
      if (fronts.length === 0) finish();
      for (const front of fronts) front.send({ type: 'collect-metrics', id });
    });
    return AggregatorRegistry.aggregate(gathered).metrics();
  }
}
