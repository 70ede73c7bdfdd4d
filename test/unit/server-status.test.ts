/**
 * @module The primary's /status.json gathering (src/primary/server-status.ts): a poll asks each
 * front only for the history seconds after those the primary keeps, and hands on the whole
 * history, each second once, forgetting fronts that are gone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ServerStatus } from '../../src/primary/server-status.js';
import type { FrontProcess } from '../../src/primary/front-process.js';
import type { FrontStatus } from '../../src/observability/status-data.js';
import { HISTORY_SECONDS, StatusHistory } from '../../src/observability/status-history.js';
import { RecentEvents } from '../../src/observability/recent-events.js';
import type { Config } from '../../src/config/settings.js';

/** A front that answers collect-status with its history's seconds after the asked one, as src/cli/front.ts does. */
function fakeFront(pid: number, history: StatusHistory, asked: number[]): FrontProcess {
  const front = {
    pid, state: 'ready',
    send(message: { type: string; id: number; historySince: number }): void {
      asked.push(message.historySince);
      const status = {
        front: 1, pid, rssBytes: 0, responseTotals: [0, 0, 0, 0, 0, 0], workerClass: 'thread', inApp: 0, inAppLimit: 8, queued: 0, queueSize: 1,
        connections: 0, maxConnections: 1, websockets: null, appWebSockets: 0, history: history.samples(message.historySince), workers: [], inflight: [], events: [],
      } satisfies FrontStatus;
      queueMicrotask(() => server.collected(front as unknown as FrontProcess, message.id, structuredClone(status)));
    },
  };
  return front as unknown as FrontProcess;
}

let server: ServerStatus;

test('each poll asks for the new seconds only, and the parts carry the whole history, each second once', async () => {
  let now = 1_000_000_000_000;
  const history = new StatusHistory({ now: () => now, cpuMicros: () => 0 });
  const tick = (responses: number): void => {
    for (let i = 0; i < responses; i += 1) history.responseEnded(200, 1);
    now += 1000;
    history.tick();
  };
  for (let second = 0; second < 5; second += 1) tick(second);
  const asked: number[] = [];
  let fronts = [fakeFront(41, history, asked)];
  server = new ServerStatus(() => fronts, {} as Config, { listeners: [], fronts: 1, reloads: 0 }, new RecentEvents(), null);

  const first = await server.frontParts();
  assert.equal(asked.at(-1), 0, 'the first poll asks for everything');
  assert.deepEqual(first[0]!.history.map((s) => s.responses[1]), [0, 1, 2, 3, 4]);

  tick(7);
  // Two polls at once bring the same new second: kept once.
  const [a, b] = await Promise.all([server.frontParts(), server.frontParts()]);
  assert.deepEqual(asked.slice(-2), [first[0]!.history.at(-1)!.t, first[0]!.history.at(-1)!.t], 'then only the seconds after the last kept');
  assert.deepEqual(b[0]!.history.map((s) => s.responses[1]), [0, 1, 2, 3, 4, 7]);
  assert.deepEqual(a[0]!.history.map((s) => s.responses[1]), [0, 1, 2, 3, 4, 7]);

  for (let second = 0; second < HISTORY_SECONDS + 10; second += 1) tick(1);
  assert.equal((await server.frontParts())[0]!.history.length, HISTORY_SECONDS, 'no longer than a front keeps');

  // A replacement front (another pid) is asked for everything; the old one's history is dropped.
  fronts = [fakeFront(42, history, asked)];
  await server.frontParts();
  assert.equal(asked.at(-1), 0);
  fronts = [fakeFront(41, history, asked)];
  await server.frontParts();
  assert.equal(asked.at(-1), 0, 'pid 41 was forgotten when it did not answer');
});
