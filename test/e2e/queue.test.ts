/**
 * -w N as the seed meant it: at most N requests inside the application at once; the others wait
 * in the front's queue, and one whose client leaves while it waits never reaches Python.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { fixtures, startServer, waitForStarted } from '../helpers/server.js';
import { waitUntil } from '../helpers/waits.js';

const apps = join(fixtures, 'apps');

/** Waits until `count` requests wait in the front's queue (w2n_queue_length on /metrics, answered by the front itself). */
function waitForQueued(port: number, count: number): Promise<void> {
  return waitUntil(`${count} queued`, async () => new RegExp(`^w2n_queue_length ${count}$`, 'm').test((await get(port, '/metrics')).body));
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject).end();
  });
}

test('-w 2: twelve concurrent requests, never more than two inside the application, all answered', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--threads', '8', '-w', '2']);
  try {
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => get(server.port, `/inflight?s=0.15&tag=r${i}`)));
    assert.deepEqual(answers.map((a) => a.status), Array(12).fill(200));
    const report = JSON.parse((await get(server.port, '/inflight/report')).body) as { max: number; ran: string[] };
    assert.equal(report.max, 2);
    assert.equal(report.ran.length, 12);
  } finally {
    await server.stop();
  }
});

test('a client that leaves while queued never reaches Python', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '-w', '1']);
  try {
    const busy = get(server.port, '/inflight?s=1&tag=busy');
    await waitForStarted(server, 'busy');
    const leaver = request({ host: '127.0.0.1', port: server.port, path: '/inflight?s=0&tag=left', agent: false });
    leaver.on('error', () => undefined);
    leaver.end();
    await waitForQueued(server.port, 1);
    leaver.destroy(); // gone while it waits behind "busy"
    assert.equal((await busy).status, 200);
    const after = await get(server.port, '/inflight?s=0&tag=after');
    assert.equal(after.status, 200);
    const report = JSON.parse((await get(server.port, '/inflight/report')).body) as { ran: string[] };
    assert.deepEqual(report.ran, ['busy', 'after']);
  } finally {
    await server.stop();
  }
});

test('/metrics (loopback only) counts the 503s of the queue, by reason, and the workers', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--worker-class', 'sync', '-w', '1',
    '--queue-size', '1', '--queue-timeout', '0.3']);
  try {
    const busy = get(server.port, '/inflight?s=1.2&tag=busy');
    await waitForStarted(server, 'busy');
    const queued = get(server.port, '/inflight?s=0&tag=queued'); // waits, then times out
    await waitForQueued(server.port, 1);
    const overflow = await get(server.port, '/inflight?s=0&tag=overflow'); // the queue (1) is full
    assert.equal(overflow.status, 503);
    assert.equal((await queued).status, 503);
    assert.equal((await busy).status, 200);
    const metrics = await get(server.port, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^w2n_queue_rejected_total\{reason="full"\} 1$/m);
    assert.match(metrics.body, /^w2n_queue_rejected_total\{reason="timeout"\} 1$/m);
    assert.match(metrics.body, /^w2n_workers_ready 1$/m);
    assert.match(metrics.body, /^w2n_responses_total\{class="5xx"\} 2$/m);
    assert.match(metrics.body, /^w2n_front_process_resident_memory_bytes \d+/m);
  } finally {
    await server.stop();
  }
});

test('--queue-target: a standing queue sheds its requests past the target with 503 at once; a larger target lets them wait their turn', async () => {
  const run = async (target: string): Promise<{ queued: { status: number; retryAfter: boolean }; queuedFirst: boolean; metrics: string }> => {
    const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '-w', '1', '--queue-target', target]);
    try {
      const order: string[] = [];
      const busy = get(server.port, '/inflight?s=1.5&tag=busy').then((answer) => { order.push('busy'); return answer; });
      await waitForStarted(server, 'busy');
      const queued = new Promise<{ status: number; retryAfter: boolean }>((resolve, reject) => {
        request({ host: '127.0.0.1', port: server.port, path: '/inflight?s=0&tag=queued', agent: false }, (res) => {
          res.resume();
          res.on('end', () => { order.push('queued'); resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] !== undefined }); });
        }).on('error', reject).end();
      });
      const answers = await Promise.all([busy, queued]);
      assert.equal(answers[0].status, 200);
      return { queued: answers[1], queuedFirst: order[0] === 'queued', metrics: (await get(server.port, '/metrics')).body };
    } finally {
      await server.stop();
    }
  };
  // 0.05 s: the queue stands after 0.1 s, and the request has waited past the target by then.
  const shed = await run('0.05');
  assert.deepEqual(shed.queued, { status: 503, retryAfter: true });
  assert.ok(shed.queuedFirst, 'answered while the busy request was still running');
  assert.match(shed.metrics, /^w2n_queue_rejected_total\{reason="standing"\} 1$/m);
  // 5 s: longer than the busy request, so the queued one waits its turn and runs.
  const waited = await run('5');
  assert.deepEqual(waited.queued, { status: 200, retryAfter: false });
  assert.ok(!waited.queuedFirst);
});

