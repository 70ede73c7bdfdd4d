/**
 * Starts the real CLI (bin/web2py-on-node) on port 0 and reads the bound port from its
 * `starting on IP:PORT...` line; ready when it prints its last start-up line. No sleeps, no port
 * guessing. Every started server is stopped when the test process ends.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { once } from 'node:events';
import assert from 'node:assert/strict';

export const repoRoot = join(import.meta.dirname, '..', '..');
export const fixtures = join(repoRoot, 'test', 'fixtures');
export const binPath = join(repoRoot, 'bin', 'web2py-on-node');

export interface StartedServer {
  port: number;
  process: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  url: (path: string) => string;
  /** SIGTERM, then the exit status. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => { for (const child of running) child.kill('SIGKILL'); });

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** What line means ready (default: the last start-up line, `access log: ...`). */
  readyPattern?: RegExp;
  timeoutMs?: number;
  scheme?: 'http' | 'https';
}

/** Waits until `pattern` matches `times` lines of the server log (stderr); fails with the log's tail. */
export async function waitForLog(server: StartedServer, pattern: RegExp, { timeoutMs = 15_000, times = 1 } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const count = (): number => server.stderr().split('\n').filter((line) => pattern.test(line)).length;
  while (count() < times) {
    if (Date.now() > deadline) throw new Error(`no ${pattern} (x${times}) in the log:\n${server.stderr().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Waits until the application has started `times` requests tagged `tag`: the fixture apps slow.py
 * (`&signal=<tag>`) and inflight.py (`&tag=<tag>`) print `request started: <tag>` once a request
 * is inside the application, and the server logs the worker's line (text or JSON format: the tag
 * ends at a space, a quote or the line's end).
 */
export function waitForStarted(server: StartedServer, tag: string, { timeoutMs = 15_000, times = 1 } = {}): Promise<void> {
  return waitForLog(server, new RegExp(`request started: ${tag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:[ "]|$)`), { timeoutMs, times });
}

/**
 * The environment a server under test gets: this one without the test harness's own W2N_ variables
 * (W2N_TEST_*, W2N_FAULT_SECONDS, W2N_STATUS_SCREENSHOT), which the server would rightly warn
 * about as unknown settings, an extra stderr line that tests of exact output would trip on.
 */
export function serverEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^W2N_(?:TEST_|FAULT_SECONDS$|STATUS_SCREENSHOT$)/.test(name)) env[name] = value;
  }
  return { ...env, ...extra };
}

export async function startServer(args: string[], options: RunOptions = {}): Promise<StartedServer> {
  const child = spawn(process.execPath, [binPath, '-p', '0', '--processes', '2', ...args], {
    cwd: options.cwd ?? repoRoot,
    env: serverEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  // One listener that wakes the wait below (a once() per pass would pile up listeners on a slow start).
  let wake: () => void = () => {};
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); wake(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const exited = once(child, 'exit').then(([code, signal]) => {
    running.delete(child);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null };
  });
  // The last start-up line: after it the server is listening, its workers ready, and it said all.
  const readyPattern = options.readyPattern ?? /^access log: /m;
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  while (!readyPattern.test(stdout)) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before ready\nstdout:\n${stdout}\nstderr:\n${stderr}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not ready in time\nstdout:\n${stdout}\nstderr:\n${stderr}`);
    }
    await Promise.race([new Promise<void>((resolve) => { wake = resolve; }), exited, new Promise((r) => setTimeout(r, 200))]);
  }
  const match = /starting on (\S+):(\d+)\.\.\./.exec(stdout);
  if (match === null) throw new Error(`no "starting on" line:\n${stdout}`);
  const port = Number(match[2]);
  const scheme = options.scheme ?? 'http';
  return {
    port,
    process: child,
    stdout: () => stdout,
    stderr: () => stderr,
    url: (path) => `${scheme}://127.0.0.1:${port}${path}`,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return (await exited).code;
    },
    exited,
  };
}

/** Runs the CLI expecting it to exit by itself (bad configuration): its status and output. */
export async function runToExit(args: string[], options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [binPath, ...args], {
    cwd: options.cwd ?? repoRoot, env: serverEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const [code] = await once(child, 'exit') as [number | null];
  clearTimeout(timer);
  running.delete(child);
  return { code, stdout, stderr };
}

/**
 * A bad start: exit status 2 and one line naming the error code, and nothing else on stderr but
 * routine INFO log lines (an application that fails to import is found after the listener opened).
 */
export function assertOneLine(result: { code: number | null; stderr: string }, code: string, pattern: RegExp): void {
  assert.equal(result.code, 2, `exit status 2, got ${result.code}; stderr: ${result.stderr}`);
  const lines = result.stderr.trim().split('\n').filter((line) => !/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO /.test(line));
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0]!, new RegExp(`\\[${code}\\]$`));
  assert.match(lines[0]!, pattern);
}

/** Child process ids of `pid` (empty when it has none). */
export function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/**
 * The front processes of a server started here (the primary's children), in start order. The
 * front is the process that holds the connections; the Python workers are its children.
 */
export function frontPids(server: StartedServer): number[] {
  return childPids(server.process.pid!);
}

/** The one front of a server started with the default `--fronts 1`. */
export function frontPid(server: StartedServer): number {
  const fronts = frontPids(server);
  assert.equal(fronts.length, 1, `one front process, found ${fronts.length}`);
  return fronts[0]!;
}

/** The Python worker processes of every front. */
export function workerPids(server: StartedServer): number[] {
  return frontPids(server).flatMap(childPids);
}
