/**
 * The front reads its channel into buffers it reads into again (src/pool/channel-reads.ts): a
 * response body piece holds its buffer until written. If a buffer were reused too soon, some
 * client would get bytes of a later read (another response's, or frame headers) in place of
 * its own. Several downloads at once through one worker, with and without Content-Length
 * (chunked), two of their readers stalling again and again, and small answers in between: every
 * byte must be where the app put it (the app's 0..255 pattern).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { fixtures, startServer, type StartedServer } from '../helpers/server.js';

const BYTES = 48 * 1024 * 1024;
const PATTERN = Buffer.alloc(2 * 65536);
for (let i = 0; i < PATTERN.length; i += 1) PATTERN[i] = i % 256;

let server: StartedServer;
before(async () => {
  server = await startServer(['--app', 'suite:app', '-f', join(fixtures, 'apps'), '--processes', '1']);
});
after(async () => {
  await server.stop();
});

/** Downloads /stream; returns the bytes received and where the first wrong byte was (-1: none). */
function download(withLength: boolean, stalls: boolean): Promise<{ received: number; firstWrong: number }> {
  return new Promise((resolve, reject) => {
    let received = 0;
    let firstWrong = -1;
    let nextStall = 4 * 1024 * 1024;
    const req = request({ host: '127.0.0.1', port: server.port, path: `/stream?n=${BYTES}${withLength ? '&cl=1' : ''}`, agent: false }, (res) => {
      res.on('data', (c: Buffer) => {
        for (let at = 0; at < c.length && firstWrong < 0; at += 65536) {
          const piece = c.subarray(at, Math.min(at + 65536, c.length));
          const start = (received + at) % 256;
          if (!piece.equals(PATTERN.subarray(start, start + piece.length))) {
            let i = 0;
            while (piece[i] === PATTERN[start + i]) i += 1;
            firstWrong = received + at + i;
          }
        }
        received += c.length;
        if (stalls && received >= nextStall) {
          nextStall += 4 * 1024 * 1024;
          res.pause();
          setTimeout(() => res.resume(), 30);
        }
      });
      res.on('end', () => resolve({ received, firstWrong }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function hello(): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: server.port, path: '/hello', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve(body));
    }).on('error', reject).end();
  });
}

test('concurrent downloads through one worker, some readers stalling: every byte in its place', async () => {
  const downloads = [download(true, false), download(false, true), download(true, true), download(false, false)];
  const answers: Promise<string>[] = [];
  for (let i = 0; i < 20; i += 1) {
    answers.push(hello());
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const results = await Promise.all(downloads);
  for (const [i, r] of results.entries()) {
    assert.equal(r.firstWrong, -1, `download ${i}: wrong byte at ${r.firstWrong}`);
    assert.equal(r.received, BYTES, `download ${i}`);
  }
  const bodies = await Promise.all(answers);
  assert.equal(new Set(bodies).size, 1, 'every small answer alike');
});
