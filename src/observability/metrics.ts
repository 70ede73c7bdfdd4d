/**
 * @module Prometheus metrics: every metric name of the server, declared here once.
 *
 * The pool and the front only call the small methods below; the gauges read the pool's own
 * counts when scraped, so nothing is updated on the hot path but two counters. Served at
 * GET /metrics to loopback clients (front/builtins/metrics.ts).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { StatusHistory, type RejectKind } from './status-history.js';

export interface PoolCounts {
  workers: number;
  ready: number;
  running: number;
  queued: number;
}

export type RejectReason = 'queue full' | 'queue timeout' | 'queue standing';
/** The `reason` label of w2n_queue_rejected_total for each. */
const REJECT_LABELS: Record<RejectReason, RejectKind> = { 'queue full': 'full', 'queue timeout': 'timeout', 'queue standing': 'standing' };
export type WorkerExitReason = 'died' | 'recycled' | 'hung' | 'stopped';

/** What the realtime hub counts (front/realtime/). */
export interface RealtimeCounters {
  /** Messages published on this front: a publish POST, or an application's publish() over its worker's channel. */
  published(via: 'http' | 'app'): void;
  /** Messages (and presence notices) that arrived from another front or instance. */
  received(via: 'front' | 'redis'): void;
  /** Frames handed to WebSocket clients. */
  sent(count: number): void;
  /** Slow consumers closed. */
  dropped(count: number): void;
  /** Joins or publishes refused, by reason (`signature`, `token`, `origin`, `full`, ...). */
  refused(reason: string): void;
  redisOutage(): void;
}

/** What the applications' WebSockets count (front/websocket/, `wsgi.websocket`). */
export interface AppWebSocketCounters {
  messageIn(): void;
  messageOut(): void;
  slowConsumer(): void;
  /** Upgrades refused before the application saw them, by reason (`origin`, `full`, `stopping`). */
  refused(reason: string): void;
}

/** `class` label of w2n_responses_total, by index of Metrics.responseTotals. */
const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export class Metrics {
  readonly registry = new Registry();
  private readonly responses: Counter<'class'>;
  private readonly rejected: Counter<'reason'>;
  private readonly timeouts: Counter;
  private readonly workerExits: Counter<'reason'>;
  private readonly clientRejections: Counter<'reason'>;
  /** What GET /metrics answers: this registry, or the whole server's view (serveFrom). */
  private renderWhole: () => Promise<string | null> = () => this.registry.metrics();
  private readonly frontBugs: Counter<'where'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'w2n_front_' });
    // Per response only responseTotals moves (one array increment): prom-client's inc() hashes and
    // validates its labels each call, so the counter takes the difference when it is read.
    const totals = this.responseTotals;
    const reported = [0, 0, 0, 0, 0, 0];
    this.responses = new Counter({
      name: 'w2n_responses_total', help: 'Responses sent, by status class (1xx..5xx).', labelNames: ['class'], registers,
      collect() {
        for (let index = 0; index < totals.length; index += 1) {
          const added = totals[index]! - reported[index]!;
          if (added > 0) this.inc({ class: STATUS_CLASSES[index]! }, added);
          reported[index] = totals[index]!;
        }
      },
    });
    this.rejected = new Counter({ name: 'w2n_queue_rejected_total', help: 'Requests answered 503 by the queue.', labelNames: ['reason'], registers });
    this.timeouts = new Counter({ name: 'w2n_request_timeouts_total', help: 'Requests answered 504 because they ran past --timeout.', registers });
    this.workerExits = new Counter({ name: 'w2n_worker_exits_total', help: 'Worker processes that left, by why.', labelNames: ['reason'], registers });
    this.clientRejections = new Counter({
      name: 'w2n_client_rejections_total', help: 'Requests or connections refused for bad or unwelcome input (400, 408, 414, 431, 501, 503 over --max-connections), by reason.',
      labelNames: ['reason'], registers,
    });
    this.frontBugs = new Counter({
      name: 'w2n_front_bugs_total', help: 'Exceptions in the front caught by its guard (front.bug in the log), by where: each cost one request or connection, never the process.',
      labelNames: ['where'], registers,
    });
  }

  /**
   * The pool's gauges read `poolCounts()` when scraped. Given once the pool exists (the pool
   * counts into this registry from its start, so it is made after the metrics).
   */
  countPool(poolCounts: () => PoolCounts): void {
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: (counts: PoolCounts) => number): void => {
      new Gauge({ name, help, registers, collect() { this.set(read(poolCounts())); } });
    };
    gauge('w2n_workers', 'Worker processes alive.', (c) => c.workers);
    gauge('w2n_workers_ready', 'Worker processes taking requests.', (c) => c.ready);
    gauge('w2n_requests_in_app', 'Requests inside the application now.', (c) => c.running);
    gauge('w2n_queue_length', 'Requests waiting for a worker now.', (c) => c.queued);
  }

  /** The status page's last five minutes, second by second (started by the front, see StatusHistory). */
  readonly history = new StatusHistory();

  /**
   * Responses sent since this front started, by class (index 0 to 5: 0xx..5xx): the primary's
   * `server.stats` line takes the difference between two of its lines (prom-client's counter is
   * read asynchronously only).
   */
  readonly responseTotals: number[] = [0, 0, 0, 0, 0, 0];

  responseSent(statusCode: number, durationMs: number): void {
    const statusClass = Math.min(5, Math.floor(statusCode / 100));
    this.responseTotals[statusClass] = (this.responseTotals[statusClass] ?? 0) + 1;
    this.history.responseEnded(statusCode, durationMs);
  }

  /** A request left the queue for a worker after `ms` (0 when a worker was free at once). */
  queueWaited(ms: number): void {
    this.history.queueWaited(ms);
  }

  queueRejected(reason: RejectReason): void {
    this.rejected.inc({ reason: REJECT_LABELS[reason] });
    this.history.rejected(REJECT_LABELS[reason]);
  }

  /** `reason`: the error code without `W2N_ERR_` / `W2N_ERR_CLIENT_`, lower case (`bad_request`, `too_many_connections`). */
  clientRejected(reason: string): void {
    this.clientRejections.inc({ reason });
  }

  /** `where`: the guarded event or callback (`http.request`, `access-log`, ...): a short fixed name. */
  frontBug(where: string): void {
    this.frontBugs.inc({ where });
  }

  /** The gauge of open client connections reads `read()` when scraped. */
  /** Client connections open now (0 until the listeners count them). */
  connectionsOpen: () => number = () => 0;

  countConnections(read: () => number): void {
    this.connectionsOpen = read;
    new Gauge({ name: 'w2n_connections_open', help: 'Client connections open now, across all listeners.', registers: [this.registry], collect() { this.set(read()); } });
  }

  /**
   * The realtime hub's counters; the gauges read `connections()` and `redisUp()` (1 connected,
   * 0 not, null: no Redis) when scraped. Summed across fronts, the Redis gauge counts the
   * fronts connected to it.
   */
  realtime(connections: () => number, redisUp: () => number | null): RealtimeCounters {
    const registers = [this.registry];
    new Gauge({ name: 'w2n_realtime_connections', help: 'WebSocket connections of the realtime hub open now.', registers, collect() { this.set(connections()); } });
    new Gauge({
      name: 'w2n_realtime_redis_connected', help: 'Fronts connected to --realtime-redis now (0 while it is unreachable).', registers,
      collect() { const up = redisUp(); if (up !== null) this.set(up); },
    });
    const published = new Counter({ name: 'w2n_realtime_messages_in_total', help: 'Messages published to the hub, by where from (http: a publish POST here; app: publish() called by the application in a worker; front: another front of this instance; redis: another instance).', labelNames: ['via'], registers });
    const sent = new Counter({ name: 'w2n_realtime_messages_out_total', help: 'Messages and presence notices sent to WebSocket clients.', registers });
    const dropped = new Counter({ name: 'w2n_realtime_slow_consumers_total', help: 'WebSocket clients closed (1013) because they read slower than they were sent to.', registers });
    const refused = new Counter({ name: 'w2n_realtime_refused_total', help: 'Realtime joins and publishes refused, by reason.', labelNames: ['reason'], registers });
    const outages = new Counter({ name: 'w2n_realtime_redis_outages_total', help: 'Times the connection to --realtime-redis was lost (or could not be made).', registers });
    const viaHttp = published.labels('http');
    return {
      published: (via) => (via === 'http' ? viaHttp.inc() : published.inc({ via })),
      received: (via) => published.inc({ via }),
      sent: (count) => sent.inc(count),
      dropped: (count) => dropped.inc(count),
      refused: (reason) => refused.inc({ reason }),
      redisOutage: () => outages.inc(),
    };
  }

  /** The applications' WebSocket counters; the gauge reads `open()` when scraped. */
  appWebSockets(open: () => number): AppWebSocketCounters {
    const registers = [this.registry];
    new Gauge({ name: 'w2n_app_websockets_open', help: 'Application WebSockets (wsgi.websocket) open now; each holds a worker slot.', registers, collect() { this.set(open()); } });
    const messages = new Counter({ name: 'w2n_app_websocket_messages_total', help: 'Messages on application WebSockets, by direction (in: from clients; out: to clients).', labelNames: ['direction'], registers });
    const slow = new Counter({ name: 'w2n_app_websocket_slow_consumers_total', help: 'Application WebSocket clients closed (1013) because they read slower than the application sent.', registers });
    const refused = new Counter({ name: 'w2n_app_websocket_refused_total', help: 'WebSocket upgrades refused before the application saw them, by reason.', labelNames: ['reason'], registers });
    const into = messages.labels('in');
    const out = messages.labels('out');
    return {
      messageIn: () => into.inc(),
      messageOut: () => out.inc(),
      slowConsumer: () => slow.inc(),
      refused: (reason) => refused.inc({ reason }),
    };
  }

  requestTimedOut(): void {
    this.timeouts.inc();
    this.history.timedOut();
  }

  workerExited(reason: WorkerExitReason): void {
    this.workerExits.inc({ reason });
  }

  /** This process's own metrics, as prom-client JSON, for the primary to add up with the other fronts'. */
  async collect(): Promise<unknown[]> {
    return this.registry.getMetricsAsJSON();
  }

  /** GET /metrics answers what `render` makes: with several processes, the primary's sum of all of them. */
  serveFrom(render: () => Promise<string | null>): void {
    this.renderWhole = render;
  }

  /** The text GET /metrics answers; rejects when it cannot be had. */
  async render(): Promise<string> {
    const text = await this.renderWhole();
    if (text === null) throw new Error('metrics unavailable');
    return text;
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
