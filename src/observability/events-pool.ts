/**
 * @module Log events of the worker pool: workers starting, serving, dying, recycled; the queue.
 *
 * Part of the one catalogue (events.ts); the specs say level, message and fields (event-spec.ts).
 */
import type { ErrorCode } from '../errors/index.js';
import { defineEvents } from './event-spec.js';
import type { Logger } from './log.js';
import type { RejectReason } from './metrics.js';

const worker = ['workerId', 'pid'] as const;

export const poolEvents = defineEvents({
  'worker.spawned': { level: 'debug', message: 'worker spawned', fields: [...worker] },
  'worker.ready': { level: 'info', message: 'worker ready', fields: [...worker, 'python', 'workerClass', 'capacity', 'startupMs'] },
  'worker.start_failed': {
    level: 'error', message: 'the worker could not load the application', fields: ['workerId', 'code', 'message', 'traceback'],
    doc: 'At error level for a replacement worker; at debug level at the first start, where the server stops with the error as its one line.',
  },
  'worker.exited': { level: 'info', message: 'worker exited', fields: [...worker, 'code', 'signal', 'expected', 'inFlight'] },
  'worker.died': { level: 'error', message: 'worker died', fields: [...worker, 'code', 'signal', 'expected', 'inFlight'] },
  'worker.respawn_scheduled': { level: 'warn', message: 'worker keeps dying; waiting before the next start', fields: [...worker, 'delayMs', 'failures'] },
  'worker.recycling': { level: 'info', message: 'recycling worker: starting its replacement', fields: [...worker, 'reason', 'served'] },
  'worker.recycled': { level: 'info', message: 'replacement ready; old worker finishes its requests and leaves', fields: ['workerId', 'replacedBy', 'reason'] },
  'worker.recycle_failed': { level: 'error', message: 'replacement could not start; the old worker stays', fields: ['workerId', 'reason', 'message'] },
  'worker.over_memory': { level: 'warn', message: 'worker above --max-rss', fields: [...worker, 'rssBytes', 'limitBytes'] },
  'worker.hung': {
    level: 'code', message: 'a worker did not stop a timed-out request: replacing it', fields: [...worker, 'code', 'message'],
    doc: 'Its Python stack dump comes just before, as worker.output lines.',
  },
  'worker.output': {
    level: 'info', message: { field: 'line' }, fields: [...worker, 'stream', 'line'],
    doc: 'One line the worker (the application, Python) wrote on stdout or stderr, control characters escaped, as the message.',
  },
  'app.str_body': {
    level: 'warn', message: 'the application yielded str, not bytes, in a response body (PEP 3333): encoded, and logged once per path',
    fields: [...worker, 'path', 'charset', 'isLastLogged'],
    doc: 'The str was encoded in `charset` (the Content-Type\'s, else UTF-8). At most 1,000 paths are logged; the last says `isLastLogged=true`.',
  },
  'worker.protocol_error': { level: 'code', message: 'broken worker channel; replacing the worker', fields: [...worker, 'code', 'message'] },
  'reload.file_changed': { level: 'info', message: 'source changed: reloading workers', fields: ['file'] },
  'reload.watch_failed': { level: 'warn', message: 'cannot watch this path for --reload', fields: ['path', 'err'] },
  'queue.full': {
    level: 'warn', message: 'requests are waiting too long or too many: answering 503 (logged once per burst)', fields: ['why', 'queued', 'limit', 'timeoutMs'],
  },
});

const { emit } = poolEvents;
interface WorkerFacts { workerId: number; pid?: number | undefined }

export const poolLogEvents = {
  workerSpawned(log: Logger, f: WorkerFacts) {
    emit(log, 'worker.spawned', { workerId: f.workerId, pid: f.pid });
  },
  workerReady(log: Logger, f: WorkerFacts & { python: string; workerClass: string; capacity: number; startupMs: number }) {
    emit(log, 'worker.ready', { ...f, pid: f.pid });
  },
  /** `isNews`: a replacement failing (error level), not the first start (debug: the CLI reports it). */
  workerStartFailed(log: Logger, f: { workerId: number; code: ErrorCode; message: string; traceback: string; isNews: boolean }) {
    const { isNews, ...fields } = f;
    emit(log, 'worker.start_failed', fields, isNews ? 'error' : 'debug');
  },
  appStrBody(log: Logger, f: WorkerFacts & { path: string; charset: string; isLastLogged: boolean }) {
    emit(log, 'app.str_body', { ...f, pid: f.pid });
  },
  workerExited(log: Logger, f: WorkerFacts & { code: number | null; signal: string | null; expected: boolean; inFlight: number }) {
    emit(log, f.expected ? 'worker.exited' : 'worker.died', { ...f, pid: f.pid });
  },
  workerRespawnScheduled(log: Logger, f: WorkerFacts & { delayMs: number; failures: number }) {
    emit(log, 'worker.respawn_scheduled', { ...f, pid: f.pid });
  },
  workerRecycling(log: Logger, f: WorkerFacts & { reason: string; served: number }) {
    emit(log, 'worker.recycling', { ...f, pid: f.pid });
  },
  workerRecycled(log: Logger, f: { workerId: number; replacedBy: number; reason: string }) {
    emit(log, 'worker.recycled', f);
  },
  workerRecycleFailed(log: Logger, f: { workerId: number; reason: string; message: string }) {
    emit(log, 'worker.recycle_failed', f);
  },
  workerOverMemory(log: Logger, f: WorkerFacts & { rssBytes: number; limitBytes: number }) {
    emit(log, 'worker.over_memory', { ...f, pid: f.pid });
  },
  workerHung(log: Logger, f: WorkerFacts & { code: ErrorCode; message: string }) {
    emit(log, 'worker.hung', { ...f, pid: f.pid });
  },
  workerOutput(log: Logger, f: WorkerFacts & { stream: 'stdout' | 'stderr'; line: string }) {
    emit(log, 'worker.output', { workerId: f.workerId, pid: f.pid, stream: f.stream, line: f.line });
  },
  workerProtocolError(log: Logger, f: WorkerFacts & { code: ErrorCode; message: string }) {
    emit(log, 'worker.protocol_error', { ...f, pid: f.pid });
  },
  reloadFileChanged(log: Logger, f: { file: string }) {
    emit(log, 'reload.file_changed', f);
  },
  reloadWatchFailed(log: Logger, f: { path: string; error: unknown }) {
    emit(log, 'reload.watch_failed', { path: f.path, err: f.error });
  },
  queueFull(log: Logger, f: { why: RejectReason; queued: number; limit: number; timeoutMs: number }) {
    emit(log, 'queue.full', f);
  },
} as const;
