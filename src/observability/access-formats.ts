/**
 * @module The access log's line formats: web2py's own (exact), Apache/nginx `combined`, and `json`.
 *
 * Pure: an entry in, one line (with its newline) out. Text the client chose (the request target,
 * Referer, User-Agent, even the method on HTTP/2) must never forge a field or a line, so
 * `combined` escapes as nginx does (`\xHH`) and `json` writes ASCII-only JSON; web2py's format
 * escapes nothing, as web2py, because its contract is to be byte for byte web2py's.
 *
 * Strings from HTTP/1 heads hold one char per byte (Node reads heads as latin-1), and PATH_INFO
 * is PEP 3333's latin-1 text too; so a char ≤ 0xFF is a byte here. A char above 0xFF (an HTTP/2
 * header value) is written as its UTF-8 bytes.
 */

/** handlers/web2py_on_gevent.py: `appfactory(..., logfilename='httpserver.log', ...)`, in the web2py folder. */
export const ACCESS_LOG_FILE_NAME = 'httpserver.log';

export const ACCESS_LOG_FORMATS = ['web2py', 'combined', 'json'] as const;
export type AccessLogFormat = (typeof ACCESS_LOG_FORMATS)[number];

/** What web2py's line needs. */
export interface AccessEntry {
  /** environ["REMOTE_ADDR"] */
  remoteAddr: string;
  /** When the response ended; printed in local time, like `datetime.datetime.today()`. */
  time: Date;
  /** environ["REQUEST_METHOD"] */
  method: string;
  /**
   * environ["PATH_INFO"] as PEP 3333 gives it: percent-decoded, one char per byte (latin-1),
   * so a UTF-8 "é" arrives as "Ã©" and is written as UTF-8 again, as web2py does.
   */
  pathInfo: string;
  /** environ["SERVER_PROTOCOL"], e.g. "HTTP/1.1" */
  protocol: string;
  status: number;
  /** From the request's arrival to the response's end, in seconds. */
  seconds: number;
}

/** What `combined` and `json` add. */
export interface RequestAccessEntry extends AccessEntry {
  /** The request target as the client sent it (`/a/b?x=1`), one char per byte. */
  target: string;
  /** Body bytes handed to the connection (0 for HEAD, 204, 304). */
  bodyBytes: number;
  referer: string | undefined;
  userAgent: string | undefined;
  /** X-Request-ID: a trusted proxy's, or made by the front (front/request-id.ts). */
  requestId: string;
}

export type AccessLineFormatter = (entry: RequestAccessEntry) => string;

export function accessLineFormatter(format: AccessLogFormat): AccessLineFormatter {
  switch (format) {
    case 'web2py': return formatAccessLine;
    case 'combined': return formatCombinedLine;
    case 'json': return formatJsonLine;
  }
}

/**
 * The line gluon/main.py appfactory.app_with_logging writes, including its newline:
 *   line = "%s, %s, %s, %s, %s, %s, %f\n" % (
 *       environ["REMOTE_ADDR"],
 *       datetime.datetime.today().strftime("%Y-%m-%d %H:%M:%S"),
 *       environ["REQUEST_METHOD"],
 *       environ["PATH_INFO"].replace(",", "%2C"),
 *       environ["SERVER_PROTOCOL"],
 *       (status_headers[0])[:3],
 *       time.time() - time_in,
 *   )
 * e.g. `127.0.0.1, 2024-06-10 14:03:07, GET, /welcome/default/index, HTTP/1.1, 200, 0.012345`.
 * Like web2py, nothing else is escaped: a decoded %0A in the path reaches the file as is.
 */
export function formatAccessLine(e: AccessEntry): string {
  return `${e.remoteAddr}, ${formatLocalDateTime(e.time)}, ${e.method}, ${e.pathInfo.replaceAll(',', '%2C')}, `
    + `${e.protocol}, ${String(e.status).slice(0, 3)}, ${formatPercentF(e.seconds)}\n`;
}

/**
 * Budgets of the fields the client chose, in output characters (escapes included). With them a
 * `combined` or `json` line stays under 4096 bytes (PIPE_BUF), which a pipe writes whole: lines
 * of several front processes on one stdout never mix (access-log.ts).
 */
export const FIELD_BUDGETS = { method: 32, target: 1800, referer: 1000, userAgent: 500 } as const;

/**
 * nginx's combined format, then the duration in seconds (nginx's `$request_time`, in µs) and
 * the request id, quoted:
 * `1.2.3.4 - - [10/Jun/2024:14:03:07 +0200] "GET /a?b=1 HTTP/1.1" 200 512 "-" "curl/8.0" 0.012345 "5f0c..."`.
 * Ident and user are always `-` (the front authenticates no one); an absent Referer or
 * User-Agent is `"-"`, and an empty REMOTE_ADDR (a Unix socket peer) is `-`.
 */
export function formatCombinedLine(e: RequestAccessEntry): string {
  const request = `${escapeNginx(e.method, FIELD_BUDGETS.method)} ${escapeNginx(e.target, FIELD_BUDGETS.target)} ${e.protocol}`;
  return `${e.remoteAddr === '' ? '-' : e.remoteAddr} - - [${formatClfTime(e.time)}] "${request}" ${e.status} ${e.bodyBytes} `
    + `"${e.referer === undefined ? '-' : escapeNginx(e.referer, FIELD_BUDGETS.referer)}" `
    + `"${e.userAgent === undefined ? '-' : escapeNginx(e.userAgent, FIELD_BUDGETS.userAgent)}" `
    + `${e.seconds.toFixed(6)} "${escapeNginx(e.requestId, Infinity)}"\n`;
}

/**
 * One JSON object, ASCII only (every other char `\uXXXX`), so no byte of it can end a line for
 * any reader (U+2028, U+0085 included) and no encoding question arises. Field names are the
 * server log's (camelCase); `uri` is the target as sent, with bytes outside printable ASCII
 * percent-encoded (lossless, and still a URI); Referer and User-Agent are their bytes read as
 * UTF-8 when they are valid UTF-8, else as latin-1 (one char per byte, nothing lost either way).
 */
export function formatJsonLine(e: RequestAccessEntry): string {
  return `{"time":"${e.time.toISOString()}","remoteAddr":${jsonAscii(e.remoteAddr, Infinity)}`
    + `,"method":${jsonAscii(e.method, FIELD_BUDGETS.method)},"uri":${jsonAscii(percentEncodeBytes(e.target), FIELD_BUDGETS.target)}`
    + `,"protocol":${jsonAscii(e.protocol, Infinity)},"status":${e.status},"bytes":${e.bodyBytes}`
    + `,"durationSeconds":${e.seconds.toFixed(6)}`
    + `,"referer":${e.referer === undefined ? 'null' : jsonAscii(asUtf8(e.referer), FIELD_BUDGETS.referer)}`
    + `,"userAgent":${e.userAgent === undefined ? 'null' : jsonAscii(asUtf8(e.userAgent), FIELD_BUDGETS.userAgent)}`
    + `,"requestId":${jsonAscii(e.requestId, Infinity)}}\n`;
}

const CUT = '...';
/** Printable ASCII but `"` and `\`: what both escapers leave as it is. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * `text` with each char replaced by `pieceOf(char)`, whole; when that is longer than `budget`,
 * cut at a piece's boundary (never inside an escape) so that it and `...` fit the budget.
 */
function escaped(text: string, budget: number, pieceOf: (char: string, code: number) => string): string {
  let out = '';
  let cutAt = 0;
  for (const char of text) {
    out += pieceOf(char, char.codePointAt(0)!);
    if (out.length <= budget - CUT.length) cutAt = out.length;
    else if (out.length > budget) return `${out.slice(0, cutAt)}${CUT}`;
  }
  return out;
}

/**
 * nginx's escaping of log variables: `"`, `\`, and bytes outside 0x20-0x7E become `\xHH`; a char
 * above 0xFF becomes the `\xHH` of each of its UTF-8 bytes. Longer than `budget`: cut, `...`.
 */
export function escapeNginx(text: string, budget: number): string {
  if (text.length <= budget && PLAIN.test(text)) return text;
  return escaped(text, budget, (char, code) => (code >= 0x20 && code <= 0x7e && code !== 0x22 && code !== 0x5c ? char
    : code <= 0xff ? hexByte(code) : [...Buffer.from(char, 'utf8')].map(hexByte).join('')));
}

function hexByte(byte: number): string {
  return `\\x${byte.toString(16).toUpperCase().padStart(2, '0')}`;
}

const JSON_SHORT_ESCAPES: Readonly<Record<number, string>> = {
  0x22: '\\"', 0x5c: '\\\\', 0x08: '\\b', 0x0c: '\\f', 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t',
};

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * A JSON string literal, quotes included, of printable ASCII only: every other UTF-16 unit is
 * `\uXXXX` (a lone surrogate becomes U+FFFD first, so strict parsers take it). Longer than
 * `budget` (the quotes aside): cut, `...`.
 */
export function jsonAscii(text: string, budget: number): string {
  if (text.length <= budget && PLAIN.test(text)) return `"${text}"`;
  return `"${escaped(text.replace(LONE_SURROGATE, '\ufffd'), budget, (char) => {
    let piece = '';
    for (let i = 0; i < char.length; i += 1) {
      const unit = char.charCodeAt(i);
      piece += JSON_SHORT_ESCAPES[unit] ?? (unit >= 0x20 && unit <= 0x7e ? char[i]! : `\\u${unit.toString(16).padStart(4, '0')}`);
    }
    return piece;
  })}"`;
}

/** Bytes (one char per byte) outside printable ASCII, and `%` never: `%HH`; a char above 0xFF as its UTF-8 bytes. */
export function percentEncodeBytes(text: string): string {
  if (/^[\x21-\x7e]*$/.test(text)) return text;
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code > 0x20 && code < 0x7f) out += char;
    else if (code <= 0xff) out += `%${code.toString(16).toUpperCase().padStart(2, '0')}`;
    else for (const byte of Buffer.from(char, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A head value's bytes (one char per byte) read as UTF-8 when they are valid UTF-8; else as they are. */
export function asUtf8(text: string): string {
  if (/^[\x00-\x7f]*$/.test(text)) return text;
  for (let i = 0; i < text.length; i += 1) if (text.charCodeAt(i) > 0xff) return text; // not bytes: already text
  try {
    return utf8.decode(Buffer.from(text, 'latin1'));
  } catch {
    return text;
  }
}

/** strftime("%Y-%m-%d %H:%M:%S") of the local time. */
function formatLocalDateTime(time: Date): string {
  return `${String(time.getFullYear()).padStart(4, '0')}-${pad2(time.getMonth() + 1)}-${pad2(time.getDate())} `
    + `${pad2(time.getHours())}:${pad2(time.getMinutes())}:${pad2(time.getSeconds())}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

/** Common Log Format time, local with its offset: `10/Jun/2024:14:03:07 +0200` (nginx's `$time_local`). */
export function formatClfTime(time: Date): string {
  const offsetMinutes = -time.getTimezoneOffset();
  const sign = offsetMinutes < 0 ? '-' : '+';
  const offset = Math.abs(offsetMinutes);
  return `${pad2(time.getDate())}/${MONTHS[time.getMonth()]!}/${time.getFullYear()}:`
    + `${pad2(time.getHours())}:${pad2(time.getMinutes())}:${pad2(time.getSeconds())} `
    + `${sign}${pad2(Math.floor(offset / 60))}${pad2(offset % 60)}`;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/**
 * Python's `"%f" % x`: six decimals, correctly rounded, ties to even. `toFixed(6)` is also
 * correctly rounded but breaks exact ties upwards (0.0078125 → "0.007813" where Python says
 * "0.007812"), so exact ties are detected on the exact decimal expansion and fixed.
 */
export function formatPercentF(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  const magnitude = Math.abs(x);
  return sign + (isExactTieAtSixDecimals(magnitude) ? roundTieToEven(magnitude) : magnitude.toFixed(6));
}

function isExactTieAtSixDecimals(magnitude: number): boolean {
  if (magnitude >= 1e21) return false; // toFixed switches to exponent form; no seconds are this large
  const digits = magnitude.toFixed(100).split('.')[1] ?? '';
  return digits[6] === '5' && /^0*$/.test(digits.slice(7));
}

function roundTieToEven(magnitude: number): string {
  const truncated = magnitude.toFixed(100).slice(0, -94); // integer part, '.', six decimals
  const lastDigit = Number(truncated.at(-1));
  if (lastDigit % 2 === 0) return truncated;
  return (Number(truncated) + 1e-6).toFixed(6); // odd last digit: away from zero, to even
}
