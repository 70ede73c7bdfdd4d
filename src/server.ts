/**
 * @module One front process: listeners on the primary's sockets, worker pool, logs, graceful stop.
 *
 * The primary (src/primary/) has already checked the configuration, bound every socket and
 * written the password files; a front listens on the inherited descriptors, starts its share of
 * the Python workers and reports its start-up lines. Requests that arrive while workers start
 * wait in the queue; /health says 503 until the pool is ready.
 *
 * The start is a series of small steps (access log → pool → listeners → workers → code watcher);
 * each registers what it took hold of with the front's Lifecycle (src/lifecycle/), which owns the
 * stop: listeners stop accepting, the pool and the responses in flight drain, then listeners,
 * workers and the access log close, newest first. A start that fails is rolled back by the same
 * steps. A new part of the front joins the same way: one `lifecycle.add(name, steps)` in its step.
 */
import type { Config, SettingKey } from './config/settings.js';
import type { Source } from './config/load.js';
import { LogEvents } from './observability/events.js';
import type { Logger } from './observability/log.js';
import { AccessLog, accessLogTarget } from './observability/access-log.js';
import { accessLineFormatter } from './observability/access-formats.js';
import { Pool, type PoolOptions } from './pool/supervisor.js';
import { Metrics } from './observability/metrics.js';
import { CodeWatcher, watchTargets } from './pool/code-watcher.js';
import type { PythonFacts, WorkerHandshake } from './pool/worker.js';
import type { FrontAssignment } from './primary/messages.js';
import { Lifecycle } from './lifecycle/lifecycle.js';
import { createRequestHandler, type HandlerOptions } from './front/handler.js';
import { RequestBodies } from './front/request-body.js';
import type { StaticHandler } from './front/static/serve.js';
import { isStaticOffloadEnabled, type StaticOffloadFacts } from './front/static/offload.js';
import type { ListenerFacts } from './front/environ.js';
import type { ListenerLimits } from './front/listeners.js';
import { planListeners, type ListenerSpec } from './front/listen-plan.js';
import type { UpgradeTaker } from './front/upgrade.js';
import { ListenerSet } from './front/listener-set.js';
import { ClientRejections } from './front/client-errors.js';
import { ConnectionLimit, warnIfFileLimitLow } from './front/connection-limit.js';
import { compileProxyTrust, type ProxyTrust } from './front/proxy-trust.js';
import { frontStartupLines } from './front/startup-lines.js';
import { prepareProfilerDir } from './web2py/folder.js';
import { StatusPage } from './front/builtins/status.js';
import { createMetricsListenerHandler } from './front/builtins/metrics.js';
import { RecentEvents } from './observability/recent-events.js';
import { observeEvents } from './observability/event-spec.js';
import type { FrontStatus } from './observability/status-data.js';
import { isRealtimeOn, maxWebSocketsOf, originsOf, startRealtime, type Realtime } from './front/realtime/setup.js';
import { AppWebSockets } from './front/websocket/app-sockets.js';
import type { SiblingLink } from './front/realtime/sibling-peers.js';

/** Bytes of request body in flight to one worker per request, and of response back. */
const REQUEST_WINDOW_BYTES = 256 * 1024;
const RESPONSE_WINDOW_BYTES = 1024 * 1024;
/** How long workers get to exit after SHUTDOWN before they are killed. */
const WORKER_STOP_TIMEOUT_MS = 5_000;

export interface FrontOptions {
  config: Readonly<Config>;
  sources: Readonly<Record<SettingKey, Source>>;
  log: Logger;
  assignment: FrontAssignment;
  /** The whole server's metrics in Prometheus text (the primary gathers every front's); null if it cannot. */
  serverMetrics: () => Promise<string | null>;
  /** The whole server's status (JSON of a ServerStatus, gathered by the primary); null if it cannot. */
  serverStatus: () => Promise<string | null>;
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
   * another front takes over (a reload), so connections are not cut the moment they are idle
   * (ListenerSet.stopSteps).
   */
  stop(signal: string, handOver?: boolean): Promise<void>;
  /** Immediate stop: kill workers now. */
  kill(): void;
  /** SIGUSR1 (logrotate): reopen the access log at its path. */
  reopenLogs(): Promise<void>;
  /** `--reload`: replace every worker without dropping a request. */
  reloadWorkers(why: string): Promise<void>;
  /** This front's part of the status page. */
  /** This front's part of the status page, with the history's seconds after `historySince` (0: all). */
  status(historySince?: number): Promise<FrontStatus>;
}

/** `auto` follows the seed: gevent when the interpreter has it, else a thread pool. */
function resolveWorkerClass(config: Readonly<Config>, python: PythonFacts): { workerClass: WorkerHandshake['workerClass']; capacity: number; why: string } {
  const capacityOf = (workerClass: WorkerHandshake['workerClass']): number =>
    workerClass === 'gevent' ? config.greenlets : workerClass === 'sync' ? 1 : config.threads;
  if (config.workerClass !== 'auto') return { workerClass: config.workerClass, capacity: capacityOf(config.workerClass), why: 'as asked' };
  if (python.gevent !== null) return { workerClass: 'gevent', capacity: config.greenlets, why: `auto: gevent ${python.gevent} is importable` };
  return { workerClass: 'thread', capacity: config.threads, why: `auto: ${config.python} cannot import gevent` };
}

/** What the start steps made, for the running front and its start-up lines. */
interface Parts {
  lifecycle: Lifecycle;
  log: Logger;
  accessLog: AccessLog | null;
  metrics: Metrics;
  pool: Pool;
  workerClass: WorkerHandshake['workerClass'];
  workerCapacity: number;
  workerClassWhy: string;
  /** The status page's recent events of this front. */
  events: RecentEvents;
  /** The realtime hub (front/realtime/), null when off. */
  realtime: Realtime | null;
  /** The applications' WebSockets (front/websocket/). */
  appWebSockets: AppWebSockets;
}

export async function startFront(options: FrontOptions): Promise<{ front: RunningFront; lines: string[] }> {
  const { config } = options;
  const log = options.log.child({ component: 'front' });
  const lifecycle = new Lifecycle({
    gracefulTimeoutMs: config.gracefulTimeoutMs,
    onDraining: (stop, inFlight) => LogEvents.serverDraining(log, { signal: stop.reason, inFlight, gracefulTimeoutSeconds: config.gracefulTimeoutMs / 1000 }),
    onStopped: (stop, unfinished) => LogEvents.serverStopped(log, { signal: stop.reason, unfinished }),
  });
  return lifecycle.start(async () => {
    const parts = createPool(options, log, lifecycle, openAccessLog(options, lifecycle));
    parts.appWebSockets = openAppWebSockets(options, parts);
    parts.realtime = await openRealtime(options, parts);
    const listeners = await openListeners(options, parts);
    const reloadWorkers = workerReloader(parts, options.assignment.processes);
    const ready = await parts.pool.start();
    watchCode(options, parts, reloadWorkers);
    const lines = frontStartupLines({
      appDetail: options.assignment.app.detail,
      workers: { ...ready, processes: config.processes, fronts: options.assignment.fronts, why: parts.workerClassWhy },
      staticOffload: staticOffloadOf(options),
      reload: config.reload,
      tlsLine: listeners.set.tlsLine(),
      proxies: listeners.proxies,
      hasProxyHeaders: options.sources.proxyHeaders !== 'default',
      accessLog: parts.accessLog === null ? null : { file: parts.accessLog.file, format: config.accessLogFormat },
    });
    // The realtime line goes before the last one (the access log's), which says the start is over.
    if (parts.realtime !== null) lines.splice(lines.length - 1, 0, parts.realtime.line);
    return { lines, front: runningFront(parts, reloadWorkers, frontStatusOf(options, parts)) };
  });
}

/** Step: the access log (`-l`, `--access-log`), flushed and closed last of all. */
function openAccessLog(options: FrontOptions, lifecycle: Lifecycle): AccessLog | null {
  const { config, assignment } = options;
  const app = assignment.app.spec;
  const target = accessLogTarget({ ...config, folder: app.kind === 'web2py' ? app.folder : config.folder });
  const accessLog = target === null ? null : AccessLog.openTarget(target);
  if (accessLog !== null) lifecycle.add('access log', { close: () => accessLog.close() });
  return accessLog;
}

/** Step: the metrics and the pool of workers (not started yet: the listeners come first). */
function createPool(options: FrontOptions, log: Logger, lifecycle: Lifecycle, accessLog: AccessLog | null): Parts {
  const metrics = new Metrics();
  metrics.serveFrom(options.serverMetrics);
  metrics.history.start();
  const events = new RecentEvents();
  observeEvents((name, level, fields) => events.record(name, level, fields));
  const worker = resolveWorkerClass(options.config, options.assignment.python);
  // The hub is a later step: what the applications publish finds it through `parts` when it comes.
  const onPublish = (group: string, message: string): void => void parts.realtime?.hub.publish(group, message, 'app');
  const pool = new Pool({ ...poolOptions(options, worker, metrics), onPublish });
  metrics.countPool(() => pool.stats);
  lifecycle.add('pool', { drain: () => pool.whenIdle(), close: () => pool.stop(WORKER_STOP_TIMEOUT_MS), kill: () => pool.kill() });
  lifecycle.add('status history', { close: () => metrics.history.stop(), kill: () => metrics.history.stop() });
  const parts: Parts = {
    lifecycle, log, accessLog, metrics, pool, workerClass: worker.workerClass, workerCapacity: worker.capacity, workerClassWhy: worker.why, events, realtime: null,
    appWebSockets: null as unknown as AppWebSockets, // the next step's
  };
  return parts;
}

/**
 * Step: the applications' WebSockets (`wsgi.websocket`). Registered after the pool, so that a
 * stop drains them before it waits for the pool: once the other requests in flight are done,
 * each is closed 1001; its application hears the close and returns, freeing its worker slot.
 */
function openAppWebSockets(options: FrontOptions, { log, metrics, lifecycle }: Parts): AppWebSockets {
  const { config } = options;
  const sockets: AppWebSockets = new AppWebSockets({
    maxMessageBytes: config.realtimeMaxMessageBytes, sendBufferBytes: config.realtimeSendBufferBytes,
    pingIntervalMs: config.realtimePingIntervalMs, origins: originsOf(config), maxConnections: maxWebSocketsOf(config),
    log, counters: metrics.appWebSockets(() => sockets.openCount),
  });
  const { inFlight } = lifecycle;
  lifecycle.add('application WebSockets', {
    stopAccepting: () => sockets.drain(),
    drain: async () => {
      // Only WebSockets left in flight (each holds its response open until it closes).
      await new Promise<void>((resolve) => {
        const check = (): void => { if (inFlight.count <= sockets.count) resolve(); };
        inFlight.onClose(check);
        check();
      });
      await sockets.closeAll();
    },
    close: () => sockets.closeAll(),
    kill: () => sockets.kill(),
  });
  return sockets;
}

/**
 * Step: the realtime hub (when on; its code is imported only then). A stop refuses joins at once; its members are closed 1001
 * once the requests in flight are done (pages reconnect to another front or instance).
 */
async function openRealtime(options: FrontOptions, { log, metrics, lifecycle, appWebSockets }: Parts): Promise<Realtime | null> {
  const { config, sources, assignment } = options;
  const realtime = await startRealtime({
    config, sources, log, metrics, instanceId: assignment.instanceId, siblingLink: options.realtimeLink, isFirst: assignment.index === 1,
    otherConnections: () => appWebSockets.count,
  });
  if (realtime !== null) appWebSockets.countWith(() => realtime.hub.connectionCount);
  if (realtime !== null) lifecycle.add('realtime', { stopAccepting: () => realtime.hub.drain(), close: () => realtime.hub.close(), kill: () => realtime.hub.kill() });
  return realtime;
}

/** The settings and this front's share, as the pool takes them: units are the Config's own. */
function poolOptions(options: FrontOptions, worker: ReturnType<typeof resolveWorkerClass>, metrics: Metrics): PoolOptions {
  const { config, assignment } = options;
  return {
    metrics,
    processes: assignment.processes,
    deadline: { timeoutMs: config.timeoutMs, graceMs: config.timeoutGraceMs },
    python: config.python,
    handshake: {
      app: assignment.app.spec, threads: worker.capacity, workerClass: worker.workerClass,
      requestWindow: REQUEST_WINDOW_BYTES, responseWindow: RESPONSE_WINDOW_BYTES,
      profilerDir: config.profiler === null ? null : prepareProfilerDir(config.profiler, config.folder),
      realtimeMaxMessage: isRealtimeOn(config, options.sources) ? config.realtimeMaxMessageBytes : 0,
    },
    maxInApp: assignment.maxInApp,
    queueSize: assignment.queueSize,
    queueTimeoutMs: config.queueTimeoutMs,
    queueTargetMs: config.queueTargetMs > 0 ? config.queueTargetMs : null,
    recycle: {
      maxRequests: config.maxRequests,
      maxRequestsJitter: config.maxRequestsJitter,
      maxRssBytes: config.maxRssBytes,
      maxLifetimeMs: config.maxLifetimeMs,
    },
    log: options.log,
    onWorkersChanged: options.onWorkersChanged,
  };
}

function staticOffloadOf({ config, assignment }: FrontOptions): StaticOffloadFacts | null {
  if (assignment.app.spec.kind !== 'web2py') return null;
  return { mode: config.staticOffload, isWeb2py: true, hasRoutesPy: assignment.app.hasRoutes };   // checkWeb2pyFolder looked for routes.py
}

/** `--server-header ''` or `off`: no Server header at all. */
function serverHeaderOf(config: Readonly<Config>): string | null {
  return config.serverHeader === '' || config.serverHeader === 'off' ? null : config.serverHeader;
}

function listenerLimits(config: Readonly<Config>): ListenerLimits {
  return {
    maxHeaderBytes: config.maxHeaderSizeBytes,
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    maxHeaders: config.maxHeaders,
  };
}

/**
 * web2py's static files served by the front (static offload on), else null. Only then are
 * serve.ts and file-cache.ts imported (with `send`, `fresh`, `etag`, `mime-types`): a front
 * loads no code it does not run (README: "A front that loads less").
 */
async function openStaticHandler(options: FrontOptions, log: Logger, rejections: ClientRejections): Promise<StaticHandler | null> {
  const { config, assignment } = options;
  const offload = staticOffloadOf(options);
  if (offload === null || assignment.app.spec.kind !== 'web2py' || !isStaticOffloadEnabled(offload)) return null;
  const [{ createStaticHandler }, { FileCache }] = await Promise.all([import('./front/static/serve.js'), import('./front/static/file-cache.js')]);
  return createStaticHandler({
    web2pyFolder: assignment.app.spec.folder, log, serverHeader: serverHeaderOf(config), guard: rejections.guard,
    cache: new FileCache({ maxBytes: config.staticCacheSizeBytes, maxFileBytes: config.staticCacheFileSizeBytes }),
  });
}

/** What every listener's request handler shares; responses are counted by the lifecycle. */
function handlerOptions(options: FrontOptions, parts: Parts, rejections: ClientRejections, staticHandler: StaticHandler | null): HandlerOptions {
  const { config } = options;
  const { log, metrics, lifecycle } = parts;
  const bodies = new RequestBodies({
    maxBytes: config.maxBodyBytes, memoryBytes: config.bodyBufferSizeBytes, spoolDir: config.spoolDir, chunkedInput: config.chunkedInput,
  }, log);
  return {
    pool: parts.pool, log, accessLog: parts.accessLog, formatAccessLine: accessLineFormatter(config.accessLogFormat), staticHandler, metrics, rejections, serverHeader: serverHeaderOf(config), bodies,
    statusPage: new StatusPage(config.statusToken, options.serverStatus),
    headLimits: { maxRequestLine: config.maxRequestLineBytes, maxHeaders: config.maxHeaders },
    isDraining: () => lifecycle.isStopping,
    onResponseOpened: () => lifecycle.inFlight.open(),
    onResponseClosed: () => lifecycle.inFlight.close(),
    realtime: parts.realtime === null ? null : parts.realtime.serveUnderPrefix,
    ...(parts.realtime === null ? {} : { realtimeOwns: parts.realtime.isUnderPrefix }),
    appWebSockets: parts.appWebSockets,
  };
}

/** Step: the listeners, on the primary's sockets; from here on requests arrive (and queue until workers are ready). */
async function openListeners(options: FrontOptions, parts: Parts): Promise<{ set: ListenerSet; proxies: ProxyTrust | null }> {
  const { config, sources, assignment } = options;
  const { log, metrics, lifecycle } = parts;
  const proxies = compileProxyTrust(config.trustedProxies, config.proxyHeaders);
  const rejections = new ClientRejections({ log, metrics, serverHeader: serverHeaderOf(config), maxHeaderSize: config.maxHeaderSizeBytes });
  const connectionLimit = new ConnectionLimit(config.maxConnections, rejections, log);
  metrics.countConnections(() => connectionLimit.open);
  const handling = handlerOptions(options, parts, rejections, await openStaticHandler(options, log, rejections));
  const set = await ListenerSet.open(planListeners(config, sources).specs, {
    limits: listenerLimits(config),
    http2: config.http2 === 'on' ? { maxConcurrentStreams: config.http2MaxStreams } : null,
    log, rejections, connectionLimit, proxies,
    handlerFor: (facts: ListenerFacts, spec) => {
      if (spec.kind === 'tcp' && spec.metrics === true) return createMetricsListenerHandler(metrics, serverHeaderOf(config));
      return parts.realtime !== null && spec.kind === 'tcp' && spec.realtime === true ? parts.realtime.servePort : createRequestHandler(facts, handling);
    },
    // The metrics listener takes no WebSocket: an upgrade there is an ordinary request (404).
    upgradesFor: (spec) => (spec.kind === 'tcp' && spec.metrics === true ? null : upgradesFor(spec, parts)),
    fallbackPort: config.port,
    inherited: assignment.listeners,
  });
  lifecycle.add('listeners', set.stopSteps(lifecycle.inFlight));
  announceListening(options, log, set);
  return { set, proxies };
}

/** The realtime hub's upgrades first (its paths), then the applications' WebSockets; none on `--realtime-port`. */
function upgradesFor(spec: ListenerSpec, { realtime, appWebSockets }: Parts): UpgradeTaker {
  const hub = realtime?.upgradesFor(spec) ?? null;
  if (spec.kind === 'tcp' && spec.realtime === true) return (req, socket, head, serve) => hub?.(req, socket, head, serve) ?? false;
  return (req, socket, head, serve) => hub?.(req, socket, head, serve) === true || appWebSockets.take(req, socket, head, serve);
}

/** The first front logs the listeners and the application; every front tells the primary it listens. */
function announceListening({ config, assignment, onListening }: FrontOptions, log: Logger, listeners: ListenerSet): void {
  if (assignment.index === 1) listeners.logListening();
  onListening();
  warnIfFileLimitLow(config.maxConnections, log);
  if (assignment.index !== 1) return;
  const app = assignment.app;
  LogEvents.appChosen(log, { kind: app.spec.kind, detail: app.detail });
  if (app.spec.kind === 'web2py' && config.chunkedInput === 'stream') LogEvents.chunkedStreamWithWeb2py(log);
}

/** `--reload` and SIGHUP: every worker replaced; a second ask during a reload joins it. */
function workerReloader({ pool, log }: Parts, workers: number): (why: string) => Promise<void> {
  let reloading: Promise<void> | null = null;
  return (why) => {
    reloading ??= (async () => {
      LogEvents.reloadStarted(log, { signal: why, workers });
      const { replaced, failed } = await pool.reload();
      LogEvents.reloadFinished(log, { replaced, failed });
    })().finally(() => { reloading = null; });
    return reloading;
  };
}

/** Step (`--reload`): watch the Python files; the watcher is the first thing a stop ends. */
function watchCode({ config, assignment }: FrontOptions, { log, lifecycle }: Parts, reloadWorkers: (why: string) => Promise<void>): void {
  if (!config.reload) return;
  const watcher = new CodeWatcher(watchTargets(assignment.app.spec), () => void reloadWorkers('file change'), log);
  lifecycle.add('code watcher', { stopAccepting: () => watcher.close(), kill: () => watcher.close() });
}

/** This front's part of the status page: its gauges, its last five minutes, its workers, its events. */
function frontStatusOf({ config, assignment }: FrontOptions, parts: Parts): (historySince?: number) => Promise<FrontStatus> {
  const { pool, metrics, events, workerClass, workerCapacity } = parts;
  return async (historySince = 0) => {
    const { running, queued } = pool.stats;
    const rows = await pool.statusRows(assignment.index, config.maxRssBytes);
    return {
      front: assignment.index, pid: process.pid, rssBytes: process.memoryUsage.rss(), responseTotals: [...metrics.responseTotals], workerClass,
      inApp: running, inAppLimit: assignment.maxInApp ?? workerCapacity * assignment.processes,
      queued, queueSize: assignment.queueSize,
      connections: metrics.connectionsOpen(), maxConnections: config.maxConnections,
      websockets: parts.realtime?.hub.connectionCount ?? null, appWebSockets: parts.appWebSockets.openCount,
      history: metrics.history.samples(historySince), ...rows, events: events.list(),
    };
  };
}

function runningFront({ lifecycle, pool, metrics, accessLog, log, realtime }: Parts, reloadWorkers: (why: string) => Promise<void>, status: (historySince?: number) => Promise<FrontStatus>): RunningFront {
  return {
    pool, metrics, reloadWorkers, realtime, status,
    stop: async (signal, handOver = false) => { await lifecycle.stop(signal, { handOver }); },
    kill: () => lifecycle.kill(),
    reopenLogs: async () => {
      if (accessLog === null) return;
      await accessLog.reopen();
      LogEvents.logReopened(log, { file: accessLog.file });
    },
  };
}
