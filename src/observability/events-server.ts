/**
 * @module Log events of the server's life: start, stop, reload, the front processes, web2py's
 * schedulers, config, logs.
 *
 * Part of the one catalogue (events.ts); the specs say level, message and fields (event-spec.ts).
 */
import { defineEvents } from './event-spec.js';
import type { Logger } from './log.js';

const front = ['index', 'pid'] as const;

export const serverEvents = defineEvents({
  'server.listening': { level: 'info', message: 'listening', fields: ['address', 'tls', 'http2'] },
  'server.draining': { level: 'info', message: 'stopping: finishing in-flight requests', fields: ['signal', 'inFlight', 'gracefulTimeoutSeconds'] },
  'server.stopped': { level: 'info', message: 'stopped', fields: ['signal', 'unfinished'] },
  'server.forced_stop': { level: 'warn', message: 'second signal: stopping at once', fields: ['signal'] },
  'server.stats': {
    level: 'info', message: 'stats',
    fields: ['seconds', 'requests', 'errors', 'connections', 'inApp', 'queued', 'fronts', 'workers', 'rssMb', 'primaryRssMb', 'frontsRssMb', 'workersRssMb', 'schedulersRssMb'],
    doc: 'Every `--stats-interval`, written by the primary for the whole server. `requests`: responses sent in the last '
      + '`seconds`; `errors`: those of them with a 5xx status (the server\'s own 503s and 504s included); `connections`, '
      + '`inApp`, `queued`: now. `rssMb`: the resident memory of every process of the server (MB), then the same by kind '
      + '(`schedulersRssMb` only with `-K`). A front that did not answer within 1 s is left out of the line, and its requests are counted in the next.',
  },
  'app.chosen': { level: 'info', message: 'application', fields: ['kind', 'detail'] },
  'config.warning': {
    level: 'warn', message: { field: 'warning' }, fields: ['warning'],
    doc: 'A setting that works but is probably not what was meant; the message says which and why.',
  },
  'config.chunked_stream_web2py': {
    level: 'warn', fields: [],
    message: '--chunked-input stream with web2py: web2py reads CONTENT_LENGTH, so chunked request bodies will look empty to it',
  },
  'reload.started': {
    level: 'info', message: 'reload: replacing the front processes (fronts) or the workers (workers) one at a time', fields: ['signal', 'workers', 'fronts'],
    doc: 'The primary, on SIGHUP, replaces the front processes (`fronts`), each with its workers; a front process with --reload replaces its `workers` when a source file changes.',
  },
  'reload.finished': {
    level: 'info', message: 'reload finished: those replaced run the code on disk now', fields: ['replaced', 'failed', 'tls'],
    doc: '`tls` (the primary\'s line only): `reloaded`, `kept` (the new certificate or key was refused) or `off`.',
  },
  'reload.failed': { level: 'error', message: 'reload failed', fields: ['err'] },
  'tls.reload_failed': { level: 'error', message: 'new certificate or key refused; the old ones stay', fields: ['reason'] },
  'log.reopened': { level: 'info', message: 'access log reopened', fields: ['file'], doc: 'SIGUSR1 (logrotate).' },
  'log.reopen_failed': { level: 'error', message: 'cannot reopen the access log; lines are dropped until it can', fields: ['err'] },
  'scheduler.started': { level: 'info', message: 'scheduler process started', fields: ['name', 'schedulerPid', 'reason'] },
  'scheduler.output': {
    level: 'info', message: 'scheduler output', fields: ['name', 'schedulerPid', 'stream', 'line'],
    doc: 'One line a web2py scheduler (-K) wrote on stdout or stderr.',
  },
  'scheduler.exited': { level: 'info', message: 'scheduler process exited', fields: ['name', 'schedulerPid', 'code', 'signal', 'expected', 'uptimeMs'] },
  'scheduler.died': {
    level: 'error', message: 'scheduler process died; starting another', fields: ['name', 'schedulerPid', 'code', 'signal', 'expected', 'uptimeMs'],
  },
  'scheduler.restart_scheduled': {
    level: 'warn', message: 'scheduler keeps dying soon after its start; waiting before the next', fields: ['name', 'delayMs', 'failures'],
  },
  'scheduler.gave_up': {
    level: 'error', message: 'scheduler keeps dying at start; given up (the server goes on; fix it, then SIGHUP)', fields: ['name', 'failures', 'lastOutput'],
  },
  'scheduler.killed': {
    level: 'warn', message: 'scheduler did not leave after SIGTERM within --scheduler-stop-timeout; its process group was killed',
    fields: ['name', 'schedulerPid', 'afterMs'],
  },
  'front.started': { level: 'info', message: 'front process started', fields: [...front, 'reason'] },
  'front.ready': { level: 'info', message: 'front process ready', fields: [...front, 'startupMs'] },
  'front.died': {
    level: 'error', message: 'front process died; its requests in flight are lost, the listening sockets stay open; replacing it',
    fields: [...front, 'code', 'signal', 'failures', 'restartInMs'],
  },
  'front.exited': { level: 'info', message: 'front process exited', fields: [...front, 'code', 'signal'] },
  'front.crashed': { level: 'fatal', message: 'uncaught error in the front process: exiting (the primary starts another)', fields: ['err'] },
  'front.bad_message': { level: 'warn', message: 'front process sent a message the primary does not know; ignored', fields: [...front] },
  'front.reload_failed': { level: 'error', message: 'the new front process could not start; the old one stays', fields: ['index', 'reason'] },
  'front.primary_gone': { level: 'warn', message: 'the primary process is gone: stopping', fields: [] },
  'front.bug': {
    level: 'error', fields: ['where', 'message', 'traceback'],
    message: 'a bug of the front: only the request or connection concerned was answered 500 or cut; the server carries on',
  },
});

const { emit } = serverEvents;
type Pid = number | undefined;

export const serverLogEvents = {
  serverListening(log: Logger, f: { address: string; tls: boolean; http2: boolean }) {
    emit(log, 'server.listening', f);
  },
  serverDraining(log: Logger, f: { signal: string; inFlight: number; gracefulTimeoutSeconds: number }) {
    emit(log, 'server.draining', f);
  },
  serverStopped(log: Logger, f: { signal: string; unfinished: number }) {
    emit(log, 'server.stopped', f);
  },
  serverForcedStop(log: Logger, f: { signal: string }) {
    emit(log, 'server.forced_stop', f);
  },
  appChosen(log: Logger, f: { kind: string; detail: string }) {
    emit(log, 'app.chosen', f);
  },
  configWarning(log: Logger, f: { warning: string }) {
    emit(log, 'config.warning', f);
  },
  chunkedStreamWithWeb2py(log: Logger) {
    emit(log, 'config.chunked_stream_web2py', {});
  },
  reloadStarted(log: Logger, f: { signal: string; workers: number }) {
    emit(log, 'reload.started', { ...f, fronts: undefined });
  },
  reloadFinished(log: Logger, f: { replaced: number; failed: number }) {
    emit(log, 'reload.finished', { ...f, tls: undefined });
  },
  reloadFailed(log: Logger, f: { error: unknown }) {
    emit(log, 'reload.failed', { err: f.error });
  },
  serverReloadStarted(log: Logger, f: { signal: string; fronts: number }) {
    emit(log, 'reload.started', { ...f, workers: undefined });
  },
  serverReloadFinished(log: Logger, f: { replaced: number; failed: number; tls: 'reloaded' | 'kept' | 'off' }) {
    emit(log, 'reload.finished', f);
  },
  tlsReloadFailed(log: Logger, f: { reason: string }) {
    emit(log, 'tls.reload_failed', f);
  },
  logReopened(log: Logger, f: { file: string }) {
    emit(log, 'log.reopened', f);
  },
  logReopenFailed(log: Logger, f: { error: unknown }) {
    emit(log, 'log.reopen_failed', { err: f.error });
  },
  schedulerStarted(log: Logger, f: { name: string; schedulerPid: Pid; reason: 'start' | 'replace' | 'reload' }) {
    emit(log, 'scheduler.started', f);
  },
  schedulerOutput(log: Logger, f: { name: string; schedulerPid: Pid; stream: 'stdout' | 'stderr'; line: string }) {
    emit(log, 'scheduler.output', f);
  },
  schedulerExited(log: Logger, f: { name: string; schedulerPid: Pid; code: number | null; signal: string | null; expected: boolean; uptimeMs: number }) {
    emit(log, f.expected ? 'scheduler.exited' : 'scheduler.died', f);
  },
  schedulerRestartScheduled(log: Logger, f: { name: string; delayMs: number; failures: number }) {
    emit(log, 'scheduler.restart_scheduled', f);
  },
  schedulerGaveUp(log: Logger, f: { name: string; failures: number; lastOutput: string }) {
    emit(log, 'scheduler.gave_up', f);
  },
  schedulerKilled(log: Logger, f: { name: string; schedulerPid: Pid; afterMs: number }) {
    emit(log, 'scheduler.killed', f);
  },
  frontStarted(log: Logger, f: { index: number; pid: Pid; reason: 'start' | 'replace' | 'reload' }) {
    emit(log, 'front.started', f);
  },
  frontReady(log: Logger, f: { index: number; pid: Pid; startupMs: number }) {
    emit(log, 'front.ready', f);
  },
  frontDied(log: Logger, f: { index: number; pid: Pid; code: number | null; signal: string | null; failures: number; restartInMs: number }) {
    emit(log, 'front.died', f);
  },
  frontExited(log: Logger, f: { index: number; pid: Pid; code: number | null; signal: string | null }) {
    emit(log, 'front.exited', f);
  },
  frontCrashed(log: Logger, f: { error: unknown }) {
    emit(log, 'front.crashed', { err: f.error });
  },
  frontBadMessage(log: Logger, f: { index: number; pid: Pid }) {
    emit(log, 'front.bad_message', f);
  },
  frontReloadFailed(log: Logger, f: { index: number; reason: string }) {
    emit(log, 'front.reload_failed', f);
  },
  serverStats(log: Logger, f: {
    seconds: number; requests: number; errors: number; connections: number; inApp: number; queued: number; fronts: number; workers: number;
    rssMb: number; primaryRssMb: number; frontsRssMb: number; workersRssMb: number; schedulersRssMb: number | undefined;
  }) {
    emit(log, 'server.stats', f);
  },
  primaryGone(log: Logger) {
    emit(log, 'front.primary_gone', {});
  },
  frontBug(log: Logger, f: { where: string; message: string; stack: string }) {
    emit(log, 'front.bug', { where: f.where, message: f.message, traceback: f.stack });
  },
} as const;
