/**
 * @module bench/run
 * `npm run bench`: start each server in turn, measure each scenario's loads on it, stop it,
 * then print tables (stdout) and write every figure plus a machine description as JSON.
 *
 *   npm run bench                                     # hello + idle, default servers
 *   npm run bench -- --only hello --servers gevent,uwsgi,node --duration 5
 *   npm run bench -- --only idle --connections 2000
 *   npm run bench -- --list
 *
 * Progress goes to stderr; tables alone to stdout, so `> table.md` keeps just those.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { runIdle } from './idle.js';
import { ListenQueueSampler } from './listenq.js';
import { BUSY_WARNING, cpuBusyFraction, describeMachine } from './machine.js';
import { counterDelta, tcpCounters } from './netstat.js';
import { NewcomerProbe } from './newcomer.js';
import { freePort, isClosing, killHelpers, sessionMembers, socketInodes, startServer, stopServer, waitDrained, waitReady, withNofile, type Started } from './proc.js';
import { scenarioReport } from './report.js';
import type { BenchOutput, LoadResult, ServerRun } from './results.js';
import { SCENARIOS, loadLabel, withConnections, type Scenario } from './scenarios.js';
import { APPS_DIR, REPO_ROOT, SERVERS, serverByName, type Detected, type ServerDef } from './servers.js';
import { runWrk, warmUp } from './wrk.js';

const HELP = `Usage: npm run bench -- [options]

  --only LIST         scenarios, comma separated (${SCENARIOS.map((s) => s.name).join(', ')}); default: all
  --servers LIST      servers, comma separated (${SERVERS.map((s) => s.name).join(', ')});
                      default: each scenario's own list
  --duration S        seconds per wrk load (10)
  --warmup S          warm-up seconds per server (2)
  --connections LIST  connection counts replacing each scenario's loads (e.g. 50,1000; idle: 5000)
  --baseline NAME     server the ratios refer to (ours)
  --out FILE          JSON output (.bench-out/bench-<date>.json)
  --list              scenarios and servers, then exit
  --help
`;

interface Options {
  scenarios: Scenario[];
  servers: string[] | null;
  durationS: number;
  warmupS: number;
  baseline: string;
  out: string;
  list: boolean;
}

function fail(msg: string): never {
  process.stderr.write(`bench: ${msg}\n\n${HELP}`);
  process.exit(2);
}

const stamp = (d = new Date()): string => {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}-${p(d.getMinutes())}-${p(d.getSeconds())}`;
};

function positiveInt(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) fail(`--${name} wants a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

const list = (v: string | undefined): string[] | null =>
  v === undefined ? null : v.split(',').map((x) => x.trim()).filter(Boolean);

function parseOptions(argv: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        only: { type: 'string' },
        servers: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string' },
        baseline: { type: 'string' },
        out: { type: 'string' },
        list: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }));
  } catch (e) {
    fail((e as Error).message);
  }
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const only = list(values.only);
  for (const name of only ?? []) if (!SCENARIOS.some((s) => s.name === name)) fail(`unknown scenario ${name}`);
  const servers = list(values.servers);
  for (const name of servers ?? []) if (!serverByName(name)) fail(`unknown server ${name}`);
  const conns = (list(values.connections) ?? []).map((c) => positiveInt(c, 'connections', 0));
  const scenarios = SCENARIOS.filter((s) => !only || only.includes(s.name)).map((s) => withConnections(s, conns));
  return {
    scenarios,
    servers,
    durationS: positiveInt(values.duration, 'duration', 10),
    warmupS: positiveInt(values.warmup, 'warmup', 2),
    baseline: values.baseline ?? 'ours',
    out: values.out ?? join(REPO_ROOT, '.bench-out', `bench-${stamp()}.json`),
    list: values.list ?? false,
  };
}

const progress = (msg: string): void => void process.stderr.write(`${msg}\n`);

/** The server being measured: stopped on Ctrl-C so nothing outlives the bench. */
let current: Started | null = null;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    progress(`bench: ${sig}, stopping the server under test`);
    killHelpers();
    const s = current;
    void (s ? stopServer(s) : Promise.resolve()).finally(() => process.exit(130));
  });
}

function tail(file: string, chars = 800): string {
  try {
    return readFileSync(file, 'utf8').slice(-chars);
  } catch {
    return '';
  }
}

function summary(r: LoadResult): string {
  if (r.error) return `error: ${r.error}`;
  if (r.idle) {
    const i = r.idle;
    return `held ${i.held} (after ${i.holdS} s: ${i.heldLater}), front RSS ${i.frontRssBeforeKb} -> ${i.frontRssAfterKb} kB`;
  }
  const w = r.wrk!;
  const n = r.newcomer;
  return (
    `${Math.round(w.rps)} req/s, p50 ${w.p50Ms.toFixed(2)} ms, p99 ${w.p99Ms.toFixed(2)} ms, ` +
    `errors ${JSON.stringify(w.errors)}, newcomer median ${n?.medianMs?.toFixed(1) ?? '-'} ms, unanswered ${n?.unanswered ?? '-'}` +
    (r.tcp?.ListenOverflows ? `, listen overflows ${r.tcp.ListenOverflows}` : '') +
    (r.listenQueue?.maxQueued ? `, accept queue max ${r.listenQueue.maxQueued} (non-empty ${r.listenQueue.nonEmptyMs} ms)` : '')
  );
}

/** One server, one scenario: start, wait, warm up, each load in order, stop. */
async function benchServer(def: ServerDef, version: string, s: Scenario, o: Options, logDir: string): Promise<ServerRun> {
  const port = await freePort();
  const fields = { port, apps: APPS_DIR };
  const cmd = def.command(fields);
  const cwd = def.cwd(fields);
  const logFile = join(logDir, `${s.name}-${def.name}.log`);
  const run: ServerRun = { scenario: s.name, server: def.name, about: def.about, status: 'ok', version, cmd, cwd, port, logFile, loads: [] };
  const env = { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...def.env };
  let started: Started | null = null;
  run.machineBusyBefore = await cpuBusyFraction();
  if ((run.machineBusyBefore ?? 0) > BUSY_WARNING)
    progress(`  warning: the machine is ${Math.round(run.machineBusyBefore! * 100)}% busy before ${def.name} starts`);
  try {
    // Servers need the raised fd limit too: 1000 wrk connections, 5000 idle ones.
    started = startServer(withNofile(cmd), cwd, env, logFile);
    current = started;
    await waitReady(started, port, def.readyPath);
    const url = `http://127.0.0.1:${port}${s.path}`;
    if (s.loads.some((l) => l.kind === 'wrk')) {
      const maxConns = Math.max(...s.loads.map((l) => l.conns));
      await warmUp(url, Math.min(maxConns, 10), o.warmupS);
    }
    // What the server holds at rest (listening sockets, worker channels): the drain target.
    const baseline = socketInodes(sessionMembers(started.pid)).size;
    for (const load of s.loads) {
      if (isClosing()) break;
      await waitDrained(started.pid, baseline); // the previous load's connections are gone
      const r: LoadResult = { load: loadLabel(load), kind: load.kind, conns: load.conns, serverAlive: true };
      progress(`${s.name} ${def.name} ${r.load} ...`);
      const tcpBefore = tcpCounters();
      try {
        if (load.kind === 'wrk') {
          r.durationS = o.durationS;
          const probe = new NewcomerProbe(port, s.path, o.durationS * 1000);
          const queue = new ListenQueueSampler(port);
          try {
            r.wrk = await runWrk(url, load.conns, o.durationS, load.timeoutS);
          } finally {
            r.listenQueue = queue.finish();
            r.newcomer = await probe.finish();
          }
        } else {
          r.idle = await runIdle(load, port, s.path, started.pid);
        }
      } catch (e) {
        r.error = (e as Error).message;
      }
      r.tcp = counterDelta(tcpBefore, tcpCounters());
      r.serverAlive = started.exited === null;
      run.loads.push(r);
      progress(`    ${summary(r)}`);
      if (!r.serverAlive) break;
    }
  } catch (e) {
    run.status = 'failed';
    run.reason = (e as Error).message;
    run.logTail = tail(logFile);
    progress(`${s.name} ${def.name} FAILED: ${run.reason}`);
  } finally {
    if (started) {
      run.stop = await stopServer(started);
      current = null;
      if (run.stop.unreaped.length) progress(`    WARNING: could not reap PIDs ${run.stop.unreaped.join(', ')}`);
    }
  }
  return run;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (o.list) {
    for (const s of SCENARIOS)
      process.stdout.write(`${s.name}: ${s.about}, GET ${s.path}; loads ${s.loads.map(loadLabel).join(', ')}; servers ${s.defaultServers.join(',')}\n`);
    for (const d of SERVERS) process.stdout.write(`  ${d.name.padEnd(16)} ${d.about}\n    ${d.command({ port: 0, apps: APPS_DIR }).join(' ')}\n`);
    return;
  }
  const logDir = join(REPO_ROOT, '.bench-out', `logs-${stamp()}`);
  mkdirSync(logDir, { recursive: true });
  const wanted = [...new Set(o.scenarios.flatMap((s) => o.servers ?? s.defaultServers))];
  const [machine, detected] = await Promise.all([
    describeMachine(),
    Promise.all(wanted.map(async (n) => [n, await serverByName(n)!.detect()] as const)),
  ]);
  const found = new Map<string, Detected>(detected);
  const output: BenchOutput = {
    meta: { started: new Date().toISOString(), argv: process.argv.slice(2), durationS: o.durationS, warmupS: o.warmupS, baseline: o.baseline, logDir },
    machine,
    versions: Object.fromEntries(detected.map(([n, d]) => [n, d.ok ? d.version : `not installed: ${d.why}`])),
    runs: [],
  };
  mkdirSync(join(o.out, '..'), { recursive: true });
  const save = (): void => writeFileSync(o.out, `${JSON.stringify(output, null, 1)}\n`);
  progress(`bench: ${machine.cpuModel}, ${machine.cores} cores; logs in ${logDir}`);
  for (const s of o.scenarios) {
    for (const name of o.servers ?? s.defaultServers) {
      const def = serverByName(name)!;
      const d = found.get(name);
      if (!d?.ok) {
        output.runs.push({ scenario: s.name, server: name, about: def.about, status: 'skipped', reason: d ? d.why : 'not detected', loads: [] });
        progress(`${s.name} ${name}: skipped (${d && !d.ok ? d.why : '?'})`);
        continue;
      }
      output.runs.push(await benchServer(def, d.version, s, o, logDir));
      save(); // after each server: a partial run still counts
    }
  }
  output.meta.finished = new Date().toISOString();
  save();
  for (const s of o.scenarios) process.stdout.write(`${scenarioReport(s, output.runs.filter((r) => r.scenario === s.name), o.baseline)}\n`);
  const rel = relative(process.cwd(), o.out);
  process.stdout.write(`JSON: ${rel && !rel.startsWith('..') ? rel : o.out}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
