/**
 * @module The `server.stats` line's counts (src/primary/server-stats.ts): differences per front
 * process, a replaced front counted from its start, sums of the gauges and memory.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { countStats } from '../../src/primary/server-stats.js';
import type { FrontStatus, WorkerRow } from '../../src/observability/status-data.js';

function front(pid: number, responseTotals: number[], extra: Partial<FrontStatus> = {}): FrontStatus {
  return {
    front: 1, pid, rssBytes: 50 * 1024 * 1024, responseTotals, workerClass: 'thread', inApp: 1, inAppLimit: 8, queued: 2, queueSize: 1024,
    connections: 3, maxConnections: 10_000, websockets: null, appWebSockets: 0, history: [], workers: [], inflight: [], events: [], ...extra,
  };
}

const worker = (rssBytes: number | null): WorkerRow => ({
  front: 1, pid: 7, state: 'ready', inFlight: 0, served: 0, rssBytes, maxRssBytes: null, ageSeconds: 1, restarts: 0, lastExit: null,
});

test('requests and 5xx errors since the previous line, per front process; gauges and memory summed', () => {
  const previous = new Map([[100, [0, 0, 10, 1, 2, 3]], [200, [0, 0, 5, 0, 0, 0]]]);
  const counts = countStats([
    front(100, [0, 0, 14, 1, 2, 5], { workers: [worker(1024), worker(null)] }),
    // A front process the previous line did not know (a replacement): counted from its start.
    front(300, [0, 1, 2, 0, 1, 1], { workers: [worker(2048)], rssBytes: null }),
  ], previous);
  assert.deepEqual(counts, {
    requests: 4 + 2 + 5, errors: 2 + 1, connections: 6, inApp: 2, queued: 4, fronts: 2, workers: 3,
    frontsRssBytes: 50 * 1024 * 1024, workersRssBytes: 3072,
  });
});

test('a total that went down (never for one process) counts as nothing, not as negative requests', () => {
  const counts = countStats([front(100, [0, 0, 3, 0, 0, 0])], new Map([[100, [0, 0, 5, 0, 0, 0]]]));
  assert.equal(counts.requests, 0);
  assert.deepEqual(countStats([], new Map()).fronts, 0);
});
