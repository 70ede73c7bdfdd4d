/**
 * @module The primary: checks, binds, starts the fronts, prints the start-up lines, supervises.
 *
 * It parses no client bytes, so no client can crash it (nginx's master, gunicorn's arbiter).
 * Order matters: everything that can be wrong with the configuration is checked before any
 * socket is bound (one clear error, nothing listening); then every socket is bound and each
 * prints the seed's `starting on IP:PORT...`; then the fronts start, listen on those sockets and
 * load the application; the last start-up line comes once every front is ready.
 *
 * The sockets and the fronts are components of the primary's Lifecycle (src/lifecycle/): a
 * start that fails half-way releases what it had (one rollback path), and a stop tells the
 * fronts first, closes the sockets, then waits for the fronts to exit.
 */
import type { Config, SettingKey } from '../config/settings.js';
import type { Source } from '../config/load.js';
import type { Logger } from '../observability/log.js';
import { isAppListener, planListeners, type ListenerSpec, type ListenPlan } from '../front/listen-plan.js';
import { loadTls, tlsToPem, type TlsPem } from '../front/tls-files.js';
import { LogEvents } from '../observability/events.js';
import { preflight, resolveFronts, shareOf } from './preflight.js';
import { randomPasswordNotice, savePassword } from '../web2py/password.js';
import { bindAll, type BoundSocket } from './bound-sockets.js';
import { descriptorPlan } from './front-process.js';
import { Fronts } from './fronts.js';
import type { FrontAssignment, PrimaryMessage } from './messages.js';
import { ServerMetrics } from './server-metrics.js';
import { ServerStatus, type StatusFacts } from './server-status.js';
import { ServerStatsLine } from './server-stats.js';
import { RecentEvents } from '../observability/recent-events.js';
import { observeEvents } from '../observability/event-spec.js';
import { Schedulers } from './schedulers.js';
import { randomUUID } from 'node:crypto';
import type { ServerError } from '../errors/index.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';

export interface PrimaryOptions {
  config: Readonly<Config>;
  sources: Readonly<Record<SettingKey, Source>>;
  log: Logger;
  /** Human lines for the console (the seed prints `starting on ...` to stdout). */
  say: (line: string) => void;
  /** The server cannot go on (fronts keep dying): the caller prints it and exits. */
  onGiveUp: (error: ServerError) => void;
}

export interface RunningPrimary {
  address: { ip: string; port: number };
  /** Graceful stop: every front finishes its requests; then the sockets close. */
  stop(signal: string): Promise<void>;
  /** Immediate stop: fronts and workers killed now. */
  kill(): void;
  /** SIGUSR1 (logrotate): every front reopens the access log. */
  reopenLogs(): void;
  /** SIGHUP: every front replaced, one at a time, without dropping a request. */
  reload(): Promise<void>;
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

/** Each listener's certificate and key, read and checked (W2N_ERR_TLS when they cannot be used). */
function readTls(specs: readonly ListenerSpec[]): (TlsPem | null)[] {
  return specs.map((spec) => (spec.kind === 'tcp' && spec.tls !== null ? tlsToPem(loadTls(spec.tls)) : null));
}

/**
 * SIGHUP: the files read again; a listener whose new files cannot be used keeps its old ones
 * (logged), so a half-copied certificate never takes HTTPS down.
 */
function rereadTls(specs: readonly ListenerSpec[], current: (TlsPem | null)[], log: Logger): { tls: (TlsPem | null)[]; outcome: 'reloaded' | 'kept' | 'off' } {
  if (current.every((pem) => pem === null)) return { tls: current, outcome: 'off' };
  let outcome: 'reloaded' | 'kept' = 'reloaded';
  const tls = specs.map((spec, index) => {
    if (spec.kind !== 'tcp' || spec.tls === null) return null;
    try {
      return tlsToPem(loadTls(spec.tls));
    } catch (error: unknown) {
      LogEvents.tlsReloadFailed(log, { reason: `${spec.ip}:${spec.port}: ${error instanceof Error ? error.message : String(error)}` });
      outcome = 'kept';
      return current[index] ?? null;
    }
  });
  return { tls, outcome };
}

function closeSockets(sockets: readonly BoundSocket[]): void {
  for (const socket of sockets) socket.close();
}

/** The listeners' certificates and keys now: read at start, read again on SIGHUP. */
interface TlsFiles {
  current: (TlsPem | null)[];
}

export async function startPrimary(options: PrimaryOptions): Promise<RunningPrimary> {
  const { config, sources, say } = options;
  const log = options.log.child({ component: 'primary' });
  const lifecycle = new Lifecycle({ gracefulTimeoutMs: config.gracefulTimeoutMs });
  return lifecycle.start(async () => {
    // 1. Everything that can be wrong with the configuration, before binding.
    const checked = await preflight(config, sources);
    const plan = planListeners(config, sources);
    const tls: TlsFiles = { current: readTls(plan.specs) };
    const writePassword = checked.app.spec.kind === 'web2py' ? passwordWriter(config, checked.app.spec.folder, say) : null;
    // Ports known now get their password file before anything binds; port 0 once it is chosen.
    // The realtime hub's port (--realtime-port) and the metrics port serve no application: no password file.
    for (const spec of plan.specs) if (isAppTcp(spec) && spec.kind === 'tcp' && spec.port !== 0) writePassword?.(spec.port);
    if (!plan.specs.some(isAppTcp)) writePassword?.(config.port);
    // 2. The sockets: closed at a stop once the fronts are told, so the kernel refuses instead of queueing for nobody.
    const sockets = await bindAll(plan.specs);
    lifecycle.add('sockets', { stopAccepting: () => closeSockets(sockets), kill: () => closeSockets(sockets) });
    for (const socket of sockets) if (isAppTcp(socket.spec)) writePassword?.(socket.port);
    // 3. The fronts; the last start-up line comes once every front is ready.
    const schedulers = createSchedulers(options, checked);
    const statusFacts: StatusFacts = { listeners: sockets.map((socket) => socket.label), fronts: resolveFronts(config), reloads: 0 };
    const { fronts, statsLine } = createFronts(options, log, lifecycle, { checked, sockets, tls, schedulers, statusFacts });
    const lines = await fronts.start(() => {
      for (const socket of sockets) say(startingLine(socket));
      for (const note of plan.notes) say(note);
    });
    for (const line of lines) say(line);
    statsLine.start();
    // 4. After the fronts: a scheduler that starts tasks before the web server serves helps no one.
    if (schedulers !== null) startSchedulers(schedulers, lifecycle, options);
    return runningPrimary({ lifecycle, log, fronts, frontCount: resolveFronts(config), schedulers, sockets, plan, tls, statusFacts });
  });
}

/** The seed's `starting on IP:PORT...` for the application's listeners; the hub's and the metrics' own say what they are. */
function startingLine({ spec, label }: BoundSocket): string {
  if (isAppListener(spec)) return `starting on ${label}...`;
  return spec.kind === 'tcp' && spec.metrics === true ? `metrics on http://${label}/metrics` : `realtime hub on ${label}`;
}

const isAppTcp = (spec: ListenerSpec): boolean => spec.kind === 'tcp' && isAppListener(spec);

/**
 * The front processes, their metrics, status and `server.stats` line (started once the fronts
 * are ready), and their part of a stop (told first; awaited last).
 */
function createFronts(options: PrimaryOptions, log: Logger, lifecycle: Lifecycle, bound: {
  checked: Awaited<ReturnType<typeof preflight>>; sockets: readonly BoundSocket[]; tls: TlsFiles; schedulers: Schedulers | null; statusFacts: StatusFacts;
}): { fronts: Fronts; statsLine: ServerStatsLine } {
  const { config, sources } = options;
  const count = resolveFronts(config);
  const { stdio, listeners } = descriptorPlan(bound.sockets, config.acceptBatch);
  const instanceId = randomUUID();
  const startMessage = (index: number): Extract<PrimaryMessage, { type: 'start' }> => {
    const assignment: FrontAssignment = {
      index, fronts: count,
      processes: shareOf(config.processes, index, count),
      // -w stays a cap across the whole server: each front gets its share. The queue does not
      // split: the kernel spreads connections unevenly at times, and a front given half the
      // queue answered 503 to its half of a burst while the other front's half stood empty.
      maxInApp: config.workers === null ? null : Math.max(1, shareOf(config.workers, index, count)),
      queueSize: config.queueSize,
      listeners: listeners.map((listener, n) => ({ ...listener, tls: bound.tls.current[n] ?? null })),
      python: bound.checked.python, app: bound.checked.app, instanceId,
    };
    return { type: 'start', config: { ...config }, sources: { ...sources }, assignment };
  };
  const fronts = new Fronts({ count, startMessage, stdio, gracefulTimeoutMs: config.gracefulTimeoutMs, log });
  const metrics = new ServerMetrics(() => fronts.live, bound.schedulers);
  // The primary's own lines worth showing (fronts dying, reloads, schedulers) join the fronts' on the status page.
  const primaryEvents = new RecentEvents();
  observeEvents((name, level, fields) => primaryEvents.record(name, level, fields));
  const { schedulers } = bound;
  const status = new ServerStatus(() => fronts.live, config, bound.statusFacts, primaryEvents, schedulers === null ? null : () => schedulers.facts());
  fronts.on('message', (front, message) => {
    if (message.type === 'metrics-wanted') metrics.answer(front, message.id);
    else if (message.type === 'metrics-collected') metrics.collected(front, message.id, message.metrics);
    else if (message.type === 'status-wanted') status.answer(front, message.id);
    else if (message.type === 'status-collected') status.collected(front, message.id, message.status);
    else if (message.type === 'realtime') {
      // The realtime hub's messages reach the other fronts' members (front/realtime/sibling-peers.ts).
      for (const other of fronts.live) if (other !== front) other.send({ type: 'realtime', payload: message.payload });
      front.send({ type: 'realtime-relayed', id: message.id });
    }
  });
  const statsLine = new ServerStatsLine(config.statsIntervalMs, {
    fronts: () => status.frontParts(),
    livePids: () => fronts.live.flatMap((front) => (front.pid === undefined ? [] : [front.pid])),
    schedulerPids: schedulers === null ? null : () => schedulers.facts().map((row) => row.pid),
  }, log);
  lifecycle.add('stats line', { stopAccepting: () => statsLine.stop(), kill: () => statsLine.stop() });
  fronts.on('restarted', () => metrics.frontRestarted());
  fronts.on('gaveUp', (error) => options.onGiveUp(error));
  // Fronts bounds each front's stop itself (its graceful timeout and a margin, then a kill).
  let stopped: Promise<void> = Promise.resolve();
  lifecycle.add('fronts', {
    stopAccepting: ({ reason }) => { stopped = fronts.stop(reason); },
    close: () => stopped,
    kill: () => fronts.killAll(),
  });
  return { fronts, statsLine };
}

/** `-K`: web2py's schedulers (web2py folders only), made now, started once the fronts are ready. */
function createSchedulers({ config, log }: PrimaryOptions, checked: Awaited<ReturnType<typeof preflight>>): Schedulers | null {
  const app = checked.app.spec;
  if (app.kind !== 'web2py' || config.scheduler.length === 0) return null;
  return new Schedulers({
    entries: config.scheduler, workersPerEntry: config.schedulerWorkers, python: config.python, folder: app.folder,
    stopTimeoutMs: config.schedulerStopTimeoutMs, log: log.child({ component: 'scheduler' }),
  });
}

/** Starts the schedulers; a stop tells them with the fronts and waits for both. */
function startSchedulers(schedulers: Schedulers, lifecycle: Lifecycle, { config, say }: PrimaryOptions): void {
  schedulers.start();
  let stopped: Promise<void> = Promise.resolve();
  lifecycle.add('schedulers', {
    stopAccepting: () => { stopped = schedulers.stop(); },
    close: () => stopped,
    kill: () => schedulers.killAll(),
  });
  say(`scheduler: ${schedulers.count} process${schedulers.count === 1 ? '' : 'es'} (web2py.py -K ${config.scheduler.join(',')})`);
}

function runningPrimary({ lifecycle, log, fronts, frontCount, schedulers, sockets, plan, tls, statusFacts }: {
  lifecycle: Lifecycle; log: Logger; fronts: Fronts; frontCount: number; schedulers: Schedulers | null;
  sockets: readonly BoundSocket[]; plan: ListenPlan; tls: TlsFiles; statusFacts: StatusFacts;
}): RunningPrimary {
  const first = sockets[0]!;
  return {
    address: first.spec.kind === 'tcp' ? { ip: first.spec.ip, port: first.port } : { ip: first.label, port: 0 },
    stop: async (signal) => { await lifecycle.stop(signal); },
    kill: () => lifecycle.kill(),
    reopenLogs: () => fronts.broadcast({ type: 'reopen-logs' }),
    reload: async () => {
      LogEvents.serverReloadStarted(log, { signal: 'SIGHUP', fronts: frontCount });
      statusFacts.reloads += 1;
      const reread = rereadTls(plan.specs, tls.current, log);
      tls.current = reread.tls;
      const [{ replaced, failed }] = await Promise.all([fronts.reload(), schedulers?.reload()]);
      LogEvents.serverReloadFinished(log, { replaced, failed, tls: reread.outcome });
    },
  };
}
