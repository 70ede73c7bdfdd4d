/**
 * @module bench/proc
 * Process plumbing for the bench: start a server in its own session, find every process of
 * that session from /proc, read memory and socket counts, wait for readiness, and stop it by
 * PID. Everything is scoped to the session we created, so nothing else on the machine is
 * ever signalled (no pkill by name).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Open-file limit asked for every child (servers, wrk, idle client); capped by the hard limit. */
export const NOFILE = 65536;

/**
 * Wrap argv so it runs with a raised `ulimit -n`: Node cannot call setrlimit itself. `exec`
 * keeps the PID, so the PID we hold is the real server, not a shell. The hard limit may be
 * below NOFILE (it is 20000 on the project machine), hence the fallback.
 */
export function withNofile(argv: string[], nofile = NOFILE): string[] {
  const script = `ulimit -n ${nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  return ['bash', '-c', script, 'bash', ...argv];
}

/**
 * Load generators and clients running right now (wrk, the idle client): on Ctrl-C the runner
 * kills these by PID along with the server, so nothing outlives the bench.
 */
const helpers = new Set<ChildProcess>();
/** Set by {@link killHelpers}: the bench is going away, so no new helper may run. */
let closing = false;

export const isClosing = (): boolean => closing;

/** Track a helper child until it closes (killed at once if the bench is already closing). */
export function trackHelper(child: ChildProcess): void {
  if (closing) {
    child.kill('SIGKILL');
    return;
  }
  helpers.add(child);
  child.once('close', () => helpers.delete(child));
}

/** SIGKILL every tracked helper still running (each by its own PID). */
export function killHelpers(): void {
  closing = true;
  for (const child of helpers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** A free loopback port: bind port 0, read it, close. (A tiny race, acceptable for a bench.) */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** State letter, parent and session id of a live process, or null once it is gone. */
export function procStat(pid: number): { state: string; ppid: number; sid: number } | null {
  try {
    // comm (field 2) may contain spaces and parens: split after the last ')'.
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const ppid = Number(fields[1]);
    const sid = Number(fields[3]);
    return state === undefined || Number.isNaN(sid) ? null : { state, ppid, sid };
  } catch {
    return null;
  }
}

/** PIDs of the live (non-zombie) processes of session `sid`: a server and all it forked. */
export function sessionMembers(sid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (st && st.sid === sid && st.state !== 'Z') pids.push(Number(name));
  }
  return pids;
}

/**
 * PIDs of the live processes of a server: its session (`pid` is the session leader) and
 * whatever descends from `pid` in a session of its own (ours starts its Python workers
 * detached, in their own process groups and sessions).
 */
export function serverProcesses(pid: number): number[] {
  const stats = new Map<number, { ppid: number; sid: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (st && st.state !== 'Z') stats.set(Number(name), st);
  }
  const isOurs = (p: number): boolean => {
    for (let cur: number | undefined = p, hops = 0; cur !== undefined && cur > 1 && hops < 64; hops++) {
      const st = stats.get(cur);
      if (!st) return false;
      if (cur === pid || st.sid === pid) return true;
      cur = st.ppid;
    }
    return false;
  };
  return [...stats.keys()].filter(isOurs);
}

/** VmRSS of one process in kB (0 if gone). */
export function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Socket inodes ("socket:[123]") open in the given processes: what the server really holds. */
export function socketInodes(pids: number[]): Set<string> {
  const out = new Set<string>();
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith('socket:')) out.add(target);
      } catch {
        /* fd closed while we looked */
      }
    }
  }
  return out;
}

/** A server started by {@link startServer}. */
export interface Started {
  child: ChildProcess;
  pid: number;
  /** Set once the child exits (code or signal), so readiness polling can fail fast. */
  exited: { code: number | null; signal: string | null } | null;
}

/**
 * Spawn argv detached (setsid: own session and process group, so the group can be signalled
 * and every descendant found), stdout+stderr appended to `logFile`.
 */
export function startServer(argv: string[], cwd: string, env: NodeJS.ProcessEnv, logFile: string): Started {
  if (closing) throw new Error('the bench is stopping');
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('empty command');
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', fd, fd] });
    if (child.pid === undefined) throw new Error(`cannot start ${cmd}`);
    const started: Started = { child, pid: child.pid, exited: null };
    child.on('exit', (code, signal) => {
      started.exited = { code, signal };
    });
    child.on('error', () => {
      started.exited ??= { code: null, signal: 'spawn-error' };
    });
    return started;
  } finally {
    closeSync(fd); // the child has its own copy
  }
}

/**
 * One GET on a fresh connection (agent: false, so never a pooled one); resolves with the
 * status once the whole answer is read, rejects on error or when `timeoutMs` has passed since
 * the start, connect included (a full backlog stalls in connect, not in read).
 */
export function getOnce(port: number, path: string, timeoutMs: number, tls = false): Promise<number> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err: Error | null, status = 0): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(status);
    };
    // TLS scenarios use a certificate made for the run: nothing to verify it against.
    const get = tls ? https.get : http.get;
    const req = get({ host: '127.0.0.1', port, path, agent: false, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => settle(null, res.statusCode ?? 0));
      res.on('error', (e) => settle(e));
    });
    const timer = setTimeout(() => {
      settle(new Error(`no answer within ${timeoutMs} ms`));
      req.destroy();
    }, timeoutMs);
    req.on('error', (e) => settle(e));
    // closed before the whole answer came (and without an error event): not an answer
    req.on('close', () => settle(new Error('connection closed before the answer')));
  });
}

/**
 * Poll `GET path` every 100 ms until it answers 200. Fails early if the server exits, and at
 * the deadline otherwise: no blind sleep, no hang.
 */
export async function waitReady(s: Started, port: number, path: string, tls = false, deadlineMs = 60_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  let last = 'no answer';
  while (Date.now() < end) {
    if (s.exited) throw new Error(`exited (code ${s.exited.code}, signal ${s.exited.signal}) before answering`);
    try {
      const status = await getOnce(port, path, 2000, tls);
      if (status === 200) return;
      last = `HTTP ${status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`no 200 on ${path} within ${deadlineMs / 1000} s (${last})`);
}

/**
 * Wait until the server's session holds no more sockets than `baseline` (the previous load's
 * connections are closed), polling every 100 ms, at most `deadlineMs`. Returns the count left.
 */
export async function waitDrained(sid: number, baseline: number, deadlineMs = 3000): Promise<number> {
  const end = Date.now() + deadlineMs;
  let n = socketInodes(serverProcesses(sid)).size;
  while (n > baseline && Date.now() < end) {
    await sleep(100);
    n = socketInodes(serverProcesses(sid)).size;
  }
  return n;
}

/** How a stop went: the last signal needed, and any PID still alive at the end (should be []). */
export interface StopResult {
  stoppedBy: 'already-exited' | 'SIGTERM' | 'SIGKILL';
  unreaped: number[];
}

/**
 * SIGTERM the server's process group; after `graceMs`, SIGKILL by PID whatever of its processes
 * (its session, and its descendants in sessions of their own) is still alive (re-checking right
 * before each signal, as PIDs can be reused).
 */
export async function stopServer(s: Started, graceMs = 5000): Promise<StopResult> {
  // Taken before the signal: once the server exits, processes in sessions of their own (ours'
  // workers) are re-parented and no longer found from it.
  const known = new Set(serverProcesses(s.pid));
  const isAlive = (pid: number): boolean => { const st = procStat(pid); return st !== null && st.state !== 'Z'; };
  const remaining = (): number[] => {
    const pids = new Set(sessionMembers(s.pid));
    for (const pid of known) if (isAlive(pid)) pids.add(pid);
    if (!s.exited) pids.add(s.pid); // not reaped yet: still ours to wait for
    return [...pids];
  };
  if (remaining().length === 0) return { stoppedBy: 'already-exited', unreaped: [] };
  let stoppedBy: StopResult['stoppedBy'] = 'SIGTERM';
  try {
    process.kill(-s.pid, 'SIGTERM');
  } catch {
    /* group already gone */
  }
  const end = Date.now() + graceMs;
  while (remaining().length > 0 && Date.now() < end) await sleep(100);
  for (let i = 0; i < 50 && remaining().length > 0; i++) {
    stoppedBy = 'SIGKILL';
    for (const pid of remaining()) {
      const st = procStat(pid);
      if (st && (st.sid === s.pid || known.has(pid))) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* exited meanwhile */
        }
      }
    }
    await sleep(100);
  }
  return { stoppedBy, unreaped: remaining() };
}

/**
 * The process that holds a server's connections. Ours is a primary (the PID started) whose
 * child Node.js processes are the fronts: the first front. Any other server: the PID started.
 */
export function connectionHolder(pid: number): number {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (st?.ppid !== pid || st.state === 'Z') continue;
    try {
      if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() === 'node') return Number(name);
    } catch {
      // gone meanwhile
    }
  }
  return pid;
}
