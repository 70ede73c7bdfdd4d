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

/** Ratio cell: baseline req/s ÷ this server's, so "≥ 1.5" reads straight against the goals. */
function ratioCell(baseRps: number | undefined, rps: number | undefined): string {
  if (!baseRps || !rps) return '-';
  return `${num(baseRps / rps, 2)}×`;
}

function wrkTable(s: Scenario, runs: ServerRun[], baseline: string): string[] {
  const base = runs.find((r) => r.server === baseline && r.status === 'ok');
  const out = [
    `| server | load | req/s | ${baseline} ÷ it | p50 ms | p99 ms | errors | newcomer ms (median / max) | unanswered | accept queue (max, time) |`,
    '|---|---|---:|---:|---:|---:|---|---:|---:|---|',
  ];
  let closes = false;
  let littles = false;
  let storms = false;
  for (const run of runs.filter((r) => r.status === 'ok')) {
    for (const r of run.loads) {
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
        `| ${run.server} | ${r.load} | ${num(w?.rps, 0)} | ${ratioCell(baseRps, w?.rps)} | ${num(w?.p50Ms, 2)}` +
          ` | ${num(w?.p99Ms, 2)} | ${errorsCell(r)}${mark} | ${times} | ${unanswered} | ${queueCell(r)} |`,
      );
    }
  }
  const notes = [
    '',
    `${baseline} ÷ it: the req/s of ${baseline} divided by this server's at the same load (> 1: ${baseline} is faster).` +
      (base ? '' : ` **${baseline} did not run: no ratios.**`),
    'wrk -t1 keep-alive; errors: wrk counts status >= 400 as "status"; answers slower than the wrk' +
      ' timeout count as "timeout", not in p99.',
    'newcomer: a GET on a fresh connection every 0.5 s during the load; unanswered = no answer' +
      ' within 2 s (starved). wrk cannot see connections a server never serves; this can.',
  ];
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

function idleTable(runs: ServerRun[]): string[] {
  const out = [
    '| server | asked | answered | held | held after | client open after | front RSS MB before → after | front B/conn | session B/conn |',
    '|---|---:|---:|---:|---:|---:|---|---:|---:|',
  ];
  let holdS = 10;
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
          ` | ${i.clientLater?.open ?? '?'} | ${mb(i.frontRssBeforeKb)} → ${mb(i.frontRssAfterKb)}` +
          ` | ${num(i.bytesPerConn, 0)} | ${num(i.sessionBytesPerConn, 0)} |`,
      );
    }
  }
  return [
    ...out,
    '',
    `held = connection sockets the server's processes hold (/proc/PID/fd) once the connects settle;` +
      ` "after" = ${holdS} s later. front = the PID started (for ours, the Node.js front only);` +
      ' session = all its processes. B/conn only when it held at least a fifth of those asked.',
  ];
}

export function scenarioReport(s: Scenario, runs: ServerRun[], baseline: string): string {
  const lines = [`### ${s.name}: ${s.about}, GET ${s.path}`, ''];
  lines.push(...(s.loads[0]?.kind === 'idle' ? idleTable(runs) : wrkTable(s, runs, baseline)));
  for (const r of runs) {
    if ((r.machineBusyBefore ?? 0) > BUSY_WARNING)
      lines.push(
        `- ⚠ ${r.server}: the machine was ${Math.round(r.machineBusyBefore! * 100)}% busy (all CPUs) in the` +
          ' second before it started: other work competed with this run; its figures are suspect.',
      );
    if (r.status === 'skipped') lines.push(`- ${r.server}: skipped (${r.reason})`);
    if (r.status === 'failed') lines.push(`- **${r.server}: FAILED** (${r.reason}); log: ${r.logFile}`);
    if (r.stop && r.stop.unreaped.length > 0)
      lines.push(`- **${r.server}: could not reap PIDs ${r.stop.unreaped.join(', ')}**`);
  }
  return `${lines.join('\n')}\n`;
}
