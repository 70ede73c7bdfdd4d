/**
 * @module bench/cpu
 * CPU per request: the server's processes are sampled from /proc just before and just after
 * each load that counts requests, and the CPU they used in between is divided by the requests
 * answered. Ours is a process tree with roles (the PID started is the primary: it binds and
 * supervises, parses no client bytes; its children are the fronts, which speak HTTP; their
 * descendants are the Python workers), so its figure is split by role; the primary's should be
 * about 0. A peer gets one figure for its whole tree (its session and what descends from it).
 *
 * Per process, on-CPU time comes from each thread's /proc/PID/task/TID/schedstat (first field,
 * ns), the delta taken per thread. A thread that exits during the load takes its time with it
 * there, so utime + stime of /proc/PID/stat (clock ticks, the whole thread group, dead threads
 * included) is read as well, and used instead when it shows more than two ticks beyond the
 * threads' sum. A process born during the load counts whole; one gone by the end is lost (its
 * count is kept in `exited`).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { serverProcesses } from './proc.js';
import { appCallFigures, sampleAppCpu, type AppCallFigures, type AppCpuSample } from './app-cpu.js';
import { cpuJiffies } from './machine.js';

/** Clock ticks per second of /proc/PID/stat's utime and stime (`getconf CLK_TCK`, 100 nearly everywhere). */
export const CLK_TCK = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();
const NS_PER_TICK = 1e9 / CLK_TCK;

export type Role = 'primary' | 'fronts' | 'workers';

interface ProcSample {
  ppid: number;
  /** Field 22 of stat (start time in ticks since boot): a reused PID is another process. */
  start: number;
  /** utime + stime, clock ticks, the whole thread group. */
  ticks: number;
  /** tid -> ns on CPU; null when schedstat cannot be read here. */
  threads: Map<number, number> | null;
}

/** The server's processes at one moment. */
export type TreeSample = Map<number, ProcSample>;

function readStat(pid: number): { ppid: number; start: number; ticks: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after comm (field 2, which may hold spaces): index 0 is field 3 (state)
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(f[1]);
    const ticks = Number(f[11]) + Number(f[12]); // fields 14 and 15
    const start = Number(f[19]); // field 22
    return Number.isFinite(ticks) ? { ppid, start, ticks } : null;
  } catch {
    return null;
  }
}

function readThreads(pid: number): Map<number, number> | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const out = new Map<number, number>();
  for (const tid of tids) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      if (Number.isFinite(ns)) out.set(Number(tid), ns);
    } catch {
      /* the thread exited meanwhile: stat's ticks cover it */
    }
  }
  return out.size > 0 ? out : null;
}

/** Every live process of the server started as `pid` (see {@link serverProcesses}), with its CPU so far. */
export function sampleTree(pid: number): TreeSample {
  const out: TreeSample = new Map();
  for (const p of serverProcesses(pid)) {
    const st = readStat(p);
    if (st) out.set(p, { ...st, threads: readThreads(p) });
  }
  return out;
}

/** ns on CPU between two samples of one process (`before` null: born since). */
function cpuNs(before: ProcSample | null, after: ProcSample): { ns: number; fromTicks: boolean } {
  const dTicks = (after.ticks - (before?.ticks ?? 0)) * NS_PER_TICK;
  if (!after.threads) return { ns: dTicks, fromTicks: true };
  let sched = 0;
  for (const [tid, ns] of after.threads) sched += ns - (before?.threads?.get(tid) ?? 0);
  // more than two ticks (truncation at both ends) beyond the threads' sum: threads exited
  return dTicks - sched > 2 * NS_PER_TICK ? { ns: dTicks, fromTicks: true } : { ns: sched, fromTicks: false };
}

export interface RoleCpu {
  /** CPU used during the load, ms, summed over the role's processes. */
  cpuMs: number;
  /** µs of CPU per answered request. */
  usPerRequest: number | null;
  /** Processes of the role at the end of the load. */
  processes: number;
}

export interface CpuFigures {
  /** Requests answered during the load (the load tool's count plus the newcomer probe's answers). */
  requests: number;
  /** Wall-clock seconds between the two samples. */
  seconds: number;
  /** The whole server tree. */
  total: RoleCpu;
  /** Ours only: the primary (the PID started), its children (fronts), their descendants (workers). */
  roles?: Record<Role, RoleCpu>;
  /**
   * Ours: the primary's main thread alone (its event loop; the rest of the primary's figure is V8's
   * and libuv's helper threads), ms; null when not read from schedstat.
   */
  primaryMainThreadMs?: number | null;
  /**
   * The whole machine over the same window (/proc/stat, all CPUs, clock ticks): busy CPU, ms.
   * Less the server's own CPU, it is the load generator's, the kernel's outside the server's
   * threads (softirq network work lands on whichever thread is running) and anything else.
   */
  machineBusyMs?: number;
  /** Ours in the web2py scenarios: the application's own calls in the workers (bench/app_cpu.py). */
  appCall?: AppCallFigures | null;
  /** Processes that were read from utime+stime (threads exited during the load), not schedstat. */
  fromTicks: number;
  /** Processes gone by the end of the load: their CPU during it is missing. */
  exited: number;
  clkTck: number;
}

/**
 * A load's CPU: samples when made (just before the load), then {@link CpuMeter.stop} just after it;
 * what stop returns divides by the requests answered, once they are known.
 */
export class CpuMeter {
  private readonly before: TreeSample;
  private readonly t0 = performance.now();
  private readonly machineBefore = cpuJiffies();
  private readonly appBefore: AppCpuSample;

  constructor(
    private readonly pid: number,
    private readonly withRoles: boolean,
  ) {
    this.before = sampleTree(pid);
    this.appBefore = sampleAppCpu(this.before.keys());
  }

  /** Role of a live process: the PID started, its children, anything below them. */
  private role(p: number, after: TreeSample): Role {
    if (p === this.pid) return 'primary';
    return (after.get(p) ?? this.before.get(p))?.ppid === this.pid ? 'fronts' : 'workers';
  }

  stop(): (requests: number) => CpuFigures {
    const after = sampleTree(this.pid);
    const machineAfter = cpuJiffies();
    const appCall = appCallFigures(this.appBefore, sampleAppCpu(after.keys()));
    const seconds = (performance.now() - this.t0) / 1000;
    const busyTicks = (j: { total: number; idle: number }): number => j.total - j.idle;
    const machineBusyMs = this.machineBefore && machineAfter
      ? ((busyTicks(machineAfter) - busyTicks(this.machineBefore)) * 1000) / CLK_TCK
      : undefined;
    const ns: Record<Role | 'total', number> = { primary: 0, fronts: 0, workers: 0, total: 0 };
    const count: Record<Role | 'total', number> = { primary: 0, fronts: 0, workers: 0, total: 0 };
    let fromTicks = 0;
    for (const [p, a] of after) {
      const b = this.before.get(p);
      const c = cpuNs(b && b.start === a.start ? b : null, a);
      if (c.fromTicks) fromTicks++;
      const role = this.role(p, after);
      ns[role] += c.ns;
      ns.total += c.ns;
      count[role]++;
      count.total++;
    }
    // the primary's main thread (tid = pid), from schedstat
    const pb = this.before.get(this.pid)?.threads?.get(this.pid);
    const pa = after.get(this.pid)?.threads?.get(this.pid);
    const primaryMainThreadMs = pb !== undefined && pa !== undefined ? (pa - pb) / 1e6 : null;
    let exited = 0;
    for (const [p, b] of this.before) if (after.get(p)?.start !== b.start) exited++;
    return (requests) => {
      const fig = (r: Role | 'total'): RoleCpu => ({
        cpuMs: ns[r] / 1e6,
        usPerRequest: requests > 0 ? ns[r] / 1e3 / requests : null,
        processes: count[r],
      });
      return {
        requests, seconds, total: fig('total'),
        ...(this.withRoles ? { roles: { primary: fig('primary'), fronts: fig('fronts'), workers: fig('workers') }, primaryMainThreadMs } : {}),
        ...(machineBusyMs === undefined ? {} : { machineBusyMs }),
        ...(appCall ? { appCall } : {}),
        fromTicks, exited, clkTck: CLK_TCK,
      };
    };
  }
}
