/**
 * Issue 11: every byte from a worker is untrusted. An application that writes garbage on the
 * channel, floods stdout, closes fd 3, forks, or is abandoned by its client must cost at most
 * its own worker and its own requests: never the front, never the neighbours' requests, never
 * the `-w` bound. The misbehaving app is test/fixtures/apps/hostile.py.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtures, startServer, waitForLog, type StartedServer } from '../helpers/server.js';
import { httpGet } from '../helpers/http-get.js';
import { pollPause } from '../helpers/waits.js';

const apps = join(fixtures, 'apps');
const hostile = (args: string[]): Promise<StartedServer> =>
  startServer(['--app', 'hostile:app', '-f', apps, ...args], { env: { PYTHONPATH: apps } });

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pollPause(50);
  }
}

/** A process that is gone, or a zombie waiting for its reaper. */
function isGone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
}

async function metric(server: StartedServer, name: string): Promise<number> {
  const text = (await httpGet(server.port, '/metrics')).body.toString('latin1');
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

/** A client that sends a request and then reads nothing (until destroyed). */
async function rawRequest(server: StartedServer, path: string): Promise<Socket> {
  const socket = connect(server.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  return socket;
}

const pidOf = async (server: StartedServer): Promise<number> => Number((await (await fetch(server.url('/'))).text()).split(' ')[1]);

test('a worker writing malformed frames gets its request a 502 and is replaced; the front serves on', async () => {
  // Two workers: the garbage alternates between them, so neither's restart backoff grows long.
  const server = await hostile(['--processes', '2', '--log-format', 'json']);
  try {
    // Each of the first four threw in the front's socket handler (the front died); the ERROR ones
    // were taken for an application exception (500) and the worker kept.
    // A body before the head left the client without an answer; a second head was written over
    // the first.
    const kinds = ['short-response', 'short-credit', 'short-sendfile', 'control-error-null', 'error-null', 'error-json',
      'unknown-type', 'huge-length', 'body-first', 'second-head'];
    for (const [index, kind] of kinds.entries()) {
      const answer = await fetch(server.url(`/garbage?kind=${kind}`), { signal: AbortSignal.timeout(10_000) });
      assert.equal(answer.status, 502, kind);
      await waitForLog(server, /"event":"worker\.protocol_error"/, { times: index + 1 });
      await waitForLog(server, /"event":"worker\.ready"/, { times: 2 + index + 1 });
      assert.equal((await fetch(server.url('/'))).status, 200, `${kind}: served after it`);
    }
    const codes = server.stderr().split('\n').filter((line) => line.includes('"worker.protocol_error"'))
      .map((line) => (JSON.parse(line) as { code: string }).code);
    assert.deepEqual(codes, [...Array(6).fill('W2N_ERR_PROTO_BAD_PAYLOAD'), 'W2N_ERR_PROTO_UNKNOWN_TYPE', 'W2N_ERR_PROTO_TOO_LARGE',
      'W2N_ERR_PROTO_UNEXPECTED', 'W2N_ERR_PROTO_UNEXPECTED']);
    assert.equal(server.process.exitCode, null, 'the front is still running');
  } finally {
    await server.stop();
  }
});

test('a worker that ignores flow control is cut off at the response window, not buffered by the front', async () => {
  const server = await hostile(['--processes', '1', '--log-format', 'json']);
  try {
    // A client that reads nothing: whatever the front took beyond the window would stay in its memory.
    const client = await rawRequest(server, '/garbage?kind=flood');
    await waitForLog(server, /"event":"worker\.protocol_error"/);
    client.destroy();
    const line = server.stderr().split('\n').find((l) => l.includes('"worker.protocol_error"'))!;
    assert.match(line, /W2N_ERR_PROTO_UNEXPECTED.*past the response window/);
  } finally {
    await server.stop();
  }
});

test('worker output: lines cut at 16 KiB, control characters escaped (no log injection)', async () => {
  const server = await hostile(['--processes', '1']);
  try {
    const answer = await fetch(server.url('/print?mb=64'));
    assert.equal(await answer.text(), 'printed');
    assert.equal((await fetch(server.url('/raise?kind=ansi'))).status, 500);
    await waitForLog(server, /FORGED\\x00 line/);
    await waitForLog(server, /request\.failed.*FORGED-ERROR/);
    const log = server.stderr();
    const outputLines = log.split('\n').filter((line) => line.includes('worker.output'));
    const longest = Math.max(...outputLines.map((line) => line.length));
    assert.ok(longest < 17 * 1024, `a worker line is at most 16 KiB (longest: ${longest})`);
    assert.match(log, /line cut at 16384 bytes/);
    assert.ok(log.includes('\\x1b[31mFORGED\\x00 line'), 'the escapes are written escaped');
    assert.ok(log.includes('\\x1b[31mFORGED-ERROR\\x00\\x0d'), 'in an exception\'s message too');
    assert.ok(!log.includes('\x1b') && !log.includes('\x00'), 'no raw escape or NUL reaches the log');
  } finally {
    await server.stop();
  }
});

test('an app that closes the channel (fd 3): its request gets 502 at once and its worker is replaced', async () => {
  const server = await hostile(['--processes', '1']);
  try {
    const before = await pidOf(server);
    const answer = await fetch(server.url('/closefd'), { signal: AbortSignal.timeout(10_000) });
    assert.equal(answer.status, 502);
    const after = await pidOf(server);
    assert.notEqual(after, before);
  } finally {
    await server.stop();
  }
});

test('processes an app forks die with their worker: on a reload, and when the server stops', async () => {
  const server = await hostile(['--processes', '1', '--log-format', 'json']);
  const forked = async (): Promise<number> => {
    const pid = Number(await (await fetch(server.url('/fork'))).text());
    assert.ok(pid > 0 && !isGone(pid));
    return pid;
  };
  try {
    const first = await forked();
    server.process.kill('SIGHUP');
    await waitForLog(server, /"event":"reload\.finished"/);
    await until('the forked child of the recycled worker to die', () => (isGone(first) ? true : undefined));
    const second = await forked();
    await server.stop();
    await until('the forked child to die with the server', () => (isGone(second) ? true : undefined));
  } finally {
    await server.stop();
  }
});

test('sync worker blocking every signal in C past --timeout-grace: 504, stacks asked, worker killed and replaced', async () => {
  const server = await hostile(['--processes', '1', '--worker-class', 'sync', '--timeout', '0.5', '--timeout-grace', '1']);
  try {
    const before = await pidOf(server);
    const stuck = await fetch(server.url('/block?s=600'));
    assert.equal(stuck.status, 504);
    await waitForLog(server, /worker\.hung/);
    const after = await until('a fresh worker', async () => {
      const pid = await pidOf(server).catch(() => 0);
      return pid !== 0 && pid !== before ? pid : undefined;
    });
    assert.notEqual(after, before);
  } finally {
    await server.stop();
  }
});

test('-w 1: an abandoned request keeps its slot until it ends; an abandoned queued one never runs', async () => {
  const server = await hostile(['--processes', '1', '--worker-class', 'thread', '--threads', '4', '-w', '1']);
  try {
    const running = await rawRequest(server, '/hold?s=1.5&tag=a');
    await until('a in the application', async () => ((await metric(server, 'w2n_requests_in_app')) === 1 ? true : undefined));
    const queued = await rawRequest(server, '/hold?s=0&tag=c');
    await until('c queued', async () => ((await metric(server, 'w2n_queue_length')) === 1 ? true : undefined));
    queued.destroy();
    await until('c off the queue', async () => ((await metric(server, 'w2n_queue_length')) === 0 ? true : undefined));
    running.destroy();
    await once(running, 'close');
    assert.equal(await metric(server, 'w2n_requests_in_app'), 1, 'the abandoned request still counts while it runs');
    const next = await (await fetch(server.url('/hold?s=0&tag=b'))).json() as { max: number; ran: string[] };
    assert.equal(next.max, 1, 'the next request never ran beside the abandoned one');
    assert.deepEqual(next.ran, ['a', 'b'], 'the abandoned queued request never reached the application');
    assert.equal(await metric(server, 'w2n_requests_in_app'), 0);
  } finally {
    await server.stop();
  }
});

test('a client that never reads a 100 MB answer: worker and front stay bounded (response window)', async () => {
  const server = await hostile(['--processes', '1', '--threads', '2']);
  try {
    const workerPid = await pidOf(server);
    const frontPid = server.process.pid!;
    const workerBefore = rssBytes(workerPid);
    const frontBefore = rssBytes(frontPid);
    const client = await rawRequest(server, '/big?mb=100');
    await once(client, 'data');
    client.pause();
    // The worker stops yielding once the window, the socket buffers and the client's are full.
    let last = -1;
    let steady = 0;
    const yielded = await until('the app to stop yielding', async () => {
      const now = Number(await (await fetch(server.url('/progress'))).text());
      steady = now === last ? steady + 1 : 0;
      last = now;
      return steady >= 10 ? now : undefined;
    }, 60_000);
    const mib = 1024 * 1024;
    assert.ok(yielded < 40 * mib, `the app yielded ${yielded} bytes of 100 MiB to a client that reads nothing`);
    assert.ok(rssBytes(workerPid) - workerBefore < 40 * mib, `worker RSS grew ${(rssBytes(workerPid) - workerBefore) / mib} MiB`);
    assert.ok(rssBytes(frontPid) - frontBefore < 60 * mib, `front RSS grew ${(rssBytes(frontPid) - frontBefore) / mib} MiB`);
    client.destroy();
  } finally {
    await server.stop();
  }
});
