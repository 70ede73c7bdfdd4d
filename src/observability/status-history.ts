/**
 * @module The last five minutes, second by second, for the status page's live charts.
 *
 * Each front keeps a ring of HISTORY_SECONDS one-second samples: responses by status class,
 * a latency and a queue-wait histogram, 503s by reason, 504s, its CPU time and event-loop
 * delay. Recording is a few increments into the current second's sample (no allocation on the
 * hot path); a one-second timer closes it. Histograms, not percentiles, are kept, so the
 * primary can add the fronts' samples up (`mergeHistories`) and only then take p50/p99.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export const HISTORY_SECONDS = 300;

/**
 * Upper bounds of the latency/wait buckets in milliseconds, roughly ×1.5 apart from 0.1 ms to
 * 5 minutes; the last bucket holds everything slower. A percentile is the bound of the bucket
 * it falls in, so it is at most one bucket (50%) high: plenty for a chart.
 */
export const BUCKET_BOUNDS_MS: readonly number[] = (() => {
  const bounds: number[] = [];
  for (let bound = 0.1; bound < 300_000; bound *= 1.5) bounds.push(Number(bound.toPrecision(3)));
  return bounds;
})();

export type RejectKind = 'full' | 'timeout' | 'standing';

/** One second of one front (or, merged, of the server). Counts only: they add up. */
export interface SecondSample {
  /** Epoch second this sample covers. */
  t: number;
  /** Responses that ended in this second by class: 1xx, 2xx, 3xx, 4xx, 5xx. */
  responses: [number, number, number, number, number];
  /** Response durations (request start to end), by BUCKET_BOUNDS_MS bucket (+1 for above). */
  latency: number[];
  /** Time requests waited for a worker, by bucket. */
  queueWait: number[];
  rejected: Record<RejectKind, number>;
  /** Requests answered 504 (ran past --timeout). */
  timeouts: number;
  /** CPU time of the front process(es) in this second, microseconds (user + system). */
  cpuMicros: number;
  /** Event-loop delay of the front (the worst front when merged), milliseconds. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

function emptySample(t: number): SecondSample {
  return {
    t,
    responses: [0, 0, 0, 0, 0],
    latency: new Array<number>(BUCKET_BOUNDS_MS.length + 1).fill(0),
    queueWait: new Array<number>(BUCKET_BOUNDS_MS.length + 1).fill(0),
    rejected: { full: 0, timeout: 0, standing: 0 },
    timeouts: 0,
    cpuMicros: 0,
    loopDelayP99Ms: 0,
    loopDelayMaxMs: 0,
  };
}

/** The bucket of a duration: a binary search over the bounds. */
export function bucketOf(ms: number): number {
  let low = 0;
  let high = BUCKET_BOUNDS_MS.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (ms <= BUCKET_BOUNDS_MS[middle]!) high = middle;
    else low = middle + 1;
  }
  return low;
}

/** The `q` quantile (0..1) of a bucket histogram, as its bucket's upper bound; null when empty. */
export function quantileMs(buckets: readonly number[], q: number): number | null {
  let total = 0;
  for (const count of buckets) total += count;
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let index = 0; index < buckets.length; index += 1) {
    seen += buckets[index]!;
    if (seen >= rank) return BUCKET_BOUNDS_MS[index] ?? BUCKET_BOUNDS_MS.at(-1)! * 1.5;
  }
  return null;
}

export interface HistoryClock {
  /** Milliseconds since the epoch. */
  now(): number;
  cpuMicros(): number;
}

const realClock: HistoryClock = {
  now: () => Date.now(),
  cpuMicros: () => {
    const { user, system } = process.cpuUsage();
    return user + system;
  },
};

export class StatusHistory {
  private readonly ring: SecondSample[] = [];
  private current: SecondSample;
  private lastCpu: number;
  private timer: NodeJS.Timeout | null = null;
  private loopDelay: IntervalHistogram | null = null;

  constructor(private readonly clock: HistoryClock = realClock) {
    this.current = emptySample(Math.floor(clock.now() / 1000));
    this.lastCpu = clock.cpuMicros();
  }

  /** Closes a sample every second (the timer does not keep the process alive). */
  start(): void {
    if (this.timer !== null) return;
    this.loopDelay = monitorEventLoopDelay({ resolution: 10 });
    this.loopDelay.enable();
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.loopDelay?.disable();
  }

  /** Closes the current second and opens the next (the timer calls it; tests call it directly). */
  tick(): void {
    const sample = this.current;
    const cpu = this.clock.cpuMicros();
    sample.cpuMicros = cpu - this.lastCpu;
    this.lastCpu = cpu;
    if (this.loopDelay !== null) {
      // Nanoseconds; a histogram with no sample yet reports NaN-free zeros only after a reset.
      sample.loopDelayP99Ms = this.loopDelay.count === 0 ? 0 : this.loopDelay.percentile(99) / 1e6;
      sample.loopDelayMaxMs = this.loopDelay.count === 0 ? 0 : this.loopDelay.max / 1e6;
      this.loopDelay.reset();
    }
    this.ring.push(sample);
    if (this.ring.length > HISTORY_SECONDS) this.ring.shift();
    this.current = emptySample(Math.max(sample.t + 1, Math.floor(this.clock.now() / 1000)));
  }

  responseEnded(status: number, durationMs: number): void {
    const index = Math.floor(status / 100) - 1;
    if (index >= 0 && index < 5) this.current.responses[index as 0 | 1 | 2 | 3 | 4] += 1;
    this.current.latency[bucketOf(durationMs)]! += 1;
  }

  queueWaited(ms: number): void {
    this.current.queueWait[bucketOf(ms)]! += 1;
  }

  rejected(kind: RejectKind): void {
    this.current.rejected[kind] += 1;
  }

  timedOut(): void {
    this.current.timeouts += 1;
  }

  /** The closed samples after epoch second `since` (0: all), oldest first (copies: the caller may send them anywhere). */
  samples(since = 0): SecondSample[] {
    return this.ring.filter((sample) => sample.t > since).map((sample) => structuredClone(sample));
  }
}

/**
 * Several fronts' samples as one server's: counts of the same second added up, the event-loop
 * delay the worst of them (a slow front is what a client meets). Seconds missing from a front
 * (it started later) count as zero for it.
 */
export function mergeHistories(histories: readonly SecondSample[][]): SecondSample[] {
  const bySecond = new Map<number, SecondSample>();
  for (const history of histories) {
    for (const sample of history) {
      const merged = bySecond.get(sample.t) ?? emptySample(sample.t);
      for (let index = 0; index < 5; index += 1) merged.responses[index as 0] += sample.responses[index as 0];
      sample.latency.forEach((count, index) => { merged.latency[index]! += count; });
      sample.queueWait.forEach((count, index) => { merged.queueWait[index]! += count; });
      for (const kind of ['full', 'timeout', 'standing'] as const) merged.rejected[kind] += sample.rejected[kind];
      merged.timeouts += sample.timeouts;
      merged.cpuMicros += sample.cpuMicros;
      merged.loopDelayP99Ms = Math.max(merged.loopDelayP99Ms, sample.loopDelayP99Ms);
      merged.loopDelayMaxMs = Math.max(merged.loopDelayMaxMs, sample.loopDelayMaxMs);
      bySecond.set(sample.t, merged);
    }
  }
  return [...bySecond.values()].sort((a, b) => a.t - b.t);
}

/** What the page charts for one second: rates and percentiles, no histograms. */
export interface ChartPoint {
  t: number;
  responses: [number, number, number, number, number];
  p50Ms: number | null;
  p99Ms: number | null;
  queueWaitP50Ms: number | null;
  queueWaitP99Ms: number | null;
  rejected: Record<RejectKind, number>;
  timeouts: number;
  /** Front CPU as a share of one core, 0..N. */
  cpuCores: number;
  loopDelayP99Ms: number;
}

export function toChartPoints(samples: readonly SecondSample[]): ChartPoint[] {
  return samples.map((sample) => ({
    t: sample.t,
    responses: sample.responses,
    p50Ms: quantileMs(sample.latency, 0.5),
    p99Ms: quantileMs(sample.latency, 0.99),
    queueWaitP50Ms: quantileMs(sample.queueWait, 0.5),
    queueWaitP99Ms: quantileMs(sample.queueWait, 0.99),
    rejected: sample.rejected,
    timeouts: sample.timeouts,
    cpuCores: sample.cpuMicros / 1e6,
    loopDelayP99Ms: sample.loopDelayP99Ms,
  }));
}
