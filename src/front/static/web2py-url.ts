/**
 * @module web2py's static URL rule, as a pure function: PATH_INFO → which file of
 * `applications/<app>/static` web2py would stream, or why the front must not serve it.
 *
 * It mirrors `gluon/rewrite.py` `regex_url_in` (the router used when there is no routes.py):
 *
 * ```python
 * path = unquote(request.env.path_info) or "/"
 * path = path.replace("\\", "/")
 * if path.endswith("/") and len(path) > 1:
 *     path = path[:-1]
 * match = REGEX_URL.match(path)           # ^/((?P<a>\w+)(/(?P<c>\w+)(/(?P<z>(?P<f>\w+)...
 * if match.group("c") == "static":
 *     filename = filename.replace(" ", "_")
 *     items = filename.split("/", 1)
 *     if REGEX_VERSION.match(items[0]):   # ^(_[\d]+\.[\d]+\.[\d]+)$
 *         version, filename = items
 * ```
 *
 * and is stricter where safety asks for it: web2py only checks that `abspath(static/filename)`
 * stays inside the static folder, so it serves `css/../js/app.js` and `css/%252e%252e/js/app.js`;
 * here any dot segment or dotfile, in any number of percent-encodings, is refused (400, web2py's
 * own "invalid request" answer). Anything this module cannot map with certainty (non-ASCII,
 * `//`, odd first characters, a bare version segment) is passed to Python, which answers exactly
 * as web2py does. No I/O here: the caller resolves the file (see serve.ts).
 */

/** What the front does with a request path. */
export type StaticUrl =
  /** A file of `applications/<app>/static`: serve it from the front. */
  | {
    readonly kind: 'file';
    readonly app: string;
    /** Relative to `applications/<app>/static`, `/`-separated, no empty, `.` or `..` segment, no dotfile. */
    readonly file: string;
    /** `_1.2.3` when the URL carried web2py's version segment (far-future cache headers), else null. */
    readonly version: string | null;
    /** `QUERY_STRING.startswith("attachment")` (gluon/main.py): `Content-Disposition: attachment`. */
    readonly attachment: boolean;
  }
  /** Not a static URL, or not one the front maps with certainty: web2py answers. */
  | { readonly kind: 'pass'; readonly reason: string }
  /** A traversal attempt, dotfile or control byte: answer 400 without touching the disk. */
  | { readonly kind: 'refuse'; readonly reason: string };

/** `REGEX_VERSION` of gluon/rewrite.py. */
const VERSION_SEGMENT = /^_\d+\.\d+\.\d+$/;
/** `/<a>/static[/<z>]` of `REGEX_URL`; JS `\w` is ASCII, as web2py's is for the ASCII paths handled here. */
const STATIC_PATH = /^\/(\w+)\/static(?:\/(.*))?$/s;
/** `(?P<z>(?P<f>\w+)...`: web2py's file part starts with a word character. */
const WORD_START = /^\w/;
const PERCENT_HEX = /%[0-9a-fA-F]{2}/;
const TWO_HEX = /^[0-9a-fA-F]{2}$/;
/** C0 controls (NUL included) and DEL: never part of a file name served here. */
const CONTROL = /[\u0000-\u001f\u007f]/;
const NON_ASCII = /[^\u0000-\u007f]/;
/** Percent-decodings tried when looking for a hidden traversal (`%252e` → `%2e` → `.`). */
const MAX_DECODE_ROUNDS = 4;

const pass = (reason: string): StaticUrl => ({ kind: 'pass', reason });
const refuse = (reason: string): StaticUrl => ({ kind: 'refuse', reason });

/**
 * Maps PATH_INFO (as the WSGI server hands it to web2py: percent-decoded once, bytes as latin-1)
 * and QUERY_STRING to a static file, or says why not.
 */
export function mapStaticUrl(pathInfo: string, queryString: string): StaticUrl {
  // `unquote(request.env.path_info)`: web2py decodes PATH_INFO a second time.
  const unquoted = percentDecodeAscii(pathInfo);
  if (unquoted === null) return pass('non-ASCII path');
  // `path.replace("\\", "/")`, then one trailing slash dropped.
  let path = unquoted.replaceAll('\\', '/');
  if (path.endsWith('/') && path.length > 1) path = path.slice(0, -1);

  const match = STATIC_PATH.exec(path);
  if (match === null) return pass('not a static URL');
  const app = match[1]!;
  const rawFile = match[2];
  if (CONTROL.test(path)) return refuse('control byte in path');
  // `if not filename: raise HTTP(404)`: Python gives that answer.
  if (rawFile === undefined || rawFile === '') return pass('no file name');

  const unsafe = hiddenTraversal(rawFile);
  if (unsafe !== null) return refuse(unsafe);
  if (!WORD_START.test(rawFile)) return pass('file name does not start as REGEX_URL wants');
  if (rawFile.split('/').includes('')) return pass('empty path segment');

  // `filename.replace(" ", "_")` applies to the whole path, folders included.
  const file = rawFile.replaceAll(' ', '_');
  const slash = file.indexOf('/');
  const first = slash < 0 ? file : file.slice(0, slash);
  let version: string | null = null;
  let relative = file;
  if (VERSION_SEGMENT.test(first)) {
    // `version, filename = items` fails in web2py when nothing follows the version: Python answers.
    if (slash < 0) return pass('version segment without a file');
    version = first;
    relative = file.slice(slash + 1);
  }
  return { kind: 'file', app, file: relative, version, attachment: queryString.startsWith('attachment') };
}

/**
 * Why the file part is a traversal or a dotfile in some encoding, or null when it is clean.
 * Decodes repeatedly (`%252e%252e` → `%2e%2e` → `..`) and treats `\` as `/` after each round,
 * as web2py does after its own decoding.
 */
export function hiddenTraversal(file: string): string | null {
  let current = file;
  for (let round = 0; round <= MAX_DECODE_ROUNDS; round += 1) {
    if (CONTROL.test(current)) return 'control byte in path';
    const segments = current.replaceAll('\\', '/').split('/');
    if (segments.some((segment) => segment === '.' || segment === '..')) return 'dot segment in path';
    if (segments.some((segment) => segment.startsWith('.'))) return 'dotfile in path';
    if (!PERCENT_HEX.test(current)) return null;
    const decoded = percentDecodeAscii(current);
    // A deeper encoding that decodes to non-ASCII cannot name `.`, `/` or `\`: what remains is a
    // literal file name (web2py decodes only once more than the server).
    if (decoded === null) return null;
    current = decoded;
  }
  return 'too many percent-encodings';
}

/**
 * Decodes `%XX` escapes (as Python's `urllib.parse.unquote` does for ASCII), or returns null when
 * the input or any decoded byte is not ASCII: then the UTF-8/latin-1 subtleties of PEP 3333
 * paths are left to web2py itself.
 */
export function percentDecodeAscii(text: string): string | null {
  if (NON_ASCII.test(text)) return null;
  if (!text.includes('%')) return text;
  let out = '';
  let start = 0;
  for (let i = text.indexOf('%'); i >= 0; i = text.indexOf('%', i + 1)) {
    const hex = text.slice(i + 1, i + 3);
    if (!TWO_HEX.test(hex)) continue; // a lone `%` stays, as in Python
    const code = Number.parseInt(hex, 16);
    if (code > 0x7f) return null;
    out += text.slice(start, i) + String.fromCharCode(code);
    start = i + 3;
    i += 2;
  }
  return out + text.slice(start);
}
