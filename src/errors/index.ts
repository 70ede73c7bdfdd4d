/**
 * @module The error table: every error this server can report, once.
 *
 * Each code carries its HTTP status (when a request gets it), its process exit code (when it is
 * fatal at start) and its log level. Classes are not hand-written per error: `ServerError` takes
 * its facts from this table, so the status lives on the error (no instanceof ladders), and
 * docs/errors.md is generated from it (scripts/gen-docs.ts; a test checks it is current).
 *
 * Families: CONFIG/START are fatal at start (exit non-zero before listening); CLIENT are bad
 * input (4xx, debug: a server cannot be flooded into logging what any client sends); APP is the
 * Python application's fault (500, error); WORKER is a worker that died or hung (502/504,
 * error); PROTO is a broken channel (the worker is replaced).
 *
 * `logLevel` is what the log does: every log event that reports one of these errors takes its
 * level from here (`level: 'code'` in observability/event-spec.ts). Fatal errors print their one
 * line instead (cli/fatal.ts).
 */

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug';

export interface ErrorSpec {
  /** One-line description; `{name}` placeholders are filled from the details. */
  message: string;
  /** Status sent to the client when a request fails with this error. */
  httpStatus?: number;
  /** Process exit status when this error stops the server at start. */
  exitCode?: number;
  /** The level of the server-log line that reports it (docs/log-events.md). */
  logLevel: LogLevel;
  /** What an operator can do about it (docs/errors.md). */
  remedy: string;
  /**
   * A worker may name this code in an ERROR frame: on a request it runs (`request`) or instead of
   * READY (`start`). Its message fills the `detail` placeholder (`ifEmpty` when it sent none).
   * `workerError` reads this; a code without it is not the worker's to send.
   */
  fromWorker?: { on: 'request' | 'start'; detail?: string; ifEmpty?: string };
}

// Codes are never reused once retired: add new ones at the end of their family.
export const errorTable = {
  // --- configuration and start-up: one line, exit 2, before anything listens
  W2N_ERR_CONFIG_UNKNOWN_OPTION: {
    message: 'unknown option {option}', exitCode: 2, logLevel: 'fatal',
    remedy: 'See --help for the options this version knows.',
  },
  W2N_ERR_CONFIG_BAD_VALUE: {
    message: '{option} {value}: {reason}', exitCode: 2, logLevel: 'fatal',
    remedy: 'Fix the value where the message says it came from (argv, env var or config file).',
  },
  W2N_ERR_CONFIG_FILE: {
    message: 'config file {file}: {reason}', exitCode: 2, logLevel: 'fatal',
    remedy: 'The config file must be readable JSON whose keys are setting names (docs/settings.md).',
  },
  W2N_ERR_FOLDER_NOT_WEB2PY: {
    message: '{folder} is not a web2py folder (no gluon/ in it)', exitCode: 2, logLevel: 'fatal',
    remedy: 'Point -f/--folder at the folder that holds web2py.py and gluon/, or serve another app with --app module:callable.',
  },
  W2N_ERR_PYTHON_MISSING: {
    message: 'cannot run Python interpreter {python}: {reason}', exitCode: 2, logLevel: 'fatal',
    remedy: 'Install Python 3.8 or newer, or name one with --python /path/to/python3.',
  },
  W2N_ERR_PYTHON_TOO_OLD: {
    message: 'Python {version} at {python} is too old: 3.8 or newer is needed', exitCode: 2, logLevel: 'fatal',
    remedy: 'Name a newer interpreter with --python.',
  },
  W2N_ERR_APP_IMPORT: {
    message: 'the application could not be loaded: {reason}', exitCode: 2, logLevel: 'fatal',
    fromWorker: { on: 'start', detail: 'reason', ifEmpty: 'unknown error' },
    remedy: 'Read the Python error; for web2py, check that gluon/packages (pydal, yatl) are present (git submodule update --init).',
  },
  W2N_ERR_LISTEN_IN_USE: {
    message: 'cannot listen on {address}: address already in use', exitCode: 2, logLevel: 'fatal',
    remedy: 'Stop the other server on that port (or Unix socket), or choose another with -p/--port, --interfaces or --unix-socket.',
  },
  W2N_ERR_LISTEN_DENIED: {
    message: 'cannot listen on {address}: permission denied', exitCode: 2, logLevel: 'fatal',
    remedy: 'Ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port ≥ 1024 or grant the capability.',
  },
  W2N_ERR_LISTEN_FAILED: {
    message: 'cannot listen on {address}: {reason}', exitCode: 2, logLevel: 'fatal',
    remedy: 'Check that -i/--ip is an address of this machine.',
  },
  W2N_ERR_TLS: {
    message: 'TLS: {reason}', exitCode: 2, logLevel: 'fatal',
    remedy: 'Give both -c (PEM certificate) and -k (PEM private key), readable, and belonging together.',
  },
  W2N_ERR_LOG_FILE: {
    message: 'cannot write the access log {file}: {reason}', exitCode: 2, logLevel: 'fatal',
    remedy: 'Make the web2py folder writable for this user, or run without -l.',
  },
  W2N_ERR_PROFILER_DIR: {
    message: 'cannot use profiler folder {folder}: {reason}', exitCode: 2, logLevel: 'fatal',
    remedy: 'Give -F a folder this user can create and write.',
  },
  W2N_ERR_PASSWORD_FILE: {
    message: 'cannot write the admin password file {file}: {reason}', exitCode: 2, logLevel: 'fatal',
    remedy: 'Make the web2py folder writable for this user.',
  },
  W2N_ERR_FRONT_CRASH_LOOP: {
    message: 'front process {index} keeps dying before it is ready ({failures} starts in a row; last: {last}); giving up',
    exitCode: 1, logLevel: 'fatal',
    remedy: 'Read the server log above: each front.died line names the exit and the stack of the bug. systemd or Kubernetes restart the server; report the bug with its log.',
  },
  W2N_ERR_FRONT_START: {
    message: 'front process {index} could not start: {reason}', exitCode: 1, logLevel: 'fatal',
    remedy: 'Read the server log above for the front\'s own error; check that the package is built (npm run build).',
  },
  W2N_ERR_START_WORKERS: {
    message: 'no worker became ready: {reason}', exitCode: 2, logLevel: 'fatal',
    remedy: 'Read the worker output above; run the app by hand with the same Python to see its error.',
  },
  W2N_ERR_SCHEDULER_APP: {
    message: 'cannot run the scheduler for "{entry}": {reason}', exitCode: 2, logLevel: 'fatal',
    remedy: '-K names applications of the web2py folder (-f): APP[:GROUP...], as web2py.py -K does. Check the name, or drop the flag.',
  },
  W2N_ERR_SPOOL_DIR: {
    message: 'cannot use spool folder {folder}: {reason}', exitCode: 2, logLevel: 'fatal',
    remedy: 'Give --spool-dir a folder this user can create files in (chunked request bodies are spooled there).',
  },

  // --- client errors: bad input gets a clear answer
  W2N_ERR_CLIENT_BAD_REQUEST: {
    message: 'bad request: {reason}', httpStatus: 400, logLevel: 'debug',
    remedy: 'The client sent malformed HTTP; nothing to do on the server.',
  },
  W2N_ERR_CLIENT_HEADERS_TOO_LARGE: {
    message: 'request headers too large', httpStatus: 431, logLevel: 'debug',
    remedy: 'Raise --max-header-size if legitimate clients send headers this large.',
  },
  W2N_ERR_CLIENT_TIMEOUT: {
    message: 'client too slow: {reason}', httpStatus: 408, logLevel: 'debug',
    remedy: 'Raise --headers-timeout or --request-timeout if legitimate clients are this slow.',
  },
  W2N_ERR_CLIENT_URI_TOO_LONG: {
    message: 'request line longer than {limit} bytes', httpStatus: 414, logLevel: 'debug',
    remedy: 'Raise --max-request-line (and --max-header-size, which counts the line too) if legitimate URLs are this long.',
  },
  W2N_ERR_CLIENT_TOO_MANY_HEADERS: {
    message: '{count} request headers, more than {limit}', httpStatus: 431, logLevel: 'debug',
    remedy: 'Raise --max-headers if legitimate clients send this many headers.',
  },
  W2N_ERR_CLIENT_TRANSFER_CODING: {
    message: 'unsupported transfer coding {coding}', httpStatus: 501, logLevel: 'debug',
    remedy: 'Only Transfer-Encoding: chunked is understood (RFC 9112 §6.1); nothing to do on the server.',
  },
  W2N_ERR_CLIENT_BODY_TOO_LARGE: {
    message: 'request body larger than --max-body ({limit} bytes): {reason}', httpStatus: 413, logLevel: 'debug',
    remedy: 'Raise --max-body if legitimate clients send bodies this large.',
  },
  W2N_ERR_CLIENT_HTTP_VERSION: {
    message: 'HTTP version {version} is not served on an HTTP/1.x connection', httpStatus: 505, logLevel: 'debug',
    remedy: 'HTTP/1.0 and HTTP/1.1 are served on every listener, HTTP/2 by ALPN on TLS listeners only; nothing to do on the server.',
  },
  W2N_ERR_BODY_SPOOL: {
    message: 'cannot spool a request body in {folder}: {reason}', httpStatus: 500, logLevel: 'error',
    remedy: 'Free space in --spool-dir (or point it at a larger file system), or raise --body-buffer-size.',
  },
  W2N_ERR_CLIENT_FLOOD: {
    message: 'client flood: {reason}', logLevel: 'info',
    remedy: 'A client sent more control traffic than any real one does (an attack such as HTTP/2 rapid reset); its connection was closed. Nothing to do unless a legitimate client is named: then tell its authors.',
  },

  // --- the application's fault: 500, the worker carries on
  W2N_ERR_APP_EXCEPTION: {
    message: 'the application raised {exception}', httpStatus: 500, logLevel: 'error',
    fromWorker: { on: 'request', detail: 'exception', ifEmpty: 'an exception' },
    remedy: 'Read the traceback in the server log.',
  },
  W2N_ERR_APP_BAD_RESPONSE: {
    message: 'the application broke the WSGI rules: {reason}', httpStatus: 500, logLevel: 'error',
    fromWorker: { on: 'request', detail: 'reason', ifEmpty: 'unknown' },
    remedy: 'Fix the application: status, headers and body must follow PEP 3333.',
  },

  // --- the worker's fault: only its own in-flight requests fail
  W2N_ERR_WORKER_DIED: {
    message: 'worker {workerId} (pid {pid}) died: {reason}', httpStatus: 502, logLevel: 'error',
    remedy: 'A fresh worker replaces it; read the log for the cause (segfault, os._exit, out of memory).',
  },
  W2N_ERR_WORKER_TIMEOUT: {
    message: 'the request ran longer than --timeout ({timeoutSeconds} s)', httpStatus: 504, logLevel: 'error',
    remedy: 'The worker interrupts it; a worker that cannot is replaced after --timeout-grace. Raise --timeout for slow pages.',
  },
  W2N_ERR_REQUEST_CANCELLED: {
    message: 'the client went away; the worker stopped its request', logLevel: 'debug',
    remedy: 'Nothing to do: this is the last word of the worker on a request whose client left; its slot is free again.',
  },
  W2N_ERR_WORKER_HUNG: {
    message: 'worker {workerId} (pid {pid}) did not stop a timed-out request within {graceSeconds} s; replacing it', logLevel: 'error',
    remedy: 'Its Python stack is in the log just before this line: look for code that blocks outside Python (C extensions, locks).',
  },
  W2N_ERR_NOT_READY: {
    message: 'no worker is ready', httpStatus: 503, logLevel: 'warn',
    fromWorker: { on: 'request' },
    remedy: 'The server is starting or stopping; retry.',
  },
  W2N_ERR_QUEUE_FULL: {
    message: 'too many requests waiting ({queued} queued)', httpStatus: 503, logLevel: 'warn',
    remedy: 'Add processes or threads, or raise --queue-size.',
  },
  W2N_ERR_QUEUE_TIMEOUT: {
    message: 'waited {waitedMs} ms for a worker', httpStatus: 503, logLevel: 'warn',
    remedy: 'Add processes or threads, raise -w, or raise --queue-timeout (or --queue-target, when the queue stood).',
  },
  W2N_ERR_TOO_MANY_CONNECTIONS: {
    message: '{open} connections open, the most --max-connections allows', httpStatus: 503, logLevel: 'warn',
    remedy: 'Raise --max-connections (and ulimit -n), or lower --keep-alive-timeout so idle connections leave sooner.',
  },

  // --- the channel: the worker is replaced
  W2N_ERR_PROTO_BAD_HEADER: {
    message: 'bad frame header: {reason}', logLevel: 'error',
    remedy: 'A bug or a foreign writer on the worker channel; the worker is replaced.',
  },
  W2N_ERR_PROTO_TOO_LARGE: {
    message: 'frame payload of {length} bytes exceeds {limit}', logLevel: 'error',
    remedy: 'A bug on the worker side; the worker is replaced.',
  },
  W2N_ERR_PROTO_UNKNOWN_TYPE: {
    message: 'unknown frame type {type}', logLevel: 'error',
    remedy: 'Front and worker are from different versions; reinstall the package.',
  },
  W2N_ERR_PROTO_VERSION: {
    message: 'worker speaks protocol {theirs}, front speaks {ours}', logLevel: 'error',
    remedy: 'Front and worker are from different versions; reinstall the package.',
  },
  W2N_ERR_PROTO_UNEXPECTED: {
    message: 'unexpected frame {type} in state {state}', logLevel: 'error',
    remedy: 'A bug in the worker; it is replaced.',
  },
  W2N_ERR_PROTO_BAD_PAYLOAD: {
    message: 'bad {type} payload: {reason}', logLevel: 'error',
    remedy: 'The application wrote on the worker channel (fd 3), or a bug on the worker side; the worker is replaced.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorTable;

export type ErrorDetails = Record<string, string | number | boolean | null | undefined>;

function fill(template: string, details: ErrorDetails): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in details ? String(details[name]) : whole);
}

/** The one error class: its facts come from `errorTable[code]`. */
export class ServerError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;
  readonly httpStatus: number | undefined;
  readonly exitCode: number | undefined;
  readonly logLevel: LogLevel;

  constructor(code: ErrorCode, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    const spec: ErrorSpec = errorTable[code];
    super(fill(spec.message, details), options);
    this.name = 'ServerError';
    this.code = code;
    this.details = details;
    this.httpStatus = spec.httpStatus;
    this.exitCode = spec.exitCode;
    this.logLevel = spec.logLevel;
  }
}

/**
 * The error an ERROR frame names, through this table (STYLE.md: no hand-kept name → class map).
 * A code the table does not let a worker send `on` this occasion is, on a request, the
 * application's exception (its message names it) and, at start, the application failing to load.
 * `message` must already be safe for the log (the pool escapes it: observability/escape.ts).
 */
export function workerError(on: 'request' | 'start', code: string, message: string): ServerError {
  const named = Object.hasOwn(errorTable, code) ? code as ErrorCode : null;
  const spec: ErrorSpec | null = named === null ? null : errorTable[named];
  const chosen: ErrorCode = named !== null && spec?.fromWorker?.on === on ? named : on === 'request' ? 'W2N_ERR_APP_EXCEPTION' : 'W2N_ERR_APP_IMPORT';
  const rule = (errorTable[chosen] as ErrorSpec).fromWorker;
  if (rule?.detail === undefined) return new ServerError(chosen);
  return new ServerError(chosen, { [rule.detail]: message === '' ? rule.ifEmpty : message });
}

export function isServerError(value: unknown): value is ServerError {
  return value instanceof ServerError;
}

/**
 * A fatal error another process already put into words (a front that could not start): its line
 * is printed as it is, and the process exits with the status it asked for.
 */
export class ReportedFatal extends Error {
  constructor(readonly line: string, readonly exitCode: number) {
    super(line);
    this.name = 'ReportedFatal';
  }
}
