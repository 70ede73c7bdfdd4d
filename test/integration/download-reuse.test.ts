/**
 * The front reads its channel into buffers it reads into again (src/pool/channel-reads.ts): a
 * response body piece holds its buffer until written. If a buffer were reused too soon, some
 * client would get bytes of a later read (another response's, or frame headers) in place of
 * its own. Several downloads at once through one worker, with and without Content-Length
 * (chunked), two of their readers stalling again and again, and small answers in between: every
 * byte must be where the app put it (the app's 0..255 pattern). The same over HTTP/2 streams of
 * one session (their writes' callbacks come when the session has sent them).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtures, startServer, type StartedServer } from '../helpers/server.js';
import { makeCertificate } from '../helpers/tls.js';

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

/** Checks each piece against the pattern: the first wrong byte's offset, or -1. */
class PatternCheck {
  received = 0;
  firstWrong = -1;
  add(c: Buffer): void {
    for (let at = 0; at < c.length && this.firstWrong < 0; at += 65536) {
      const piece = c.subarray(at, Math.min(at + 65536, c.length));
      const start = (this.received + at) % 256;
      if (!piece.equals(PATTERN.subarray(start, start + piece.length))) {
        let i = 0;
        while (piece[i] === PATTERN[start + i]) i += 1;
        this.firstWrong = this.received + at + i;
      }
    }
    this.received += c.length;
  }
}

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

test('HTTP/2: concurrent download streams of one session, some stalling: every byte in its place', async (t) => {
  const certificate = makeCertificate();
  const h2server = await startServer(['--app', 'suite:app', '-f', join(fixtures, 'apps'), '--processes', '1', '-c', certificate.cert, '-k', certificate.key], { scheme: 'https' });
  t.after(() => h2server.stop());
  const session = http2Connect(`https://127.0.0.1:${h2server.port}`, { ca: readFileSync(certificate.cert, 'utf8'), servername: 'localhost' });
  t.after(() => session.close());
  await once(session, 'connect');
  const stream = (withLength: boolean, stalls: boolean): Promise<PatternCheck> => new Promise((resolve, reject) => {
    const check = new PatternCheck();
    let nextStall = 4 * 1024 * 1024;
    const req = session.request({ ':path': `/stream?n=${BYTES / 2}${withLength ? '&cl=1' : ''}` });
    req.on('data', (c: Buffer) => {
      check.add(c);
      if (stalls && check.received >= nextStall) {
        nextStall += 4 * 1024 * 1024;
        req.pause();
        setTimeout(() => req.resume(), 30);
      }
    });
    req.on('end', () => resolve(check));
    req.on('error', reject);
  });
  const results = await Promise.all([stream(true, false), stream(false, true), stream(true, true), stream(false, false)]);
  for (const [i, r] of results.entries()) {
    assert.equal(r.firstWrong, -1, `stream ${i}: wrong byte at ${r.firstWrong}`);
    assert.equal(r.received, BYTES / 2, `stream ${i}`);
  }
});
