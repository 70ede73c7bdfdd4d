/**
 * @module One front process, seen from the primary: spawn, start, ready, stop, exit.
 *
 * The front inherits every listening socket `acceptBatch` times (descriptors 4 and up; see
 * front/accept-copies.ts), its stdout and stderr (its log lines), and an IPC channel (3). It
 * runs in a process group of its own, so a terminal's Ctrl-C reaches the primary only and the
 * primary decides what each front does. Its Python workers are its children; it tells the
 * primary their process ids, and when a front dies the primary kills their process groups, so
 * no worker (nor anything a worker forked) outlives the front it served.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../observability/log.js';
import { LogEvents } from '../observability/events.js';
import type { BoundSocket } from './bound-sockets.js';
import { readFrontMessage, type FrontMessage, type PrimaryMessage } from './messages.js';

/** The front's entry (dist/cli/front.js next to dist/primary/). */
const FRONT_ENTRY = fileURLToPath(new URL('../cli/front.js', import.meta.url));
/** The first inherited listening descriptor in the front (0-2 stdio, 3 the IPC channel). */
const FIRST_LISTEN_FD = 4;

/**
 * The front's V8 semi-space (the young generation's half), in MB, when the operator set none:
 * with many requests in flight, each scavenge copies all of them, so a larger nursery means
 * fewer scavenges for the same work (README, "The front's young generation under many requests
 * in flight"). Node's default on 64-bit is 16.
 */
export const FRONT_SEMI_SPACE_MB = 32;

/** V8 flags by which an operator sizes the young generation (V8 takes `-` or `_` in their names). */
const YOUNG_GENERATION_FLAG = /^--(?:max|min)[-_]semi[-_]space[-_]size(?:=|$)|^--max[-_]heap[-_]size(?:=|$)/;

/**
 * The front's Node.js flags: the primary's own (so `node --inspect …` or `--max-old-space-size`
 * given to the primary reach the front), plus the front's semi-space size unless the operator
 * sized the young generation, on the command line or in NODE_OPTIONS (which the front inherits).
 */
export function frontExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  if (given.some((flag) => YOUNG_GENERATION_FLAG.test(flag))) return [...execArgv];
  return [...execArgv, `--max-semi-space-size=${FRONT_SEMI_SPACE_MB}`];
}

export type FrontState = 'starting' | 'ready' | 'stopping' | 'exited';

export interface FrontProcessEvents {
  listening: [];
  ready: [lines: string[]];
  fatal: [line: string, exitCode: number];
  exit: [code: number | null, signal: NodeJS.Signals | null];
  message: [message: FrontMessage];
}

/** Which inherited descriptors of the front belong to each socket, `batch` each, in order. */
export function descriptorPlan(sockets: readonly BoundSocket[], batch: number): { stdio: number[]; listeners: { fds: number[]; port: number }[] } {
  const stdio: number[] = [];
  const listeners = sockets.map((socket) => {
    // A Unix socket keeps one descriptor: its copies would add nothing the kernel does not already queue.
    const count = socket.spec.kind === 'tcp' ? batch : 1;
    const fds: number[] = [];
    for (let n = 0; n < count; n += 1) {
      fds.push(FIRST_LISTEN_FD + stdio.length);
      stdio.push(socket.fd);
    }
    return { fds, port: socket.port };
  });
  return { stdio, listeners };
}

export class FrontProcess extends EventEmitter<FrontProcessEvents> {
  readonly index: number;
  private readonly child: ChildProcess;
  state: FrontState = 'starting';
  readonly startedAt = Date.now();
  readyAt: number | null = null;
  /** The primary asked it to stop (graceful stop, or the old front of a reload): its exit is no death. */
  stopAsked = false;
  /** The front's Python workers, as it last said. */
  private workerPids: number[] = [];
  readonly exited: Promise<void>;

  constructor(options: { index: number; stdio: readonly number[]; start: Extract<PrimaryMessage, { type: 'start' }>; log: Logger }) {
    super();
    this.index = options.index;
    const { log } = options;
    this.child = spawn(process.execPath, [...frontExecArgv(process.execArgv, process.env['NODE_OPTIONS']), FRONT_ENTRY], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...options.stdio],
      detached: true,
      serialization: 'json',
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.state = 'exited';
        this.killWorkers();
        this.emit('exit', code, signal);
        resolve();
      });
    });
    this.child.once('error', () => {
      // spawn failed (ENOMEM, EAGAIN): 'exit' follows or never comes; the supervisor sees no ready.
    });
    this.child.on('message', (raw: unknown) => {
      const message = readFrontMessage(raw);
      if (message === null) {
        LogEvents.frontBadMessage(log, { index: this.index, pid: this.pid });
        return;
      }
      if (message.type === 'listening') {
        this.emit('listening');
      } else if (message.type === 'ready') {
        if (this.state !== 'starting') return;
        this.state = 'ready';
        this.readyAt = Date.now();
        this.emit('ready', message.lines);
      } else if (message.type === 'fatal') {
        this.emit('fatal', message.line, message.exitCode);
      } else if (message.type === 'worker-pids') {
        this.workerPids = message.pids;
      } else {
        this.emit('message', message);
      }
    });
    this.send(options.start);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  send(message: PrimaryMessage): void {
    if (!this.child.connected) return;
    // A front that died between the check and the write: the exit handler deals with it.
    this.child.send(message, undefined, {}, () => {});
  }

  /** Graceful stop: the front stops accepting, finishes its requests and exits (`handOver`: see RunningFront.stop). */
  stop(signal: string, handOver = false): void {
    if (this.state === 'exited') return;
    this.state = 'stopping';
    this.stopAsked = true;
    this.send({ type: 'stop', signal, handOver });
  }

  /** Now, with its workers. */
  kill(): void {
    if (this.state !== 'exited') this.child.kill('SIGKILL');
    this.killWorkers();
  }

  /** Each worker leads a process group of its own (spawned detached): the group goes, with anything it forked. */
  private killWorkers(): void {
    for (const pid of this.workerPids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.workerPids = [];
  }
}
