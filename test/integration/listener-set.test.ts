/**
 * ListenerSet.widenAccept (src/front/listener-set.ts): the `--accept-batch` copies of each TCP
 * listening socket are made after the listeners open, while the workers start. A copy must never
 * outlive a stop, even one that comes while they are being made. Descriptors are counted in
 * /proc (Linux, test/helpers/descriptors.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/observability/log.js';
import { Metrics } from '../../src/observability/metrics.js';
import { ClientRejections } from '../../src/front/client-errors.js';
import { ConnectionLimit } from '../../src/front/connection-limit.js';
import { ListenerSet } from '../../src/front/listener-set.js';
import { descriptorsPerSocket } from '../helpers/descriptors.js';

async function openOne(): Promise<ListenerSet> {
  const log = createLogger({ level: 'silent', format: 'json' });
  const metrics = new Metrics(() => ({ workers: 0, ready: 0, running: 0, queued: 0 }));
  const rejections = new ClientRejections({ log, metrics, serverHeader: null, maxHeaderSize: 8192 });
  return ListenerSet.open([{ kind: 'tcp', ip: '127.0.0.1', port: 0, tls: null }], {
    limits: { maxHeaderBytes: 8192, headersTimeoutMs: 5_000, requestTimeoutMs: 0, keepAliveTimeoutMs: 5_000, maxHeaders: 100 },
    http2: null,
    log,
    rejections,
    connectionLimit: new ConnectionLimit(100, rejections, log),
    proxies: null,
    handlerFor: () => (_req, res) => res.end('ok'),
    fallbackPort: 8000,
  });
}

/** Descriptors this process holds of its most shared socket (the listening one once copied). */
const mostSharedSocket = (): number => descriptorsPerSocket('self')[0] ?? 0;

test('widenAccept gives each TCP listener batch descriptors, and stopAccepting closes them', async () => {
  const listeners = await openOne();
  try {
    assert.equal(mostSharedSocket(), 1, 'one descriptor before');
    await listeners.widenAccept(4);
    assert.equal(mostSharedSocket(), 4);
    listeners.stopAccepting();
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(mostSharedSocket() <= 1, 'the copies are closed with the listener');
  } finally {
    listeners.closeAll();
  }
});

test('a stop while the copies are being made leaves none open', async () => {
  const listeners = await openOne();
  const widening = listeners.widenAccept(4); // the helper process answers in later turns
  listeners.closeAll();
  await widening;
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(mostSharedSocket() <= 1, `no copy outlives the stop (${mostSharedSocket()} descriptors of one socket)`);
});
