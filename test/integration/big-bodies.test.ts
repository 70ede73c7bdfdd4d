/**
 * A 1 GiB upload (with Content-Length, then chunked: spooled to a temp file and handed over with
 * CONTENT_LENGTH) and a 1 GiB download pass through the front and a worker with bounded memory:
 * flow control keeps at most a window per request in each process. Peak RSS (VmHWM) of the
 * front and of every worker is read from /proc after the transfers and must stay far below the
 * body size; the figures are printed for the record.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtures, frontPid, startServer, workerPids, type StartedServer } from '../helpers/server.js';

const GIB = 1024 * 1024 * 1024;
const BODY_BYTES = Number(process.env.W2N_TEST_BIG_BODY_BYTES ?? GIB);
/** Far below the body size: a leak or a missing window would blow through it. */
const FRONT_PEAK_LIMIT_BYTES = 200 * 1024 * 1024;
const WORKER_PEAK_LIMIT_BYTES = 120 * 1024 * 1024;

let server: StartedServer;
const spoolDir = mkdtempSync(join(tmpdir(), 'w2n-big-spool-'));
before(async () => {
  server = await startServer(['--app', 'suite:app', '-f', join(fixtures, 'apps'), '--processes', '1',
    '--spool-dir', spoolDir, '--max-body', String(Math.max(BODY_BYTES, GIB))]);
});
after(async () => {
  await server.stop();
  rmSync(spoolDir, { recursive: true, force: true });
});

function peakRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

function report(label: string): { front: number; workers: number[] } {
  const front = peakRssBytes(frontPid(server));
  const workers = workerPids(server).map(peakRssBytes);
  const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  console.log(`${label}: peak RSS front ${mib(front)}, workers ${workers.map(mib).join(', ')}`);
  return { front, workers };
}

/** POSTs BODY_BYTES of 'a' (with Content-Length, or chunked); returns the answer and the body's SHA-256. */
async function upload(path: string, isChunked: boolean): Promise<{ answer: string; sha256: string }> {
  const chunk = Buffer.alloc(1024 * 1024, 0x61);
  const expected = createHash('sha256');
  const answer = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method: 'POST', agent: false,
      headers: isChunked ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': String(BODY_BYTES) } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    let sent = 0;
    const pump = (): void => {
      while (sent < BODY_BYTES) {
        const piece = chunk.subarray(0, Math.min(chunk.length, BODY_BYTES - sent));
        sent += piece.length;
        expected.update(piece);
        if (!req.write(piece)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
  return { answer, sha256: expected.digest('hex') };
}

function assertBounded(label: string): void {
  const peaks = report(label);
  assert.ok(peaks.front < FRONT_PEAK_LIMIT_BYTES, `front peak ${peaks.front}`);
  for (const peak of peaks.workers) assert.ok(peak < WORKER_PEAK_LIMIT_BYTES, `worker peak ${peak}`);
}

test(`upload of ${BODY_BYTES} bytes: read whole by the app, memory bounded`, async () => {
  const { answer, sha256 } = await upload('/upload', false);
  const info = JSON.parse(answer) as { bytes: number; sha256: string };
  assert.equal(info.bytes, BODY_BYTES);
  assert.equal(info.sha256, sha256);
  assertBounded('after upload');
});

test(`chunked upload of ${BODY_BYTES} bytes: spooled to disk, read by CONTENT_LENGTH, memory bounded, no file left`, async () => {
  const { answer, sha256 } = await upload('/sized', true);
  const info = JSON.parse(answer) as { content_length: string; bytes: number; sha256: string };
  assert.equal(info.content_length, String(BODY_BYTES));
  assert.equal(info.bytes, BODY_BYTES);
  assert.equal(info.sha256, sha256);
  assertBounded('after chunked upload');
  assert.deepEqual(readdirSync(spoolDir), []);
});

test(`download of ${BODY_BYTES} bytes: arrives whole, memory bounded, even with a slow reader`, async () => {
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path: `/stream?n=${BODY_BYTES}&cl=1`, agent: false }, (res) => {
      assert.equal(res.headers['content-length'], String(BODY_BYTES));
      let paused = false;
      res.on('data', (c: Buffer) => {
        received += c.length;
        // Stall the reader once for a while: the window must hold the worker back meanwhile.
        if (!paused && received > 64 * 1024 * 1024) {
          paused = true;
          res.pause();
          setTimeout(() => res.resume(), 1000);
        }
      });
      res.on('end', () => resolve());
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(received, BODY_BYTES);
  assertBounded('after download');
});
