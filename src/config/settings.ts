/**
 * @module THE settings registry: every setting of the server, declared once.
 *
 * Each entry yields four views, all derived here and nowhere else: the CLI flags (seed spellings
 * included), the env var (`W2N_` + SCREAMING_SNAKE of the key), the config-file key (the camelCase
 * key itself) and a row of docs/settings.md; `--help` is rendered from the same data. The `Config`
 * type is inferred from the registry, so there is no hand-written interface to drift.
 *
 * Docs text is Markdown (backticks for literals); --help strips the backticks.
 */

import { availableParallelism } from 'node:os';

import {
  bool, bytes, cidrList, enumOf, int, nullable, path, seconds, str, wordList,
  type ValidationContext, type Validator, type ValueOf,
} from './validators.js';

/** Sections in the order --help and docs/settings.md show them. */
export const sections = [
  'Listening',
  'Seed options (as web2py_on_gevent.py)',
  'Application',
  'Workers',
  'HTTP limits',
  'Reverse proxies',
  'Logging',
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
    type: bool(), default: false,
    doc: 'Write the access log to `httpserver.log` in the web2py folder, in web2py\'s line format.',
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
  queueSize: {
    section: 'Workers', cli: ['--queue-size'],
    type: int({ min: 0 }), default: 1024,
    doc: 'Requests that may wait for a worker; beyond this they get 503.',
  },
  queueTimeout: {
    section: 'Workers', cli: ['--queue-timeout'],
    type: seconds({ min: 0.01 }), default: 30,
    doc: 'A request that waited this long for a worker gets 503 with `Retry-After` instead.',
  },
  timeout: {
    section: 'Workers', cli: ['--timeout'],
    type: seconds({ min: 0 }), default: 300,
    doc: 'A request still in the application after this gets 504; its thread or greenlet is interrupted (`0` = no limit).',
  },
  timeoutGrace: {
    section: 'Workers', cli: ['--timeout-grace'],
    type: seconds({ min: 0.1 }), default: 10,
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
    type: int({ min: 0 }), default: 0,
    doc: 'Recycle a worker whose resident memory stays above this many MB for three samples a second apart (`0` = never).',
  },
  maxLifetime: {
    section: 'Workers', cli: ['--max-lifetime'],
    type: seconds({ min: 0 }), default: 0,
    doc: 'Recycle a worker after it has run this long (`0` = never).',
  },
  gracefulTimeout: {
    section: 'Workers', cli: ['--graceful-timeout'],
    type: seconds({ min: 0 }), default: 30,
    doc: 'On SIGTERM/SIGINT, how long in-flight requests may run to completion before the workers are killed.',
  },

  // --- HTTP limits
  maxHeaderSize: {
    section: 'HTTP limits', cli: ['--max-header-size'],
    type: bytes({ min: 1024 }), default: 16384,
    doc: 'Largest request head (request line and headers); a larger one gets 431.',
  },
  headersTimeout: {
    section: 'HTTP limits', cli: ['--headers-timeout'],
    type: seconds({ min: 0.1 }), default: 10,
    doc: 'Time a client has to send the whole request head; a slower one gets 408.',
  },
  requestTimeout: {
    section: 'HTTP limits', cli: ['--request-timeout'],
    type: seconds({ min: 0 }), default: 300,
    doc: 'Time a client has to send the whole request, body included; `0` = none.',
  },
  keepAliveTimeout: {
    section: 'HTTP limits', cli: ['--keep-alive-timeout'],
    type: seconds({ min: 0.1 }), default: 75,
    doc: 'An idle keep-alive connection is closed after this (as nginx\'s default; an idle connection costs the front about 10 kB).',
  },

  // --- Reverse proxies
  trustedProxies: {
    section: 'Reverse proxies', cli: ['--trusted-proxies'],
    type: cidrList(), default: [], defaultDoc: 'none',
    doc: 'Reverse proxies whose forwarding headers are believed: addresses or CIDRs, IPv4 or IPv6 '
      + '(`127.0.0.1,10.0.0.0/8,2001:db8::/32`), or `loopback` (127.0.0.0/8 and ::1); IPv4-mapped peers (`::ffff:10.1.2.3`) '
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

  // --- Config file
  config: {
    section: 'Config file', cli: ['--config'],
    type: nullable(path()), default: null,
    doc: 'JSON file of settings: one object whose keys are setting names (`port`, `sslCertificate`, ...).',
  },
});

export type Settings = typeof settings;
export type SettingKey = keyof Settings & string;

/** The typed, validated configuration: one readonly property per setting. */
export type Config = { readonly [K in SettingKey]: ValueOf<Settings[K]['type']> };

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
