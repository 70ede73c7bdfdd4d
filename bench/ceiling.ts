/**
 * @module bench/ceiling
 * The web2py scenario's limit: the same number of Python processes as the servers run, each
 * calling `gluon.main.wsgibase` in a loop with a wrk-like environ and no HTTP at all
 * (bench/web2py_ceiling.py), same interpreter, same cores, same run. Its figures come back in
 * wrk's shape so the tables and the summary set ours against it like any limit ("÷ limit");
 * its p50/p99 are the time of one call (no queue, no connection), and its CPU is what the
 * processes themselves measured over the timed window (time.process_time).
 */
import type { CpuFigures } from './cpu.js';
import type { LoadResult } from './results.js';
import { runCollect, type WrkFigures } from './wrk.js';

interface Raw {
  processes: number; requests: number; seconds: number; rps: number; cpuS: number;
  p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number; meanMs: number;
}

/**
 * One measured window of the driver (`command`: its argv from servers.ts, less the timing), as a
 * wrk load's result labelled `label`, so the ratios pair it with the servers' load of that label.
 */
export async function runCeiling(command: string[], path: string, label: string, durationS: number, warmupS: number): Promise<LoadResult> {
  const argv = [...command, '--path', path, '--duration', String(durationS), '--warmup', String(warmupS)];
  const r: LoadResult = { load: label, kind: 'wrk', conns: 0, durationS, serverAlive: true };
  // the web2py import takes seconds on a busy machine: a generous bound
  const { code, out } = await runCollect(argv, (durationS + warmupS + 120) * 1000);
  const m = /^CEILING_JSON (.*)$/m.exec(out);
  if (!m?.[1]) {
    r.error = `the ceiling driver gave no figures (exit ${code}): ${out.trim().slice(-300)}`;
    return r;
  }
  const x = JSON.parse(m[1]) as Raw;
  const wrk: WrkFigures = {
    requests: x.requests, durationS: x.seconds, rps: x.rps,
    p50Ms: x.p50Ms, p90Ms: x.p90Ms, p99Ms: x.p99Ms, maxMs: x.maxMs, meanMs: x.meanMs,
    errors: { connect: 0, read: 0, write: 0, status: 0, timeout: 0 },
    busyConns: (x.rps * x.meanMs) / 1000,
    closesEveryConnection: false,
  };
  const cpuMs = x.cpuS * 1000;
  const cpu: CpuFigures = {
    requests: x.requests, seconds: x.seconds,
    total: { cpuMs, usPerRequest: x.requests > 0 ? (cpuMs * 1000) / x.requests : null, processes: x.processes },
    fromTicks: 0, exited: 0, clkTck: 0,
  };
  return { ...r, conns: x.processes, wrk, cpu };
}
