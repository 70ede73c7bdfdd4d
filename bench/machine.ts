/**
 * @module bench/machine
 * A description of the machine and tools, stored with every run: figures from different
 * machines or versions are not comparable, so the JSON must say where they came from.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { PY, firstLine } from './servers.js';

export interface Machine {
  cpuModel: string;
  cores: number;
  memTotalMb: number;
  kernel: string;
  os: string;
  hostname: string;
  node: string;
  python: string | null;
  wrk: string | null;
  /** Soft/hard open-file limits of the bench process (children raise theirs to the hard one). */
  nofile: string | null;
  somaxconn: string | null;
}

function readOr(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

export async function describeMachine(): Promise<Machine> {
  const cpuinfo = readOr('/proc/cpuinfo') ?? '';
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? '?';
  const [python, wrk, nofile] = await Promise.all([
    firstLine(PY, ['--version']),
    firstLine('wrk', ['-v'], true), // prints its version then usage, and exits 1
    firstLine('bash', ['-c', 'echo "$(ulimit -Sn)/$(ulimit -Hn)"']),
  ]);
  return {
    cpuModel: model.trim(),
    cores: os.cpus().length,
    memTotalMb: Math.round(os.totalmem() / 2 ** 20),
    kernel: os.release(),
    os: `${os.type()} ${os.arch()}`,
    hostname: os.hostname(),
    node: process.version,
    python,
    wrk,
    nofile,
    somaxconn: readOr('/proc/sys/net/core/somaxconn'),
  };
}

/** Above this share of busy CPU while no server of ours runs, the machine is not quiet. */
export const BUSY_WARNING = 0.15;

/** Total and idle jiffies (clock ticks) over all CPUs, from the first line of /proc/stat. */
export function cpuJiffies(): { total: number; idle: number } | null {
  const line = readOr('/proc/stat')?.split('\n')[0];
  if (!line?.startsWith('cpu ')) return null;
  const v = line.split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  return { total: v.reduce((a, b) => a + b, 0), idle };
}

/**
 * Fraction of all CPUs busy over the next `ms`, measured while no server of ours runs: other
 * work on the machine (someone else's tests or benchmarks) competes with the server and wrk
 * and skews every figure, so each run records how quiet the machine was just before it.
 */
export async function cpuBusyFraction(ms = 1000): Promise<number | null> {
  const a = cpuJiffies();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuJiffies();
  if (!a || !b || b.total === a.total) return null;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}
