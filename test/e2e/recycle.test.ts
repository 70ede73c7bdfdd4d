/**
 * Recycling and reloads never lower capacity nor fail a request: the fresh worker starts first,
 * the old one finishes what it has and leaves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { fixtures, startServer, waitForLog } from '../helpers/server.js';
import { runLoad } from '../helpers/load.js';
import { Tally } from '../helpers/waits.js';
import { makeCertificate } from '../helpers/tls.js';

const apps = join(fixtures, 'apps');


test('--max-requests: workers are replaced, no request fails, under concurrent load', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps, '--max-requests', '25', '--max-requests-jitter', '5']);
  try {
    const deadline = Date.now() + 20_000;
    const recycled = (): number => (server.stderr().match(/worker\.recycled .*reason=max-requests/g) ?? []).length;
    const result = await runLoad(server.port, '/crash/alive', 10, () => recycled() >= 3 || Date.now() > deadline);
    assert.ok(recycled() >= 3, 'three workers recycled during the load');
    assert.deepEqual([...result.statuses.keys()], [200]);
    assert.equal(result.failures, 0);
    assert.ok(result.bodies.size >= 4, `requests were served by ${result.bodies.size} worker pids (2 slots, recycled)`);
    assert.match(server.stderr(), /worker\.recycling .*reason=max-requests/);
    assert.doesNotMatch(server.stderr(), /worker\.died|request\.worker_died/);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('SIGHUP under steady load: the front and every worker replaced, zero failed requests, zero refused connections', async () => {
  const server = await startServer(['--app', 'suite:app', '-f', apps]);
  try {
    const before = new Set((await runLoad(server.port, '/crash/alive', 4, () => false, 40)).bodies);
    let isDone = false;
    const answered = new Tally();
    const load = runLoad(server.port, '/crash/alive', 10, () => isDone, undefined, answered);
    for (let round = 1; round <= 2; round += 1) {
      await answered.more(50); // the load is under way (again) before each reload
      server.process.kill('SIGHUP');
      await waitForLog(server, /reload\.finished/, { times: round });
    }
    await answered.more(50); // and goes on once the second reload has finished
    isDone = true;
    const result = await load;
    assert.deepEqual([...result.statuses.keys()], [200]);
    assert.equal(result.failures, 0);
    assert.match(server.stderr(), /reload\.finished .*replaced=1 failed=0/);
    const after = (await runLoad(server.port, '/crash/alive', 4, () => false, 40)).bodies;
    for (const pid of after) assert.ok(!before.has(pid), `worker ${pid} was replaced`);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

for (const [flag, value, reason] of [['--max-rss', '1', 'max-rss'], ['--max-lifetime', '1.5', 'max-lifetime']] as const) {
  test(`${flag} recycles workers without failing requests`, async () => {
    const server = await startServer(['--app', 'suite:app', '-f', apps, '--processes', '1', flag, value]);
    try {
      let isDone = false;
      const load = runLoad(server.port, '/hello', 4, () => isDone);
      await waitForLog(server, new RegExp(`worker\\.recycled .*reason=${reason}`), { times: 2 });
      isDone = true;
      const result = await load;
      assert.deepEqual([...result.statuses.keys()], [200]);
      assert.equal(result.failures, 0);
      if (reason === 'max-rss') assert.match(server.stderr(), /worker\.over_memory/);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
}

function certificateSeen(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fingerprint);
    });
    socket.on('error', reject);
  });
}

test('SIGHUP re-reads the TLS certificate; a broken new pair keeps the old one', async () => {
  const first = makeCertificate();
  const second = makeCertificate();
  const live = makeCertificate(); // the paths the server reads; contents swapped below
  copyFileSync(first.cert, live.cert);
  copyFileSync(first.key, live.key);
  const server = await startServer(['--app', 'suite:app', '-f', apps, '-c', live.cert, '-k', live.key], { scheme: 'https' });
  try {
    const caFirst = readFileSync(first.cert, 'utf8');
    const caSecond = readFileSync(second.cert, 'utf8');
    const seenFirst = await certificateSeen(server.port, caFirst);
    copyFileSync(second.cert, live.cert);
    copyFileSync(second.key, live.key);
    server.process.kill('SIGHUP');
    await waitForLog(server, /reload\.finished .*tls=reloaded/);
    const seenSecond = await certificateSeen(server.port, caSecond);
    assert.notEqual(seenSecond, seenFirst);
    writeFileSync(live.key, 'not a key\n');
    server.process.kill('SIGHUP');
    await waitForLog(server, /tls\.reload_failed/);
    await waitForLog(server, /reload\.finished .*tls=kept/);
    assert.equal(await certificateSeen(server.port, caSecond), seenSecond, 'the old pair still serves');
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('--reload: changing a Python file reloads the workers, naming the file', async () => {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const folder = mkdtempSync(join(tmpdir(), 'w2n-reload-'));
  const module = join(folder, 'versioned.py');
  const write = (version: number): void => writeFileSync(module,
    `def app(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'version ${version}']\n`);
  write(1);
  const server = await startServer(['--app', 'versioned:app', '-f', folder, '--reload']);
  try {
    assert.match(server.stdout(), /^reload: on/m);
    assert.equal(await (await fetch(server.url('/'))).text(), 'version 1');
    write(2);
    await waitForLog(server, /reload\.finished/);
    assert.match(server.stderr(), /reload\.file_changed .*versioned\.py/);
    assert.equal(await (await fetch(server.url('/'))).text(), 'version 2');
  } finally {
    assert.equal(await server.stop(), 0);
  }
});
