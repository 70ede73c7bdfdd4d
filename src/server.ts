/**
 * @module One front process: listeners on the primary's sockets, worker pool, logs, graceful stop.
 *
 * The primary (src/primary/) has already checked the configuration, bound every socket and
 * written the password files; a front listens on the inherited descriptors, starts its share of
 * the Python workers and reports its start-up lines. Requests that arrive while workers start
 * wait in the queue; /health says 503 until the pool is ready.
 */
import { join } from 'node:path';
import type { Config, SettingKey } from './config/settings.js';
import type { Source } from './config/load.js';
import { LogEvents } from './observability/events.js';
import type { Logger } from './observability/log.js';
import { AccessLog, ACCESS_LOG_FILE_NAME } from './observability/access-log.js';
import { Pool } from './pool/supervisor.js';
import { Metrics } from './observability/metrics.js';
import { CodeWatcher, watchTargets } from './pool/code-watcher.js';
import type { PythonFacts, WorkerHandshake } from './pool/worker.js';
import type { FrontAssignment } from './primary/messages.js';
import { createRequestHandler } from './front/handler.js';
import { FileCache } from './front/static/file-cache.js';
import { RequestBodies } from './front/request-body.js';
import { createStaticHandler, describeStaticOffload, isStaticOffloadEnabled } from './front/static/serve.js';
import type { ListenerFacts } from './front/environ.js';
import { planListeners } from './front/listen-plan.js';
import { ListenerSet } from './front/listener-set.js';
import { ClientRejections } from './front/client-errors.js';
import { ConnectionLimit, warnIfFileLimitLow } from './front/connection-limit.js';
import { compileProxyTrust } from './front/proxy-trust.js';
import { prepareProfilerDir } from './web2py/folder.js';
import { startRealtime, type Realtime } from './front/realtime/setup.js';
import type { SiblingLink } from './front/realtime/sibling-peers.js';

/** Bytes of request body in flight to one worker per request, and of response back. */
const REQUEST_WINDOW_BYTES = 256 * 1024;
const RESPONSE_WINDOW_BYTES = 1024 * 1024;
/** A front handing over to a new one (SIGHUP) closes the connections still idle after this. */
const HANDOVER_IDLE_MS = 2_000;
/** How long workers get to exit after SHUTDOWN before they are killed. */
const WORKER_STOP_TIMEOUT_MS = 5_000;

export interface FrontOptions {
  config: Readonly<Config>;
  sources: Readonly<Record<SettingKey, Source>>;
  log: Logger;
  assignment: FrontAssignment;
  /** The whole server's metrics in Prometheus text (the primary gathers every front's); null if it cannot. */
  serverMetrics: () => Promise<string | null>;
  /** Told the live Python workers' process ids whenever they change. */
  onWorkersChanged: (pids: number[]) => void;
  /** Told once every listener is open, before the workers are ready. */
  onListening: () => void;
  /** The primary's channel for the realtime hub's events, when there are other fronts. */
  realtimeLink: SiblingLink | null;
}

export interface RunningFront {
  pool: Pool;
  metrics: Metrics;
  /** The realtime hub (null: off), for the events the primary relays from other fronts. */
  realtime: Realtime | null;
  /**
   * Graceful stop: stop accepting, finish in-flight work, stop workers, flush logs. `handOver`:
   * another front takes over (a reload), so connections are not cut the moment they are idle:
   * each in use is closed by its next answer; those idle for HANDOVER_IDLE_MS are closed then.
   */
  stop(signal: string, handOver?: boolean): Promise<void>;
  /** Immediate stop: kill workers now. */
  kill(): void;
  /** SIGUSR1 (logrotate): reopen the access log at its path. */
  reopenLogs(): Promise<void>;
  /** `--reload`: replace every worker without dropping a request. */
  reloadWorkers(why: string): Promise<void>;
}

/** `auto` follows the seed: gevent when the interpreter has it, else a thread pool. */
function resolveWorkerClass(config: Readonly<Config>, python: PythonFacts): { workerClass: WorkerHandshake['workerClass']; capacity: number; why: string } {
  const capacityOf = (workerClass: WorkerHandshake['workerClass']): number =>
    workerClass === 'gevent' ? config.greenlets : workerClass === 'sync' ? 1 : config.threads;
  if (config.workerClass !== 'auto') return { workerClass: config.workerClass, capacity: capacityOf(config.workerClass), why: 'as asked' };
  if (python.gevent !== null) return { workerClass: 'gevent', capacity: config.greenlets, why: `auto: gevent ${python.gevent} is importable` };
  return { workerClass: 'thread', capacity: config.threads, why: `auto: ${config.python} cannot import gevent` };
}

export async function startFront(options: FrontOptions): Promise<{ front: RunningFront; lines: string[] }> {
  const { config, sources, assignment } = options;
  const log = options.log.child({ component: 'front' });
  const lines: string[] = [];
  const say = (line: string): void => { lines.push(line); };
  const app = assignment.app.spec;
  const profilerDir = config.profiler === null ? null : prepareProfilerDir(config.profiler, config.folder);
  const accessLogFile = join(app.kind === 'web2py' ? app.folder : config.folder, ACCESS_LOG_FILE_NAME);
  const accessLog = config.logging ? AccessLog.open(accessLogFile) : null;

  // 1. The listeners, on the primary's sockets.
  let isDraining = false;
  const proxies = compileProxyTrust(config.trustedProxies, config.proxyHeaders);
  const { workerClass, capacity, why } = resolveWorkerClass(config, assignment.python);
  // The gauges read the pool when scraped; the pool is made just below.
  const metrics: Metrics = new Metrics(() => pool.stats);
  metrics.serveFrom(options.serverMetrics);
  const pool: Pool = new Pool({
    metrics,
    processes: assignment.processes,
    deadline: { timeoutMs: config.timeout * 1000, graceMs: config.timeoutGrace * 1000 },
    python: config.python,
    handshake: {
      app, threads: capacity, workerClass,
      requestWindow: REQUEST_WINDOW_BYTES, responseWindow: RESPONSE_WINDOW_BYTES, profilerDir,
    },
    maxInApp: assignment.maxInApp,
    queueSize: assignment.queueSize,
    queueTimeoutMs: config.queueTimeout * 1000,
    queueTargetMs: config.queueTarget > 0 ? config.queueTarget * 1000 : null,
    recycle: {
      maxRequests: config.maxRequests,
      maxRequestsJitter: config.maxRequestsJitter,
      maxRssBytes: config.maxRss * 1024 * 1024,
      maxLifetimeMs: config.maxLifetime * 1000,
    },
    log: options.log,
    onWorkersChanged: options.onWorkersChanged,
  });
  let activeResponses = 0;
  const offload = {
    mode: config.staticOffload,
    isWeb2py: app.kind === 'web2py',
    hasRoutesPy: assignment.app.hasRoutes, // checkWeb2pyFolder looked for routes.py already
  };
  // `--server-header ''` or `off`: no Server header at all.
  const serverHeader = config.serverHeader === '' || config.serverHeader === 'off' ? null : config.serverHeader;
  const rejections = new ClientRejections({ log, metrics, serverHeader, maxHeaderSize: config.maxHeaderSize });
  const connectionLimit = new ConnectionLimit(config.maxConnections, rejections, log);
  metrics.countConnections(() => connectionLimit.open);
  const staticHandler = isStaticOffloadEnabled(offload) && app.kind === 'web2py'
    ? createStaticHandler({
      web2pyFolder: app.folder, log, serverHeader, guard: rejections.guard,
      cache: new FileCache({ maxBytes: config.staticCacheSize, maxFileBytes: config.staticCacheFileSize }),
    })
    : null;
  const bodies = new RequestBodies({
    maxBytes: config.maxBody, memoryBytes: config.bodyBufferSize, spoolDir: config.spoolDir, chunkedInput: config.chunkedInput,
  }, log);
  const realtime = startRealtime({
    config, sources, log, metrics, instanceId: assignment.instanceId, siblingLink: options.realtimeLink, isFirst: assignment.index === 1,
  });
  const handlerOptions = {
    pool, log, accessLog, staticHandler, metrics, rejections, serverHeader, bodies,
    realtime: realtime === null ? null : realtime.serveUnderPrefix,
    headLimits: { maxRequestLine: config.maxRequestLine, maxHeaders: config.maxHeaders },
    isDraining: () => isDraining,
    onResponseOpened: () => { activeResponses += 1; },
    onResponseClosed: () => {
      activeResponses -= 1;
      // While draining, a connection whose last answer just ended is idle: close it now
      // (handing over, its answer said `Connection: close` and it closes by itself).
      if (isDraining && !isHandingOver) listeners.closeIdle();
    },
  };
  const listeners: ListenerSet = await ListenerSet.open(planListeners(config, sources).specs, {
    limits: {
      maxHeaderBytes: config.maxHeaderSize,
      headersTimeoutMs: config.headersTimeout * 1000,
      requestTimeoutMs: config.requestTimeout * 1000,
      keepAliveTimeoutMs: config.keepAliveTimeout * 1000,
      maxHeaders: config.maxHeaders,
    },
    http2: config.http2 === 'on' ? { maxConcurrentStreams: config.http2MaxStreams } : null,
    log, rejections, connectionLimit, proxies,
    handlerFor: (facts: ListenerFacts, spec) => (realtime !== null && spec.kind === 'tcp' && spec.realtime === true
      ? realtime.servePort : createRequestHandler(facts, handlerOptions)),
    upgradesFor: (spec) => realtime?.upgradesFor(spec) ?? null,
    fallbackPort: config.port,
    inherited: assignment.listeners,
  });
  if (assignment.index === 1) listeners.logListening();
  options.onListening();
  warnIfFileLimitLow(config.maxConnections, log);

  // 2. The workers.
  if (assignment.index === 1) {
    LogEvents.appChosen(log, { kind: app.kind, detail: assignment.app.detail });
    if (app.kind === 'web2py' && config.chunkedInput === 'stream') LogEvents.chunkedStreamWithWeb2py(log);
  }
  say(`application: ${assignment.app.detail}`);
  try {
    const ready = await pool.start();
    const fronts = assignment.fronts === 1 ? '' : ` in ${assignment.fronts} front processes`;
    say(`workers: ${config.processes} process${config.processes === 1 ? '' : 'es'} × ${ready.capacity} ready${fronts} `
      + `(${ready.workerClass}, ${why}; Python ${ready.pythonVersion})`);
  } catch (error: unknown) {
    pool.kill();
    realtime?.hub.kill();
    listeners.closeAll();
    await accessLog?.close();
    throw error;
  }
  if (offload.isWeb2py) say(describeStaticOffload(offload));
  if (config.reload) say('reload: on (workers restart when a Python file changes)');
  if (realtime !== null) say(realtime.line);
  say(listeners.tlsLine());
  say(proxies === null
    ? `trusted proxies: none (forwarding headers are dropped${sources.proxyHeaders === 'default' ? '' : '; --proxy-headers needs --trusted-proxies'})`
    : `trusted proxies: ${proxies.description}`);
  say(accessLog === null ? 'access log: off (-l to write httpserver.log)' : `access log: ${accessLogFile}`);

  let stopping: Promise<void> | null = null;
  let isHandingOver = false;
  const stop = (signal: string, handOver = false): Promise<void> => {
    stopping ??= (async () => {
      isDraining = true;
      isHandingOver = handOver;
      LogEvents.serverDraining(log, { signal, inFlight: activeResponses, gracefulTimeoutSeconds: config.gracefulTimeout });
      listeners.stopAccepting({ keepIdle: handOver });
      realtime?.hub.drain();
      const deadline = Date.now() + config.gracefulTimeout * 1000;
      if (handOver) {
        // Connections in use close by the `Connection: close` of their next answer. Those still
        // idle after HANDOVER_IDLE_MS have been idle since before the stop: closing them now
        // races only with a client that sends on a long-idle connection at that very moment
        // (as any idle close does), instead of keeping this front and its workers for them.
        await new Promise((resolve) => setTimeout(resolve, Math.min(HANDOVER_IDLE_MS, config.gracefulTimeout * 1000)));
        isHandingOver = false;
        listeners.closeIdle();
      }
      await pool.settle(deadline);
      while (activeResponses > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
      const unfinished = activeResponses;
      // WebSockets are closed 1001 (going away) once the requests are done; pages reconnect to another front or instance.
      await realtime?.hub.close();
      listeners.closeAll();
      await pool.stop(WORKER_STOP_TIMEOUT_MS);
      await accessLog?.close();
      LogEvents.serverStopped(log, { signal, unfinished });
    })();
    return stopping;
  };
  const kill = (): void => {
    pool.kill();
    realtime?.hub.kill();
    listeners.closeAll();
  };
  const reopenLogs = async (): Promise<void> => {
    if (accessLog === null) return;
    await accessLog.reopen();
    LogEvents.logReopened(log, { file: accessLogFile });
  };
  let reloading: Promise<void> | null = null;
  const reloadWorkers = (signal: string): Promise<void> => {
    reloading ??= (async () => {
      LogEvents.reloadStarted(log, { signal, workers: assignment.processes });
      const { replaced, failed } = await pool.reload();
      LogEvents.reloadFinished(log, { replaced, failed });
    })().finally(() => { reloading = null; });
    return reloading;
  };
  const watcher = config.reload ? new CodeWatcher(watchTargets(app), () => void reloadWorkers('file change'), log) : null;
  const stopWatching = (): void => watcher?.close();
  return {
    lines,
    front: {
      pool, metrics, reopenLogs, reloadWorkers, realtime,
      stop: (signal, handOver) => { stopWatching(); return stop(signal, handOver); },
      kill: () => { stopWatching(); kill(); },
    },
  };
}
