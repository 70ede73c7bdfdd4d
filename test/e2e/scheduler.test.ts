/**
 * @module -K: web2py's scheduler run and supervised by the server.
 *
 * The fixture's web2py.py imitates a scheduler process (see its header): it records its start,
 * its clean exit and its task's pid as files, which the tests await; it swallows SIGTERM while a
 * task runs, as web2py's does. Real web2py was checked by hand (see the README).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { loadConfig } from '../../src/config/load.js';
import { httpGet } from '../helpers/http-get.js';
import { assertOneLine, fixtures, runToExit, startServer, waitForLog } from '../helpers/server.js';
import { pollPause, waitUntil } from '../helpers/waits.js';

const temp = mkdtempSync(join(tmpdir(), 'w2n-scheduler-'));
after(() => rmSync(temp, { recursive: true, force: true }));

/** A copy of the web2py fixture with applications in the given scheduler modes, and a state folder. */
function tree(name: string, apps: Record<string, 'idle' | 'long-task' | 'crash' | 'no-heartbeat'>): { folder: string; state: string } {
  const folder = join(temp, name);
  cpSync(join(fixtures, 'web2py'), folder, { recursive: true });
  for (const [app, mode] of Object.entries(apps)) {
    mkdirSync(join(folder, 'applications', app, 'controllers'), { recursive: true });
    writeFileSync(join(folder, 'applications', app, 'scheduler_mode'), mode);
  }
  const state = join(temp, `${name}-state`);
  mkdirSync(state);
  return { folder, state };
}

/** Waits for files in the state folder matching `pattern` (the fixture writes them); returns the names. */
async function files(state: string, pattern: RegExp, count: number, timeoutMs = 15_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = readdirSync(state).filter((name) => pattern.test(name)).sort();
    if (found.length >= count) return found;
    if (Date.now() > deadline) throw new Error(`waited for ${count} × ${pattern} in ${readdirSync(state).join(', ')}`);
    await pollPause(50);
  }
}

const pidOf = (name: string): number => Number(name.split('.')[1]);

/** Running, not a zombie (a killed task waits for init to reap it, and kill(pid, 0) still finds it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

test('-K: repeated flags and web2py.py\'s comma list are one list; entries are checked', () => {
  const load = (argv: string[]): readonly string[] => loadConfig({ argv, env: {}, cwd: temp }).config.scheduler;
  assert.deepEqual(load(['-K', 'a', '-K', 'b:g1: :g2']), ['a', 'b:g1:g2']);
  assert.deepEqual(load(['-K', 'a,b:fast', '--scheduler', 'a']), ['a', 'b:fast']);
  assert.deepEqual(loadConfig({ argv: [], env: { W2N_SCHEDULER: 'x,y' }, cwd: temp }).config.scheduler, ['x', 'y']);
  assert.throws(() => load(['-K', 'a b']), /W2N_ERR_CONFIG_BAD_VALUE|application must be/);
  assert.throws(() => load(['-K', 'a:g h']), /group/);
  assert.deepEqual(load([]), []);
});

test('-K APP --scheduler-workers 2: both run, output in the log; one killed comes back; SIGHUP replaces them; stop ends them', async () => {
  const { folder, state } = tree('supervise', { jobs: 'idle' });
  const server = await startServer(['-f', folder, '-K', 'jobs', '--scheduler-workers', '2'], {
    env: { SCHEDULER_FIXTURE_DIR: state }, readyPattern: /^scheduler: 2 processes \(web2py\.py -K jobs\)$/m,
  });
  try {
    const first = await files(state, /^jobs\.\d+\.started$/, 2);
    await waitForLog(server, /scheduler\.output|scheduler output/, { times: 2 });
    assert.match(server.stderr(), /starting single-scheduler for \\?"jobs\\?"/);
    assert.match((await httpGet(server.port, '/metrics')).body.toString(), /^w2n_scheduler_processes 2$/m);

    // A scheduler that dies is started again.
    process.kill(pidOf(first[0]!), 'SIGKILL');
    const afterKill = await files(state, /^jobs\.\d+\.started$/, 3);
    await waitForLog(server, /scheduler\.died|scheduler process died/);
    const metrics = (await httpGet(server.port, '/metrics')).body.toString();
    assert.match(metrics, /^w2n_scheduler_restarts_total 1$/m);

    // SIGHUP: each replaced in turn; the old ones leave cleanly (SIGTERM while idle).
    server.process.kill('SIGHUP');
    await files(state, /^jobs\.\d+\.started$/, 5);
    const stoppedByReload = await files(state, /^jobs\.\d+\.stopped$/, 2);
    const running = afterKill.map(pidOf).filter((pid) => pid !== pidOf(first[0]!));
    assert.deepEqual(stoppedByReload.map(pidOf).sort(), running.sort());
  } finally {
    assert.equal(await server.stop(), 0);
  }
  // The server's stop stopped the last two as well.
  const started = (await files(state, /^jobs\.\d+\.started$/, 5)).map(pidOf);
  for (const pid of started) assert.equal(alive(pid), false, `scheduler ${pid} outlived the server`);
  assert.equal((await files(state, /^jobs\.\d+\.stopped$/, 4)).length, 4);
});

test('heartbeat age: each heartbeat the scheduler records reaches the status page and /metrics; its other debug records stay hidden', async () => {
  const { folder, state } = tree('heartbeat', { jobs: 'idle', stuck: 'no-heartbeat' });
  const server = await startServer(['-f', folder, '-K', 'jobs,stuck'], { env: { SCHEDULER_FIXTURE_DIR: state }, readyPattern: /^scheduler: 2 processes /m });
  try {
    type Row = { name: string; pid: number | null; heartbeatAgeSeconds: number | null; heartbeatStatus: string | null };
    const rows = async (): Promise<Row[]> => (JSON.parse((await httpGet(server.port, '/status.json')).body.toString()) as { schedulers: Row[] }).schedulers;
    let jobs: Row | undefined;
    await waitUntil('a heartbeat of jobs', async () => {
      jobs = (await rows()).find((row) => row.name === 'jobs');
      return jobs?.heartbeatAgeSeconds != null;
    });
    assert.ok(jobs!.heartbeatAgeSeconds! >= 0, `age ${jobs!.heartbeatAgeSeconds}`);
    assert.equal(jobs!.heartbeatStatus, 'ACTIVE');
    const stuck = (await rows()).find((row) => row.name === 'stuck')!;
    assert.notEqual(stuck.pid, null, 'alive');
    assert.equal(stuck.heartbeatAgeSeconds, null, 'alive but no heartbeat: none shown');
    const metrics = (await httpGet(server.port, '/metrics')).body.toString();
    assert.match(metrics, /^w2n_scheduler_heartbeat_age_seconds\{scheduler="jobs"\} [\d.e-]+$/m);
    assert.doesNotMatch(metrics, /scheduler="stuck"/);
    // web2py's own level (WARNING) still decides what it prints: its warning, not its info or debug records.
    await waitForLog(server, /a warning web2py shows/, { times: 2 });
    assert.doesNotMatch(server.stderr(), /recording heartbeat|looping|TICKER|freeing workers/);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('stop during a task that swallows SIGTERM: the scheduler and its task process are killed after --scheduler-stop-timeout', async () => {
  const { folder, state } = tree('longtask', { longjob: 'long-task' });
  const server = await startServer(['-f', folder, '-K', 'longjob', '--scheduler-stop-timeout', '0.5'], {
    env: { SCHEDULER_FIXTURE_DIR: state }, readyPattern: /^scheduler: 1 process /m,
  });
  const [task] = await files(state, /^longjob\.\d+\.task\.\d+$/, 1);
  const schedulerPid = pidOf(task!);
  const taskPid = Number(task!.split('.').at(-1));
  assert.ok(alive(taskPid));
  assert.equal(await server.stop(), 0);
  // The exit can come before the last lines of its stderr pipe are read.
  await waitForLog(server, /scheduler\.killed|did not leave after SIGTERM/);
  assert.equal(alive(schedulerPid), false, 'the scheduler is gone');
  assert.equal(alive(taskPid), false, 'its task process went with it');
  assert.deepEqual(readdirSync(state).filter((name) => name.endsWith('.stopped')), [], 'it never left by itself');
});

test('a scheduler that dies at start: retried after growing pauses, then given up with its last output; the server goes on', async () => {
  const { folder, state } = tree('crash', { brokenapp: 'crash' });
  const server = await startServer(['-f', folder, '-K', 'brokenapp'], { env: { SCHEDULER_FIXTURE_DIR: state }, readyPattern: /^scheduler: 1 process /m });
  try {
    await waitForLog(server, /scheduler\.gave_up|given up/, { timeoutMs: 30_000 });
    const log = server.stderr();
    assert.match(log, /scheduler\.restart_scheduled|waiting before the next/);
    const gaveUp = log.split('\n').find((line) => /scheduler\.gave_up|given up/.test(line)) ?? '';
    assert.match(gaveUp, /broken_dependency/, 'the give-up line says why');
    assert.equal((await httpGet(server.port, '/welcome/default/index')).status !== 502, true, 'the web server still serves');
    assert.match((await httpGet(server.port, '/metrics')).body.toString(), /^w2n_scheduler_processes 0$/m);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('-K with an application that does not exist: one line, exit 2, before anything listens', async () => {
  const { folder } = tree('missing', {});
  const result = await runToExit(['-f', folder, '-p', '0', '-K', 'welcome,nosuchapp']);
  assertOneLine(result, 'W2N_ERR_SCHEDULER_APP', /nosuchapp.*no application nosuchapp/);
  assert.doesNotMatch(result.stdout, /starting on/);
  const withApp = await runToExit(['-f', folder, '-p', '0', '--app', 'x:y', '-K', 'welcome']);
  assertOneLine(withApp, 'W2N_ERR_SCHEDULER_APP', /needs a web2py folder/);
});
