/**
 * @module bench/bulk
 * The large upload/download load: a client process (bench/bulk-client.ts) moves the bodies
 * while this process samples the server's memory from /proc every 100 ms: the RSS of the PID we
 * started (the front: for ours the Node.js process; for gunicorn and uWSGI their master) and of
 * its other processes (the workers: the rest of its session, and what it started in sessions of
 * their own, as ours does), summed at each sample. Each process's peak RSS (VmHWM) is also reset
 * before the load (/proc/PID/clear_refs) and read after it, so a spike between two samples still
 * shows in the per-process peaks.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync, openSync, writeSync, closeSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientResult, ConnResult, Transfer } from './bulk-client.js';
import { rssKb, serverProcesses, trackHelper } from './proc.js';
import type { BulkLoad } from './scenarios.js';
import { BENCH_DIR, REPO_ROOT } from './servers.js';

export interface BulkMemory {
  /** Before the load (at rest): the front, and the workers summed. */
  frontRestKb: number;
  workersRestKb: number;
  /** Highest sample of the front, or its VmHWM since the reset if higher. */
  frontPeakKb: number;
  /** Highest sum over the workers at one sample (null: the server has no other process). */
  workersPeakKb: number | null;
  /** Highest single worker: samples or VmHWM since the reset. */
  workerMaxPeakKb: number | null;
  /** Worker processes seen during the load. */
  workers: number;
  samples: number;
}

export interface BulkFigures {
  transfer: Transfer;
  conns: number;
  bytesPerConn: number;
  /** Bytes asked over all connections. */
  bytes: number;
  /** Bytes moved and confirmed (received, or read by the app). */
  moved: number;
  seconds: number;
  /** 10^6 bytes per second over the whole load; null when any connection failed. */
  mbps: number | null;
  /** One line per distinct failure, with how many connections had it. */
  errors: string[];
  /** /file: what X-File-Wrapper said (the first connection that answered). */
  fileWrapper: string | null;
  /** Uploads: how the app got the body (see bench/apps/bulk.py). */
  how: string | null;
  memory: BulkMemory;
}

const SAMPLE_MS = 100;
const CHUNK = 64 * 1024;

/** The name bulk.py and node_bulk.mjs give the n-byte file of /file, in `dir`. */
export const bulkFileName = (dir: string, n: number): string => join(dir, `w2n-bench-bulk-${n}.bin`);

/** Write the n-byte file of /file beforehand, so no server pays for making it. */
export function makeBulkFile(dir: string, n: number): void {
  const path = bulkFileName(dir, n);
  if (existsSync(path) && statSync(path).size === n) return;
  const block = Buffer.alloc(CHUNK, 0x78);
  const tmp = `${path}.${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    for (let left = n; left > 0; left -= CHUNK) writeSync(fd, block, 0, Math.min(CHUNK, left));
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function hwmKb(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Reset a process's VmHWM to its current RSS ("5" > clear_refs); false where the kernel refuses. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Samples the server's RSS until stopped. */
class MemorySampler {
  private readonly timer: NodeJS.Timeout;
  private readonly workerPids = new Set<number>();
  private readonly peakReset: boolean;
  readonly m: BulkMemory;
  constructor(private readonly front: number) {
    const workers = serverProcesses(front).filter((p) => p !== front);
    this.peakReset = [front, ...workers].map(resetPeak).every(Boolean);
    const workersRestKb = workers.reduce((sum, p) => sum + rssKb(p), 0);
    this.m = {
      frontRestKb: rssKb(front), workersRestKb, frontPeakKb: 0,
      workersPeakKb: null, workerMaxPeakKb: null, workers: 0, samples: 0,
    };
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
  }
  private sample(): void {
    const m = this.m;
    m.samples++;
    m.frontPeakKb = Math.max(m.frontPeakKb, rssKb(this.front));
    let sum = 0;
    let any = false;
    for (const pid of serverProcesses(this.front)) {
      if (pid === this.front) continue;
      const kb = rssKb(pid);
      this.workerPids.add(pid);
      sum += kb;
      any = true;
      m.workerMaxPeakKb = Math.max(m.workerMaxPeakKb ?? 0, kb);
    }
    if (any) m.workersPeakKb = Math.max(m.workersPeakKb ?? 0, sum);
  }
  finish(): BulkMemory {
    clearInterval(this.timer);
    this.sample();
    const m = this.m;
    m.workers = this.workerPids.size;
    if (this.peakReset) {
      m.frontPeakKb = Math.max(m.frontPeakKb, hwmKb(this.front));
      for (const pid of this.workerPids) m.workerMaxPeakKb = Math.max(m.workerMaxPeakKb ?? 0, hwmKb(pid));
    }
    return m;
  }
}

/** Run the client once; its JSON line, or throws with its stderr. */
function client(port: number, transfer: Transfer, perConn: number, conns: number, timeoutS: number): Promise<ClientResult> {
  const argv = ['--import', 'tsx', join(BENCH_DIR, 'bulk-client.ts'), String(port), transfer, String(perConn), String(conns), String(timeoutS)];
  const child = spawn('node', argv, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  trackHelper(child);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  return new Promise((resolve, reject) => {
    child.on('close', (code, signal) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as ClientResult);
      } catch {
        reject(new Error(`bulk client exited (${code ?? signal}) without figures: ${err.trim().slice(-300)}`));
      }
    });
  });
}

/** Bytes per connection of a load of `total` bytes over `conns` connections (whole bytes, equal shares). */
export const perConnBytes = (total: number, conns: number): number => Math.max(1, Math.floor(total / conns));

const mibNum = (n: number): string => (n / 1024 ** 2).toFixed(n % 1024 ** 2 === 0 ? 0 : 1);

/**
 * One line per kind of failure: "3/4: write ECONNRESET (sent 0.1–0.3 of 64 MiB)", with how far
 * those connections got (received, or sent for an upload).
 */
function groupErrors(conns: ConnResult[]): string[] {
  const groups = new Map<string, ConnResult[]>();
  for (const c of conns) if (c.error) groups.set(c.error, [...(groups.get(c.error) ?? []), c]);
  return [...groups].map(([error, cs]) => {
    const isUpload = cs[0]!.sent !== undefined;
    const got = cs.map((c) => c.sent ?? c.moved);
    const lo = Math.min(...got);
    const hi = Math.max(...got);
    const range = lo === hi ? mibNum(lo) : `${mibNum(lo)}–${mibNum(hi)}`;
    return `${cs.length}/${conns.length}: ${error} (${isUpload ? 'sent' : 'received'} ${range} of ${mibNum(cs[0]!.asked)} MiB)`;
  });
}

/** Slower than this, a load is cut short and reported as a timeout (the run must stay bounded). */
const SLOWEST_MBPS = 10;

export async function runBulk(load: BulkLoad, port: number, totalBytes: number, serverPid: number): Promise<BulkFigures> {
  const perConn = perConnBytes(totalBytes, load.conns);
  const bytes = perConn * load.conns;
  const timeoutS = Math.ceil(10 + bytes / (SLOWEST_MBPS * 1e6));
  const sampler = new MemorySampler(serverPid);
  let result: ClientResult;
  let memory: BulkMemory;
  try {
    result = await client(port, load.transfer, perConn, load.conns, timeoutS);
    await sleep(SAMPLE_MS); // one more sample after the answers: buffers freed late still count
  } finally {
    memory = sampler.finish();
  }
  const errors = groupErrors(result.conns);
  const moved = result.conns.reduce((sum, c) => sum + c.moved, 0);
  return {
    transfer: load.transfer, conns: load.conns, bytesPerConn: perConn, bytes, moved,
    seconds: result.seconds,
    mbps: errors.length === 0 && result.seconds > 0 ? moved / 1e6 / result.seconds : null,
    errors,
    fileWrapper: result.conns.find((c) => c.fileWrapper !== undefined)?.fileWrapper ?? null,
    how: result.conns.find((c) => c.how !== undefined)?.how ?? null,
    memory,
  };
}

/** A few MiB of each transfer, figures discarded: imports, first allocations, JIT. */
export async function warmUpBulk(loads: BulkLoad[], port: number, bytesPerConn: number): Promise<void> {
  for (const load of loads) await client(port, load.transfer, bytesPerConn, load.conns, 30).catch(() => undefined);
}
