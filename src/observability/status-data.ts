/**
 * @module What GET /status.json answers: the shape the status page draws, declared once.
 *
 * Each front makes a FrontStatus of its own; the primary adds the fronts up (mergeStatus) and
 * puts its own facts around them (the server header, fronts, schedulers). Nothing here is a
 * secret: the config summary names sizes and counts, never a password, key or token.
 */
import { mergeHistories, toChartPoints, type ChartPoint, type SecondSample } from './status-history.js';

/** Requests kept in the oldest-in-flight list, and events in the recent list. */
export const OLDEST_SHOWN = 10;
export const EVENTS_SHOWN = 50;

export interface WorkerRow {
  front: number;
  pid: number | null;
  state: string;
  inFlight: number;
  served: number;
  rssBytes: number | null;
  maxRssBytes: number | null;
  ageSeconds: number;
  restarts: number;
  lastExit: string | null;
}

export interface InFlightRow {
  front: number;
  method: string;
  path: string;
  seconds: number;
}

export interface EventRow {
  /** Epoch milliseconds. */
  time: number;
  /** The log event's name (`worker.died`, `reload.started`...). */
  name: string;
  detail: string;
}

/** One front's part, sent to the primary over IPC. */
export interface FrontStatus {
  front: number;
  /** The front process's id and resident memory (the `server.stats` line). */
  pid: number;
  rssBytes: number | null;
  /** Responses it sent since it started, by class 0xx..5xx (the `server.stats` line takes differences). */
  responseTotals: number[];
  /** The worker class its workers run (`thread`, `gevent`, `sync`). */
  workerClass: string;
  inApp: number;
  /** -w's share of this front, or its workers' whole capacity when -w is unlimited. */
  inAppLimit: number;
  queued: number;
  queueSize: number;
  connections: number;
  maxConnections: number;
  websockets: number | null;
  /** Applications' WebSockets open now (`wsgi.websocket`; each holds a request slot). */
  appWebSockets: number;
  history: SecondSample[];
  workers: WorkerRow[];
  inflight: InFlightRow[];
  events: EventRow[];
}

export interface ServerFacts {
  version: string;
  uptimeSeconds: number;
  listeners: string[];
  workerClass: string;
  fronts: number;
  reloads: number;
  /** A few settings worth seeing at a glance; never a secret. */
  config: Record<string, string | number>;
}

export interface SchedulerRow {
  name: string;
  pid: number | null;
  uptimeSeconds: number | null;
  restarts: number;
  gaveUp: boolean;
  /** Seconds since it last recorded its heartbeat in `scheduler_worker` (null: none seen yet), and the status it recorded. */
  heartbeatAgeSeconds: number | null;
  heartbeatStatus: string | null;
}

export interface ServerStatus {
  server: ServerFacts;
  now: {
    inApp: number; inAppLimit: number; queued: number; queueSize: number;
    connections: number; maxConnections: number; websockets: number | null; appWebSockets: number;
  };
  history: ChartPoint[];
  workers: WorkerRow[];
  inflight: InFlightRow[];
  events: EventRow[];
  schedulers: SchedulerRow[];
}

/**
 * The whole server from its fronts: counts added up (the queue size and connection limit are
 * per front, so they add up too), history merged second by second, the oldest requests and the
 * latest events of all fronts together.
 */
export function mergeStatus(server: ServerFacts, fronts: readonly FrontStatus[], schedulers: SchedulerRow[], extraEvents: readonly EventRow[] = []): ServerStatus {
  const sum = (read: (front: FrontStatus) => number): number => fronts.reduce((total, front) => total + read(front), 0);
  const websockets = fronts.some((front) => front.websockets !== null) ? sum((front) => front.websockets ?? 0) : null;
  return {
    server,
    now: {
      inApp: sum((f) => f.inApp), inAppLimit: sum((f) => f.inAppLimit), queued: sum((f) => f.queued), queueSize: sum((f) => f.queueSize),
      connections: sum((f) => f.connections), maxConnections: sum((f) => f.maxConnections), websockets,
      appWebSockets: sum((f) => f.appWebSockets),
    },
    // The last second may still be open on some fronts: what all have closed is charted.
    history: toChartPoints(mergeHistories(fronts.map((front) => front.history))),
    workers: fronts.flatMap((front) => front.workers),
    inflight: fronts.flatMap((front) => front.inflight).sort((a, b) => b.seconds - a.seconds).slice(0, OLDEST_SHOWN),
    events: [...fronts.flatMap((front) => front.events), ...extraEvents].sort((a, b) => a.time - b.time).slice(-EVENTS_SHOWN),
    schedulers,
  };
}

// --- Reading a front's FrontStatus: the primary trusts no front (primary/messages.ts).

type Raw = Record<string, unknown>;
const isRaw = (value: unknown): value is Raw => typeof value === 'object' && value !== null && !Array.isArray(value);
const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0);
const numOrNull = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null);
const text = (value: unknown, max = 2_048): string => (typeof value === 'string' ? value.slice(0, max) : '');
const textOrNull = (value: unknown): string | null => (typeof value === 'string' ? value.slice(0, 200) : null);
const rows = <T>(value: unknown, limit: number, read: (row: Raw) => T): T[] =>
  (Array.isArray(value) ? value.slice(0, limit).filter(isRaw).map(read) : []);
const counts = (value: unknown, length: number): number[] =>
  Array.from({ length }, (_, index) => (Array.isArray(value) ? num(value[index]) : 0));

function readSample(raw: Raw): SecondSample {
  const rejected = isRaw(raw.rejected) ? raw.rejected : {};
  const buckets = Array.isArray(raw.latency) ? raw.latency.length : 0;
  return {
    t: num(raw.t),
    responses: counts(raw.responses, 5) as SecondSample['responses'],
    latency: counts(raw.latency, buckets),
    queueWait: counts(raw.queueWait, buckets),
    rejected: { full: num(rejected.full), timeout: num(rejected.timeout), standing: num(rejected.standing) },
    timeouts: num(raw.timeouts),
    cpuMicros: num(raw.cpuMicros),
    loopDelayP99Ms: num(raw.loopDelayP99Ms),
    loopDelayMaxMs: num(raw.loopDelayMaxMs),
  };
}

/** A front's status as the primary may use it: every field checked or defaulted, lists bounded. */
export function readFrontStatus(raw: unknown): FrontStatus | null {
  if (!isRaw(raw)) return null;
  return {
    front: num(raw.front),
    pid: num(raw.pid), rssBytes: numOrNull(raw.rssBytes), responseTotals: counts(raw.responseTotals, 6),
    workerClass: text(raw.workerClass, 20),
    inApp: num(raw.inApp), inAppLimit: num(raw.inAppLimit), queued: num(raw.queued), queueSize: num(raw.queueSize),
    connections: num(raw.connections), maxConnections: num(raw.maxConnections), websockets: numOrNull(raw.websockets),
    appWebSockets: num(raw.appWebSockets),
    history: rows(raw.history, 400, readSample),
    workers: rows(raw.workers, 1_024, (w) => ({
      front: num(w.front), pid: numOrNull(w.pid), state: text(w.state, 20), inFlight: num(w.inFlight), served: num(w.served),
      rssBytes: numOrNull(w.rssBytes), maxRssBytes: numOrNull(w.maxRssBytes), ageSeconds: num(w.ageSeconds),
      restarts: num(w.restarts), lastExit: textOrNull(w.lastExit),
    })),
    inflight: rows(raw.inflight, OLDEST_SHOWN, (r) => ({ front: num(r.front), method: text(r.method, 32), path: text(r.path), seconds: num(r.seconds) })),
    events: rows(raw.events, EVENTS_SHOWN, (e) => ({ time: num(e.time), name: text(e.name, 64), detail: text(e.detail, 400) })),
  };
}
