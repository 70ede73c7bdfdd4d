/**
 * @module bench/app-cpu
 * The web2py scenarios' split of ours' worker CPU: what the application's own calls used, read
 * from the files bench/app_cpu.py keeps per worker process (`calls app_cpu_ns`, rewritten at most
 * every 100 ms), just before and just after a load. The per-call figure is exact for the calls
 * between the two reads, whichever window they fall in.
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where bench/app_cpu.py writes (Python's tempfile.gettempdir() and Node's tmpdir() both follow TMPDIR). */
export const APP_CPU_DIR = join(tmpdir(), 'w2n-bench-app-cpu');

/** At the start of a run: files of earlier runs' workers would pair with a reused PID. */
export function clearAppCpu(): void {
  rmSync(APP_CPU_DIR, { recursive: true, force: true });
}

/** Per process: application calls so far and their CPU, ns. */
export type AppCpuSample = Map<number, { calls: number; ns: number }>;

export function sampleAppCpu(pids: Iterable<number>): AppCpuSample {
  const out: AppCpuSample = new Map();
  for (const pid of pids) {
    let text: string;
    try {
      text = readFileSync(join(APP_CPU_DIR, String(pid)), 'utf8');
    } catch {
      continue; // not a timed worker (another server, another scenario)
    }
    const [calls, ns] = text.trim().split(' ').map(Number);
    if (Number.isFinite(calls) && Number.isFinite(ns)) out.set(pid, { calls: calls!, ns: ns! });
  }
  return out;
}

export interface AppCallFigures {
  /** Application calls between the two reads, all workers. */
  calls: number;
  /** Their CPU (thread time), µs per call. */
  usPerCall: number;
}

/** The calls made between `before` and `after`, or null when no worker was timed. */
export function appCallFigures(before: AppCpuSample, after: AppCpuSample): AppCallFigures | null {
  let calls = 0;
  let ns = 0;
  for (const [pid, a] of after) {
    const b = before.get(pid) ?? { calls: 0, ns: 0 };
    calls += a.calls - b.calls;
    ns += a.ns - b.ns;
  }
  return calls > 0 ? { calls, usPerCall: ns / 1e3 / calls } : null;
}
