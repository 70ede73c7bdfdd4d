/**
 * @module bench/run
 * `npm run bench`: start each server in turn, measure each scenario's loads on it, stop it
 * (in rounds: every server afresh in each, the order alternating; bench/rounds.ts), then print
 * tables of the median rounds (stdout) and write every round's figures plus a machine
 * description as JSON.
 *
 *   npm run bench                                     # hello + idle, default servers
 *   npm run bench -- --only hello --servers gevent,uwsgi,node --duration 5
 *   npm run bench -- --only idle --connections 2000
 *   npm run bench -- --list
 *
 * Progress goes to stderr; tables alone to stdout, so `> table.md` keeps just those.
 */
import { availableParallelism, tmpdir } from 'node:os';
import { chmodSync, cpSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { runAb } from './ab.js';
import { ConnSpreadSampler } from './conns.js';
import { runCeiling } from './ceiling.js';
import { CpuMeter, type CpuFigures } from './cpu.js';
import { clearAppCpu } from './app-cpu.js';
import { makeBulkFile, perConnBytes, runBulk, warmUpBulk } from './bulk.js';
import { H2LOAD, runH2load } from './h2load.js';
import { runIdle } from './idle.js';
import { ListenQueueSampler } from './listenq.js';
import { BUSY_WARNING, cpuBusyFraction, describeMachine } from './machine.js';
import { counterDelta, tcpCounters } from './netstat.js';
import { NewcomerProbe } from './newcomer.js';
import { StatusPoller, statusPollCpu } from './status-poller.js';
import { connectionHolder, freePort, isClosing, killHelpers, serverProcesses, socketInodes, startServer, stopServer, waitDrained, waitReady, withNofile, type Started } from './proc.js';
import { runRate } from './rate.js';
import { scenarioReport, summaryReport } from './report.js';
import { checkReadmeMarkers, publish } from './publish.js';
import { writeChart } from './chart.js';
import type { BenchOutput, LoadResult, ServerRun } from './results.js';
import { roundOrder, serverRunsOf } from './rounds.js';
import { BULK_DEFAULT_BYTES, SCENARIOS, loadLabel, warmupSeconds, withConnections, type BulkLoad, type Scenario } from './scenarios.js';
import { APPS_DIR, REPO_ROOT, SERVERS, serverByName, type Detected, type Fields, type ServerDef } from './servers.js';
import { runWrk, warmUp } from './wrk.js';

const HELP = `Usage: npm run bench -- [options]

  --only LIST         scenarios, comma separated (${SCENARIOS.map((s) => s.name).join(', ')});
                      default: all but ${SCENARIOS.filter((s) => s.optIn).map((s) => s.name).join(', ')} (run only when named)
  --servers LIST      servers, comma separated (${SERVERS.map((s) => s.name).join(', ')});
                      default: each scenario's own list
  --duration S        seconds per load (8, sleep 10; a full default run then takes about 28 minutes)
  --rounds N          rounds of every scenario (default: the scenario's own, 3 for hello, web2py,
                      static, h2-hello, h2-static and sleep, else 1): each round starts each server
                      fresh, the order alternates, the tables show the median round and min-max
  --warmup S          warm-up seconds per server (2)
  --connections LIST  connection counts replacing each scenario's loads (e.g. 50,1000; idle: 5000;
                      bulk: every transfer at each count)
  --bulk-size SIZE    bytes per bulk load, split over its connections (1g; also 64m, 512k, bytes)
  --baseline NAME     server the ratios refer to (ours)
  --web2py DIR        web2py tree for the web2py and static scenarios (default /tmp/w2p if it
                      exists; without one they are skipped); needs web2py_on_gevent.py (the
                      seed handler, Python 3) at its root for the gevent peer
  --out FILE          JSON output (.bench-out/bench-<date>.json); the SVG chart goes beside it
  --update-readme     also write docs/bench/latest.svg and rewrite README.md between
                      <!-- bench:start --> and <!-- bench:end --> with this run's tables
  --list              scenarios and servers, then exit
  --help
`;

interface Options {
  scenarios: Scenario[];
  servers: string[] | null;
  durationS: number;
  /** --duration was given: it then applies to every load, even one with its own duration. */
  isDurationGiven: boolean;
  warmupS: number;
  /** --rounds, or null: each scenario's own (Scenario.rounds). */
  rounds: number | null;
  baseline: string;
  out: string;
  list: boolean;
  web2py: string | null;
  web2pyWhy: string;
  updateReadme: boolean;
  bulkBytes: number;
}

export const DEFAULT_WEB2PY = '/tmp/w2p';

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

/** `--bulk-size`: bytes, or with a k/m/g suffix (powers of 1024: 64m = 64 MiB). */
function size(v: string): number {
  const m = /^(\d+)\s*([kmg]?)(?:i?b)?$/i.exec(v.trim());
  const n = m ? Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase()) : 0;
  if (!Number.isSafeInteger(n) || n <= 0) fail(`--bulk-size wants a size such as 1g, 64m or 1048576, got ${JSON.stringify(v)}`);
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
        rounds: { type: 'string' },
        connections: { type: 'string' },
        baseline: { type: 'string' },
        out: { type: 'string' },
        web2py: { type: 'string' },
        'bulk-size': { type: 'string' },
        'update-readme': { type: 'boolean' },
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
  const scenarios = SCENARIOS.filter((s) => (only ? only.includes(s.name) : s.optIn !== true)).map((s) => withConnections(s, conns));
  let web2py: string | null = null;
  let web2pyWhy = '';
  if (values.web2py !== undefined) {
    web2py = resolve(values.web2py);
    if (!existsSync(join(web2py, 'gluon'))) fail(`--web2py ${values.web2py}: no gluon/ there, not a web2py tree`);
  } else if (existsSync(join(DEFAULT_WEB2PY, 'gluon'))) web2py = DEFAULT_WEB2PY;
  else web2pyWhy = `no web2py tree: ${DEFAULT_WEB2PY} has none and --web2py was not given`;
  return {
    scenarios,
    servers,
    web2py,
    web2pyWhy,
    updateReadme: values['update-readme'] ?? false,
    durationS: positiveInt(values.duration, 'duration', 8),
    isDurationGiven: values.duration !== undefined,
    bulkBytes: values['bulk-size'] === undefined ? BULK_DEFAULT_BYTES : size(values['bulk-size']),
    warmupS: positiveInt(values.warmup, 'warmup', 2),
    rounds: values.rounds === undefined ? null : positiveInt(values.rounds, 'rounds', 1),
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
  if (r.rate) {
    const x = r.rate;
    const ms = (v: number | null): string => (v === null ? '-' : v.toFixed(1));
    return (
      `offered ${x.offeredRps} req/s: admitted ${Math.round(x.admittedRps)} req/s (p50 ${ms(x.okP50Ms)}, p99 ${ms(x.okP99Ms)} ms), ` +
      `503 ${(x.rejectedShare * 100).toFixed(1)}% (p99 ${ms(x.rejectP99Ms)} ms), other ${x.otherStatus}, errors ${x.errors}, timeouts ${x.timeouts}, not sent ${x.notSent}` +
      (r.cpu ? `, ${cpuSummary(r.cpu)}` : '')
    );
  }
  if (r.bulk) {
    const b = r.bulk;
    const mib = (kb: number | null): string => (kb === null ? '-' : (kb / 1024).toFixed(1));
    return (
      `${b.mbps === null ? '-' : b.mbps.toFixed(0)} MB/s, ${(b.moved / 1e6).toFixed(0)} of ${(b.bytes / 1e6).toFixed(0)} MB in ${b.seconds.toFixed(2)} s, ` +
      `peak RSS front ${mib(b.memory.frontPeakKb)} MiB, workers ${mib(b.memory.workersPeakKb)} MiB` +
      (b.errors.length ? `, errors: ${b.errors.join('; ')}` : '')
    );
  }
  if (r.idle) {
    const i = r.idle;
    return `held ${i.held} (after ${i.holdS} s: ${i.heldLater}), front RSS ${i.frontRssBeforeKb} -> ${i.frontRssAfterKb} -> ${i.frontRssLaterKb} kB`;
  }
  const w = r.wrk!;
  const n = r.newcomer;
  const cpu = r.cpu ? `, ${cpuSummary(r.cpu)}` : '';
  const spread = r.connSpread ? `, connections per process ${r.connSpread.byPid.map((p) => p.conns).join('/') || '-'} of ${r.connSpread.total}` : '';
  const ms = (v: number): string => (Number.isNaN(v) ? '-' : v.toFixed(2)); // h2load has no percentiles
  return (
    `${Math.round(w.rps)} req/s, p50 ${ms(w.p50Ms)} ms, p99 ${ms(w.p99Ms)} ms, ` +
    `errors ${JSON.stringify(w.errors)}, newcomer median ${n?.medianMs?.toFixed(1) ?? '-'} ms, unanswered ${n?.unanswered ?? '-'}` +
    (r.tcp?.ListenOverflows ? `, listen overflows ${r.tcp.ListenOverflows}` : '') +
    (r.listenQueue?.maxQueued ? `, accept queue max ${r.listenQueue.maxQueued} (non-empty ${r.listenQueue.nonEmptyMs} ms)` : '') +
    cpu + spread
  );
}

/** "CPU 41.2 µs/req (front 30.1, workers 11.0, primary 0.0)" */
function cpuSummary(c: CpuFigures): string {
  const us = (v: number | null): string => (v === null ? '-' : v.toFixed(1));
  const roles = c.roles ? ` (front ${us(c.roles.fronts.usPerRequest)}, workers ${us(c.roles.workers.usPerRequest)}, primary ${us(c.roles.primary.usPerRequest)})` : '';
  return `CPU ${us(c.total.usPerRequest)} µs/req${roles}`;
}

/**
 * The scratch folder of one server run (under the bench's /tmp folder: nginx's workers run as
 * nobody and must read it) and, for web2py scenarios, a fresh copy of the tree in it, with
 * handlers/wsgihandler.py at its root as peerbench does (gunicorn, uWSGI, waitress import it).
 */
function prepareRun(s: Scenario, def: ServerDef, o: Options, scratchRoot: string, port: number): Fields {
  const run = join(scratchRoot, `${s.name}-${def.name}`);
  mkdirSync(run, { recursive: true });
  let tree = '';
  if (s.app === 'web2py' || s.app === 'static') {
    if (!o.web2py) throw new Error(o.web2pyWhy);
    tree = join(run, 'w2p');
    cpSync(o.web2py, tree, { recursive: true, verbatimSymlinks: true });
    copyFileSync(join(tree, 'handlers', 'wsgihandler.py'), join(tree, 'wsgihandler.py'));
    if (s.web2pyDownloadBytes !== undefined) addDownloadController(join(tree, 'applications', 'welcome'), s.web2pyDownloadBytes);
  }
  const f: Fields = { port, apps: APPS_DIR, kind: s.app, scenario: s.name, tree, run, tls: s.tls === true ? makeCertificate(run) : null };
  for (const [name, text] of Object.entries(def.files?.(f) ?? {})) writeFileSync(join(run, name), text);
  return f;
}

/** The web2py-download scenario's file and controller: response.stream(file), as a download action does. */
function addDownloadController(app: string, bytes: number): void {
  mkdirSync(join(app, 'private'), { recursive: true });
  writeFileSync(join(app, 'private', 'w2nbench.bin'), Buffer.alloc(bytes, 0x61));
  writeFileSync(join(app, 'controllers', 'w2nbench.py'), [
    '# web2py-on-node bench: a file through response.stream, as a download action serves one',
    'import os',
    '',
    '',
    'def stream():',
    "    return response.stream(os.path.join(request.folder, 'private', 'w2nbench.bin'))",
    '',
  ].join('\n'));
}

/** A self-signed certificate for a TLS scenario's run (openssl, as the tests make theirs). */
function makeCertificate(run: string): { cert: string; key: string } {
  const cert = join(run, 'cert.pem');
  const key = join(run, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}

/**
 * A `noHttp` entry (the web2py ceiling): no server to start; each wrk load of the scenario is one
 * run of its command on a fresh copy of the tree, warmed up and timed by the driver itself.
 */
async function benchNoHttp(def: ServerDef, version: string, s: Scenario, o: Options, scratchRoot: string, round: Round): Promise<ServerRun> {
  const run: ServerRun = { scenario: s.name, server: def.name, about: def.about, status: 'ok', version, round: round.n, loads: [] };
  run.machineBusyBefore = await cpuBusyFraction();
  let fields: Fields | null = null;
  try {
    fields = prepareRun(s, def, o, scratchRoot, await freePort());
    run.cmd = def.command(fields);
    run.cwd = def.cwd(fields);
    for (const load of s.loads) {
      if (isClosing() || load.kind !== 'wrk') continue;
      progress(`${s.name} ${def.name}${roundTag(round)} ${loadLabel(load)} ...`);
      const r = await runCeiling(run.cmd, s.path, loadLabel(load), loadDuration(load, o), warmupSeconds(s, o.warmupS));
      run.loads.push(r);
      progress(`    ${summary(r)}`);
    }
  } catch (e) {
    run.status = 'failed';
    run.reason = (e as Error).message;
    progress(`${s.name} ${def.name}${roundTag(round)} FAILED: ${run.reason}`);
  } finally {
    if (fields?.tree) rmSync(fields.tree, { recursive: true, force: true });
  }
  return run;
}

/** Which round of how many a server run is (bench/rounds.ts). */
interface Round {
  n: number;
  of: number;
}

/** " (round 2/3)" in progress lines, nothing for a scenario of one round. */
const roundTag = (r: Round): string => (r.of > 1 ? ` (round ${r.n}/${r.of})` : '');

/** One server, one scenario, one round: start (a fresh instance), wait, warm up, each load in order, stop. */
async function benchServer(
  def: ServerDef, version: string, s: Scenario, o: Options, logDir: string, scratchRoot: string, round: Round,
): Promise<ServerRun> {
  const port = await freePort();
  const logFile = join(logDir, `${s.name}-${def.name}${round.of > 1 ? `-round${round.n}` : ''}.log`);
  const run: ServerRun = { scenario: s.name, server: def.name, about: def.about, status: 'ok', version, round: round.n, port, logFile, loads: [] };
  // BENCH_BULK_DIR: where bulk.py and node_bulk.mjs find the files made beforehand for /file
  const env = { ...process.env, PYTHONDONTWRITEBYTECODE: '1', BENCH_BULK_DIR: bulkDir(scratchRoot), ...def.env };
  let started: Started | null = null;
  let fields: Fields | null = null;
  run.machineBusyBefore = await cpuBusyFraction();
  if ((run.machineBusyBefore ?? 0) > BUSY_WARNING)
    progress(`  warning: the machine is ${Math.round(run.machineBusyBefore! * 100)}% busy before ${def.name} starts`);
  try {
    fields = prepareRun(s, def, o, scratchRoot, port);
    run.cmd = def.command(fields);
    run.cwd = def.cwd(fields);
    // Servers need the raised fd limit too: 1000 wrk connections, 5000 idle ones.
    started = startServer(withNofile(run.cmd), run.cwd, env, logFile);
    current = started;
    const tls = s.tls === true;
    await waitReady(started, port, def.readyPath ?? s.path, tls);
    // ours' /health says ready once its workers are: the page itself must answer 200 too
    if (def.readyPath && def.readyPath !== s.path) await waitReady(started, port, s.path, tls);
    const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}${s.path}`;
    const bulkLoads = s.loads.filter((l): l is BulkLoad => l.kind === 'bulk');
    if (bulkLoads.length > 0) await warmUpBulk(bulkLoads, port, bulkWarmUpBytes(o.bulkBytes, bulkLoads));
    else if (s.loads.some((l) => l.kind !== 'idle')) {
      // The warm-up has the first load's connection count: the load it precedes then meets every
      // server in its steady state (a JIT warmed on that traffic, pools and greenlets grown).
      await warmUp(url, warmUpConns(s), warmupSeconds(s, o.warmupS));
    }
    // What the server holds at rest (listening sockets, worker channels): the drain target.
    const baseline = socketInodes(serverProcesses(started.pid)).size;
    let lastRps: number | undefined;
    for (const load of s.loads) {
      if (isClosing()) break;
      await waitDrained(started.pid, baseline); // the previous load's connections are gone
      const r: LoadResult = { load: loadLabel(load), kind: load.kind, conns: load.conns, serverAlive: true };
      progress(`${s.name} ${def.name}${roundTag(round)} ${r.load} ...`);
      const tcpBefore = tcpCounters();
      try {
        if (load.kind === 'idle') {
          r.idle = await runIdle(load, port, s.path, connectionHolder(started.pid));
        } else if (load.kind === 'bulk') {
          // CPU over the whole load, divided by its requests (one per connection); the table shows it per GiB
          const cpu = new CpuMeter(started.pid, def.hasRoles === true);
          r.bulk = await runBulk(load, port, o.bulkBytes, connectionHolder(started.pid));
          r.cpu = cpu.stop()(load.conns);
        } else {
          const durationS = loadDuration(load, o);
          r.durationS = durationS;
          const probe = new NewcomerProbe(port, s.path, durationS * 1000, { tls });
          const queue = new ListenQueueSampler(port);
          const spread = s.connSpread === true ? new ConnSpreadSampler(port, started.pid, (durationS * 1000) / 2) : null;
          const statusPage = load.kind === 'wrk' && load.statusPoll === true ? new StatusPoller(port) : null;
          // sampled just before the load, and just after it, before anything else is awaited
          const cpu = new CpuMeter(started.pid, def.hasRoles === true);
          let perRequest: (requests: number) => CpuFigures;
          try {
            if (load.kind === 'wrk') r.wrk = await runWrk(url, load.conns, durationS, load.timeoutS);
            else if (load.kind === 'ab') r.wrk = await runAb(url, load.conns, durationS);
            else if (load.kind === 'h2load') r.wrk = await runH2load(url, { ...load, durationS });
            else {
              const rps = Math.round(load.factor * (lastRps ?? load.fallbackRps));
              r.rate = await runRate(port, s.path, rps, durationS, load.timeoutS, load.maxInFlight);
              r.load = `${r.load}: ${rps.toLocaleString('en-US')} req/s`;
              r.conns = r.rate.connections;
            }
            perRequest = cpu.stop();
          } finally {
            r.listenQueue = queue.finish();
            r.newcomer = await probe.finish();
            if (spread) r.connSpread = await spread.finish();
            if (statusPage) r.statusPoll = await statusPage.finish();
          }
          // answered requests: the load's own count, plus the newcomer probe's answers
          const answered = r.wrk?.requests ?? (r.rate ? r.rate.ok + r.rate.rejected503 + r.rate.otherStatus : 0);
          r.cpu = perRequest(answered + (r.newcomer?.ms.length ?? 0));
          lastRps = r.wrk?.rps;
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
    if (s.loads.some((l) => l.kind === 'wrk' && l.statusPoll === true) && started.exited === null) {
      await waitDrained(started.pid, baseline);
      run.statusPollCpu = await statusPollCpu(port, started.pid, def.hasRoles === true);
      progress(`    one status page poll: ${run.statusPollCpu.total.usPerRequest?.toFixed(0) ?? '-'} µs of CPU`);
    }
  } catch (e) {
    run.status = 'failed';
    run.reason = (e as Error).message;
    run.logTail = tail(logFile);
    progress(`${s.name} ${def.name}${roundTag(round)} FAILED: ${run.reason}`);
  } finally {
    if (started) {
      run.stop = await stopServer(started);
      current = null;
      if (run.stop.unreaped.length) progress(`    WARNING: could not reap PIDs ${run.stop.unreaped.join(', ')}`);
    }
    if (fields?.tree) rmSync(fields.tree, { recursive: true, force: true });
  }
  return run;
}

/**
 * The servers a scenario runs: --servers or its own list (less those its `minCores` leaves out on
 * this machine, with a note), less those that cannot serve its app.
 */
function serversOf(s: Scenario, o: Options, notes: string[]): string[] {
  const cores = availableParallelism();
  const tooBig = o.servers ? [] : Object.entries(s.minCores ?? {}).filter(([n, min]) => s.defaultServers.includes(n) && cores < min);
  for (const [n, min] of tooBig) {
    notes.push(`${s.name}: ${n} left out (${cores} cores here, it needs ${min}; --servers runs it anyway)`);
    progress(`bench: ${s.name}: ${n} left out (${cores} cores, < ${min})`);
  }
  return (o.servers ?? s.defaultServers).filter(
    (n) => !tooBig.some(([t]) => t === n) && serverByName(n)!.serves.includes(s.app) && (s.tls !== true || serverByName(n)!.servesTls === true),
  );
}

/** The command line as typed, quoted where a shell would need it. */
function commandLine(argv: string[]): string {
  const q = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`);
  return ['npm', 'run', 'bench', ...(argv.length ? ['--', ...argv.map(q)] : [])].join(' ');
}

/** Where the files of the bulk scenario's /file are made, in the run's scratch folder. */
const bulkDir = (scratchRoot: string): string => join(scratchRoot, 'bulk');

/** Bytes per connection of the bulk warm-up: a few MiB of each transfer. */
const bulkWarmUpBytes = (total: number, loads: BulkLoad[]): number =>
  Math.min(4 * 1024 ** 2, ...loads.map((l) => perConnBytes(total, l.conns)));

/** The files the bulk scenario's /file serves (measured loads and warm-up), made once for all servers. */
function prepareBulkFiles(s: Scenario, o: Options, scratchRoot: string): void {
  const loads = s.loads.filter((l): l is BulkLoad => l.kind === 'bulk');
  if (loads.length === 0) return;
  mkdirSync(bulkDir(scratchRoot), { recursive: true });
  for (const n of new Set([bulkWarmUpBytes(o.bulkBytes, loads), ...loads.map((l) => perConnBytes(o.bulkBytes, l.conns))]))
    makeBulkFile(bulkDir(scratchRoot), n);
}

/**
 * A bulk load's seconds for the estimate: its bytes at BULK_ESTIMATE_MBPS (between ours and the
 * peers on the project machine), plus the client's start and the drain.
 */
const BULK_ESTIMATE_MBPS = 1000;

function loadSeconds(l: Scenario['loads'][number], o: Options): number {
  if (l.kind === 'idle') return l.holdS + 12;
  if (l.kind === 'bulk') return Math.round(o.bulkBytes / 1e6 / BULK_ESTIMATE_MBPS + 1);
  return loadDuration(l, o) + 1;
}

/** The planned scenarios whose loads run for their own time, e.g. ", sleep 10 s". */
function ownDurations(scenarios: Scenario[], o: Options): string {
  return scenarios
    .filter((s) => s.loads.some((l) => l.kind === 'wrk' && loadDuration(l, o) !== o.durationS))
    .map((s) => `, ${s.name} ${Math.max(...s.loads.map((l) => loadDuration(l, o)))} s`)
    .join('');
}

/** Connections of the warm-up: the scenario's first load's (sleep: 500, as its load; hello: 50). */
function warmUpConns(s: Scenario): number {
  const first = s.loads.find((l) => l.kind !== 'idle');
  return first === undefined ? 10 : first.conns;
}

/** Seconds a timed load runs: its own duration if it has one and --duration was not given. */
function loadDuration(l: Scenario['loads'][number], o: Options): number {
  return l.kind === 'wrk' && l.durationS !== undefined && !o.isDurationGiven ? l.durationS : o.durationS;
}

/**
 * Seconds a run should take: per server, busy check + start + warm-up + stop (measured on the
 * project machine: about 2 s besides the warm-up, 4 s for a web2py tree, copied and imported), then
 * each load (its duration and a second to drain; idle: connect, settle, hold, close).
 */
function estimateSeconds(plan: Planned[], o: Options): number {
  let total = 0;
  for (const { s, servers, rounds, once } of plan) {
    const perServer = (s.app === 'web2py' || s.app === 'static' ? 4 : 2) + warmupSeconds(s, o.warmupS);
    const loads = s.loads.reduce((t, l) => t + loadSeconds(l, o), 0);
    total += serverRunsOf(servers, rounds, once) * (perServer + loads);
  }
  return total;
}

/** A scenario as it will run: its servers, its rounds, and those of its servers measured in round 1 only. */
interface Planned {
  s: Scenario;
  servers: string[];
  rounds: number;
  once: Set<string>;
}

/**
 * Rounds of a scenario: --rounds, else its own. Its `oneRound` peers run in round 1 only unless
 * --servers named the servers (then every one named runs in every round).
 */
function planRounds(s: Scenario, servers: string[], o: Options): Planned {
  const rounds = o.rounds ?? s.rounds ?? 1;
  const once = new Set(o.servers || rounds === 1 ? [] : (s.oneRound ?? []).filter((n) => servers.includes(n)));
  return { s, servers, rounds, once };
}

/** "hello (7: 4 × 3 rounds + 3 once)", or "idle (2)" for one round. */
function planText(p: Planned): string {
  if (p.rounds === 1) return `${p.s.name} (${p.servers.length})`;
  const every = p.servers.length - p.once.size;
  return `${p.s.name} (${p.servers.length}: ${every} × ${p.rounds} rounds${p.once.size ? ` + ${p.once.size} once` : ''})`;
}

async function main(): Promise<void> {
  // `--only realtime` is its own runner (bench/realtime.ts: WebSocket subscribers, not HTTP loads).
  const args = process.argv.slice(2);
  if (args[args.indexOf('--only') + 1] === 'realtime') {
    const { runRealtimeBench } = await import('./realtime.js');
    return runRealtimeBench(args);
  }
  const o = parseOptions(args);
  if (o.list) {
    for (const s of SCENARIOS)
      process.stdout.write(
        `${s.name}: ${s.about}, GET ${s.path}; loads ${s.loads.map(loadLabel).join(', ')}; servers ${s.defaultServers.join(',')}` +
          `; rounds ${s.rounds ?? 1}${s.oneRound?.length ? ` (once: ${s.oneRound.join(',')})` : ''}\n`,
      );
    const f = (kind: Fields['kind']): Fields => ({ port: 0, apps: APPS_DIR, kind, scenario: kind, tree: '{web2py copy}', run: '{run}', tls: null });
    for (const d of SERVERS) {
      process.stdout.write(`  ${d.name.padEnd(16)} ${d.about}; serves ${d.serves.join(', ')}\n`);
      for (const kind of d.serves.includes('hello') ? (['hello', 'web2py'] as const) : [d.serves[0]!])
        if (d.serves.includes(kind)) process.stdout.write(`    [${kind}] ${d.command(f(kind)).join(' ')}\n`);
    }
    return;
  }
  // Fail before an hour of measuring, not after it.
  if (o.updateReadme) {
    try {
      checkReadmeMarkers();
    } catch (e) {
      fail((e as Error).message);
    }
  }
  const notes: string[] = [];
  const plan = o.scenarios
    .filter((s) => {
      if ((s.app === 'web2py' || s.app === 'static') && !o.web2py) {
        notes.push(`${s.name}: skipped (${o.web2pyWhy})`);
        progress(`bench: ${s.name} skipped (${o.web2pyWhy})`);
        return false;
      }
      if (s.loads.some((l) => l.kind === 'h2load') && !existsSync(H2LOAD)) {
        notes.push(`${s.name}: skipped (${H2LOAD} is not installed: apt install nghttp2-client)`);
        progress(`bench: ${s.name} skipped (no ${H2LOAD})`);
        return false;
      }
      return true;
    })
    .map((s) => planRounds(s, serversOf(s, o, notes), o));
  const logDir = join(REPO_ROOT, '.bench-out', `logs-${stamp()}`);
  mkdirSync(logDir, { recursive: true });
  const scratchRoot = mkdtempSync(join(tmpdir(), 'bench-'));
  chmodSync(scratchRoot, 0o755); // nginx's workers run as nobody
  const wanted = [...new Set(plan.flatMap((p) => p.servers))];
  const [machine, detected] = await Promise.all([
    describeMachine(),
    Promise.all(wanted.map(async (n) => [n, await serverByName(n)!.detect()] as const)),
  ]);
  const found = new Map<string, Detected>(detected);
  const argv = process.argv.slice(2);
  const output: BenchOutput = {
    meta: {
      started: new Date().toISOString(), argv, command: commandLine(argv), durationS: o.durationS, warmupS: o.warmupS,
      ...(plan.some(({ s }) => s.app === 'bulk') ? { bulkBytes: o.bulkBytes } : {}),
      baseline: o.baseline, logDir, web2py: o.web2py, notes,
      rounds: Object.fromEntries(plan.map((p) => [p.s.name, { rounds: p.rounds, once: [...p.once] }])),
    },
    machine,
    versions: Object.fromEntries(detected.map(([n, d]) => [n, d.ok ? d.version : `not installed: ${d.why}`])),
    runs: [],
  };
  mkdirSync(join(o.out, '..'), { recursive: true });
  const save = (): void => writeFileSync(o.out, `${JSON.stringify(output, null, 1)}\n`);
  const est = estimateSeconds(plan.map((p) => ({ ...p, servers: p.servers.filter((n) => found.get(n)?.ok) })), o);
  progress(`bench: ${machine.cpuModel}, ${machine.cores} cores; logs in ${logDir}`);
  progress(
    `bench: ${plan.map(planText).join(', ')}; estimated ${Math.floor(est / 60)} min ${est % 60} s` +
      ` (${o.durationS} s per load${ownDurations(plan.map((p) => p.s), o)})`,
  );
  const t0 = Date.now();
  try {
    clearAppCpu();
    for (const { s } of plan) prepareBulkFiles(s, o, scratchRoot);
    for (const { s, servers, rounds, once } of plan) {
      for (let n = 1; n <= rounds; n++) {
        // each round starts every server afresh; forward, reverse, forward...
        for (const name of roundOrder(servers, n, once)) {
          if (isClosing()) break;
          const def = serverByName(name)!;
          const d = found.get(name);
          if (!d?.ok) {
            if (n === 1) {
              output.runs.push({ scenario: s.name, server: name, about: def.about, status: 'skipped', reason: d ? d.why : 'not detected', loads: [] });
              progress(`${s.name} ${name}: skipped (${d && !d.ok ? d.why : '?'})`);
            }
            continue;
          }
          const round = { n, of: rounds };
          output.runs.push(
            await (def.noHttp === true ? benchNoHttp(def, d.version, s, o, scratchRoot, round) : benchServer(def, d.version, s, o, logDir, scratchRoot, round)),
          );
          save(); // after each server: a partial run still counts
        }
      }
    }
  } finally {
    rmSync(scratchRoot, { recursive: true, force: true });
  }
  output.meta.finished = new Date().toISOString();
  save();
  const took = Math.round((Date.now() - t0) / 1000);
  progress(`bench: took ${Math.floor(took / 60)} min ${took % 60} s (estimated ${Math.floor(est / 60)} min ${est % 60} s)`);
  const scenarios = plan.map((p) => p.s);
  const tables = scenarios.map((s) => scenarioReport(s, output.runs.filter((r) => r.scenario === s.name), o.baseline));
  const summary = summaryReport(scenarios, output.runs, o.baseline);
  process.stdout.write(`${summary}\n${tables.join('\n')}\n${notes.map((n) => `- ${n}\n`).join('')}`);
  const svg = o.out.replace(/\.json$/, '') + '.svg';
  writeChart(svg, scenarios, output);
  const show = (p: string): string => {
    const rel = relative(process.cwd(), p);
    return rel && !rel.startsWith('..') ? rel : p;
  };
  process.stdout.write(`JSON: ${show(o.out)}\nchart: ${show(svg)}\n`);
  if (o.updateReadme) {
    const written = publish(scenarios, output, summary, tables);
    process.stdout.write(`README.md updated; chart: ${show(written)}\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
