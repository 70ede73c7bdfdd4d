/**
 * The supervised front (issue 11): the primary holds the sockets and keeps the fronts alive.
 * Counts are asserted, never timings; the recovery time after kill -9 is printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { childPids, fixtures, frontPid, frontPids, runToExit, startServer, waitForLog, waitForStarted, workerPids, type StartedServer } from '../helpers/server.js';
import { runLoad } from '../helpers/load.js';
import { deliberateWait, pollPause, Tally } from '../helpers/waits.js';

const apps = join(fixtures, 'apps');

function parentOf(pid: number): number {
  // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after the last ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once the primary has a front other than `old` that answers (its first request is served). */
async function untilNewFront(server: StartedServer, old: number): Promise<number> {
  for (;;) {
    const fronts = frontPids(server).filter((pid) => pid !== old);
    if (fronts.length > 0) return fronts[0]!;
    await pollPause(10);
  }
}

function get(port: number, path: string, agent?: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('kill -9 of the front under load: no connection refused, only its in-flight requests fail, a new front serves', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps]);
  try {
    let isDone = false;
    const answered = new Tally();
    const load = runLoad(server.port, '/slow?s=0.01', 10, () => isDone, undefined, answered);
    await answered.reached(30); // under way: every connection open and busy
    const old = frontPid(server);
    const killedAt = performance.now();
    process.kill(old, 'SIGKILL');
    // A request sent at once is not refused: it waits in the kernel's queue for the next front.
    const first = await get(server.port, '/hello');
    const recoveryMs = performance.now() - killedAt;
    assert.equal(first.status, 200);
    await answered.more(30); // the load goes on, served by the new front
    isDone = true;
    const result = await load;
    const statuses = Object.fromEntries(result.statuses);
    console.log(`kill -9 of the front: first answer ${recoveryMs.toFixed(0)} ms after the kill; load ${JSON.stringify(statuses)}, cut ${result.failures}`);
    assert.deepEqual(Object.keys(statuses), ['200']);
    // Only the connections open on the dead front (10 load loops) can have been cut.
    assert.ok(result.failures <= 10, `${result.failures} requests without an answer`);
    assert.notEqual(frontPid(server), old);
    await waitForLog(server, /front\.died .*signal=SIGKILL/);
    const metrics = await get(server.port, '/metrics');
    assert.match(metrics.body, /^w2n_front_restarts_total 1$/m);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('the workers of a front killed with -9 are killed too (the primary kills their process groups)', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1']);
  try {
    const [worker] = workerPids(server);
    const front = frontPid(server);
    process.kill(front, 'SIGKILL');
    await untilNewFront(server, front);
    for (let i = 0; i < 200 && isAlive(worker!); i += 1) await pollPause(10);
    assert.equal(isAlive(worker!), false, 'the dead front\'s worker was killed');
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('--fronts 2: two front processes, each with its share of the workers; /metrics adds them up; requests reach both', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '4', '--fronts', '2']);
  try {
    const fronts = frontPids(server);
    assert.equal(fronts.length, 2);
    assert.deepEqual(fronts.map((pid) => childPids(pid).length), [2, 2]);
    assert.match(server.stdout(), /^workers: 4 processes × 8 ready in 2 front processes /m);
    const metrics = (await get(server.port, '/metrics')).body;
    assert.match(metrics, /^w2n_workers 4$/m);
    assert.match(metrics, /^w2n_fronts 2$/m);
    // 40 connections at once: each front accepts some (the spread is printed; both must serve).
    // The kernel wakes whichever front waits in accept(); on a busy machine one front can take a
    // whole round, so up to five rounds are made before concluding that one never serves.
    const byFront = new Map<number, number>();
    for (let round = 0; round < 5 && byFront.size < 2; round += 1) {
      const agents = Array.from({ length: 40 }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
      const answers = await Promise.all(agents.map((agent) => get(server.port, '/crash/alive', agent)));
      for (const answer of answers) {
        const front = parentOf(Number(answer.body.replace('alive ', '')));
        byFront.set(front, (byFront.get(front) ?? 0) + 1);
      }
      for (const agent of agents) agent.destroy();
    }
    console.log(`--fronts 2, 40 connections: ${JSON.stringify(Object.fromEntries(byFront))} per front`);
    assert.equal(byFront.size, 2, 'both fronts served');
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('SIGHUP ten times in one second: every request answered, one front left, the newest code', async () => {
  // The app takes 2 s to import, so each round of replacement outlasts the second of signals
  // whatever the machine's speed: the signals after the first all come during round 1 and make
  // exactly one more round. (With a quick app a round can end within the second, and how many
  // rounds there are then depends on how fast a front starts.)
  const server = await startServer(['--app', 'slow_import:app', '-f', apps, '--processes', '1'], { env: { W2N_FIXTURE_IMPORT_DELAY: '2' } });
  try {
    const old = frontPid(server);
    let isDone = false;
    const load = runLoad(server.port, '/', 4, () => isDone);
    for (let i = 0; i < 10; i += 1) {
      server.process.kill('SIGHUP');
      await deliberateWait(100, 'the scenario: ten SIGHUPs spread over one second, most of them during a reload');
    }
    await waitForLog(server, /reload\.finished/, { timeoutMs: 60_000 });
    isDone = true;
    const result = await load;
    assert.deepEqual([...result.statuses.keys()], [200]);
    assert.equal(result.failures, 0);
    // The signals during round 1 ask for one more round between them: two rounds, not ten.
    const rounds = server.stderr().split('\n').filter((line) => /front\.started .*reason=reload/.test(line)).length;
    assert.equal(rounds, 2, `${rounds} rounds of replacement`);
    for (let i = 0; i < 500 && frontPids(server).length !== 1; i += 1) await pollPause();
    assert.equal(frontPids(server).length, 1);
    assert.notEqual(frontPid(server), old);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('SIGTERM twice: the second stops at once (exit 130), fronts and workers gone', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1']);
  const fronts = frontPids(server);
  const workers = workerPids(server);
  const slow = get(server.port, '/slow?s=5&signal=slow').catch(() => null); // keeps the graceful stop waiting
  await waitForStarted(server, 'slow');
  server.process.kill('SIGTERM');
  await waitForLog(server, /server\.draining/);
  server.process.kill('SIGTERM');
  const { code } = await server.exited;
  assert.equal(code, 130);
  await slow;
  for (const pid of [...fronts, ...workers]) {
    for (let i = 0; i < 200 && isAlive(pid); i += 1) await pollPause(10);
    assert.equal(isAlive(pid), false, `process ${pid} is gone`);
  }
});

test('a front that keeps dying before it is ready: the primary gives up with one line and exit 1', async () => {
  // Each front's workers take 1 s to import, so a new front is not ready for a second: kill it then.
  const server = await startServer(['--app', 'slow_import:app', '-f', apps, '--processes', '1'], { env: { W2N_FIXTURE_IMPORT_DELAY: '1' } });
  let killed = frontPid(server);
  process.kill(killed, 'SIGKILL');
  const exited = server.exited;
  let isExited = false;
  void exited.then(() => { isExited = true; });
  while (!isExited) {
    const fresh = frontPids(server).filter((pid) => pid !== killed);
    if (fresh.length > 0) {
      killed = fresh[0]!;
      try { process.kill(killed, 'SIGKILL'); } catch { /* gone already */ }
    }
    await pollPause();
  }
  const { code } = await exited;
  assert.equal(code, 1);
  assert.match(server.stderr(), /^web2py-on-node: error: front process 1 keeps dying before it is ready \(5 starts in a row; last: SIGKILL\); giving up \[W2N_ERR_FRONT_CRASH_LOOP\]$/m);
});

test('--fronts 0 is refused before anything listens', async () => {
  const result = await runToExit(['-p', '0', '--fronts', '0']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /--fronts/);
});

test('connections made right after `starting on` are all answered: the line comes once a front listens', async () => {
  // The primary binds first and a front listens later; printed at bind time, the line let
  // clients in to a socket that refused them (ECONNREFUSED) until the front was up.
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', '--accept-batch', '8'], { readyPattern: /^starting on /m });
  try {
    const statuses = await Promise.all(Array.from({ length: 16 }, () => get(server.port, '/hello').then((answer) => answer.status)));
    assert.deepEqual(statuses, Array<number>(16).fill(200));
  } finally {
    assert.equal(await server.stop(), 0);
  }
});
