/**
 * @module THE settings registry: every setting of the server, declared once.
 *
 * Each entry yields four views, all derived here and nowhere else: the CLI flags (seed spellings
 * included), the env var (`W2N_` + SCREAMING_SNAKE of the key), the config-file key (the camelCase
 * key itself) and a row of docs/settings.md; `--help` is rendered from the same data. The `Config`
 * type is inferred from the registry, so there is no hand-written interface to drift. Durations
 * and sizes are kept in ms and bytes (their validators convert what the user wrote, once), and
 * their `Config` property says so: `timeout` (seconds, as the user writes it) is `config.timeoutMs`.
 *
 * Docs text is Markdown (backticks for literals); --help strips the backticks.
 */

import { availableParallelism, tmpdir } from 'node:os';

import { interfaces, listenAddress } from './interfaces.js';
import {
  bool, bytes, cidrList, durationMs, enumOf, fileMode, int, intOrAuto, megabytes, nullable, path, schedulerList, str, wordList,
  type Unit,
  type ValidationContext, type Validator, type ValueOf,
} from './validators.js';

/** Sections in the order --help and docs/settings.md show them. */
export const sections = [
  'Listening',
  'Seed options (as web2py_on_gevent.py)',
  'Application',
  'Workers',
  'HTTP limits',
  'HTTP responses',
  'Reverse proxies',
  'Realtime (WebSocket messaging)',
  'Logging',
  'Scheduler',
  'Config file',
] as const;
export type Section = (typeof sections)[number];

interface SettingBase<T> {
  readonly section: Section;
  /** Every spelling: short `-p`, long `--port`; seed settings keep `--ssl_certificate` next to `--ssl-certificate`. */
  readonly cli: readonly string[];
  /** Comes from handlers/web2py_on_gevent.py, whose spelling and default are kept. */
  readonly seed?: true;
  readonly type: Validator<T>;
  /** Markdown, one or two sentences. */
  readonly doc: string;
  /** `false`: no env var for this setting. */
  readonly env?: false;
  /** Never printed: --print-config and error messages show `***`. */
  readonly secret?: true;
  /** Overrides the validator's placeholder in --help (`PORT` rather than `N`). */
  readonly metavar?: string;
  /** The flag may be given several times; the values are joined with `,` (web2py.py's `-K`). */
  readonly repeatable?: true;
  /**
   * A switch that may be followed by a lone `-` (`-l -`): then it is on, and this other setting
   * gets the value `-` (stdout). A lone `-` is no option and no value of anything else, so
   * `-l` followed by another flag still reads as before.
   */
  readonly dashSets?: string;
}

/** Forwarding headers a trusted proxy may be believed about (waitress's `trusted_proxy_headers`). */
export const PROXY_HEADER_NAMES = [
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-by', 'forwarded',
] as const;
export type ProxyHeaderName = (typeof PROXY_HEADER_NAMES)[number];

/** As waitress: RFC 7239 Forwarded and the X-Forwarded-* family say the same things; trust one kind only. */
function oneKindOfProxyHeader(words: readonly ProxyHeaderName[]): string | null {
  return words.includes('forwarded') && words.length > 1
    ? '"forwarded" excludes the x-forwarded-* headers (they say the same things; trust one kind)'
    : null;
}

/**
 * A setting's default is a value, or a function of the load context when it depends on the
 * machine or the cwd; then `defaultDoc` says it in words, so the generated docs stay the same on
 * every machine.
 */
export type SettingSpec<T> = SettingBase<T> & (
  | { readonly default: T; readonly defaultDoc?: string }
  | { readonly default: (context: ValidationContext) => T; readonly defaultDoc: string }
);

/** Checks each entry's default against its validator's type, and keeps the literal shape. */
export function defineSettings<const S extends { readonly [K in keyof S]: SettingSpec<ValueOf<S[K]['type']>> } & Record<string, { type: Validator<unknown> }>>(
  specs: S,
): S {
  return specs;
}

export const settings = defineSettings({
  // --- Listening
  ip: {
    section: 'Listening', cli: ['-i', '--ip'], seed: true, metavar: 'ADDRESS',
    type: str({ minLength: 1 }), default: '127.0.0.1',
    doc: 'Address to listen on: `0.0.0.0` for all IPv4 interfaces, `::` for all IPv6 ones.',
  },
  port: {
    section: 'Listening', cli: ['-p', '--port'], seed: true, metavar: 'PORT',
    type: int({ min: 0, max: 65535 }), default: 8000,
    doc: 'TCP port to listen on; `0` = any free port (the chosen one is reported at start).',
  },
  interfaces: {
    section: 'Listening', cli: ['--interfaces'],
    type: nullable(interfaces()), default: null,
    doc: 'Listen on several interfaces, in web2py.py\'s format: `IP:PORT[:KEY:CERT[:CA]]` joined with `;`, '
      + 'an IPv6 address in brackets (`0.0.0.0:80;[::]:443:key.pem:cert.pem`). An entry with a key and a certificate '
      + 'speaks HTTPS; a CA file also asks clients for a certificate (optional), and one that this CA signed reaches the '
      + 'application as `SSL_CLIENT_RAW_CERT` (PEM), as Rocket does for web2py\'s x509 login. When given, `-i`, `-p`, '
      + '`-c` and `-k` are ignored (as web2py does). The admin password is written to `parameters_<port>.py` for every port.',
  },
  unixSocket: {
    section: 'Listening', cli: ['--unix-socket'], metavar: 'PATH',
    type: nullable(path()), default: null,
    doc: 'Also listen on this Unix socket (plain HTTP, for a local nginx or other proxy). Alone, it replaces the '
      + 'default TCP listener; with `-i`, `-p`, `-c` or `-k` set, or `--interfaces`, it is added to them. A socket file left by a '
      + 'crashed server is replaced at start (never one a live server answers on, nor any other kind of file), and the '
      + 'file is removed at stop. Requests on it have `REMOTE_ADDR` empty (so web2py never counts them as local: admin '
      + 'needs HTTPS) and `SERVER_PORT` of the first TCP listener, else `-p` (web2py\'s admin reads '
      + '`parameters_<SERVER_PORT>.py`).',
  },
  unixSocketMode: {
    section: 'Listening', cli: ['--unix-socket-mode'],
    type: fileMode(), default: 0o660,
    doc: 'Permissions of the Unix socket file; connecting needs write permission, so with `0660` the proxy\'s user must '
      + 'be in this user\'s group.',
  },
  acceptBatch: {
    section: 'Listening', cli: ['--accept-batch'], metavar: 'N',
    type: int({ min: 1, max: 1024 }), default: 16,
    doc: 'Connections each listener may accept per turn of the front\'s event loop. Node.js 20 accepts one per turn, and '
      + 'under load a turn takes milliseconds, so a burst of connects (a client opening many connections at once, a load '
      + 'without keep-alive) would wait in the kernel\'s queue for seconds while open connections are served. Each '
      + 'TCP listening socket gets N descriptors (the copies come from a helper process at start; a Unix socket keeps one); '
      + '`1` is Node\'s own behaviour.',
  },
  http2: {
    section: 'Listening', cli: ['--http2'],
    type: enumOf(['on', 'off']), default: 'on',
    doc: 'On TLS listeners, offer HTTP/2 by ALPN (`h2`, then `http/1.1`, so HTTP/1.1 clients are served on the same port). '
      + '`off`: HTTP/1.1 only. Plain-text HTTP/2 (h2c) is not offered.',
  },

  // --- Seed options
  password: {
    section: 'Seed options (as web2py_on_gevent.py)', cli: ['-a', '--password'], seed: true, secret: true,
    metavar: 'PASSWORD', type: str(), default: '<recycle>',
    doc: 'Admin password, written to `parameters_<port>.py` in the web2py folder. `<recycle>` keeps the last one, '
      + '`<random>` makes one and prints it, `<pam_user:NAME>` checks against PAM as web2py does.',
  },
  sslCertificate: {
    section: 'Seed options (as web2py_on_gevent.py)', cli: ['-c', '--ssl_certificate', '--ssl-certificate'], seed: true,
    type: nullable(path({ mustExist: true, readable: true })), default: null,
    doc: 'PEM certificate (chain) file; with `-k`, the server speaks HTTPS.',
  },
  sslPrivateKey: {
    section: 'Seed options (as web2py_on_gevent.py)', cli: ['-k', '--ssl_private_key', '--ssl-private-key'], seed: true,
    type: nullable(path({ mustExist: true, readable: true })), default: null,
    doc: 'PEM private key file of the certificate.',
  },
  workers: {
    section: 'Seed options (as web2py_on_gevent.py)', cli: ['-w', '--workers'], seed: true,
    type: nullable(int({ min: 1 })), default: null, defaultDoc: 'unlimited',
    doc: 'The most requests inside the application at once, across all processes; more wait in the front\'s queue.',
  },
  logging: {
    section: 'Seed options (as web2py_on_gevent.py)', cli: ['-l', '--logging'], seed: true,
    type: bool(), default: false, dashSets: 'accessLog',
    doc: 'Write the access log to `httpserver.log` in the web2py folder, in web2py\'s line format. `-l -` writes it to '
      + 'stdout instead (as `--access-log -`).',
  },
  profiler: {
    section: 'Seed options (as web2py_on_gevent.py)', cli: ['-F', '--profiler'], seed: true,
    type: nullable(path({ dir: true })), default: null,
    doc: 'Folder for one cProfile dump per request; created if missing.',
  },

  // --- Application
  folder: {
    section: 'Application', cli: ['-f', '--folder'],
    type: path({ mustExist: true, dir: true }), default: ({ cwd }) => cwd, defaultDoc: 'the current folder',
    doc: 'The web2py folder (the one that holds `gluon/`).',
  },
  app: {
    section: 'Application', cli: ['--app'], metavar: 'MODULE:CALLABLE',
    type: nullable(str({ pattern: /^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$/, expected: 'module:callable' })),
    default: null,
    doc: 'Serve this WSGI application (`module:callable`) instead of web2py; the module is found relative to the folder.',
  },
  staticOffload: {
    section: 'Application', cli: ['--static-offload'],
    type: enumOf(['auto', 'on', 'off']), default: 'auto',
    doc: 'Serve `/<app>/static/...` from the front, without Python. `auto` = on only when the web2py folder has no '
      + '`routes.py` (its rewrites can move static URLs); `on` serves them even then; `off` leaves them to web2py.',
  },
  staticCacheSize: {
    section: 'Application', cli: ['--static-cache-size'],
    type: bytes({ min: 0 }), default: 32 * 1024 * 1024,
    doc: 'Memory for small static files served from the front, answered without touching the disk; a file is dropped when it '
      + 'changes (watched, and looked at again at least every second). `0` turns the cache off.',
  },
  staticCacheFileSize: {
    section: 'Application', cli: ['--static-cache-file-size'],
    type: bytes({ min: 0 }), default: 1024 * 1024,
    doc: 'Largest static file (or `.gz`/`.br` sibling) kept in that memory; larger ones are streamed from disk.',
  },

  chunkedInput: {
    section: 'Application', cli: ['--chunked-input'],
    type: enumOf(['spool', 'stream']), default: 'spool',
    doc: 'How a request body without `Content-Length` (`Transfer-Encoding: chunked`) reaches the application. `spool`: the front '
      + 'reads it whole (memory, then a temp file: `--body-buffer-size`, `--spool-dir`) and hands it over with `CONTENT_LENGTH` set, '
      + 'as web2py and most WSGI apps need (they read `CONTENT_LENGTH` bytes and would see an empty body). `stream`: it is passed on '
      + 'as it arrives, without `CONTENT_LENGTH`, for apps that read `wsgi.input` to its end (`wsgi.input_terminated`).',
  },
  reload: {
    section: 'Application', cli: ['--reload'],
    type: bool(), default: false,
    doc: 'Development: watch the Python files (web2py: `gluon/`, `applications/*/modules`, `routes.py`; `--app`: its folder) '
      + 'and reload the workers when one changes.',
  },

  // --- Workers
  python: {
    section: 'Workers', cli: ['--python'], metavar: 'PATH',
    type: str({ minLength: 1 }), default: 'python3',
    doc: 'Python interpreter that runs the workers (a name on `PATH` or a path).',
  },
  processes: {
    section: 'Workers', cli: ['--processes'],
    type: int({ min: 1, max: 256 }), default: () => Math.min(availableParallelism(), 256),
    defaultDoc: 'the number of CPUs',
    doc: 'Number of Python worker processes.',
  },
  threads: {
    section: 'Workers', cli: ['--threads'],
    type: int({ min: 1, max: 1024 }), default: 8,
    doc: 'Requests one process runs at once.',
  },
  greenlets: {
    section: 'Workers', cli: ['--greenlets'],
    type: int({ min: 1, max: 100000 }), default: 1000,
    doc: 'Requests one process runs at once with the `gevent` class (greenlets are cheap; `-w` caps the total).',
  },
  workerClass: {
    section: 'Workers', cli: ['--worker-class'],
    type: enumOf(['auto', 'thread', 'sync', 'gevent']), default: 'auto',
    doc: 'How a process runs its requests: `gevent` (greenlets, `gevent.monkey.patch_all()` as the seed does), '
      + '`thread` (a pool of `--threads`), `sync` (one at a time). `auto` = `gevent` when the Python can import it, else `thread`.',
  },
  fronts: {
    section: 'Workers', cli: ['--fronts'],
    type: intOrAuto({ min: 1, max: 64 }), default: 1,
    doc: 'Front processes (HTTP, TLS, static files), each with its share of `--processes`, all accepting on the same '
      + 'listeners; a small primary process holds the listening sockets and restarts a front that dies. `auto` = one per '
      + 'four CPUs (at least one, at most `--processes`). `-w` stays a total across the whole server (each front gets its share); '
      + '`--queue-size` applies to each front.',
  },
  queueSize: {
    section: 'Workers', cli: ['--queue-size'],
    type: int({ min: 0 }), default: 1024,
    doc: 'Requests that may wait for a worker; beyond this they get 503.',
  },
  queueTimeout: {
    section: 'Workers', cli: ['--queue-timeout'],
    type: durationMs({ min: 0.01 }), default: 30_000,
    doc: 'A request that waited this long for a worker gets 503 with `Retry-After` instead.',
  },
  queueTarget: {
    section: 'Workers', cli: ['--queue-target'],
    type: durationMs({ min: 0 }), default: 0, defaultDoc: '0 (off)',
    doc: 'Sheds overload instead of queueing it. A queue that has not been empty for 0.05 s is standing (the requests '
      + 'arrive faster than the workers finish them); while it stands, a request that has waited longer than this gets '
      + '503 with `Retry-After` at once, oldest first, so the requests let in keep the latency they have at capacity. '
      + 'It stops standing once it has been empty for 0.05 s. A burst that drains within 0.05 s still waits up to '
      + '`--queue-timeout`. 0: off (every queued request waits its '
      + 'turn, as the seed\'s pool does). 0.005 suits short requests; with requests of seconds, a standing queue may '
      + 'only be a burst, so leave it off or set it near the requests\' duration.',
  },
  timeout: {
    section: 'Workers', cli: ['--timeout'],
    type: durationMs({ min: 0 }), default: 300_000,
    doc: 'A request still in the application after this gets 504; its thread or greenlet is interrupted (`0` = no limit).',
  },
  timeoutGrace: {
    section: 'Workers', cli: ['--timeout-grace'],
    type: durationMs({ min: 0.1 }), default: 10_000,
    doc: 'If a timed-out request is still running this long after its 504, its worker is replaced (its Python stacks logged first).',
  },
  maxRequests: {
    section: 'Workers', cli: ['--max-requests'],
    type: int({ min: 0 }), default: 0,
    doc: 'Recycle a worker after this many requests (`0` = never): a fresh one starts first, the old one finishes its requests and leaves.',
  },
  maxRequestsJitter: {
    section: 'Workers', cli: ['--max-requests-jitter'],
    type: int({ min: 0 }), default: 0,
    doc: 'Add a random 0..N to each worker\'s `--max-requests`, so workers do not all recycle at once.',
  },
  maxRss: {
    section: 'Workers', cli: ['--max-rss'], metavar: 'MB',
    type: megabytes({ min: 0 }), default: 0,
    doc: 'Recycle a worker whose resident memory stays above this many MB for three samples a second apart (`0` = never).',
  },
  maxLifetime: {
    section: 'Workers', cli: ['--max-lifetime'],
    type: durationMs({ min: 0 }), default: 0,
    doc: 'Recycle a worker after it has run this long (`0` = never).',
  },
  gracefulTimeout: {
    section: 'Workers', cli: ['--graceful-timeout'],
    type: durationMs({ min: 0 }), default: 30_000,
    doc: 'On SIGTERM/SIGINT, how long in-flight requests may run to completion before the workers are killed.',
  },

  // --- HTTP limits
  maxRequestLine: {
    section: 'HTTP limits', cli: ['--max-request-line'],
    type: bytes({ min: 256 }), default: 8190,
    doc: 'Longest request line (`GET /path?query HTTP/1.1`); a longer one gets 414 and the connection is closed. '
      + 'The line also counts towards `--max-header-size`, so a value above that one has no effect.',
  },
  maxHeaderSize: {
    section: 'HTTP limits', cli: ['--max-header-size'],
    type: bytes({ min: 1024 }), default: 16384,
    doc: 'Largest request head (request line and headers); a larger one gets 431. On HTTP/2 it is the '
      + '`SETTINGS_MAX_HEADER_LIST_SIZE` announced to clients, and a larger header list resets its stream.',
  },
  maxHeaders: {
    section: 'HTTP limits', cli: ['--max-headers'],
    type: int({ min: 1, max: 10000 }), default: 100,
    doc: 'Most header fields in one request (browsers send 10 to 30); more get 431 and the connection is closed, '
      + 'never a request with some headers silently dropped.',
  },
  headersTimeout: {
    section: 'HTTP limits', cli: ['--headers-timeout'],
    type: durationMs({ min: 0.1 }), default: 10_000,
    doc: 'Time a client has to send the whole request head, counted from its first byte; a slower one gets 408 '
      + 'and is closed (a slowloris client cannot hold a connection). Never more than `--request-timeout`. '
      + 'An HTTP/2 connection must acknowledge the server\'s SETTINGS and open its first stream within it, or it is closed.',
  },
  requestTimeout: {
    section: 'HTTP limits', cli: ['--request-timeout'],
    type: durationMs({ min: 0 }), default: 300_000,
    doc: 'Time a client has to send the whole request, body included; a slower one gets 408 and is closed; `0` = none. '
      + 'The same per HTTP/2 stream.',
  },
  http2MaxStreams: {
    section: 'HTTP limits', cli: ['--http2-max-streams'],
    type: int({ min: 1, max: 2 ** 31 - 1 }), default: 100,
    doc: 'Requests one HTTP/2 connection may have open at once (`SETTINGS_MAX_CONCURRENT_STREAMS`); more are refused '
      + 'with `REFUSED_STREAM`, which clients retry.',
  },
  keepAliveTimeout: {
    section: 'HTTP limits', cli: ['--keep-alive-timeout'],
    type: durationMs({ min: 0.1 }), default: 75_000,
    doc: 'An idle keep-alive connection is closed after this (as nginx\'s default; an idle connection costs the front about 6 kB once V8 has collected the garbage of their arrival, about 13 kB just after); '
      + 'an HTTP/2 connection with no open stream gets GOAWAY after it. An HTTP/1.1 connection is closed up to one second later '
      + 'than `Keep-Alive: timeout=N` says, so a client never reuses a closing connection.',
  },
  maxConnections: {
    section: 'HTTP limits', cli: ['--max-connections'],
    type: int({ min: 1 }), default: 10000,
    doc: 'Most client connections open at once, across all listeners. One more is answered `503 Service Unavailable` '
      + 'with `Retry-After` and closed, instead of waiting unseen in the kernel\'s backlog. 10000 idle keep-alive '
      + 'connections cost the front about 60 MB (about 130 MB just after they arrive); each is a file descriptor, so `ulimit -n` must be higher '
      + '(the server warns at start when it is not).',
  },

  maxBody: {
    section: 'HTTP limits', cli: ['--max-body'],
    type: bytes({ min: 1 }), default: 1024 ** 3,
    doc: 'Largest request body. A larger `Content-Length` gets 413 before any of the body is read (and without `100 Continue`); '
      + 'a chunked body gets 413 when it grows past it; the connection is then closed (after letting the client finish sending '
      + 'for up to 5 s, so it reads the 413 instead of a reset). The default, as waitress\'s, leaves room for large web2py uploads: '
      + 'bodies stream to the worker or spool to disk, so the cost of a big one is disk and time, not memory. No unlimited: give a large value.',
  },
  bodyBufferSize: {
    section: 'HTTP limits', cli: ['--body-buffer-size'],
    type: bytes({ min: 0 }), default: 1024 ** 2,
    doc: 'A chunked request body being spooled (`--chunked-input spool`) stays in memory up to this size; a longer one moves to a temp file in `--spool-dir`.',
  },
  spoolDir: {
    section: 'HTTP limits', cli: ['--spool-dir'],
    type: path({ mustExist: true, dir: true }), default: () => tmpdir(), defaultDoc: 'the system temp folder',
    doc: 'Folder of the temp files of spooled request bodies (default: `$TMPDIR`, else `/tmp`). Each is created mode 0600 and unlinked at once, so none is ever left behind; '
      + 'the space is freed when its request ends. Must be writable (checked at start).',
  },

  // --- HTTP responses
  serverHeader: {
    section: 'HTTP responses', cli: ['--server-header'], metavar: 'TEXT',
    type: str(), default: 'web2py-on-node',
    doc: 'Value of the `Server` header of every response; an empty value or `off` sends none. '
      + 'An application that sets its own `Server` header keeps it (never two).',
  },

  // --- Reverse proxies
  trustedProxies: {
    section: 'Reverse proxies', cli: ['--trusted-proxies'],
    type: cidrList(), default: [], defaultDoc: 'none',
    doc: 'Reverse proxies whose forwarding headers are believed: addresses or CIDRs, IPv4 or IPv6 '
      + '(`127.0.0.1,10.0.0.0/8,2001:db8::/32`), `loopback` (127.0.0.0/8 and ::1), or `unix` (whoever connects to '
      + '`--unix-socket`: the socket file\'s mode decides who can); IPv4-mapped peers (`::ffff:10.1.2.3`) '
      + 'match IPv4 ranges. From such a peer, `REMOTE_ADDR` is the right-most X-Forwarded-For (or Forwarded `for=`) address '
      + 'that is not itself a trusted proxy, and the scheme and host come from the headers `--proxy-headers` names; '
      + 'from any other peer those headers are removed before the application sees them. List only proxies: '
      + 'a client inside a trusted range can choose its own address.',
  },
  proxyHeaders: {
    section: 'Reverse proxies', cli: ['--proxy-headers'],
    type: wordList(PROXY_HEADER_NAMES, oneKindOfProxyHeader), default: ['x-forwarded-for', 'x-forwarded-proto'],
    doc: 'The forwarding headers a trusted proxy (`--trusted-proxies`) may set: `x-forwarded-for` (the client address), '
      + '`x-forwarded-proto` (`http`/`https`: `wsgi.url_scheme` and `HTTPS`), `x-forwarded-host` (`HTTP_HOST`), '
      + '`x-forwarded-port` (the port in `HTTP_HOST`), `x-forwarded-by` (passed on as sent), or `forwarded` (RFC 7239, '
      + 'alone). X-Forwarded-Host is not in the default: a proxy that does not set it passes on the client\'s own, and web2py '
      + 'builds absolute URLs (password-reset mails) from `HTTP_HOST`. A malformed trusted header gets 400.',
  },

  // --- Realtime
  realtimeKey: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-key'], secret: true, metavar: 'KEY',
    type: nullable(str()), default: null,
    doc: 'Turns the realtime hub on (web2py\'s `websocket_messaging.py` served by the front): the HMAC key that publish and '
      + 'token POSTs are signed with, the `hmac_key` of `websocket_send(url, message, hmac_key, group)`. Never logged or printed. '
      + 'Prefer `--realtime-key-file` (a command line is visible to other users of the machine).',
  },
  realtimeKeyFile: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-key-file'], metavar: 'PATH',
    type: nullable(path({ mustExist: true, readable: true })), default: null,
    doc: 'As `--realtime-key`, read from this file (surrounding white space removed).',
  },
  realtimePrefix: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-prefix'], metavar: 'PATH',
    type: str({ pattern: /^(?:off|\/(?:[A-Za-z0-9._~-]+\/)+)$/, expected: '`off` or a path that starts and ends with `/`' }), default: '/_ws/',
    doc: 'Where the hub answers on the main listeners: `POST <prefix>` publishes, `POST <prefix>token` arms a token, '
      + '`<prefix>realtime/<group>[/<token>][/<name>]` joins (WebSocket). Paths under it never reach the application while '
      + 'the hub is on; while it is off they do. Setting it turns the hub on (without a key, publishing is accepted from '
      + 'loopback clients only); `off` serves the hub on `--realtime-port` only.',
  },
  realtimePort: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-port'], metavar: 'PORT',
    type: nullable(int({ min: 0, max: 65535 })), default: null,
    doc: 'Also serve the hub on its own port, at the paths web2py\'s Tornado server uses (`POST /`, `POST /token`, '
      + '`/realtime/...`), so `websocket_send(\'http://127.0.0.1:8888\', ...)` and pages that open `ws://host:8888/realtime/...` '
      + 'work unchanged. It listens on the first TCP listener\'s address, with its certificate when it has one (`wss://`). '
      + 'Turns the hub on.',
  },
  realtimeTokens: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-tokens'],
    type: bool(), default: false,
    doc: 'Joining needs a token armed by a signed `POST <prefix>token` (web2py\'s `-t`). A token serves one connection '
      + 'and is gone when it closes; an unused one expires after `--realtime-token-ttl`.',
  },
  realtimeTokenTtl: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-token-ttl'],
    type: durationMs({ min: 1 }), default: 300_000,
    doc: 'How long an armed token waits for its connection.',
  },
  realtimePresence: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-presence'],
    type: enumOf(['on', 'off']), default: 'on',
    doc: 'Send `+name` to a group when a member joins and `-name` when one leaves, as web2py does. Each join costs a '
      + 'message to every member (quadratic in a group\'s size): `off` for large groups whose pages ignore presence.',
  },
  realtimeRedis: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-redis'], secret: true, metavar: 'URL',
    type: nullable(str({ pattern: /^rediss?:\/\//, expected: 'a redis:// or rediss:// URL' })), default: null,
    doc: 'Fan messages, presence and tokens out to every instance that names the same Redis (pub/sub), e.g. '
      + '`redis://10.0.0.5:6379/0`. Within one instance the fronts share messages without Redis. While Redis is '
      + 'unreachable, each instance goes on delivering its own messages and reconnects with backoff. Never logged (it may hold a password).',
  },
  realtimeMaxMessage: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-max-message'],
    type: bytes({ min: 1, max: 64 * 1024 * 1024 }), default: 64 * 1024,
    doc: 'Largest message a publish POST may carry (413 past it) and largest message a client may send on a WebSocket, '
      + 'the hub\'s or an application\'s `wsgi.websocket` (closed 1009; for an application\'s, at most 16 MiB, one protocol frame).',
  },
  realtimeMaxConnections: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-max-connections'],
    type: nullable(int({ min: 1 })), default: null, defaultDoc: 'none',
    doc: 'WebSocket connections each front process holds at most, the hub\'s and the applications\' (`wsgi.websocket`) together '
      + '(none: half of `--max-connections`); past it a join or upgrade is answered 503. They count against `--max-connections` '
      + 'too, so pages and publishes are still served when the WebSockets are many.',
  },
  realtimeSendBuffer: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-send-buffer'],
    type: bytes({ min: 1024 }), default: 1024 * 1024,
    doc: 'Bytes a connection may have waiting to be sent; a client that reads slower than its group is sent to is '
      + 'closed (1013, try again later) rather than growing the front\'s memory. An application\'s WebSocket is also held '
      + 'back by flow control (its `send()` waits), so this closes it only when set below the worker\'s 1 MiB window.',
  },
  realtimePingInterval: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-ping-interval'],
    type: durationMs({ min: 0 }), default: 30_000,
    doc: 'Ping each WebSocket (the hub\'s and the applications\') this often; one that has not answered the previous ping is '
      + 'closed (dead peers, half-open connections behind NAT, a client that reads nothing). `0`: no pings.',
  },
  realtimeOrigins: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-origins'], metavar: 'ORIGINS',
    type: nullable(str()), default: null, defaultDoc: 'any origin',
    doc: 'Comma-separated origins (`https://example.com,https://www.example.com`) whose pages may join, or open an '
      + 'application\'s WebSocket; one with another `Origin` is answered 403. Default: any, as web2py\'s `check_origin` returns True.',
  },
  realtimeCompression: {
    section: 'Realtime (WebSocket messaging)', cli: ['--realtime-compression'],
    type: enumOf(['on', 'off']), default: 'off',
    doc: 'permessage-deflate. Off by default: a broadcast would compress the same message once per member (CPU), each '
      + 'connection would keep its own zlib state (about 300 KB of memory each with context takeover), and compressed '
      + 'secrets are open to CRIME/BREACH-style guessing; messages of a few hundred bytes gain little.',
  },

  // --- Logging
  logLevel: {
    section: 'Logging', cli: ['--log-level'],
    type: enumOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), default: 'info',
    doc: 'Least severe level of the server log (stderr) that is written.',
  },
  logFormat: {
    section: 'Logging', cli: ['--log-format'],
    type: enumOf(['text', 'json']), default: 'text',
    doc: 'Server log as readable lines, or one JSON object per line.',
  },

  accessLog: {
    section: 'Logging', cli: ['--access-log'], metavar: 'PATH|-',
    type: nullable(str({ pattern: /^[^\0]+$/, expected: 'a file path, or `-` for stdout' })), default: null,
    defaultDoc: 'off; `httpserver.log` with `-l`',
    doc: 'Write the access log here: a file (appended to; a relative path is in the web2py folder, as `httpserver.log` '
      + 'is; SIGUSR1 reopens it), or `-` for stdout (containers). Every front process writes whole lines with one '
      + '`write()` each batch (`O_APPEND` for a file; at most 4096 bytes of whole lines per write to a pipe, which the '
      + 'kernel keeps whole), so lines of several fronts never mix. Lines are for the requests that reach the application '
      + 'or the static files, including the answers the front makes for them (413, 503, 504...).',
  },
  accessLogFormat: {
    section: 'Logging', cli: ['--access-log-format'],
    type: enumOf(['web2py', 'combined', 'json']), default: 'web2py',
    doc: '`web2py`: web2py\'s own line, byte for byte (`127.0.0.1, 2024-06-10 14:03:07, GET, /app/default/index, '
      + 'HTTP/1.1, 200, 0.012345`; escapes nothing, as web2py). `combined`: Apache/nginx combined format, then the '
      + 'duration in seconds and the request id (`1.2.3.4 - - [10/Jun/2024:14:03:07 +0200] "GET /a?b=1 HTTP/1.1" 200 '
      + '512 "referer" "agent" 0.012345 "req-id"`); bytes outside printable ASCII, `"` and `\\` written `\\xHH` as nginx '
      + 'does. `json`: one JSON object per line, ASCII only (see the README). In `combined` and `json` a field sent by '
      + 'the client is cut (ending `...`) past a budget (request target 1800 characters, referer 1000, user agent 500, '
      + 'method 32) so that a line always fits one atomic write of 4096 bytes.',
  },

  statusToken: {
    section: 'Logging', cli: ['--status-token'], metavar: 'TOKEN', secret: true,
    type: nullable(str()), default: null,
    doc: 'The live status page (`GET /status`, its data at `/status.json`) is for loopback clients; with this token it is '
      + 'also for anyone who sends it as `Authorization: Bearer TOKEN` or `?token=TOKEN`. A wrong token gets 401; from '
      + 'elsewhere without one, `/status` is an ordinary path of the application (as `/metrics` is). Compared in constant '
      + 'time, never logged.',
  },

  statsInterval: {
    section: 'Logging', cli: ['--stats-interval'],
    type: durationMs({ min: 0 }), default: 60_000,
    doc: 'Every this often, one `server.stats` line in the server log (text or JSON, as `--log-format`): memory (RSS) of '
      + 'the primary, the front processes, the Python workers and the schedulers; connections, requests in the application '
      + 'and in the queue now; requests answered and errors (5xx answers, the server\'s own 503s and 504s included) since the '
      + 'previous line. `0`: no line.',
  },
  metricsAddress: {
    section: 'Logging', cli: ['--metrics-address'],
    type: nullable(listenAddress()), default: null, defaultDoc: 'none',
    doc: 'Also serve `GET /metrics` (the whole server\'s Prometheus text, as on the loopback rule) on this separate '
      + 'listener, to anyone who reaches it, so Prometheus can scrape a pod or a container: `0.0.0.0:9100`. Plain HTTP; '
      + 'every other path there is 404. Bound by the server before anything listens (a port in use is one line and exit 2) '
      + 'and served by the front processes, so it stays up while a front is replaced. Keep the port off the internet.',
  },

  // --- Scheduler
  scheduler: {
    section: 'Scheduler', cli: ['-K', '--scheduler'], repeatable: true,
    type: schedulerList(), default: [],
    doc: 'Run web2py\'s scheduler for these applications beside the server, with web2py.py\'s `-K` syntax: '
      + '`APP[:GROUP...]`, several joined with `,` or by giving `-K` again (`-K app1 -K app2:fast:slow`). Each is '
      + '`python web2py.py -K APP[:GROUP...]` in the web2py folder, with `--python`: started by exec (never forked '
      + 'from the server), its output in the server log (`scheduler.output`), restarted when it dies (after a growing '
      + 'pause if it dies soon after its start; after five such deaths in a row it is given up, the server goes on), '
      + 'replaced one at a time on SIGHUP and stopped with the server. Each application must exist: checked before '
      + 'anything listens (exit 2).',
  },
  schedulerWorkers: {
    section: 'Scheduler', cli: ['--scheduler-workers'],
    type: int({ min: 1, max: 64 }), default: 1,
    doc: 'Scheduler processes for each `-K` entry (web2py\'s workers share the queue through the database).',
  },
  schedulerStopTimeout: {
    section: 'Scheduler', cli: ['--scheduler-stop-timeout'],
    type: durationMs({ min: 0 }), default: 10_000,
    doc: 'On stop and on SIGHUP, how long a scheduler process has after SIGTERM to leave before its whole process '
      + 'group is killed, task processes included. web2py\'s scheduler ignores SIGTERM while a task runs (a bare '
      + '`except:` in `gluon/scheduler.py`), so a longer task is cut here; web2py then marks it failed or retries it '
      + 'as the task says.',
  },

  // --- Config file
  config: {
    section: 'Config file', cli: ['--config'],
    type: nullable(path()), default: null,
    doc: 'JSON file of settings: one object whose keys are setting names (`port`, `sslCertificate`, ...).',
  },
});

export type Settings = typeof settings;
export type SettingKey = keyof Settings & string;

/** The value type of a setting. */
export type SettingValue<K extends SettingKey> = ValueOf<Settings[K]['type']>;

type UnitOf<V> = V extends { readonly unit: infer U extends Unit } ? U : '';

/**
 * A setting's property in `Config`: its key, followed by the unit its value is kept in when it
 * has one (`timeout` → `timeoutMs`, `maxRss` → `maxRssBytes`, `port` → `port`). The key itself
 * stays the name users see (config file, env var, docs, --print-config).
 */
export type ConfigKey<K extends SettingKey> = `${K}${UnitOf<Settings[K]['type']>}`;

/** The typed, validated configuration: one readonly property per setting, in the unit the code uses. */
export type Config = { readonly [K in SettingKey as ConfigKey<K>]: SettingValue<K> };

/** Flags that ask for something to be done instead of serving; they are not settings. */
export const actionFlags = {
  help: { cli: ['-h', '--help'], doc: 'Print this help and exit.' },
  version: { cli: ['-V', '--version'], doc: 'Print the version and exit.' },
  printConfig: { cli: ['--print-config'], doc: 'Print every setting\'s value and where it came from, then exit.' },
  checkConfig: { cli: ['--check-config'], doc: 'Check the configuration, then exit: 0 when valid, 2 when not.' },
} as const satisfies Record<string, { cli: readonly string[]; doc: string }>;
export type ActionKey = keyof typeof actionFlags;

/** Every setting key, in registry (= help and docs) order. */
export const settingKeys = Object.keys(settings) as SettingKey[];

/** The registry entry of a key, typed loosely for generic code (help, docs, loader). */
export function specOf(key: SettingKey): SettingSpec<unknown> {
  return settings[key] as SettingSpec<unknown>;
}

/** `sslPrivateKey` → `W2N_SSL_PRIVATE_KEY`. */
export function envVarName(key: string): string {
  return `W2N_${key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`;
}

/** The env var of a setting, or null when it has none. */
export function envVarOf(key: SettingKey): string | null {
  return specOf(key).env === false ? null : envVarName(key);
}

/** The spelling used in messages: the first long flag without an underscore (`--ssl-certificate`). */
export function primaryFlag(key: SettingKey): string {
  const longFlags = specOf(key).cli.filter((flag) => flag.startsWith('--'));
  return longFlags.find((flag) => !flag.includes('_')) ?? longFlags[0] ?? `--${key}`;
}

/** The property of a setting in `Config` (see ConfigKey). */
export function configKeyOf<K extends SettingKey>(key: K): ConfigKey<K> {
  return `${key}${specOf(key).type.unit ?? ''}` as ConfigKey<K>;
}

/** A setting's value in a Config, found by its key (generic code: loader, --print-config, tests). */
export function settingValue<K extends SettingKey>(config: Readonly<Config>, key: K): SettingValue<K> {
  return (config as Readonly<Record<string, unknown>>)[configKeyOf(key)] as SettingValue<K>;
}

/** The value of a setting before any file, env or flag; resolved against the load context. */
export function defaultOf(key: SettingKey, context: ValidationContext): unknown {
  const spec = specOf(key);
  return typeof spec.default === 'function' ? (spec.default as (c: ValidationContext) => unknown)(context) : spec.default;
}

/** The default in words, as --help and the docs show it. */
export function defaultText(key: SettingKey): string {
  const spec = specOf(key);
  if (spec.defaultDoc !== undefined) return spec.defaultDoc;
  return spec.type.format(spec.default);
}

/** The value placeholder of a setting's flags in --help ('' for switches). */
export function metavarOf(key: SettingKey): string {
  const spec = specOf(key);
  return spec.type.kind === 'boolean' ? '' : (spec.metavar ?? spec.type.metavar);
}
