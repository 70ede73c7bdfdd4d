/**
 * @module HTTP request → the CGI part of a WSGI environ, as the strings the worker receives.
 *
 * Pure: reads the parsed request (method, target, version, raw headers, socket addresses) and
 * returns `[key, value, key, value, …]` ready for protocol/encode.ts encodeStrings. The worker
 * adds the `wsgi.*` objects. What is decided here matters to web2py's security:
 * - REMOTE_ADDR is the TCP peer (web2py's request.is_local opens admin on 127.0.0.1), unless the
 *   peer is a trusted proxy (--trusted-proxies): then proxy-trust.ts resolves the client.
 * - Forwarding headers (X-Forwarded-*, Forwarded) are dropped unless a trusted proxy sent them
 *   and --proxy-headers names them: web2py trusts X-Forwarded-Proto from anyone, which would
 *   let a remote client make a plain-HTTP request look like HTTPS (admin refuses plain HTTP
 *   from non-local clients), and takes request.client from X-Forwarded-For.
 * - X-Request-ID: a trusted proxy's well-formed one is kept, any other is replaced by a new id
 *   (request-id.ts), so HTTP_X_REQUEST_ID is always the id the logs and the answer carry.
 * - Header names holding `_` are dropped (as nginx and gunicorn do): `X_Forwarded_Proto` and
 *   `X-Forwarded-Proto` would otherwise both become HTTP_X_FORWARDED_PROTO.
 * HTTP/2 requests (Node's compatibility API) come with their pseudo-headers in `rawHeaders`:
 * they are not headers and are not passed on, except `:authority`, which is HTTP_HOST when the
 * request has no `host` header (RFC 9113 §8.3.1). Cookies an HTTP/2 client split into several
 * `cookie` fields are joined with `; ` (§8.2.3), as repeated HTTP/1.1 ones are.
 */

import { FORWARDING_HEADERS, normalizeAddress, resolveForwarding, type ForwardingValues, type ProxyTrust } from './proxy-trust.js';
import { isWellFormedRequestId, newRequestId } from './request-id.js';

export { normalizeAddress };

export interface ListenerFacts {
  /** SERVER_NAME: the listening address, as gevent's pywsgi reports it. */
  serverName: string;
  /** SERVER_PORT: the listening port (admin reads parameters_<SERVER_PORT>.py). */
  serverPort: string;
  isTls: boolean;
  /** The listener asks for client certificates (a CA file in `--interfaces`). */
  clientCertificates?: boolean;
  /** The `--unix-socket` listener: its peers have no address (REMOTE_ADDR is empty). */
  isUnixSocket?: boolean;
  /** Trusted reverse proxies; null or absent: none, forwarding headers are always dropped. */
  proxies?: ProxyTrust | null;
}

export interface RequestFacts {
  method: string;
  /** Request target as received: origin-form `/a/b?x=1`, absolute-form, or `*`. */
  target: string;
  /** `1.1`, `1.0`, `2.0`. */
  httpVersion: string;
  /** Flat list as Node gives it: name, value, name, value … (names in the client's case). */
  rawHeaders: readonly string[];
  remoteAddress: string | undefined;
  remotePort: number | undefined;
}

export type EnvironResult =
  | { pairs: string[]; hasBody: boolean; pathInfo: string; remoteAddr: string; requestId: string }
  | { badRequest: string };

export const SERVER_SOFTWARE = 'web2py-on-node';

const HEX = /^[0-9a-fA-F]{2}$/;

/** Percent-decodes a path into bytes shown as latin-1 (PEP 3333); a lone `%` stays as is. */
export function decodePath(path: string): string {
  if (!path.includes('%')) return path;
  const bytes = Buffer.from(path, 'latin1');
  const out = Buffer.allocUnsafe(bytes.length);
  let length = 0;
  for (let i = 0; i < bytes.length; i += 1) {
    const byte = bytes[i]!;
    if (byte === 0x25 && i + 2 < bytes.length + 0 && HEX.test(path.slice(i + 1, i + 3))) {
      out[length++] = parseInt(path.slice(i + 1, i + 3), 16);
      i += 2;
    } else {
      out[length++] = byte;
    }
  }
  return out.toString('latin1', 0, length);
}

function splitTarget(target: string): { path: string; query: string } | null {
  let rest = target;
  if (rest === '*') return { path: '*', query: '' };
  if (!rest.startsWith('/')) {
    // absolute-form (RFC 9112 §3.2.2): keep the path and query only.
    const match = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(rest);
    if (match === null) return null;
    rest = rest.slice(match[0].length) || '/';
    if (!rest.startsWith('/')) rest = `/${rest}`;
  }
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const question = rest.indexOf('?');
  return question < 0 ? { path: rest, query: '' } : { path: rest.slice(0, question), query: rest.slice(question + 1) };
}

/**
 * `HTTP_<NAME>` of a lower-case header name, remembered for the names seen first (a client's
 * usual dozen): no upper-casing and replacing for every header of every request. Bounded, so
 * a client sending ever new names only costs the work it always did.
 */
const httpKeys = new Map<string, string>();
const MAX_HTTP_KEYS = 256;
const MAX_REMEMBERED_NAME = 64;

function httpKey(name: string): string {
  const known = httpKeys.get(name);
  if (known !== undefined) return known;
  const key = `HTTP_${name.toUpperCase().replace(/-/g, '_')}`;
  if (httpKeys.size < MAX_HTTP_KEYS && name.length <= MAX_REMEMBERED_NAME) httpKeys.set(name, key);
  return key;
}

const SERVER_PROTOCOLS = new Map([['1.1', 'HTTP/1.1'], ['1.0', 'HTTP/1.0'], ['2.0', 'HTTP/2.0']]);

function serverProtocol(version: string): string {
  return SERVER_PROTOCOLS.get(version) ?? `HTTP/${version}`;
}

/** Forwarding headers are lists: repeated lines join with `,`. */
function collectForwarding(into: ForwardingValues | null, name: string, value: string): ForwardingValues {
  const values = into ?? {};
  const key = name as keyof ForwardingValues;
  const previous = values[key];
  values[key] = previous === undefined ? value : `${previous},${value}`;
  return values;
}

export function buildEnviron(request: RequestFacts, listener: ListenerFacts): EnvironResult {
  const parts = splitTarget(request.target);
  if (parts === null) return { badRequest: 'unsupported request target' };
  const pathInfo = decodePath(parts.path);
  if (pathInfo.includes('\0')) return { badRequest: 'NUL byte in path' };

  let hasBody = false;
  let forwarding: ForwardingValues | null = null;
  // Most requests have no repeated header: collect into a Map only to join duplicates.
  const joined = new Map<string, string>();
  let authority: string | null = null;
  let sentRequestId: string | null = null;
  let requestIdCount = 0;
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 0x3a /* ':' */) {
      if (name === ':authority') authority = value;
      continue;
    }
    if (name.includes('_')) continue;
    if (FORWARDING_HEADERS.has(name)) {
      forwarding = collectForwarding(forwarding, name, value);
      continue;
    }
    if (name === 'x-request-id') {
      sentRequestId = value;
      requestIdCount += 1;
      continue;
    }
    let key: string;
    if (name === 'content-length') {
      key = 'CONTENT_LENGTH';
      if (value !== '0') hasBody = true;
    } else if (name === 'content-type') {
      key = 'CONTENT_TYPE';
    } else {
      if (name === 'transfer-encoding') hasBody = true;
      key = httpKey(name);
    }
    const previous = joined.get(key);
    joined.set(key, previous === undefined ? value : `${previous}${key === 'HTTP_COOKIE' ? '; ' : ','}${value}`);
  }
  if (authority !== null && !joined.has('HTTP_HOST')) joined.set('HTTP_HOST', authority);

  let remoteAddr = normalizeAddress(request.remoteAddress);
  let remotePort = request.remotePort === undefined ? '' : String(request.remotePort);
  let scheme: 'http' | 'https' = listener.isTls ? 'https' : 'http';
  const proxies = listener.proxies;
  // A Unix socket peer has no address: it is trusted by the `unix` keyword alone.
  const isPeerTrusted = proxies != null && (listener.isUnixSocket === true ? proxies.trustsUnixPeers : proxies.isTrusted(remoteAddr));
  const requestId = isPeerTrusted && requestIdCount === 1 && isWellFormedRequestId(sentRequestId!) ? sentRequestId! : newRequestId();
  if (forwarding !== null && proxies != null && isPeerTrusted) {
    const view = resolveForwarding(forwarding, proxies, { scheme, host: joined.get('HTTP_HOST') });
    if ('badRequest' in view) return view;
    remoteAddr = view.remoteAddr ?? remoteAddr;
    remotePort = view.remotePort ?? remotePort;
    scheme = view.scheme ?? scheme;
    if (view.host !== null) joined.set('HTTP_HOST', view.host);
    for (let i = 0; i + 1 < view.pairs.length; i += 2) joined.set(view.pairs[i]!, view.pairs[i + 1]!);
  }

  const pairs: string[] = [
    'REQUEST_METHOD', request.method,
    'SCRIPT_NAME', '',
    'PATH_INFO', pathInfo,
    'QUERY_STRING', parts.query,
    'REQUEST_URI', request.target,
    'SERVER_PROTOCOL', serverProtocol(request.httpVersion),
    'SERVER_NAME', listener.serverName,
    'SERVER_PORT', listener.serverPort,
    'SERVER_SOFTWARE', SERVER_SOFTWARE,
    'GATEWAY_INTERFACE', 'CGI/1.1',
    'REMOTE_ADDR', remoteAddr,
    'REMOTE_PORT', remotePort,
    'wsgi.url_scheme', scheme,
  ];
  if (scheme === 'https') pairs.push('HTTPS', 'on');
  for (const [key, value] of joined) pairs.push(key, value);
  pairs.push('HTTP_X_REQUEST_ID', requestId);
  return { pairs, hasBody, pathInfo, remoteAddr, requestId };
}

/**
 * The pairs of a request whose chunked body was spooled: `CONTENT_LENGTH` is its real size and
 * `HTTP_TRANSFER_ENCODING` is gone (the app sees a body of known length, as web2py needs).
 */
export function withContentLength(pairs: readonly string[], length: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const key = pairs[i]!;
    if (key !== 'HTTP_TRANSFER_ENCODING' && key !== 'CONTENT_LENGTH') out.push(key, pairs[i + 1]!);
  }
  out.push('CONTENT_LENGTH', String(length));
  return out;
}
