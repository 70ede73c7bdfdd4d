/**
 * @module bench/scenarios
 * What is measured: a scenario is one app and URL plus an ordered list of loads, all run on
 * one server instance (heaviest last, so a server that falls over does so after the lighter
 * figures are in). To add a scenario: append to {@link SCENARIOS}; a new kind of load needs a
 * runner in run.ts and a table in report.ts.
 */
import type { Transfer } from './bulk-client.js';
import { OVERLOAD_QUEUE, OVERLOAD_TARGET_S, OVERLOAD_WORKERS, type AppKind } from './servers.js';

/** Keep-alive HTTP load by wrk (-t1), with the newcomer probe running alongside. */
export interface WrkLoad {
  kind: 'wrk';
  conns: number;
  /** wrk --timeout: slower answers count as timeout errors, not as latency. */
  timeoutS: number;
  /** Seconds of this load unless --duration is given (default: --duration's default). */
  durationS?: number;
  /** A status page open during the load: GET /status.json once a second, as the page polls (bench/status-poller.ts). */
  statusPoll?: boolean;
  /** Which round of an A/B comparison this is (loads of one scenario need distinct labels). */
  round?: number;
}

/** N idle keep-alive connections (one GET each, then silence): memory and holding power. */
export interface IdleLoad {
  kind: 'idle';
  conns: number;
  /** How long after the connections settle we count again what is still held. */
  holdS: number;
}

/** No keep-alive: ab -c N (HTTP/1.0, a new connection per request), as peerbench. */
export interface AbLoad {
  kind: 'ab';
  conns: number;
}

/**
 * Open-loop load (bench/rate.ts): requests sent at a fixed rate whatever the answers, so a
 * server that rejects fast is not flooded by instant retries (as a closed-loop wrk would do).
 * The rate is `factor` × the req/s of the previous load of the same run (the capacity just
 * measured), or `factor` × `fallbackRps` when there is none.
 */
export interface RateLoad {
  kind: 'rate';
  factor: number;
  fallbackRps: number;
  /** An answer slower than this counts as a timeout. */
  timeoutS: number;
  /** The most requests in flight at once; beyond it the generator counts "not sent". */
  maxInFlight: number;
  /** Filled in by the runner once the rate is known (for the label). */
  conns: number;
}

/**
 * TLS load by h2load (bench/h2load.ts): HTTP/2 with `streams` requests at once per connection, or
 * HTTP/1.1 over TLS (`h1`), so a scenario shows both protocols on one port side by side.
 */
export interface H2Load {
  kind: 'h2load';
  h1: boolean;
  conns: number;
  streams: number;
}

/**
 * Large bodies (bench/bulk.ts): `--bulk-size` bytes in all, split evenly over `conns`
 * connections, one request each, all at once; throughput and the server's peak memory.
 * download: made by the app in 64 KiB chunks; file: a real file through wsgi.file_wrapper;
 * upload: POST with Content-Length; upload-chunked: POST with Transfer-Encoding: chunked.
 */
export interface BulkLoad {
  kind: 'bulk';
  transfer: Transfer;
  conns: number;
}

export type Load = WrkLoad | AbLoad | IdleLoad | RateLoad | H2Load | BulkLoad;

export interface Scenario {
  name: string;
  about: string;
  /** What the servers serve: an app of bench/apps, or the --web2py tree. */
  app: AppKind;
  path: string;
  loads: Load[];
  /** Servers run when --servers is not given. */
  defaultServers: string[];
  /** Served over TLS (a certificate is made for the run): only servers that can are run. */
  tls?: boolean;
  /** Default servers that need at least this many cores (left out below, with a note; --servers still runs them). */
  minCores?: Record<string, number>;
  /** Run only when named in --only (not part of the full run). */
  optIn?: boolean;
  /** Sample the connections each of the server's processes holds, mid-load (ours: per front). */
  connSpread?: boolean;
  /** The least warm-up, in seconds, whatever `--warmup` says (warmupSeconds()). */
  minWarmupS?: number;
  /**
   * Rounds without `--rounds` (1 if unset): each round starts every server fresh, in an order
   * that alternates (bench/rounds.ts), and the tables show the median round (bench/README.md "Rounds").
   */
  rounds?: number;
  /**
   * Default servers measured in round 1 only: peers that decide no goal of issue 15 (far from
   * ours, or neither the peer nor the limit a goal names), left out of later rounds to keep the
   * full run near 30 minutes. `--servers` runs the servers it names in every round.
   */
  oneRound?: string[];
  /**
   * web2py scenarios: a file of this many bytes in the tree copy's welcome app, and a controller
   * (`w2nbench.py`) whose `stream` answers it with web2py's `response.stream`.
   */
  web2pyDownloadBytes?: number;
}

/** The same connections over TLS: HTTP/1.1 (one request at a time each), then HTTP/2 (10 streams each). */
const TLS_LOADS: H2Load[] = [
  { kind: 'h2load', h1: true, conns: 20, streams: 1 },
  { kind: 'h2load', h1: false, conns: 20, streams: 10 },
];

/** Connections of each bulk load: more than the 2 workers most servers run, few enough to stay a bulk test. */
export const BULK_CONNS = 4;
/** The bulk scenario's total bytes per load without --bulk-size. */
export const BULK_DEFAULT_BYTES = 1024 ** 3;

const BULK_LABELS: Record<Transfer, string> = {
  download: 'download',
  file: 'download file_wrapper',
  upload: 'upload',
  'upload-chunked': 'upload chunked',
};

const WEB2PY_PEERS = ['gevent', 'rocket', 'gunicorn', 'gunicorn-gthread', 'gunicorn-gevent', 'uwsgi', 'waitress'];

export const SCENARIOS: Scenario[] = [
  {
    name: 'hello',
    about: 'hello world (13-byte body), keep-alive',
    app: 'hello',
    path: '/',
    loads: [
      { kind: 'wrk', conns: 50, timeoutS: 2 },
      { kind: 'wrk', conns: 1000, timeoutS: 2 },
    ],
    defaultServers: ['ours', 'ours-thread', 'gevent', 'gunicorn', 'gunicorn-gevent', 'uwsgi', 'node'],
    // goals: ours and ours-thread against uWSGI; the front's CPU against raw Node.js
    rounds: 3,
    oneRound: ['gevent', 'gunicorn', 'gunicorn-gevent'],
  },
  {
    name: 'fronts',
    about: 'hello world, keep-alive, ours with 1, 2 (and on 8 cores or more 4) front processes: req/s, CPU per request, connections per front',
    app: 'hello',
    path: '/',
    loads: [
      { kind: 'wrk', conns: 50, timeoutS: 2 },
      { kind: 'wrk', conns: 1000, timeoutS: 2 },
    ],
    // ours: --fronts 1 --processes 2 here; ours-fronts2: --fronts 2 --processes 2; ours-fronts4: --fronts 4 --processes 4
    defaultServers: ['ours', 'ours-fronts2', 'ours-fronts4'],
    minCores: { 'ours-fronts4': 8 },
    optIn: true,
    connSpread: true,
  },
  {
    name: 'status-cost',
    about: 'hello world, keep-alive, ours alone: without and with a status page open (GET /status.json every second), interleaved, 3 rounds',
    app: 'hello',
    path: '/',
    // A, B, A, B...: a machine that slows down (other work) during the run then weighs on both sides alike.
    loads: [1, 2, 3].flatMap((round): WrkLoad[] => [
      { kind: 'wrk', conns: 50, timeoutS: 2, round },
      { kind: 'wrk', conns: 50, timeoutS: 2, round, statusPoll: true },
    ]),
    defaultServers: ['ours'],
    optIn: true,
  },
  {
    name: 'hello-close',
    about: 'hello world, no keep-alive (ab, a new connection per request)',
    app: 'hello',
    path: '/',
    loads: [{ kind: 'ab', conns: 50 }],
    defaultServers: ['ours', 'gevent', 'gunicorn', 'gunicorn-gevent', 'uwsgi', 'node'],
  },
  {
    name: 'web2py',
    about: "web2py's welcome page (the --web2py tree), keep-alive",
    app: 'web2py',
    path: '/welcome/default/index',
    // gunicorn-gevent's p99 passes 1.4 s here (PEERS.md): a longer timeout keeps it in the p99
    loads: [{ kind: 'wrk', conns: 20, timeoutS: 5 }],
    // ceiling: the application alone in as many processes, no HTTP (bench/ceiling.ts): the limit
    defaultServers: ['ours', ...WEB2PY_PEERS, 'ceiling'],
    // At ~200 pages a second, 2 s is ~400 requests: ours' front was still being compiled by V8
    // (front 745 µs a page after 2 s, 296 after 15, same run; bench/README.md "Warm-up").
    minWarmupS: 10,
    // goals: the ceiling and the best peer, which has been gunicorn, gunicorn-gevent or uWSGI
    // (190-243 pages a second); the others served 86-152 in the same runs
    rounds: 3,
    oneRound: ['gevent', 'rocket', 'gunicorn-gthread', 'waitress'],
  },
  {
    name: 'web2py-download',
    about: "a 50 MB file through web2py's response.stream (a controller added to the --web2py tree copy), keep-alive",
    app: 'web2py',
    path: '/welcome/w2nbench/stream',
    // each answer is 50 MB: two at a time, time per download is the latency
    loads: [{ kind: 'wrk', conns: 2, timeoutS: 10 }],
    defaultServers: ['ours', 'ours-thread', 'gevent', 'rocket'],
    web2pyDownloadBytes: 50 * 1e6,
  },
  {
    name: 'static',
    about: "a static file of web2py's welcome app (the --web2py tree), keep-alive",
    app: 'static',
    path: '/welcome/static/css/web2py.css',
    loads: [{ kind: 'wrk', conns: 20, timeoutS: 2 }],
    defaultServers: ['ours', ...WEB2PY_PEERS, 'nginx', 'node'],
    // goal: nginx (and raw Node.js, Node's own floor); every Python peer served under a third of ours
    rounds: 3,
    oneRound: WEB2PY_PEERS,
  },
  {
    name: 'h2-hello',
    about: 'hello world over TLS: HTTP/1.1 then HTTP/2 on the same port (h2load)',
    app: 'hello',
    path: '/',
    tls: true,
    loads: TLS_LOADS,
    defaultServers: ['ours', 'node'],
    rounds: 3,
  },
  {
    name: 'h2-static',
    about: "a static file of web2py's welcome app over TLS: HTTP/1.1 then HTTP/2 (h2load)",
    app: 'static',
    path: '/welcome/static/css/web2py.css',
    tls: true,
    loads: TLS_LOADS,
    defaultServers: ['ours', 'node'],
    rounds: 3,
  },
  {
    name: 'sleep',
    about: 'an app that sleeps 100 ms (time.sleep), keep-alive: the limit is 500 conns / 0.1 s = 5,000 req/s',
    app: 'sleep',
    path: '/',
    // 10 s, as peerbench's iobound (PEERS.md's figures and the goals): at a 100 ms cycle an 8 s
    // run is only 80 waves, and the first one (500 new connections meeting servers warmed at 10)
    // would then weigh more in the p99 than in the peers' figures
    loads: [{ kind: 'wrk', conns: 500, timeoutS: 10, durationS: 10 }],
    // sync servers would serve 20 req/s: only thread and gevent-style ones
    defaultServers: ['ours', 'ours-thread', 'ours-thread-210', 'gevent', 'gunicorn-gthread', 'gunicorn-gevent', 'uwsgi-gevent'],
    // goal: 4,750 req/s and p99 120 ms, against the best peers (gunicorn-gevent, uWSGI gevent:
    // 4,494-4,775); the thread classes and the other peers served 155-3,984
    rounds: 3,
    oneRound: ['ours-thread', 'ours-thread-210', 'gevent', 'gunicorn-gthread'],
  },
  {
    name: 'idle',
    about: 'idle keep-alive connections: held, and memory of the front process',
    app: 'hello',
    path: '/',
    // 45 s: V8's memory reducer returns the storm's garbage (the young generation the 5,000
    // connects grew) 20-30 s into the quiet; the figure after the hold is the idle cost
    loads: [{ kind: 'idle', conns: 5000, holdS: 45 }],
    // raw Node.js is the floor the goals refer to (≤ 11 kB per connection)
    defaultServers: ['ours', 'node'],
  },
  {
    name: 'overload',
    about:
      `the 100 ms app with ours limited to -w ${OVERLOAD_WORKERS} --queue-size ${OVERLOAD_QUEUE} --queue-target ${OVERLOAD_TARGET_S}` +
      ` (capacity ${OVERLOAD_WORKERS} / 0.1 s = ${OVERLOAD_WORKERS * 10} req/s), first measured closed-loop at` +
      ` ${OVERLOAD_WORKERS} conns, then offered twice that, open-loop`,
    app: 'sleep',
    path: '/',
    loads: [
      { kind: 'wrk', conns: OVERLOAD_WORKERS, timeoutS: 5 },
      { kind: 'rate', factor: 2, fallbackRps: OVERLOAD_WORKERS * 10, timeoutS: 10, maxInFlight: 2000, conns: 0 },
    ],
    defaultServers: ['ours'],
  },
  {
    name: 'bulk',
    about: `large bodies, --bulk-size in all (1 GiB by default) over ${BULK_CONNS} connections: download (made by the app, then a file through wsgi.file_wrapper), upload (Content-Length, then chunked)`,
    app: 'bulk',
    path: '/',
    loads: (['download', 'file', 'upload', 'upload-chunked'] as const).map((transfer) => ({ kind: 'bulk', transfer, conns: BULK_CONNS })),
    defaultServers: ['ours', 'gevent', 'gunicorn', 'gunicorn-gthread', 'gunicorn-gevent', 'uwsgi', 'waitress', 'node', 'node-spool'],
    // the same code moved 332-1,009 MB/s between two instances in one window (stop 22): one round decides nothing
    rounds: 3,
    oneRound: ['gunicorn', 'gunicorn-gthread', 'gunicorn-gevent', 'waitress'],
  },
];

export function loadLabel(load: Load): string {
  switch (load.kind) {
    case 'wrk':
      return `wrk -c${load.conns}${load.statusPoll === true ? ' + status page' : ''}${load.round === undefined ? '' : ` (round ${load.round})`}`;
    case 'ab':
      return `ab -c${load.conns}`;
    case 'idle':
      return `${load.conns} idle`;
    case 'rate':
      return `${load.factor}× capacity, open-loop`;
    case 'h2load':
      return load.h1 ? `h2load http/1.1 -c${load.conns}` : `h2load h2 -c${load.conns} -m${load.streams}`;
    case 'bulk':
      return `${BULK_LABELS[load.transfer]} -c${load.conns}`;
  }
}

/** The scenario's loads with other connection counts (--connections), same kind and settings. */
export function withConnections(s: Scenario, conns: number[]): Scenario {
  const first = s.loads[0];
  if (!first || conns.length === 0) return s;
  // bulk: every transfer at each count (they differ by more than their connections)
  if (first.kind === 'bulk') return { ...s, loads: conns.flatMap((c) => s.loads.map((l) => ({ ...l, conns: c }))) };
  return { ...s, loads: conns.map((c) => ({ ...first, conns: c })) };
}

/** Warm-up seconds for a scenario: `--warmup`, but at least the scenario's own minimum. */
export function warmupSeconds(s: Scenario, warmupS: number): number {
  return Math.max(warmupS, s.minWarmupS ?? 0);
}
