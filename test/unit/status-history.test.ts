/**
 * @module The status page's per-second history: buckets, percentiles, the ring, merging fronts.
 * Time is simulated (the clock is injected; tick() closes a second).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  BUCKET_BOUNDS_MS, HISTORY_SECONDS, StatusHistory, bucketOf, mergeHistories, quantileMs, toChartPoints,
} from '../../src/observability/status-history.js';

function fakeClock(startMs = 1_800_000_000_000): { now: () => number; cpuMicros: () => number; advance: (ms: number, cpu?: number) => void } {
  let now = startMs;
  let cpu = 0;
  return {
    now: () => now,
    cpuMicros: () => cpu,
    advance: (ms, cpuMicros = 0) => { now += ms; cpu += cpuMicros; },
  };
}

test('bucketOf: a duration falls in the first bucket whose bound holds it; beyond the last, the overflow bucket', () => {
  assert.equal(bucketOf(0), 0);
  assert.equal(bucketOf(BUCKET_BOUNDS_MS[0]!), 0);
  assert.equal(bucketOf(BUCKET_BOUNDS_MS[0]! + 0.001), 1);
  assert.equal(bucketOf(BUCKET_BOUNDS_MS[10]!), 10);
  assert.equal(bucketOf(10 ** 9), BUCKET_BOUNDS_MS.length);
  for (let index = 1; index < BUCKET_BOUNDS_MS.length; index += 1) assert.ok(BUCKET_BOUNDS_MS[index]! > BUCKET_BOUNDS_MS[index - 1]!);
});

test('quantileMs: the bound of the bucket the rank falls in; null for no data', () => {
  const buckets = new Array<number>(BUCKET_BOUNDS_MS.length + 1).fill(0);
  assert.equal(quantileMs(buckets, 0.5), null);
  buckets[bucketOf(1)] = 98;
  buckets[bucketOf(100)] = 2;
  assert.equal(quantileMs(buckets, 0.5), BUCKET_BOUNDS_MS[bucketOf(1)]);
  assert.equal(quantileMs(buckets, 0.99), BUCKET_BOUNDS_MS[bucketOf(100)]);
  const p99 = quantileMs(buckets, 0.99)!;
  assert.ok(p99 >= 100 && p99 < 150, `p99 ${p99} is within one bucket above 100 ms`);
});

test('a second collects responses by class, latency, waits, 503s by reason, 504s and CPU; tick closes it', () => {
  const clock = fakeClock();
  const history = new StatusHistory(clock);
  history.responseEnded(200, 3);
  history.responseEnded(204, 4);
  history.responseEnded(404, 1);
  history.responseEnded(503, 0.2);
  history.responseEnded(99, 1); // no class: not counted as a response, but its time is
  history.queueWaited(0.5);
  history.rejected('full');
  history.rejected('standing');
  history.timedOut();
  assert.deepEqual(history.samples(), [], 'nothing closed yet');
  clock.advance(1000, 25_000);
  history.tick();
  const [sample] = history.samples();
  assert.ok(sample);
  assert.equal(sample.t, Math.floor((clock.now() - 1000) / 1000));
  assert.deepEqual(sample.responses, [0, 2, 0, 1, 1]);
  assert.equal(sample.latency.reduce((a, b) => a + b), 5);
  assert.equal(sample.queueWait.reduce((a, b) => a + b), 1);
  assert.deepEqual(sample.rejected, { full: 1, timeout: 0, standing: 1 });
  assert.equal(sample.timeouts, 1);
  assert.equal(sample.cpuMicros, 25_000);
  const [point] = toChartPoints([sample]);
  assert.equal(point?.cpuCores, 0.025);
  assert.equal(point?.p50Ms, BUCKET_BOUNDS_MS[bucketOf(1)], 'the median of 0.2, 1, 1, 3, 4 ms');
});

test('the ring keeps the last five minutes; seconds never repeat even when ticks come early', () => {
  const clock = fakeClock();
  const history = new StatusHistory(clock);
  for (let second = 0; second < HISTORY_SECONDS + 20; second += 1) {
    history.responseEnded(200, 1);
    clock.advance(second % 7 === 0 ? 400 : 1000);
    history.tick();
  }
  const samples = history.samples();
  assert.equal(samples.length, HISTORY_SECONDS);
  for (let index = 1; index < samples.length; index += 1) assert.ok(samples[index]!.t > samples[index - 1]!.t);
  // Copies: changing what samples() returned changes nothing inside.
  samples[0]!.responses[1] = 1e6;
  assert.equal(history.samples()[0]!.responses[1], 1);
});

test('mergeHistories adds the fronts up second by second; the loop delay is the worst front\'s', () => {
  const a = new StatusHistory(fakeClock(1_800_000_000_000));
  const b = new StatusHistory(fakeClock(1_800_000_000_000));
  a.responseEnded(200, 1);
  a.responseEnded(200, 1);
  b.responseEnded(500, 900);
  a.tick();
  b.tick();
  const [sa] = a.samples();
  const [sb] = b.samples();
  sa!.loopDelayP99Ms = 2;
  sb!.loopDelayP99Ms = 40;
  // b has one more second that a has not.
  const later = { ...structuredClone(sb!), t: sb!.t + 1 };
  const merged = mergeHistories([[sa!], [sb!, later]]);
  assert.equal(merged.length, 2);
  assert.deepEqual(merged[0]!.responses, [0, 2, 0, 0, 1]);
  assert.equal(merged[0]!.loopDelayP99Ms, 40);
  assert.equal(quantileMs(merged[0]!.latency, 0.99), BUCKET_BOUNDS_MS[bucketOf(900)]);
  assert.deepEqual(merged[1]!.responses, [0, 0, 0, 0, 1]);
});
