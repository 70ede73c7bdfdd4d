/**
 * @module Log events of requests and connections: failures, bad clients, cut responses, static files.
 *
 * Part of the one catalogue (events.ts); the specs say level, message and fields (event-spec.ts).
 * A failed request's line takes its level from the error table (`level: 'code'`).
 */
import type { ErrorCode } from '../errors/index.js';
import { defineEvents } from './event-spec.js';
import type { Logger } from './log.js';

const request = ['reqId', 'requestId', 'workerId', 'method', 'path'] as const;

export const requestEvents = defineEvents({
  'request.failed': {
    level: 'code', message: 'the application failed this request: answered 500, or the connection cut if its head was sent',
    fields: [...request, 'code', 'message', 'traceback', 'headersSent'],
    doc: 'The application raised (`W2N_ERR_APP_EXCEPTION`, with its Python traceback) or broke PEP 3333 (`W2N_ERR_APP_BAD_RESPONSE`).',
  },
  'request.worker_died': { level: 'code', message: 'the worker running this request died', fields: [...request, 'code'] },
  'request.timed_out': {
    level: 'code', message: 'the request ran past --timeout: answered 504, or the connection cut if its head was sent; the worker interrupts it',
    fields: [...request, 'code', 'message', 'headersSent'],
  },
  'request.bad_response': {
    level: 'error', message: 'the application sent a response the front cannot send', fields: ['reqId', 'requestId', 'reason'],
    doc: 'Its head breaks HTTP (Node refused it) or its body does not match its Content-Length: answered 500.',
  },
  'response.cut': {
    level: 'error', message: 'a response could not be finished as its head promised: the connection was cut, never reused',
    fields: ['reqId', 'requestId', 'method', 'path', 'reason'],
  },
  'client.error': {
    level: 'code', message: 'bad client input', fields: ['code', 'remoteAddr', 'reason', 'requestId'],
    doc: 'Once per refused request or connection (400, 408, 413, 431...): the reason names what was wrong; `requestId` is the refused request\'s X-Request-ID (none for a refused connection).',
  },
  'client.flood': { level: 'code', message: 'a client flooded the server: its connection was closed', fields: ['code', 'remoteAddr', 'reason'] },
  'connections.full': {
    level: 'warn', message: '--max-connections reached: new connections get 503 (logged once per burst)', fields: ['open', 'limit'],
  },
  'server.accept_failed': { level: 'error', message: 'could not accept a connection (logged at most every 10 s)', fields: ['code', 'message'] },
  'server.file_limit_low': {
    level: 'warn', message: 'ulimit -n is below --max-connections: connections past it cannot be accepted', fields: ['maxConnections', 'openFilesLimit'],
  },
  'body.spool_failed': { level: 'code', message: 'cannot spool a request body to disk: answered 500', fields: ['code', 'folder', 'reason'] },
  'static.refused': {
    level: 'debug', message: 'static file request refused', fields: ['status', 'reason', 'path', 'requestId'],
    doc: 'A static file request the front answers 4xx itself, as web2py would: a path web2py refuses (400), a missing file (404), a directory or an unreadable file (403), no satisfiable range (416).',
  },
  'static.failed': { level: 'warn', message: 'static file failed', fields: ['path', 'reason', 'requestId'] },
});

const { emit } = requestEvents;
interface RequestFacts { reqId: number; requestId: string; workerId: number; method: string; path: string }

export const requestLogEvents = {
  appException(log: Logger, f: RequestFacts & { code: ErrorCode; message: string; traceback: string; headersSent: boolean }) {
    emit(log, 'request.failed', f);
  },
  requestWorkerDied(log: Logger, f: RequestFacts & { code: ErrorCode }) {
    emit(log, 'request.worker_died', f);
  },
  requestTimedOut(log: Logger, f: RequestFacts & { code: ErrorCode; message: string; headersSent: boolean }) {
    emit(log, 'request.timed_out', f);
  },
  badResponse(log: Logger, f: { reqId: number; requestId: string; reason: string }) {
    emit(log, 'request.bad_response', f);
  },
  responseCut(log: Logger, f: { reqId: number; requestId: string; method: string; path: string; reason: string }) {
    emit(log, 'response.cut', f);
  },
  clientError(log: Logger, f: { code: ErrorCode; remoteAddr: string | undefined; reason: string; requestId?: string | undefined }) {
    emit(log, 'client.error', { ...f, requestId: f.requestId });
  },
  clientFlood(log: Logger, f: { code: ErrorCode; remoteAddr: string | undefined; reason: string }) {
    emit(log, 'client.flood', f);
  },
  connectionsFull(log: Logger, f: { open: number; limit: number }) {
    emit(log, 'connections.full', f);
  },
  acceptFailed(log: Logger, f: { code: string; message: string }) {
    emit(log, 'server.accept_failed', f);
  },
  fileLimitLow(log: Logger, f: { maxConnections: number; openFilesLimit: number }) {
    emit(log, 'server.file_limit_low', f);
  },
  bodySpoolFailed(log: Logger, f: { code: ErrorCode; folder: string; reason: string }) {
    emit(log, 'body.spool_failed', f);
  },
  staticRefused(log: Logger, f: { status: number; reason: string; path: string; requestId: string }) {
    emit(log, 'static.refused', f);
  },
  staticFailed(log: Logger, f: { path: string; reason: string; requestId: string }) {
    emit(log, 'static.failed', f);
  },
} as const;
