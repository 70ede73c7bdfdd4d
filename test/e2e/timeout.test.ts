/**
 * --timeout: a request still in the application past it gets 504; the worker interrupts it and
 * carries on. One it cannot interrupt within --timeout-grace has its Python stacks logged and its
 * worker replaced: only that worker's requests fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fixtures, startServer, waitForLog } from '../helpers/server.js';

const apps = join(fixtures, 'apps');


for (const workerClass of ['thread', 'sync'] as const) {
  test(`${workerClass}: a request spinning in Python gets 504, is interrupted, and the worker carries on`, async () => {
    const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--worker-class', workerClass,
      '--timeout', '0.5', '--timeout-grace', '5'], { env: { PYTHONPATH: apps } });
    try {
      const stuck = await fetch(server.url('/spin?kind=loop&tag=a'));
      assert.equal(stuck.status, 504);
      assert.equal(await stuck.text(), 'Gateway Timeout\n');
      const after = await fetch(server.url('/hello'));
      assert.equal(after.status, 200, 'the same worker (the only one) serves the next request');
      const status = await (await fetch(server.url('/spin/status'))).json() as { events: [string, string][] };
      assert.deepEqual(status.events.filter(([tag]) => tag === 'a').map(([, what]) => what), ['started', 'RequestTimeout']);
      assert.doesNotMatch(server.stderr(), /worker\.hung|worker\.died/);
      // The 504 is in the server log, at the error table's level for W2N_ERR_WORKER_TIMEOUT.
      await waitForLog(server, /ERROR .*request\.timed_out .*path=\/spin .*code=W2N_ERR_WORKER_TIMEOUT/);
    } finally {
      await server.stop();
    }
  });
}

test('a request the worker cannot interrupt in time: stacks logged, worker replaced, only its requests fail', async () => {
  // A thread in a long C call (time.sleep) only sees the interrupt when the call returns.
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--worker-class', 'thread',
    '--timeout', '0.5', '--timeout-grace', '1'], { env: { PYTHONPATH: apps } });
  try {
    const pidBefore = (await (await fetch(server.url('/crash/alive'))).text());
    const stuck = await fetch(server.url('/spin?kind=sleep&s=60&tag=b'));
    assert.equal(stuck.status, 504);
    await waitForLog(server, /worker\.hung/);
    await waitForLog(server, /worker\.(died|exited)/);
    assert.match(server.stderr(), /spin\.py/, 'the Python stack dump names the stuck code');
    const pidAfter = await (await fetch(server.url('/crash/alive'))).text();
    assert.notEqual(pidAfter, pidBefore, 'a fresh worker serves');
  } finally {
    await server.stop();
  }
});
