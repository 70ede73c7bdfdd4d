/**
 * @module A front process's entry: started by the primary, told what to do over its IPC channel.
 *
 * It waits for the primary's `start` (configuration, listening descriptors, its share of the
 * workers), starts, and reports `ready` with its start-up lines, or `fatal` with the one line the
 * primary prints before it exits. It stops when the primary says so, on SIGTERM/SIGINT sent to
 * it alone (it runs in a process group of its own, so a terminal's Ctrl-C reaches only the
 * primary, which forwards it), and when the primary is gone (the channel closes).
 *
 * An exception that escapes every guard is a bug: it is logged with its stack and the process
 * exits; the primary starts another front on the same sockets.
 */
import { startFront, type RunningFront } from '../server.js';
import { createLogger, type Logger } from '../observability/log.js';
import { LogEvents } from '../observability/events.js';
import { readPrimaryMessage, type FrontMessage, type PrimaryMessage } from '../primary/messages.js';
import { describeFatal } from './fatal.js';

/** Exit status of a front that hit a bug (EX_SOFTWARE). */
const BUG_EXIT_CODE = 70;
/** How long a `/metrics` or `/status.json` request waits for the primary's answer. */
const PRIMARY_WAIT_MS = 2_000;

let log: Logger | null = null;
let front: RunningFront | null = null;
let stopping: Promise<void> | null = null;
/** `/metrics` and `/status.json` answers waiting for the primary's text, by id. */
const pendingAnswers = new Map<number, (text: string | null) => void>();
let nextAnswerId = 1;

function send(message: FrontMessage, then?: () => void): void {
  if (process.send === undefined || !process.connected) {
    then?.();
    return;
  }
  process.send(message, undefined, {}, () => then?.());
}

function exitAfterSend(message: FrontMessage, code: number): void {
  send(message, () => process.exit(code));
}

function stop(signal: string, handOver = false): void {
  if (front === null) process.exit(0);
  stopping ??= front.stop(signal, handOver).then(() => process.exit(0), (error: unknown) => {
    if (log !== null) LogEvents.frontCrashed(log, { error });
    process.exit(BUG_EXIT_CODE);
  });
}

/** Asks the primary for something only it can put together (every front's part), within a wait. */
function askPrimary(type: 'metrics-wanted' | 'status-wanted'): Promise<string | null> {
  return new Promise((resolve) => {
    const id = nextAnswerId++;
    const timer = setTimeout(() => {
      pendingAnswers.delete(id);
      resolve(null);
    }, PRIMARY_WAIT_MS);
    pendingAnswers.set(id, (text) => {
      clearTimeout(timer);
      pendingAnswers.delete(id);
      resolve(text);
    });
    send({ type, id });
  });
}

async function start(message: Extract<PrimaryMessage, { type: 'start' }>): Promise<void> {
  const { config, sources, assignment } = message;
  log = createLogger({ level: config.logLevel, format: config.logFormat }).child({ front: assignment.index });
  try {
    const started = await startFront({
      config, sources, log, assignment,
      serverMetrics: () => askPrimary('metrics-wanted'),
      serverStatus: () => askPrimary('status-wanted'),
      onWorkersChanged: (pids) => send({ type: 'worker-pids', pids }),
      onListening: () => send({ type: 'listening' }),
      realtimeLink: assignment.fronts > 1 ? { send: (id, payload) => send({ type: 'realtime', id, payload }) } : null,
    });
    front = started.front;
    send({ type: 'ready', lines: started.lines });
  } catch (error: unknown) {
    const fatal = describeFatal(error);
    exitAfterSend({ type: 'fatal', line: fatal.line, exitCode: fatal.exitCode }, fatal.exitCode);
  }
}

function onMessage(raw: unknown): void {
  const message = readPrimaryMessage(raw);
  if (message === null) return;
  switch (message.type) {
    case 'start':
      if (log === null) void start(message);
      return;
    case 'stop':
      stop(message.signal, message.handOver);
      return;
    case 'reopen-logs':
      front?.reopenLogs().catch((error: unknown) => {
        if (log !== null) LogEvents.logReopenFailed(log, { error });
      });
      return;
    case 'collect-metrics': {
      const { id } = message;
      if (front === null) send({ type: 'metrics-collected', id, metrics: [] });
      else front.metrics.collect().then((metrics) => send({ type: 'metrics-collected', id, metrics }), () => send({ type: 'metrics-collected', id, metrics: [] }));
      return;
    }
    case 'metrics':
      pendingAnswers.get(message.id)?.(message.text);
      return;
    case 'collect-status': {
      const { id } = message;
      if (front === null) send({ type: 'status-collected', id, status: null });
      else front.status(message.historySince).then((status) => send({ type: 'status-collected', id, status }), () => send({ type: 'status-collected', id, status: null }));
      return;
    }
    case 'status':
      pendingAnswers.get(message.id)?.(message.json);
      return;
    case 'realtime':
      front?.realtime?.fromSibling(message.payload);
      return;
    case 'realtime-relayed':
      front?.realtime?.siblings?.relayed(message.id);
      return;
  }
}

process.on('message', onMessage);
process.on('disconnect', () => {
  if (log !== null) LogEvents.primaryGone(log);
  stop('primary gone');
});
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
// SIGHUP and SIGUSR1 are the primary's to handle; sent to a front alone they are ignored.
process.on('SIGHUP', () => {});
process.on('SIGUSR1', () => {});
process.on('uncaughtException', (error: Error) => {
  if (log !== null) LogEvents.frontCrashed(log, { error });
  else process.stderr.write(`web2py-on-node front: ${error.stack ?? error.message}\n`);
  front?.kill();
  process.exit(BUG_EXIT_CODE);
});
process.on('unhandledRejection', (reason: unknown) => {
  if (log !== null) LogEvents.frontCrashed(log, { error: reason });
  front?.kill();
  process.exit(BUG_EXIT_CODE);
});
