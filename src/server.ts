/**
 * @module Start and stop the whole server: checks, listeners, worker pool, logs, graceful stop.
 *
 * Order matters: everything that can be wrong with the configuration is checked before any
 * socket is bound (one clear error, nothing listening), then every listener opens and each
 * prints the seed's `starting on IP:PORT...`, then the workers load the application. Requests
 * that arrive while workers start wait in the queue; /health says 503 until the pool is ready.
 */
import { join } from 'node:path';
import type { Config, SettingKey } from './config/settings.js';
import type { Source } from './config/load.js';
import { ServerError } from './errors/index.js';
import { LogEvents } from './observability/events.js';
import type { Logger } from './observability/log.js';
import { AccessLog, ACCESS_LOG_FILE_NAME } from './observability/access-log.js';
import { Pool } from './pool/supervisor.js';
import { Metrics } from './observability/metrics.js';
import { CodeWatcher, watchTargets } from './pool/code-watcher.js';
import { probePython, type PythonFacts, type WorkerHandshake } from './pool/worker.js';
import { createRequestHandler } from './front/handler.js';
import { FileCache } from './front/static/file-cache.js';
import { RequestBodies } from './front/request-body.js';
import { probeSpoolDir } from './front/body-spool.js';
import { createStaticHandler, describeStaticOffload, isStaticOffloadEnabled } from './front/static/serve.js';
import type { ListenerFacts } from './front/environ.js';
import { planListeners } from './front/listen-plan.js';
import { ListenerSet } from './front/listener-set.js';
import { ClientRejections } from './front/client-errors.js';
import { ConnectionLimit, warnIfFileLimitLow } from './front/connection-limit.js';
import { compileProxyTrust } from './front/proxy-trust.js';
import { checkWeb2pyFolder, isWeb2pyFolder, prepareProfilerDir } from './web2py/folder.js';
import { randomPasswordNotice, savePassword } from './web2py/password.js';

/** Bytes of request body in flight to one worker per request, and of response back. */
const REQUEST_WINDOW_BYTES = 256 * 1024;
const RESPONSE_WINDOW_BYTES = 1024 * 1024;
/** How long workers get to exit after SHUTDOWN before they are killed. */
const WORKER_STOP_TIMEOUT_MS = 5_000;

export interface StartOptions {
  config: Readonly<Config>;
  sources: Readonly<Record<SettingKey, Source>>;
  log: Logger;
  /** Human lines for the console (the seed prints `starting on ...` to stdout). */
  say: (line: string) => void;
}

export interface RunningServer {
  address: { ip: string; port: number };
  pool: Pool;
  /** Graceful stop: stop accepting, finish in-flight work, stop workers, flush logs. */
  stop(signal: string): Promise<void>;
  /** Immediate stop: kill workers now. */
  kill(): void;
  /** SIGUSR1 (logrotate): reopen the access log at its path. */
  reopenLogs(): Promise<void>;
  /** SIGHUP: replace every worker without dropping a request; re-read the TLS files. */
  reload(signal: string): Promise<void>;
}

type AppSpec = WorkerHandshake['app'];

/** web2py folder, `--app module:callable`, or the bundled demo when nothing else fits. */
function chooseApp(config: Readonly<Config>, sources: StartOptions['sources']): { app: AppSpec; hasRoutes: boolean; detail: string } {
  if (config.app !== null) return { app: { kind: 'wsgi', spec: config.app, cwd: config.folder }, hasRoutes: false, detail: `WSGI app ${config.app} from ${config.folder}` };
  if (sources.folder === 'default' && !isWeb2pyFolder(config.folder)) {
    return { app: { kind: 'demo' }, hasRoutes: false, detail: `demo app: no gluon/ in ${config.folder} (use -f /path/to/web2py, or --app module:callable)` };
  }
  const folder = checkWeb2pyFolder(config.folder);
  return { app: { kind: 'web2py', folder: folder.folder }, hasRoutes: folder.hasRoutes, detail: `web2py in ${folder.folder}` };
}

/** `auto` follows the seed: gevent when the interpreter has it, else a thread pool. */
function resolveWorkerClass(config: Readonly<Config>, python: PythonFacts): { workerClass: WorkerHandshake['workerClass']; capacity: number; why: string } {
  const capacityOf = (workerClass: WorkerHandshake['workerClass']): number =>
    workerClass === 'gevent' ? config.greenlets : workerClass === 'sync' ? 1 : config.threads;
  if (config.workerClass !== 'auto') return { workerClass: config.workerClass, capacity: capacityOf(config.workerClass), why: 'as asked' };
  if (python.gevent !== null) return { workerClass: 'gevent', capacity: config.greenlets, why: `auto: gevent ${python.gevent} is importable` };
  return { workerClass: 'thread', capacity: config.threads, why: `auto: ${config.python} cannot import gevent` };
}

/**
 * Writes `parameters_<port>.py` once per port. web2py.py writes only the first interface's file,
 * which leaves admin disabled on the others ("unable to access password file"); here every
 * listener's port gets one, with the same password (`<random>` makes one and prints it once).
 */
function passwordWriter(config: Readonly<Config>, folder: string, say: (line: string) => void): (port: number) => void {
  let password = config.password;
  const written = new Set<number>();
  return (port) => {
    if (written.has(port)) return;
    written.add(port);
    const result = savePassword({ folder, port, password });
    if (result.generatedPassword !== undefined) {
      say(randomPasswordNotice(result.generatedPassword).trimEnd());
      password = result.generatedPassword;
    }
    if (result.action === 'disabled') say(written.size === 1 ? 'no password, no web admin interface' : `no password for port ${port}, no web admin interface there`);
  };
}

export async function startServer(options: StartOptions): Promise<RunningServer> {
  const { config, sources, say } = options;
  const log = options.log.child({ component: 'front' });

  // 1. Everything that can be wrong with the configuration, before binding.
  const chosen = chooseApp(config, sources);
  const python = await probePython(config.python);
  const plan = planListeners(config, sources);
  const profilerDir = config.profiler === null ? null : prepareProfilerDir(config.profiler, config.folder);
  const accessLogFile = join(chosen.app.kind === 'web2py' ? chosen.app.folder : config.folder, ACCESS_LOG_FILE_NAME);
  const accessLog = config.logging ? AccessLog.open(accessLogFile) : null;
  const spoolProblem = config.chunkedInput === 'spool' ? probeSpoolDir(config.spoolDir) : null;
  if (spoolProblem !== null) throw new ServerError('W2N_ERR_SPOOL_DIR', { folder: config.spoolDir, reason: spoolProblem });
  const writePassword = chosen.app.kind === 'web2py' ? passwordWriter(config, chosen.app.folder, say) : null;
  // Ports known now get their password file before anything binds; port 0 once it is chosen.
  const hasTcp = plan.specs.some((spec) => spec.kind === 'tcp');
  for (const spec of plan.specs) if (spec.kind === 'tcp' && spec.port !== 0) writePassword?.(spec.port);
  if (!hasTcp) writePassword?.(config.port);

  // 2. The listeners.
  let isDraining = false;
  const proxies = compileProxyTrust(config.trustedProxies, config.proxyHeaders);
  const { workerClass, capacity, why } = resolveWorkerClass(config, python);
  // The gauges read the pool when scraped; the pool is made just below.
  const metrics: Metrics = new Metrics(() => pool.stats);
  const pool: Pool = new Pool({
    metrics,
    processes: config.processes,
    deadline: { timeoutMs: config.timeout * 1000, graceMs: config.timeoutGrace * 1000 },
    python: config.python,
    handshake: {
      app: chosen.app, threads: capacity, workerClass,
      requestWindow: REQUEST_WINDOW_BYTES, responseWindow: RESPONSE_WINDOW_BYTES, profilerDir,
    },
    maxInApp: config.workers,
    queueSize: config.queueSize,
    queueTimeoutMs: config.queueTimeout * 1000,
    queueTargetMs: config.queueTarget > 0 ? config.queueTarget * 1000 : null,
    recycle: {
      maxRequests: config.maxRequests,
      maxRequestsJitter: config.maxRequestsJitter,
      maxRssBytes: config.maxRss * 1024 * 1024,
      maxLifetimeMs: config.maxLifetime * 1000,
    },
    log: options.log,
  });
  let activeResponses = 0;
  const offload = {
    mode: config.staticOffload,
    isWeb2py: chosen.app.kind === 'web2py',
    hasRoutesPy: chosen.hasRoutes, // checkWeb2pyFolder looked for routes.py already
  };
  // `--server-header ''` or `off`: no Server header at all.
  const serverHeader = config.serverHeader === '' || config.serverHeader === 'off' ? null : config.serverHeader;
  const rejections = new ClientRejections({ log, metrics, serverHeader, maxHeaderSize: config.maxHeaderSize });
  const connectionLimit = new ConnectionLimit(config.maxConnections, rejections, log);
  metrics.countConnections(() => connectionLimit.open);
  const staticHandler = isStaticOffloadEnabled(offload) && chosen.app.kind === 'web2py'
    ? createStaticHandler({
      web2pyFolder: chosen.app.folder, log, serverHeader, guard: rejections.guard,
      cache: new FileCache({ maxBytes: config.staticCacheSize, maxFileBytes: config.staticCacheFileSize }),
    })
    : null;
  const bodies = new RequestBodies({
    maxBytes: config.maxBody, memoryBytes: config.bodyBufferSize, spoolDir: config.spoolDir, chunkedInput: config.chunkedInput,
  }, log);
  const handlerOptions = {
    pool, log, accessLog, staticHandler, metrics, rejections, serverHeader, bodies,
    headLimits: { maxRequestLine: config.maxRequestLine, maxHeaders: config.maxHeaders },
    isDraining: () => isDraining,
    onResponseOpened: () => { activeResponses += 1; },
    onResponseClosed: () => {
      activeResponses -= 1;
      // While draining, a connection whose last answer just ended is idle: close it now.
      if (isDraining) listeners.closeIdle();
    },
  };
  const listeners: ListenerSet = await ListenerSet.open(plan.specs, {
    limits: {
      maxHeaderBytes: config.maxHeaderSize,
      headersTimeoutMs: config.headersTimeout * 1000,
      requestTimeoutMs: config.requestTimeout * 1000,
      keepAliveTimeoutMs: config.keepAliveTimeout * 1000,
      maxHeaders: config.maxHeaders,
    },
    http2: config.http2 === 'on' ? { maxConcurrentStreams: config.http2MaxStreams } : null,
    log, rejections, connectionLimit, proxies,
    handlerFor: (facts: ListenerFacts) => createRequestHandler(facts, handlerOptions),
    fallbackPort: config.port,
  });
  try {
    for (const port of listeners.tcpPorts) writePassword?.(port);
  } catch (error: unknown) {
    listeners.closeAll();
    await accessLog?.close();
    throw error;
  }
  for (const line of listeners.startingLines()) say(line);
  for (const note of plan.notes) say(note);
  listeners.logListening();
  warnIfFileLimitLow(config.maxConnections, log);
  const address = listeners.main;

  // 3. The workers.
  LogEvents.appChosen(log, { kind: chosen.app.kind, detail: chosen.detail });
  if (chosen.app.kind === 'web2py' && config.chunkedInput === 'stream') LogEvents.chunkedStreamWithWeb2py(log);
  say(`application: ${chosen.detail}`);
  // Made while the workers start; awaited before "ready", so a ready server has them all.
  const wideningAccept = listeners.widenAccept(config.acceptBatch);
  try {
    const ready = await pool.start();
    await wideningAccept;
    say(`workers: ${config.processes} process${config.processes === 1 ? '' : 'es'} × ${ready.capacity} ready `
      + `(${ready.workerClass}, ${why}; Python ${ready.pythonVersion})`);
  } catch (error: unknown) {
    pool.kill();
    listeners.closeAll();
    await accessLog?.close();
    throw error;
  }
  if (offload.isWeb2py) say(describeStaticOffload(offload));
  if (config.reload) say('reload: on (workers restart when a Python file changes)');
  say(listeners.tlsLine());
  say(proxies === null
    ? `trusted proxies: none (forwarding headers are dropped${sources.proxyHeaders === 'default' ? '' : '; --proxy-headers needs --trusted-proxies'})`
    : `trusted proxies: ${proxies.description}`);
  say(accessLog === null ? 'access log: off (-l to write httpserver.log)' : `access log: ${accessLogFile}`);

  let stopping: Promise<void> | null = null;
  const stop = (signal: string): Promise<void> => {
    stopping ??= (async () => {
      isDraining = true;
      LogEvents.serverDraining(log, { signal, inFlight: activeResponses, gracefulTimeoutSeconds: config.gracefulTimeout });
      listeners.stopAccepting();
      const deadline = Date.now() + config.gracefulTimeout * 1000;
      await pool.settle(deadline);
      while (activeResponses > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
      const unfinished = activeResponses;
      listeners.closeAll();
      await pool.stop(WORKER_STOP_TIMEOUT_MS);
      await accessLog?.close();
      LogEvents.serverStopped(log, { signal, unfinished });
    })();
    return stopping;
  };
  const kill = (): void => {
    pool.kill();
    listeners.closeAll();
  };
  const reopenLogs = async (): Promise<void> => {
    if (accessLog === null) return;
    await accessLog.reopen();
    log.info({ event: 'log.reopened', file: accessLogFile }, 'access log reopened');
  };
  let reloading: Promise<void> | null = null;
  const reload = (signal: string): Promise<void> => {
    reloading ??= (async () => {
      LogEvents.reloadStarted(log, { signal, workers: config.processes });
      const tlsOutcome = listeners.reloadTls();
      const { replaced, failed } = await pool.reload();
      LogEvents.reloadFinished(log, { replaced, failed, tls: tlsOutcome });
    })().finally(() => { reloading = null; });
    return reloading;
  };
  const watcher = config.reload ? new CodeWatcher(watchTargets(chosen.app), () => void reload('file change'), log) : null;
  const stopWatching = (): void => watcher?.close();
  return {
    address, pool, reopenLogs, reload,
    stop: (signal) => { stopWatching(); return stop(signal); },
    kill: () => { stopWatching(); kill(); },
  };
}
