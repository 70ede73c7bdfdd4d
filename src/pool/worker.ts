/**
 * @module One Python worker process: spawn, handshake, ready, serve, drain, exit.
 *
 * The only module that spawns Python workers (each front process runs it). The primary spawns
 * the others: the fronts (front-process.ts, which also kills a dead front's worker groups) and
 * web2py's schedulers (scheduler-process.ts). The channel is the child's fd 3: Node
 * creates stdio pipes as Unix socketpairs, so the worker gets a private, bidirectional socket
 * with nothing on the file system. stdout and stderr are read line by line and re-logged with
 * the worker's id and pid.
 *
 * States: starting → ready → draining → exited. A worker leaves `starting` by READY (ready) or by
 * ERROR id 0 / exit (a start failure the supervisor reports or retries).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { ServerError, workerError } from '../errors/index.js';
import { escapeControl, escapeLines } from '../observability/escape.js';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import { FrameType, PROTOCOL_VERSION, type Frame, type HandshakeKey } from '../protocol/frames.js';
import { decodeError, decodePublish, decodeReady } from '../protocol/payloads.js';
import { Channel } from './channel.js';
import { largeReadSocket } from './channel-reads.js';
import { parseWorkerEvent, relayLines } from './output-relay.js';
import type { Exchange } from './exchange.js';
import type { AnswerPacer } from './answer-pacer.js';

/** What the worker is told in HANDSHAKE (docs/protocol.md), less `protocol` and `workerId`. */
export interface WorkerHandshake {
  app: { kind: 'web2py'; folder: string } | { kind: 'wsgi'; spec: string; cwd: string } | { kind: 'demo' };
  threads: number;
  workerClass: 'thread' | 'sync' | 'gevent';
  requestWindow: number;
  responseWindow: number;
  profilerDir: string | null;
  /** The largest message the application may publish to the realtime hub over the channel; 0: the hub is off. */
  realtimeMaxMessage: number;
}

/** `T` when its keys are exactly `K`, else never: a HANDSHAKE key added or renamed on one side only fails the build. */
type WithExactKeys<T, K extends PropertyKey> = [keyof T] extends [K] ? ([K] extends [keyof T] ? T : never) : never;
type HandshakePayload = WithExactKeys<WorkerHandshake & { protocol: number; workerId: number }, HandshakeKey>;

export interface WorkerOptions {
  workerId: number;
  /** Replaces a worker that died (not one of the first generation). */
  isReplacement: boolean;
  python: string;
  handshake: WorkerHandshake;
  log: Logger;
  /** Shared by every worker: whole answers go to clients at about the pace requests arrive. */
  pacer?: AnswerPacer;
  /** The application published a message (PUBLISH): to the realtime hub. */
  onPublish?: (group: string, message: string) => void;
}

export type WorkerState = 'starting' | 'ready' | 'draining' | 'exited';

/** The launcher script, shipped in the package: python/w2n_worker.py. */
export const WORKER_SCRIPT = fileURLToPath(new URL('../../python/w2n_worker.py', import.meta.url));

export interface WorkerProcessEvents {
  ready: [];
  /** Start failed before READY: the application cannot be loaded, or the process died. */
  startFailed: [error: ServerError];
  exchangeEnded: [exchange: Exchange];
  exited: [info: { code: number | null; signal: string | null; wasExpected: boolean }];
}

export class WorkerProcess extends EventEmitter<WorkerProcessEvents> {
  state: WorkerState = 'starting';
  capacity = 1;
  pythonVersion = '';
  workerClass = '';
  private readonly child: ChildProcess;
  private readonly channel: Channel;
  private readonly startedAt = Date.now();
  private isExitExpected = false;
  private isBeingKilled = false;
  /** The worker broke the protocol: it takes no requests and is being killed. */
  private isBroken = false;
  private startError: ServerError | null = null;
  private readonly log: Logger;

  constructor(private readonly options: WorkerOptions) {
    super();
    this.log = options.log.child({ workerId: options.workerId });
    this.child = spawn(options.python, [WORKER_SCRIPT], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
      // Own process group: a terminal's Ctrl-C reaches only the front, which then drains the
      // workers in order. A worker whose front dies sees EOF on fd 3 and exits. The group is
      // also how the processes an application forks are found: they die with their worker.
      detached: true,
    });
    if (this.child.pid !== undefined) liveGroups.add(this.child.pid);
    const pipe = this.child.stdio[3] as Duplex;
    // The channel reads in large buffers where it can (channel-reads.ts), else the pipe's own 'data'.
    const socket = largeReadSocket(pipe, (chunk, lease) => { this.channel.receive(chunk, lease); }) ?? pipe;
    this.channel = new Channel(socket, {
      requestWindowBytes: options.handshake.requestWindow,
      responseWindowBytes: options.handshake.responseWindow,
    }, {
      onControl: (frame) => this.onControl(frame),
      onExchangeEnded: (exchange) => this.emit('exchangeEnded', exchange),
      onProtocolError: (error) => this.onProtocolError(error),
    }, options.pacer ?? null);
    this.channel.procFdPath = (fd) => `/proc/${this.pid ?? 'self'}/fd/${fd}`;
    this.relayOutput('stdout');
    this.relayOutput('stderr');
    this.child.on('error', (cause) => {
      this.startError ??= new ServerError('W2N_ERR_PYTHON_MISSING', { python: options.python, reason: cause.message }, { cause });
    });
    this.child.on('exit', (code, signal) => this.onExit(code, signal));
    LogEvents.workerSpawned(this.log, { workerId: this.id, pid: this.pid });
    const handshake: HandshakePayload = { protocol: PROTOCOL_VERSION, workerId: options.workerId, ...options.handshake };
    this.channel.sendControl(FrameType.HANDSHAKE, handshake);
  }

  get id(): number {
    return this.options.workerId;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get inFlight(): number {
    return this.channel.inFlight;
  }

  get ageMs(): number {
    return Date.now() - this.startedAt;
  }

  runningRequests(): { method: string; path: string; startedAtMs: number }[] {
    return this.channel.runningRequests();
  }

  get hasRoom(): boolean {
    return this.state === 'ready' && !this.isBroken && this.channel.inFlight < this.capacity;
  }

  /** See Channel.expire: how many just timed out, and whether one outlived its grace (hung). */
  expireRequests(nowMs: number, timeoutMs: number, graceMs: number, timeoutSeconds: number): { isHung: boolean; timedOut: number } {
    return this.channel.expire(nowMs, timeoutMs, graceMs, timeoutSeconds);
  }

  /** A hung worker: ask for its Python stacks (SIGUSR2, faulthandler), then kill it. */
  killHung(stackDumpWaitMs: number): void {
    if (this.state === 'exited' || this.isBeingKilled) return;
    this.isBeingKilled = true;
    this.child.kill('SIGUSR2');
    setTimeout(() => this.kill('SIGKILL'), stackDumpWaitMs).unref();
  }

  run(exchange: Exchange): void {
    exchange.workerId = this.id;
    this.channel.run(exchange);
  }

  /** Finish in-flight requests, then exit (SHUTDOWN). */
  drain(): void {
    if (this.state === 'exited') return;
    this.isExitExpected = true;
    this.state = 'draining';
    this.channel.sendControl(FrameType.SHUTDOWN);
  }

  /** Signals the worker's whole process group: what the application forked goes with it. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.state === 'exited') return;
    if (this.pid === undefined || !signalGroup(this.pid, signal)) this.child.kill(signal);
  }

  /** Stop now: expected, so no respawn. */
  terminate(): void {
    this.isExitExpected = true;
    this.kill('SIGKILL');
  }

  private onControl(frame: Frame): void {
    if (frame.type === FrameType.READY && this.state === 'starting') {
      const decoded = decodeReady(frame.type, frame.payload);
      if (!decoded.ok) {
        this.channel.onDecodeError(decoded.error);
        return;
      }
      const info = decoded.value;
      if (info.protocol !== PROTOCOL_VERSION) {
        this.startError = new ServerError('W2N_ERR_PROTO_VERSION', { theirs: info.protocol, ours: PROTOCOL_VERSION });
        this.kill();
        return;
      }
      this.capacity = Math.max(1, info.capacity);
      this.pythonVersion = info.python;
      this.workerClass = info.workerClass;
      this.state = 'ready';
      LogEvents.workerReady(this.log, {
        workerId: this.id, pid: this.pid, python: info.python, workerClass: info.workerClass,
        capacity: this.capacity, startupMs: Date.now() - this.startedAt,
      });
      this.emit('ready');
    } else if (frame.type === FrameType.PUBLISH) {
      this.onPublish(frame);
    } else if (frame.type === FrameType.ERROR) {
      const decoded = decodeError(frame.type, frame.payload);
      if (!decoded.ok) {
        this.channel.onDecodeError(decoded.error);
        return;
      }
      // The application's text, bound for the log: control characters escaped.
      const info = { message: escapeControl(decoded.value.message), traceback: escapeLines(decoded.value.traceback ?? '') };
      this.startError = workerError('start', decoded.value.code, info.message);
      // At the first start the CLI turns this into its one error line, so the traceback is for
      // --log-level debug; a replacement worker failing later is news: log it as an error.
      LogEvents.workerStartFailed(this.log, {
        workerId: this.id, code: this.startError.code, message: info.message, traceback: info.traceback, isNews: this.options.isReplacement,
      });
    }
  }

  /**
   * The application's `publish()`: to the hub. The worker checks the size and that the hub is on
   * before it sends (the handshake told it), so a PUBLISH that breaks either is a worker that does
   * not follow the protocol, as is one before READY.
   */
  private onPublish(frame: Frame): void {
    const decoded = decodePublish(frame.type, frame.payload);
    if (!decoded.ok) {
      this.channel.onDecodeError(decoded.error);
      return;
    }
    const limit = this.options.handshake.realtimeMaxMessage;
    if (this.state === 'starting' || limit === 0 || Buffer.byteLength(decoded.value.message) > limit) {
      const state = this.state === 'starting' ? 'starting' : limit === 0 ? 'realtime hub off' : `message over ${limit} bytes`;
      this.channel.onDecodeError(new ServerError('W2N_ERR_PROTO_UNEXPECTED', { type: 'PUBLISH', state }));
      return;
    }
    this.options.onPublish?.(decoded.value.group, decoded.value.message);
  }

  /** Bad bytes on the channel: the requests it runs get 502 now, and it is replaced. */
  private onProtocolError(error: ServerError): void {
    LogEvents.workerProtocolError(this.log, { workerId: this.id, pid: this.pid, code: error.code, message: error.message });
    this.isBroken = true;
    if (this.state === 'starting') this.startError ??= new ServerError('W2N_ERR_START_WORKERS', { reason: `worker ${this.id}: ${error.message}` });
    this.channel.close(() => ({
      error: new ServerError('W2N_ERR_WORKER_DIED', { workerId: this.id, pid: this.pid ?? 0, reason: `protocol error: ${error.message}` }),
    }));
    this.kill();
  }

  private relayOutput(stream: 'stdout' | 'stderr'): void {
    const source = this.child[stream];
    if (source === null) return;
    relayLines(source, (line) => {
      if (stream === 'stderr' && this.logWorkerEvent(line)) return;
      LogEvents.workerOutput(this.log, { workerId: this.id, pid: this.pid, stream, line });
    });
  }

  /** A `w2n-event` line with the fields its event declares: logged as that event -> true. */
  private logWorkerEvent(line: string): boolean {
    const event = parseWorkerEvent(line);
    if (event === null) return false;
    const { path, charset, isLastLogged } = event.fields;
    if (typeof path !== 'string' || typeof charset !== 'string' || typeof isLastLogged !== 'boolean') return false;
    // Any process writing to the worker's stderr can print this line: its text is escaped like any other.
    LogEvents.appStrBody(this.log, { workerId: this.id, pid: this.pid, path: escapeControl(path), charset: escapeControl(charset), isLastLogged });
    return true;
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.pid !== undefined) {
      // Whatever the application forked and left behind goes with its worker.
      signalGroup(this.pid, 'SIGKILL');
      liveGroups.delete(this.pid);
    }
    const wasStarting = this.state === 'starting';
    const inFlight = this.channel.inFlight;
    this.state = 'exited';
    const reason = signal !== null ? `killed by ${signal}` : `exit status ${code}`;
    this.channel.close(() => ({
      error: new ServerError('W2N_ERR_WORKER_DIED', { workerId: this.id, pid: this.pid ?? 0, reason }),
    }));
    // A worker that said why it cannot start (ERROR id 0) exits as announced: not a crash to
    // log as one, but still a start failure for the supervisor to report or retry.
    const wasAnnounced = this.isExitExpected || this.startError !== null;
    LogEvents.workerExited(this.log, { workerId: this.id, pid: this.pid, code, signal, expected: wasAnnounced, inFlight });
    if (wasStarting && !this.isExitExpected) {
      this.emit('startFailed', this.startError ?? new ServerError('W2N_ERR_START_WORKERS', { reason: `worker ${this.id} ${reason} before it was ready` }));
    }
    this.emit('exited', { code, signal, wasExpected: this.isExitExpected });
  }
}

/** Process groups of the workers alive: killed if the front exits without stopping them. */
const liveGroups = new Set<number>();
process.once('exit', () => {
  for (const group of liveGroups) signalGroup(group, 'SIGKILL');
});

/** Signals process group `group`; false when it is gone (or cannot be signalled). */
function signalGroup(group: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-group, signal);
    return true;
  } catch {
    return false;
  }
}

export interface PythonFacts {
  version: string;
  /** gevent's version when this interpreter can import it, else null. */
  gevent: string | null;
}

const PROBE_SCRIPT = [
  'import sys',
  'print("%d.%d.%d" % sys.version_info[:3])',
  'try:',
  '    import gevent',
  '    print(gevent.__version__)',
  'except Exception:',
  '    print("")',
].join('\n');

/** Runs the interpreter once: its version (missing or older than 3.8 is fatal) and gevent's. */
export function probePython(python: string): Promise<PythonFacts> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-c', PROBE_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let errors = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { errors += chunk.toString(); });
    child.on('error', (cause) => reject(new ServerError('W2N_ERR_PYTHON_MISSING', { python, reason: cause.message }, { cause })));
    child.on('close', (code) => {
      const [version = '', gevent = ''] = output.split('\n').map((line) => line.trim());
      const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
      if (code !== 0 && match === null) {
        reject(new ServerError('W2N_ERR_PYTHON_MISSING', { python, reason: errors.trim().split('\n').pop() || `exit status ${code}` }));
        return;
      }
      if (match === null) {
        reject(new ServerError('W2N_ERR_PYTHON_MISSING', { python, reason: `unexpected version output ${JSON.stringify(version)}` }));
        return;
      }
      const [major, minor] = [Number(match[1]), Number(match[2])];
      if (major < 3 || (major === 3 && minor < 8)) reject(new ServerError('W2N_ERR_PYTHON_TOO_OLD', { python, version }));
      else resolve({ version, gevent: gevent === '' ? null : gevent });
    });
  });
}
