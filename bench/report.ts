/**
 * @module bench/report
 * Markdown tables from the results: one per scenario, with every server's req/s set against
 * the baseline's ("ours" unless --baseline says otherwise) at the same load. Ratios, not
 * absolute figures, are what carries from one run to the next (PEERS.md), and the goals are
 * written as ratios.
 */
import { BUSY_WARNING } from './machine.js';
import type { LoadResult, ServerRun } from './results.js';
import type { Scenario } from './scenarios.js';
import { mergeRounds, rateOf, spreadText, type RateUnit, type RoundSpread } from './rounds.js';
import { CPU_POLLS } from './status-poller.js';

const num = (x: number | null | undefined, digits = 1): string =>
  x === null || x === undefined || Number.isNaN(x)
    ? '-'
    : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function errorsCell(r: LoadResult): string {
  const e = r.wrk?.errors;
  if (!e) return r.error ? `(${r.error.slice(0, 60)})` : '-';
  const parts = Object.entries(e)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`);
  return parts.join(', ') || '-';
}

function newcomerCell(r: LoadResult): [string, string] {
  const n = r.newcomer;
  if (!n) return ['-', '-'];
  const total = n.ms.length + n.unanswered;
  const times = n.medianMs === null ? '-' : `${num(n.medianMs)} / ${num(n.maxMs)}`;
  return [times, total === 0 ? '-' : `${n.unanswered}/${total}`];
}

/**
 * A queue this deep for this long (sampled every 200 ms) is more than the opening storm or a
 * newcomer caught in passing.
 */
const STUCK_QUEUE_MS = 600;
const STUCK_QUEUE_DEPTH = 10;

function queueCell(r: LoadResult): string {
  const q = r.listenQueue;
  const over = r.tcp?.ListenOverflows ?? 0;
  const parts: string[] = [];
  if (q && q.maxQueued > 0) parts.push(`${q.maxQueued}, ${num(q.nonEmptyMs / 1000, 1)} s`);
  if (over > 0) parts.push(`${over.toLocaleString('en-US')} overflows`);
  return parts.join('; ') || '-';
}

/** µs of CPU per request, the whole server: every process of its tree, summed. */
const cpuCell = (r: LoadResult): string => num(r.cpu?.total.usPerRequest, 1);

/** Ours: µs of CPU per request by role, "front / workers / primary" (the primary's should be 0). */
function rolesCell(r: LoadResult): string {
  const x = r.cpu?.roles;
  if (!x) return '-';
  const app = r.cpu?.appCall ? ` (app ${num(r.cpu.appCall.usPerCall, 1)})` : '';
  return `${num(x.fronts.usPerRequest, 1)} / ${num(x.workers.usPerRequest, 1)}${app} / ${num(x.primary.usPerRequest, 2)}`;
}

/**
 * The machine's busy CPU during the load beyond the server's own, per request (the load
 * generator, kernel work outside the server's threads, anything else), and how many cores were
 * busy in all: "212.4 (1.98)". 2.00 on 2 cores means the machine, not the server, was the limit.
 */
function otherCpuCell(r: LoadResult): string {
  const c = r.cpu;
  if (c?.machineBusyMs === undefined || !c.requests || !c.seconds) return '-';
  const other = ((c.machineBusyMs - c.total.cpuMs) * 1000) / c.requests;
  return `${num(Math.max(0, other), 1)} (${num(c.machineBusyMs / 1000 / c.seconds, 2)})`;
}

/** A bulk load's CPU per GiB moved: ours `front / workers`, the others their whole tree. */
function bulkCpuCell(r: LoadResult, moved: number): string {
  const c = r.cpu;
  if (!c || moved <= 0) return '-';
  const perGib = (ms: number): string => num((ms * MIB * 1024) / moved, 0);
  return c.roles ? `${perGib(c.roles.fronts.cpuMs)} / ${perGib(c.roles.workers.cpuMs)}` : perGib(c.total.cpuMs);
}

/** Connections per front (ours) or per process (others) mid-load, most first: "520 / 480". */
function spreadCell(run: ServerRun, r: LoadResult): string {
  const c = r.connSpread;
  if (!c) return '-';
  // ours: its fronts (the primary's children); others: every process that held some
  const shown = serverHasRoles(run) ? c.byPid.filter((p) => p.child) : c.byPid;
  const held = shown.reduce((t, p) => t + p.conns, 0);
  const rest = c.total - held;
  return (shown.map((p) => p.conns.toLocaleString('en-US')).join(' / ') || '0') + (rest > 0 ? ` (+${rest} elsewhere)` : '');
}

/** Ours (a primary with fronts and workers): the run's CPU figures carry roles. */
const serverHasRoles = (run: ServerRun): boolean => run.loads.some((l) => l.cpu?.roles !== undefined);

const CPU_NOTE =
  'CPU µs/req: CPU time of every process of the server (its tree: the PID started, its session, what descends' +
  ' from it) between just before and just after the load (/proc/PID/task/TID/schedstat, ns; /proc/PID/stat utime+stime' +
  ' where threads exited), divided by the requests answered (the load\'s own count plus the newcomer probe\'s). Ours by role,' +
  ' front / workers / primary: the node processes the primary started (summed over all fronts), the Python workers' +
  ' below them (summed), the primary itself (binds and supervises, parses no client bytes: should be about 0);' +
  ' in the web2py scenario, "(app N)" is web2py\'s own call in the workers, µs of thread CPU per call (bench/app_cpu.py),' +
  ' the rest of the workers\' figure is the worker around it. Other CPU µs/req (cores busy): the whole machine\'s busy' +
  ' CPU in the same window (/proc/stat) less the server\'s, per request: the load generator, kernel work outside the' +
  ' server\'s threads, anything else running; in brackets, the cores busy in all (2.00 on 2 cores: the machine was the limit).';

/** Ratio cell: baseline req/s ÷ this server's, so "≥ 1.5" reads straight against the goals. */
function ratioCell(baseRps: number | undefined, rps: number | undefined): string {
  if (!baseRps || !rps) return '-';
  return `${num(baseRps / rps, 2)}×`;
}

function wrkTable(s: Scenario, runs: ServerRun[], baseline: string): string[] {
  const base = runs.find((r) => r.server === baseline && r.status === 'ok');
  const out = [
    `| server | load | req/s${anyRounds(runs) ? ' (min–max over rounds)' : ''} | ${baseline} ÷ it | CPU µs/req | front / workers / primary µs/req | other CPU µs/req (cores busy) |` +
      (s.connSpread ? ' connections per front (mid-load) |' : '') +
      ' p50 ms | p99 ms | errors | newcomer ms (median / max) | unanswered | accept queue (max, time) |',
    `|---|---|---:|---:|---:|---:|---:|${s.connSpread ? '---:|' : ''}---:|---:|---|---:|---:|---|`,
  ];
  let closes = false;
  let littles = false;
  let storms = false;
  for (const run of runs.filter((r) => r.status === 'ok')) {
    for (const r of run.loads) {
      if (r.kind === 'rate' || r.kind === 'idle') continue;
      const w = r.wrk;
      const baseRps = base?.loads.find((b) => b.load === r.load)?.wrk?.rps;
      let mark = '';
      if (w?.closesEveryConnection) {
        mark += ' †';
        closes = true;
      }
      if (w && w.busyConns > 1.2 * r.conns) {
        mark += ' ‡';
        littles = true;
      }
      const q = r.listenQueue;
      if ((r.tcp && r.tcp.ListenOverflows > 0) || (q && q.nonEmptyMs >= STUCK_QUEUE_MS && q.maxQueued >= STUCK_QUEUE_DEPTH)) {
        mark += ' §';
        storms = true;
      }
      if (!r.serverAlive) mark += ' (server died)';
      const [times, unanswered] = newcomerCell(r);
      out.push(
        `| ${run.server} | ${r.load} | ${spreadText(w?.rps, r.spread, (x) => num(x, 0))} | ${ratioCell(baseRps, w?.rps)} | ${cpuCell(r)} | ${rolesCell(r)} | ${otherCpuCell(r)} |` +
          (s.connSpread ? ` ${spreadCell(run, r)} |` : '') +
          ` ${num(w?.p50Ms, 2)}` +
          ` | ${num(w?.p99Ms, 2)} | ${errorsCell(r)}${mark} | ${times} | ${unanswered} | ${queueCell(r)} |`,
      );
    }
  }
  const notes = [
    '',
    `${baseline} ÷ it: the req/s of ${baseline} divided by this server's at the same load (> 1: ${baseline} is faster).` +
      (base ? '' : ` **${baseline} did not run: no ratios.**`) + roundsNote(runs, 'req/s'),
    (s.loads.some((l) => l.kind === 'h2load')
      ? 'h2load -t1 over TLS, the same tool for both rows: HTTP/1.1 (--h1, keep-alive, one request at a time per' +
        ' connection) and HTTP/2 (-m streams at once per connection); h2load gives no percentiles (p50/p99 "-",' +
        ' mean and max in the JSON); errors: "status" = 4xx/5xx, "read" = errored requests.' + h2Ratios(runs)
      : s.loads.some((l) => l.kind === 'ab')
      ? 'ab -r (no keep-alive: HTTP/1.0, a new connection per request), percentiles over all requests;' +
        ' errors: "status" = non-2xx, "read" = receive errors and exceptions.'
      : `wrk -t1 keep-alive, timeout ${[...new Set(s.loads.flatMap((l) => (l.kind === 'wrk' ? [l.timeoutS] : [])))].join('/')} s;` +
        ' errors: wrk counts status >= 400 as "status"; answers slower than the wrk timeout count as "timeout", not in p99.'),
    'newcomer: a GET on a fresh connection every 0.5 s during the load; unanswered = no answer' +
      ' within 2 s (starved). wrk cannot see connections a server never serves; this can.',
    CPU_NOTE,
  ];
  if (runs.some((r) => r.server === 'ceiling' && r.status === 'ok'))
    notes.push(
      'ceiling: no HTTP at all (bench/web2py_ceiling.py): as many Python processes as the servers run call' +
        ' `gluon.main.wsgibase` in a loop with the environ of a wrk GET, same interpreter, same cores, warmed up as the' +
        ' servers are; its p50/p99 are the time of one call, its CPU what the processes measured themselves' +
        ' (time.process_time). No server can do more than it with the same processes.',
    );
  if (s.connSpread)
    notes.push(
      'connections per front: established connections on the port held by each front process (children of the' +
        ' primary; for other servers, by each of their processes), from `ss -tnp` once in the middle of the load, most first.',
    );
  if (closes)
    notes.push(
      '† closes after every answer without `Connection: close`: wrk counts a read error per request' +
        ' and reconnects; the answers were fine (no keep-alive).',
    );
  if (littles)
    notes.push(
      "‡ wrk's figures break Little's law (req/s × mean latency > 1.2 × connections): trust req/s," +
        ' not the percentiles, on this row.',
    );
  if (storms)
    notes.push(
      `§ ${STUCK_QUEUE_DEPTH} or more connections waited at once in the server's accept queue, non-empty` +
        ` for ${STUCK_QUEUE_MS} ms or more (sampled with ss every 200 ms), or it overflowed (kernel ListenOverflows; dropped handshakes then` +
        " wait for SYN-ACK retransmits, 1 s, 3 s...): wrk's connects (its opening storm, or one per answer" +
        ' without keep-alive) met a saturated server that accepts slowly. wrk shows this only as timeouts;' +
        ' newcomers starve behind it. Whether the storm lands before or after saturation changes from run' +
        ' to run: such rows vary.',
    );
  return [...out, ...notes];
}

/** How the poll's CPU was measured. */
const CPU_POLLS_NOTE = `${CPU_POLLS} polls in a row on the idle server, after the loads`;

/**
 * The status-cost scenario: req/s with the status page polling ÷ req/s without, per round (each
 * pair ran back to back) and over all rounds; and what the polls got.
 */
function statusCostLines(runs: ServerRun[]): string[] {
  const out: string[] = [];
  for (const run of runs.filter((r) => r.status === 'ok')) {
    const rounds = new Map<string, { without?: number; with?: number }>();
    let polled = 0;
    let pollOk = 0;
    let pollBytes = 0;
    for (const r of run.loads) {
      const key = r.load.replace(' + status page', '');
      const pair = rounds.get(key) ?? {};
      if (r.statusPoll) {
        pair.with = r.wrk?.rps;
        polled += r.statusPoll.polls;
        pollOk += r.statusPoll.ok;
        pollBytes = r.statusPoll.lastBytes;
      } else {
        pair.without = r.wrk?.rps;
      }
      rounds.set(key, pair);
    }
    const ratios = [...rounds.values()].flatMap((pair) => (pair.with && pair.without ? [pair.with / pair.without] : []));
    const sum = (pick: 'with' | 'without'): number => [...rounds.values()].reduce((total, pair) => total + (pair[pick] ?? 0), 0);
    out.push(
      `- ${run.server}: with the status page ÷ without = **${num(sum('with') / sum('without'), 3)}** over all rounds` +
        ` (per round: ${ratios.map((ratio) => num(ratio, 3)).join(', ')}); ${pollOk} of ${polled} polls answered 200,` +
        ` ${num(pollBytes / 1024, 0)} KiB each. Below 1: the page costs that share of req/s; the rounds' spread is the noise.`,
    );
    // The same cost from CPU time: a poll a second takes pollUs of the CPU that would serve
    // pollUs / helloUs hello requests, out of the req/s measured without the page.
    const pollUs = run.statusPollCpu?.total.usPerRequest;
    const without = run.loads.filter((r) => !r.statusPoll && r.cpu?.total.usPerRequest);
    const helloUs = without.reduce((total, r) => total + r.cpu!.total.usPerRequest!, 0) / (without.length || 1);
    const rps = sum('without') / (without.length || 1);
    if (pollUs && helloUs && rps) {
      const roles = run.statusPollCpu?.roles;
      out.push(
        `- ${run.server}: one poll costs **${num(pollUs, 0)} µs** of CPU` +
          (roles ? ` (front ${num(roles.fronts.usPerRequest, 0)} / workers ${num(roles.workers.usPerRequest, 0)} / primary ${num(roles.primary.usPerRequest, 0)})` : '') +
          ` (${CPU_POLLS_NOTE}); a hello request ${num(helloUs, 0)} µs; so a poll a second takes what ${num(pollUs / helloUs, 1)} hello requests` +
          ` take, **${num((100 * pollUs) / helloUs / rps, 3)}%** of the ${num(rps, 0)} req/s measured without it.`,
      );
    }
  }
  return out;
}

/** ` HTTP/2 ÷ HTTP/1.1: ours 1.8×.` — each server's h2 req/s over its HTTP/1.1-over-TLS req/s. */
function h2Ratios(runs: ServerRun[]): string {
  const parts: string[] = [];
  for (const run of runs.filter((r) => r.status === 'ok')) {
    const h1 = run.loads.find((l) => l.kind === 'h2load' && l.load.startsWith('h2load http/1.1'))?.wrk?.rps;
    const h2 = run.loads.find((l) => l.kind === 'h2load' && l.load.startsWith('h2load h2'))?.wrk?.rps;
    if (h1 && h2) parts.push(`${run.server} ${num(h2 / h1, 2)}×`);
  }
  return parts.length === 0 ? '' : ` HTTP/2 ÷ HTTP/1.1 req/s: ${parts.join(', ')}.`;
}

const kB = (bytes: number | null): string => num(bytes === null ? null : bytes / 1000, 1);

function idleTable(runs: ServerRun[]): string[] {
  const out = [
    '| server | asked | answered | held | held after | client open after | front RSS MB before → storm → after | front B/conn storm / after | session B/conn storm / after |',
    '|---|---:|---:|---:|---:|---:|---|---:|---:|',
  ];
  let holdS = 45;
  for (const run of runs.filter((r) => r.status === 'ok')) {
    for (const r of run.loads) {
      const i = r.idle;
      if (!i) {
        out.push(`| ${run.server} | ${r.conns} | ${errorsCell(r)} | | | | | | |`);
        continue;
      }
      holdS = i.holdS;
      const mb = (kb: number): string => num(kb / 1024, 1);
      out.push(
        `| ${run.server} | ${i.asked} | ${i.client?.answered ?? '?'} | ${i.held} | ${i.heldLater}` +
          ` | ${i.clientLater?.open ?? '?'} | ${mb(i.frontRssBeforeKb)} → ${mb(i.frontRssAfterKb)} → ${mb(i.frontRssLaterKb)}` +
          ` | ${num(i.bytesPerConn, 0)} / ${num(i.bytesPerConnLater, 0)}` +
          ` | ${num(i.sessionBytesPerConn, 0)} / ${num(i.sessionBytesPerConnLater, 0)} |`,
      );
    }
  }
  return [
    ...out,
    '',
    `held = connection sockets the server's processes hold (/proc/PID/fd) once the connects settle;` +
      ` "after" = ${holdS} s later. front = the PID started (for ours, the Node.js front only);` +
      ' session = all its processes. "storm": RSS right after the connects, which includes the young' +
      ' generation V8 grew while they came in; "after": at the end of the hold, once V8\'s memory reducer' +
      ' has given that back: the cost of an idle connection. B/conn only when it held at least a fifth of those asked.',
  ];
}

function rateTable(runs: ServerRun[]): string[] {
  const out = [
    '| server | load | offered req/s | admitted req/s | CPU µs/req | front / workers / primary µs/req | admitted p50 / p99 / max ms | 503 share | 503 p50 / p99 ms | Retry-After | other, errors, timeouts, not sent | newcomer ms (median / max) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|',
  ];
  for (const run of runs.filter((r) => r.status === 'ok')) {
    for (const r of run.loads) {
      if (r.kind !== 'rate') continue;
      const x = r.rate;
      if (!x) {
        out.push(`| ${run.server} | ${r.load} | ${errorsCell(r)} | | | | | | | | | |`);
        continue;
      }
      const [times] = newcomerCell(r);
      out.push(
        `| ${run.server} | ${r.load} | ${num(x.offeredRps, 0)} | ${num(x.admittedRps, 0)} | ${cpuCell(r)} | ${rolesCell(r)}` +
          ` | ${num(x.okP50Ms, 1)} / ${num(x.okP99Ms, 1)} / ${num(x.okMaxMs, 1)} | ${num(x.rejectedShare * 100, 1)}%` +
          ` | ${num(x.rejectP50Ms, 1)} / ${num(x.rejectP99Ms, 1)} | ${x.retryAfterShare === null ? '-' : `${num(x.retryAfterShare * 100, 0)}%`}` +
          ` | ${x.otherStatus}, ${x.errors}, ${x.timeouts}, ${x.notSent} | ${times} |`,
      );
    }
  }
  return [
    ...out,
    '',
    'Open-loop (bench/rate.ts): requests leave at the offered rate whatever the answers (a closed-loop client' +
      ' would retry each fast 503 at once and measure its own loop), over keep-alive connections opened as needed.' +
      ' offered = 2 × the req/s of the closed-loop load above (the capacity just measured). admitted = 2xx answers;' +
      ' compare their p99 with the closed-loop p99 above: admission control should keep it (queue wait ≤ queue size /' +
      ' capacity). The rest should get a fast 503 with Retry-After. CPU µs/req: over every answered request,' +
      ' 503s included (see the note above).',
  ];
}

const MIB = 1024 ** 2;
const mib = (kb: number | null | undefined, digits = 1): string => (kb === null || kb === undefined ? '-' : num(kb / 1024, digits));
/** "80.5 → 93.1": at rest before the load, then its peak. */
const restPeak = (rest: number, peak: number | null): string => (peak === null ? '-' : `${mib(rest)} → ${mib(peak)}`);

function bulkTable(runs: ServerRun[], baseline: string): string[] {
  const base = runs.find((r) => r.server === baseline && r.status === 'ok');
  const out = [
    `| server | load | MB/s${anyRounds(runs) ? ' (min–max over rounds)' : ''} | ${baseline} ÷ it | seconds | CPU ms/GiB (front / workers) | front RSS MiB (rest → peak) | workers RSS MiB Σ (rest → peak) | largest worker MiB | errors |`,
    '|---|---|---:|---:|---:|---:|---|---|---:|---|',
  ];
  let appReadFile = false;
  const hows = new Map<string, string>();
  let size: number | null = null;
  for (const run of runs.filter((r) => r.status === 'ok')) {
    for (const r of run.loads) {
      const b = r.bulk;
      if (!b) {
        out.push(`| ${run.server} | ${r.load} | - | - | - | - | - | - | - | ${errorsCell(r)} |`);
        continue;
      }
      size = b.bytesPerConn;
      let mark = '';
      if (b.fileWrapper === 'none') {
        mark = ' ¶';
        appReadFile = true;
      }
      if (b.transfer === 'upload-chunked') {
        if (b.how === 'content-length') hows.set(run.server, 'CONTENT_LENGTH (the server gathered the body first)');
        else if (b.how) hows.set(run.server, b.how);
        else if (b.errors.length > 0) hows.set(run.server, 'no answer read (see its errors)');
      }
      const m = b.memory;
      const baseMbps = base?.loads.find((l) => l.load === r.load)?.bulk?.mbps ?? undefined;
      const errors = b.errors.join('; ') || '-';
      out.push(
        `| ${run.server} | ${r.load}${mark} | ${spreadText(b.mbps, r.spread, (x) => num(x, 0))} | ${ratioCell(baseMbps, b.mbps ?? undefined)} | ${num(b.seconds, 2)}` +
          ` | ${bulkCpuCell(r, b.moved)} | ${restPeak(m.frontRestKb, m.frontPeakKb)} | ${m.workersPeakKb === null ? '-' : `${restPeak(m.workersRestKb, m.workersPeakKb)} (${m.workers})`}` +
          ` | ${mib(m.workerMaxPeakKb)} | ${errors}${r.serverAlive ? '' : ' (server died)'} |`,
      );
    }
  }
  const notes = [
    '',
    `Each load: ${size === null ? '' : `${num(size / MIB, size % MIB ? 2 : 0)} MiB on each of the connections, `}one request each, all at once, fresh` +
      ' connections (bench/bulk-client.ts, a Node.js process: reads and discards, or sends one reused 64 KiB buffer);' +
      ' MB/s = 10^6 bytes over the whole load, from the first request to the last answer, only when every byte count' +
      ` checked out (the body received, or the count the app answered). ${baseline} ÷ it: the MB/s of ${baseline} ÷ this server's.` +
      (base ? '' : ` **${baseline} did not run: no ratios.**`) + roundsNote(runs, 'MB/s'),
    'CPU ms/GiB: the server tree\'s CPU during the load (read from /proc just before and after it, as for the other' +
      ' scenarios) per GiB moved; for ours, `front / workers` (the primary\'s share is about 0), for the others the whole tree.',
    'RSS: sampled from /proc every 100 ms (front = the PID started: the Node.js front for ours, the master for gunicorn' +
      ' and uWSGI, the only process for the others; workers = every other process of its session or started by it, summed at each sample, count in' +
      ' brackets), and each process\'s VmHWM, reset before the load, read after it (a spike between samples still shows).',
  ];
  if (appReadFile) notes.push('¶ the server has no `wsgi.file_wrapper`: the app read the file in 64 KiB blocks and yielded them.');
  if (hows.size > 0)
    notes.push(
      'upload chunked (no Content-Length), what the app saw: ' +
        [...hows].map(([server, how]) => `${server}: ${how}`).join('; ') + '.',
    );
  return [...out, ...notes];
}

/** Some row of these (merged) runs is a median over more than one round. */
const anyRounds = (runs: ServerRun[]): boolean => runs.some((r) => (r.rounds?.total ?? 1) > 1);

/** How the rows of a table with rounds were taken, or '' when every server ran once. */
function roundsNote(runs: ServerRun[], unit: RateUnit): string {
  const counts = [...new Set(runs.filter((r) => r.status === 'ok').map((r) => r.rounds?.total ?? 1))].sort((a, b) => b - a);
  if (!counts.some((n) => n > 1)) return '';
  const once = runs.filter((r) => r.status === 'ok' && (r.rounds?.total ?? 1) === 1).map((r) => r.server);
  return (
    ` Rounds: each server${once.length ? ' but those named at the end' : ''} ran ${counts.filter((n) => n > 1).join(' or ')} times,` +
    ' a fresh instance each time (its own start and warm-up),' +
    ' the servers in alternating order (forward, reverse, ...); each row is the round with the median' +
    ` ${unit} (of an even number, the lower middle one), every figure of the row from that round, with the min–max ${unit} over the rounds beside it;` +
    ` ratios are of those medians.${once.length ? ` Measured once (in round 1 only): ${once.join(', ')}.` : ''}`
  );
}

/** " (round 2)" for a run of a scenario measured in rounds, nothing otherwise. */
const inRound = (r: ServerRun, rounds: boolean): string => (rounds && r.round !== undefined ? ` (round ${r.round})` : '');

export function scenarioReport(s: Scenario, allRounds: ServerRun[], baseline: string): string {
  const kind = s.loads[0]?.kind;
  const lines = [`### ${s.name}: ${s.about}${kind === 'bulk' ? '' : `, GET ${s.path}`}`, ''];
  // the tables show one row per server and load: its median round (bench/rounds.ts)
  const runs = mergeRounds(allRounds);
  lines.push(...(kind === 'idle' ? idleTable(runs) : kind === 'bulk' ? bulkTable(runs, baseline) : wrkTable(s, runs, baseline)));
  if (s.loads.some((l) => l.kind === 'rate')) lines.push('', ...rateTable(runs));
  if (s.loads.some((l) => l.kind === 'wrk' && l.statusPoll === true)) lines.push('', ...statusCostLines(runs));
  const rounds = allRounds.some((r) => (r.round ?? 1) > 1);
  // warnings per round: a busy start or a failure in one round is that round's, not the row's
  for (const r of allRounds) {
    if ((r.machineBusyBefore ?? 0) > BUSY_WARNING)
      lines.push(
        `- ⚠ ${r.server}${inRound(r, rounds)}: the machine was ${Math.round(r.machineBusyBefore! * 100)}% busy (all CPUs) in the` +
          ' second before it started: other work competed with this run; its figures are suspect.',
      );
    if (r.status === 'skipped') lines.push(`- ${r.server}: skipped (${r.reason})`);
    if (r.status === 'failed') lines.push(`- **${r.server}${inRound(r, rounds)}: FAILED** (${r.reason}); log: ${r.logFile}`);
    if (r.stop && r.stop.unreaped.length > 0)
      lines.push(`- **${r.server}: could not reap PIDs ${r.stop.unreaped.join(', ')}**`);
  }
  return `${lines.join('\n')}\n`;
}

/** Servers that are a limit to compare with (raw Node.js, discarding or spooling, nginx, web2py with no HTTP), not a peer to beat. */
export const LIMITS = ['node', 'node-spool', 'nginx', 'ceiling'];
/** The seed: what web2py users run today with web2py_on_gevent.py. */
export const SEED = 'gevent';

/** Servers of this project other than the baseline (ours-thread...): neither peer nor limit. */
const isOurs = (name: string, baseline: string): boolean => name === baseline || name.startsWith('ours');

export interface Comparison {
  scenario: string;
  load: string;
  /** The baseline's req/s, or MB/s for a bulk load (`unit`): its median round's when it ran in rounds. */
  baseRate: number;
  /** Over its rounds, when it ran more than one. */
  baseSpread?: RoundSpread;
  unit: RateUnit;
  /** NaN where there is no latency (bulk loads). */
  baseP99Ms: number;
  /** The baseline's µs of CPU per request (its whole tree), null where not measured (bulk, idle). */
  baseCpuUs: number | null;
  /** Of that, the front processes' share (ours: the roles' `fronts`), null for a server without roles. */
  baseFrontUs: number | null;
  /** server -> baseline rate ÷ its rate. */
  ratios: Map<string, number>;
  /** Servers (the baseline included) that started on a busy machine: their figures are suspect. */
  busy: Set<string>;
  seed: number | null;
  best: { server: string; rate: number; spread?: RoundSpread } | null;
  limit: { server: string; rate: number; spread?: RoundSpread } | null;
}

/** Per scenario and load: the baseline's req/s (MB/s) against every other server's, the seed's, the best peer's. */
export function comparisons(scenarios: Scenario[], runs: ServerRun[], baseline: string): Comparison[] {
  const out: Comparison[] = [];
  const merged = mergeRounds(runs); // every figure from the median rounds
  for (const s of scenarios) {
    const ok = merged.filter((r) => r.scenario === s.name && r.status === 'ok');
    const base = ok.find((r) => r.server === baseline);
    for (const b of base?.loads ?? []) {
      const own = rateOf(b);
      if (!own) continue;
      // a bulk load's CPU is per GiB (its own table), not per request
      const cpu = b.kind === 'bulk' ? undefined : b.cpu;
      const c: Comparison = {
        scenario: s.name, load: b.load, baseRate: own.rate, ...(b.spread ? { baseSpread: b.spread } : {}), unit: own.unit, baseP99Ms: b.wrk?.p99Ms ?? NaN, baseCpuUs: cpu?.total.usPerRequest ?? null,
        baseFrontUs: cpu?.roles?.fronts.usPerRequest ?? null,
        ratios: new Map(), busy: new Set(), seed: null, best: null, limit: null,
      };
      for (const run of ok) {
        if ((run.machineBusyBefore ?? 0) > BUSY_WARNING) c.busy.add(run.server);
        if (run.server === baseline) continue;
        const load = run.loads.find((l) => l.load === b.load);
        const rate = rateOf(load)?.rate;
        if (!rate) continue;
        c.ratios.set(run.server, own.rate / rate);
        if (run.server === SEED) c.seed = own.rate / rate;
        const it = { server: run.server, rate, ...(load?.spread ? { spread: load.spread } : {}) };
        if (LIMITS.includes(run.server)) {
          if (!c.limit || rate > c.limit.rate) c.limit = it;
        } else if (!isOurs(run.server, baseline) && (!c.best || rate > c.best.rate)) c.best = it;
      }
      out.push(c);
    }
  }
  return out;
}

/** The closing note: per scenario, the baseline against the seed, the best peer, the limit. */
export function summaryReport(scenarios: Scenario[], runs: ServerRun[], baseline: string): string {
  const lines = [
    `### Summary: ${baseline} against the seed (${SEED}) and the best peer`,
    '',
    `| scenario | load | ${baseline} req/s | ${baseline} p99 ms | ${baseline} CPU µs/req | front µs/req | ÷ seed | best peer (req/s) | ÷ best peer | limit (req/s) | ÷ limit |`,
    '|---|---|---:|---:|---:|---:|---:|---|---:|---|---:|',
  ];
  let bytes = false;
  let spreads = false;
  const n0 = (v: number): string => num(v, 0);
  for (const c of comparisons(scenarios, runs, baseline)) {
    const x = (v: number | null | undefined): string => (v ? `${num(v, 2)}×` : '-');
    // bulk rows: MB/s, said in every cell so no one reads them as req/s
    const unit = c.unit === 'MB/s' ? ' MB/s' : '';
    bytes ||= c.unit === 'MB/s';
    spreads ||= (c.baseSpread?.measured ?? 0) > 1;
    // "uwsgi (14,358 MB/s; 13,901–15,002)": the other server's median and, over rounds, its min–max
    const other = (o: Comparison['best']): string =>
      o ? `${o.server} (${n0(o.rate)}${unit}${o.spread && o.spread.measured > 1 ? `; ${n0(o.spread.min)}–${n0(o.spread.max)}` : ''})` : '-';
    lines.push(
      `| ${c.scenario} | ${c.load} | ${spreadText(c.baseRate, c.baseSpread, n0)}${unit} | ${num(c.baseP99Ms, 2)} | ${num(c.baseCpuUs, 1)} | ${num(c.baseFrontUs, 1)} | ${x(c.seed)}` +
        ` | ${other(c.best)} | ${x(c.best && c.baseRate / c.best.rate)}` +
        ` | ${other(c.limit)} | ${x(c.limit && c.baseRate / c.limit.rate)} |`,
    );
  }
  for (const run of mergeRounds(runs).filter((r) => r.server === baseline && r.status === 'ok')) {
    for (const r of run.loads) {
      if (r.rate)
        lines.push(
          '',
          `${run.scenario}: offered ${num(r.rate.offeredRps, 0)} req/s, ${baseline} admitted ${num(r.rate.admittedRps, 0)} req/s` +
            ` with p99 ${num(r.rate.okP99Ms, 1)} ms and answered ${num(r.rate.rejectedShare * 100, 1)}% with 503` +
            ` (p99 ${num(r.rate.rejectP99Ms, 1)} ms).`,
        );
      if (r.idle)
        lines.push(
          '',
          `${run.scenario}: ${baseline} held ${r.idle.held} of ${r.idle.asked} idle connections (${r.idle.heldLater} ${r.idle.holdS} s later),` +
            ` ${kB(r.idle.bytesPerConnLater)} kB each in the front after ${r.idle.holdS} s idle` +
            ` (${kB(r.idle.bytesPerConn)} kB right after the connection storm).`,
        );
    }
  }
  lines.push('', '÷: req/s of ' + baseline + (bytes ? ' (MB/s for bulk rows)' : '') + ' divided by the other\'s at the same load (> 1: ' + baseline + ' is faster).' +
    (spreads
      ? ' Where a scenario ran in rounds (each server started afresh in each, the order alternating), every figure is the' +
        ' median round\'s and the ratios are of medians; "a–b" is the min–max over the rounds (the tables below say which servers ran once).'
      : ''));
  return `${lines.join('\n')}\n`;
}
