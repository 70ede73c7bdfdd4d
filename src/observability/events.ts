/**
 * @module The catalogue of server-log events: one function per lifecycle line.
 *
 * Each event has a stable dotted name, a fixed level, a fixed message and fixed fields, so a
 * line means the same thing wherever it is written (fastify's log-controller.js is the model).
 * Code never calls logger.info(...) with free text for lifecycle facts: it calls one of these.
 */
import type { Logger } from './log.js';
import type { RejectReason } from './metrics.js';

interface WorkerFacts { workerId: number; pid?: number | undefined }

export const LogEvents = {
  serverListening(log: Logger, f: { address: string; tls: boolean; http2: boolean }) {
    log.info({ event: 'server.listening', ...f }, 'listening');
  },
  serverDraining(log: Logger, f: { signal: string; inFlight: number; gracefulTimeoutSeconds: number }) {
    log.info({ event: 'server.draining', ...f }, 'stopping: finishing in-flight requests');
  },
  serverStopped(log: Logger, f: { signal: string; unfinished: number }) {
    log.info({ event: 'server.stopped', ...f }, 'stopped');
  },
  serverForcedStop(log: Logger, f: { signal: string }) {
    log.warn({ event: 'server.forced_stop', ...f }, 'second signal: stopping at once');
  },
  appChosen(log: Logger, f: { kind: string; detail: string }) {
    log.info({ event: 'app.chosen', ...f }, 'application');
  },
  workerSpawned(log: Logger, f: WorkerFacts) {
    log.debug({ event: 'worker.spawned', ...f }, 'worker spawned');
  },
  workerReady(log: Logger, f: WorkerFacts & { python: string; workerClass: string; capacity: number; startupMs: number }) {
    log.info({ event: 'worker.ready', ...f }, 'worker ready');
  },
  workerExited(log: Logger, f: WorkerFacts & { code: number | null; signal: string | null; expected: boolean; inFlight: number }) {
    if (f.expected) log.info({ event: 'worker.exited', ...f }, 'worker exited');
    else log.error({ event: 'worker.died', ...f }, 'worker died');
  },
  workerRespawnScheduled(log: Logger, f: WorkerFacts & { delayMs: number; failures: number }) {
    log.warn({ event: 'worker.respawn_scheduled', ...f }, 'worker keeps dying; waiting before the next start');
  },
  workerRecycling(log: Logger, f: WorkerFacts & { reason: string; served: number }) {
    log.info({ event: 'worker.recycling', ...f }, 'recycling worker: starting its replacement');
  },
  workerRecycled(log: Logger, f: { workerId: number; replacedBy: number; reason: string }) {
    log.info({ event: 'worker.recycled', ...f }, 'replacement ready; old worker finishes its requests and leaves');
  },
  workerRecycleFailed(log: Logger, f: { workerId: number; reason: string; message: string }) {
    log.error({ event: 'worker.recycle_failed', ...f }, 'replacement could not start; the old worker stays');
  },
  workerOverMemory(log: Logger, f: WorkerFacts & { rssBytes: number; limitBytes: number }) {
    log.warn({ event: 'worker.over_memory', ...f }, 'worker above --max-rss');
  },
  reloadStarted(log: Logger, f: { signal: string; workers: number }) {
    log.info({ event: 'reload.started', ...f }, 'reload: replacing workers one at a time');
  },
  reloadFinished(log: Logger, f: { replaced: number; failed: number }) {
    log.info({ event: 'reload.finished', ...f }, 'reload finished');
  },
  serverReloadStarted(log: Logger, f: { signal: string; fronts: number }) {
    log.info({ event: 'reload.started', ...f }, 'reload: replacing the front processes (with their workers) one at a time');
  },
  serverReloadFinished(log: Logger, f: { replaced: number; failed: number; tls: 'reloaded' | 'kept' | 'off' }) {
    log.info({ event: 'reload.finished', ...f }, 'reload finished: `replaced` front processes run the code and certificates on disk now');
  },
  tlsReloadFailed(log: Logger, f: { reason: string }) {
    log.error({ event: 'tls.reload_failed', ...f }, 'new certificate or key refused; the old ones stay');
  },
  workerOutput(log: Logger, f: WorkerFacts & { stream: 'stdout' | 'stderr'; line: string }) {
    log.info({ event: 'worker.output', workerId: f.workerId, pid: f.pid, stream: f.stream }, f.line);
  },
  workerProtocolError(log: Logger, f: WorkerFacts & { code: string; message: string }) {
    log.error({ event: 'worker.protocol_error', ...f }, 'broken worker channel; replacing the worker');
  },
  appException(log: Logger, f: { reqId: number; workerId: number; method: string; path: string; code: string; message: string; traceback: string; headersSent: boolean }) {
    log.error({ event: 'request.failed', ...f }, f.message);
  },
  requestWorkerDied(log: Logger, f: { reqId: number; workerId: number; method: string; path: string }) {
    log.error({ event: 'request.worker_died', ...f }, 'the worker running this request died');
  },
  badResponse(log: Logger, f: { reqId: number; reason: string }) {
    log.error({ event: 'request.bad_response', ...f }, 'the application sent a response the front cannot send');
  },
  queueFull(log: Logger, f: { why: RejectReason; queued: number; limit: number; timeoutMs: number }) {
    log.warn({ event: 'queue.full', ...f }, 'requests are waiting too long or too many: answering 503 (logged once per burst)');
  },
  clientError(log: Logger, f: { code: string; remoteAddr: string | undefined; reason: string }) {
    log.debug({ event: 'client.error', ...f }, 'bad client input');
  },
  clientFlood(log: Logger, f: { code: string; remoteAddr: string | undefined; reason: string }) {
    log.info({ event: 'client.flood', ...f }, 'a client flooded the server: its connection was closed');
  },
  connectionsFull(log: Logger, f: { open: number; limit: number }) {
    log.warn({ event: 'connections.full', ...f }, '--max-connections reached: new connections get 503 (logged once per burst)');
  },
  acceptFailed(log: Logger, f: { code: string; message: string }) {
    log.error({ event: 'server.accept_failed', ...f }, 'could not accept a connection (logged at most every 10 s)');
  },
  acceptBatchUnavailable(log: Logger, f: { reason: string }) {
    log.warn({ event: 'server.accept_batch_unavailable', ...f }, 'could not add descriptors for --accept-batch: one connection is accepted per event-loop turn');
  },
  fileLimitLow(log: Logger, f: { maxConnections: number; openFilesLimit: number }) {
    log.warn({ event: 'server.file_limit_low', ...f }, 'ulimit -n is below --max-connections: connections past it cannot be accepted');
  },
  chunkedStreamWithWeb2py(log: Logger) {
    log.warn({ event: 'config.chunked_stream_web2py' }, '--chunked-input stream with web2py: web2py reads CONTENT_LENGTH, so chunked request bodies will look empty to it');
  },
  schedulerStarted(log: Logger, f: { name: string; schedulerPid: number | undefined; reason: 'start' | 'replace' | 'reload' }) {
    log.info({ event: 'scheduler.started', ...f }, 'scheduler process started');
  },
  schedulerOutput(log: Logger, f: { name: string; schedulerPid: number | undefined; stream: 'stdout' | 'stderr'; line: string }) {
    log.info({ event: 'scheduler.output', ...f }, 'scheduler output');
  },
  schedulerExited(log: Logger, f: { name: string; schedulerPid: number | undefined; code: number | null; signal: string | null; expected: boolean; uptimeMs: number }) {
    if (f.expected) log.info({ event: 'scheduler.exited', ...f }, 'scheduler process exited');
    else log.error({ event: 'scheduler.died', ...f }, 'scheduler process died; starting another');
  },
  schedulerRestartScheduled(log: Logger, f: { name: string; delayMs: number; failures: number }) {
    log.warn({ event: 'scheduler.restart_scheduled', ...f }, 'scheduler keeps dying soon after its start; waiting before the next');
  },
  schedulerGaveUp(log: Logger, f: { name: string; failures: number; lastOutput: string }) {
    log.error({ event: 'scheduler.gave_up', ...f }, 'scheduler keeps dying at start; given up (the server goes on; fix it, then SIGHUP)');
  },
  schedulerKilled(log: Logger, f: { name: string; schedulerPid: number | undefined; afterMs: number }) {
    log.warn({ event: 'scheduler.killed', ...f }, 'scheduler did not leave after SIGTERM within --scheduler-stop-timeout; its process group was killed');
  },
  frontStarted(log: Logger, f: { index: number; pid: number | undefined; reason: 'start' | 'replace' | 'reload' }) {
    log.info({ event: 'front.started', ...f }, 'front process started');
  },
  frontReady(log: Logger, f: { index: number; pid: number | undefined; startupMs: number }) {
    log.info({ event: 'front.ready', ...f }, 'front process ready');
  },
  frontDied(log: Logger, f: { index: number; pid: number | undefined; code: number | null; signal: string | null; failures: number; restartInMs: number }) {
    log.error({ event: 'front.died', ...f }, 'front process died; its requests in flight are lost, the listening sockets stay open; replacing it');
  },
  frontExited(log: Logger, f: { index: number; pid: number | undefined; code: number | null; signal: string | null }) {
    log.info({ event: 'front.exited', ...f }, 'front process exited');
  },
  frontCrashed(log: Logger, f: { error: unknown }) {
    log.fatal({ event: 'front.crashed', err: f.error }, 'uncaught error in the front process: exiting (the primary starts another)');
  },
  frontBadMessage(log: Logger, f: { index: number; pid: number | undefined }) {
    log.warn({ event: 'front.bad_message', ...f }, 'front process sent a message the primary does not know; ignored');
  },
  frontReloadFailed(log: Logger, f: { index: number; reason: string }) {
    log.error({ event: 'front.reload_failed', ...f }, 'the new front process could not start; the old one stays');
  },
  primaryGone(log: Logger) {
    log.warn({ event: 'front.primary_gone' }, 'the primary process is gone: stopping');
  },
  frontBug(log: Logger, f: { where: string; message: string; stack: string }) {
    log.error({ event: 'front.bug', where: f.where, message: f.message, traceback: f.stack }, 'a bug of the front: only the request or connection concerned was answered 500 or cut; the server carries on');
  },
  responseCut(log: Logger, f: { reqId: number; method: string; path: string; reason: string }) {
    log.error({ event: 'response.cut', ...f }, 'a response could not be finished as its head promised: the connection was cut, never reused');
  },
  bodySpoolFailed(log: Logger, f: { code: string; folder: string; reason: string }) {
    log.error({ event: 'body.spool_failed', ...f }, 'cannot spool a request body to disk: answered 500');
  },
  realtimeOn(log: Logger, f: { prefix: string | null; port: number | null; signed: boolean; tokens: boolean; presence: boolean; redis: boolean }) {
    log.info({ event: 'realtime.on', ...f }, 'realtime hub on (web2py websocket_messaging)');
  },
  realtimeRefused(log: Logger, f: { reason: string; remoteAddr: string | undefined; status: number }) {
    log.debug({ event: 'realtime.refused', ...f }, 'realtime request refused');
  },
  realtimeSlowConsumer(log: Logger, f: { group: string; dropped: number }) {
    log.debug({ event: 'realtime.slow_consumer', ...f }, 'WebSocket clients read too slowly: closed 1013');
  },
  realtimeRedisDown(log: Logger, f: { reason: string }) {
    log.warn({ event: 'realtime.redis_down', ...f }, 'Redis unreachable: messages reach this instance only until it is back (reconnecting with backoff; logged once per outage)');
  },
  realtimeRedisUp(log: Logger, f: { afterOutage: boolean }) {
    log.info({ event: 'realtime.redis_up', ...f }, 'Redis connected: realtime messages reach every instance');
  },
} as const;
