/**
 * @module bench/wrk
 * Run wrk (keep-alive, one thread) with a Lua done() hook that prints one JSON line, and turn
 * it into figures. wrk -t1 as in peerbench: on a 2-core machine the load generator competes
 * with the server for CPU, and one wrk thread keeps that share small and constant.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_DIR } from './servers.js';
import { trackHelper, withNofile } from './proc.js';

export interface WrkErrors {
  connect: number;
  read: number;
  write: number;
  /** Status >= 400 (wrk's own rule for "Non-2xx or 3xx"). */
  status: number;
  timeout: number;
}

export interface WrkFigures {
  requests: number;
  durationS: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  errors: WrkErrors;
  /**
   * Little's law: req/s × mean latency = connections busy on average. Above the connection
   * count, wrk's latency figures are not self-consistent (seen with connection storms).
   */
  busyConns: number;
  /**
   * The server closed after (nearly) every answer without saying so: wrk counts one read error
   * per request and reconnects. The answers were fine; there is no keep-alive.
   */
  closesEveryConnection: boolean;
}

interface Raw {
  requests: number; duration_us: number; connect: number; read: number; write: number;
  timeout: number; status: number; p50_us: number; p90_us: number; p99_us: number;
  max_us: number; mean_us: number;
}

/** Run a command to completion (killed by PID if it overruns), collecting stdout and stderr. */
export function runCollect(argv: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    if (!cmd) return reject(new Error('empty command'));
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    trackHelper(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** wrk argv; `report` adds the JSON hook (the warm-up does without). */
function wrkArgv(url: string, conns: number, durationS: number, timeoutS: number, report: boolean): string[] {
  const argv = ['wrk', '-t1', `-c${conns}`, `-d${durationS}s`, `--timeout`, `${timeoutS}s`];
  if (report) argv.push('-s', join(BENCH_DIR, 'wrk_report.lua'));
  return withNofile([...argv, url]);
}

/** Warm-up: load without measuring (JIT, caches, worker spawn-on-demand). */
export async function warmUp(url: string, conns: number, durationS: number): Promise<void> {
  await runCollect(wrkArgv(url, conns, durationS, 30, false), (durationS + 40) * 1000);
}

export async function runWrk(url: string, conns: number, durationS: number, timeoutS: number): Promise<WrkFigures> {
  const { code, out } = await runCollect(wrkArgv(url, conns, durationS, timeoutS, true), (durationS + 30) * 1000);
  const m = /^BENCH_JSON (.*)$/m.exec(out);
  if (!m?.[1]) throw new Error(`wrk gave no report (exit ${code}): ${out.trim().slice(0, 300)}`);
  const r = JSON.parse(m[1]) as Raw;
  const durS = r.duration_us / 1e6;
  const rps = durS > 0 ? r.requests / durS : 0;
  return {
    requests: r.requests,
    durationS: durS,
    rps,
    p50Ms: r.p50_us / 1000,
    p90Ms: r.p90_us / 1000,
    p99Ms: r.p99_us / 1000,
    maxMs: r.max_us / 1000,
    meanMs: r.mean_us / 1000,
    errors: { connect: r.connect, read: r.read, write: r.write, status: r.status, timeout: r.timeout },
    busyConns: (rps * r.mean_us) / 1e6,
    closesEveryConnection: r.requests > 0 && r.read >= 0.9 * r.requests,
  };
}
