/**
 * @module One web2py scheduler process, seen from the primary: exec, output, stop, kill.
 *
 * It is `python web2py.py -K APP[:GROUP...]` in the web2py folder: exec'd, never forked from the
 * server (a fork would carry the server's sockets and threads into web2py). With one application,
 * web2py.py runs the scheduler's loop in that very process. It leads a process group of its own,
 * so the task processes it starts can be killed with it and a terminal's Ctrl-C reaches the
 * primary only. Its stdout and stderr become `scheduler.output` lines of the server log.
 *
 * web2py.py runs through python/w2n_scheduler.py, which runs it in the same process unchanged
 * and tells the server each heartbeat the scheduler records (its `scheduler_worker` row) as a
 * line on a fourth pipe, descriptor 3: the heartbeat age of the status page and /metrics. A pipe
 * of its own, not stdout, where tasks print what they like.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../observability/log.js';
import { LogEvents } from '../observability/events.js';

/** Output lines kept to say why a scheduler that keeps dying died. */
const LAST_LINES = 5;
/** A line of output longer than this is cut in the log (a task printing megabytes on one line). */
const MAX_LINE = 4_096;
/** The launcher, shipped in the package: python/w2n_scheduler.py. */
export const SCHEDULER_SCRIPT = fileURLToPath(new URL('../../python/w2n_scheduler.py', import.meta.url));
/** What the launcher writes on descriptor 3 for each heartbeat: `heartbeat ACTIVE`, `heartbeat RUNNING`... */
const HEARTBEAT_LINE = /^heartbeat ([A-Z_]{1,20})$/;

export interface SchedulerProcessOptions {
  /** The `-K` entry, `APP[:GROUP...]`; with a worker number when there are several: the log's name. */
  entry: string;
  name: string;
  python: string;
  folder: string;
  log: Logger;
}

export class SchedulerProcess {
  readonly name: string;
  readonly startedAt = Date.now();
  private readonly child: ChildProcess;
  /** The primary asked it to leave: its exit is no death. */
  stopAsked = false;
  private readonly recent: string[] = [];
  /** When it last said it recorded its heartbeat (Date.now()), and the status it recorded; null: not yet. */
  lastHeartbeat: { at: number; status: string } | null = null;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(options: SchedulerProcessOptions) {
    this.name = options.name;
    const { log } = options;
    this.child = spawn(options.python, [SCHEDULER_SCRIPT, join(options.folder, 'web2py.py'), '-K', options.entry], {
      cwd: options.folder,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      detached: true,
      // Output reaches the log as it is printed, not in 8 KiB blocks when a buffer fills.
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    this.exited = new Promise((resolve) => {
      let spawnError: Error | null = null;
      this.child.once('error', (error) => {
        // No 'exit' follows a failed spawn (ENOENT of the interpreter, EAGAIN): say it as one.
        spawnError = error;
        this.remember(`could not start: ${error.message}`);
        resolve({ code: null, signal: null });
      });
      this.child.once('exit', (code, signal) => {
        if (spawnError === null) resolve({ code, signal });
      });
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      const source = this.child[stream];
      if (source === null) continue;
      createInterface({ input: source, crlfDelay: Infinity }).on('line', (raw) => {
        const line = raw.length > MAX_LINE ? `${raw.slice(0, MAX_LINE)}…` : raw;
        this.remember(line);
        LogEvents.schedulerOutput(log, { name: this.name, schedulerPid: this.pid, stream, line });
      });
    }
    this.readHeartbeats();
  }

  private readHeartbeats(): void {
    const pipe = this.child.stdio[3];
    if (!(pipe instanceof Readable)) return;
    // A task process (forked) inherits the descriptor; a line that is not the launcher's is ignored.
    createInterface({ input: pipe, crlfDelay: Infinity }).on('line', (line) => {
      const match = HEARTBEAT_LINE.exec(line);
      if (match !== null) this.lastHeartbeat = { at: Date.now(), status: match[1]! };
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The last lines it printed (stderr and stdout), oldest first: why it died, usually. */
  get lastOutput(): string {
    return this.recent.join('\n');
  }

  private remember(line: string): void {
    this.recent.push(line);
    if (this.recent.length > LAST_LINES) this.recent.shift();
  }

  /**
   * SIGTERM, then after `timeoutMs` SIGKILL to its whole group; resolves once it has exited and
   * its group is gone. True when the timeout ran out (web2py's scheduler ignores SIGTERM while a
   * task runs).
   */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopAsked = true;
    this.signal('SIGTERM', false);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<true>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    });
    const killed = await Promise.race([this.exited.then(() => false), timedOut]);
    clearTimeout(timer);
    // Task processes it started (and anything they forked) leave with it, either way.
    this.signal('SIGKILL', true);
    await this.exited;
    return killed;
  }

  /** Now, with its group. */
  kill(): void {
    this.stopAsked = true;
    this.signal('SIGKILL', true);
  }

  private signal(signal: NodeJS.Signals, group: boolean): void {
    const pid = this.pid;
    if (pid === undefined) return;
    try {
      process.kill(group ? -pid : pid, signal);
    } catch {
      // already gone
    }
  }
}
