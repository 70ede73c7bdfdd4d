/**
 * @module Trusted reverse proxies: which peers may speak for the client, and what their
 * forwarding headers (X-Forwarded-*, RFC 7239 Forwarded) make of REMOTE_ADDR, the scheme and the host.
 *
 * Pure: strings in, strings out (node:net only parses addresses). environ.ts collects the
 * forwarding headers of a request and calls `resolveForwarding` when the TCP peer is trusted;
 * from any other peer it drops them, so nothing here runs for ordinary traffic.
 *
 * The rules, after waitress's `proxy_headers.py`, with one change: waitress takes the client
 * `trusted_proxy_count` hops from the right; here the count comes from the chain itself. The
 * X-Forwarded-For (or Forwarded `for=`) list is walked from the right, skipping addresses that
 * are trusted proxies; the first one that is not is the client (nginx's `real_ip_recursive`).
 * Only that walk ever reads the list, so the entries left of the client, which the client wrote
 * itself, are never believed. The number of trusted hops the walk crossed (the peer included)
 * picks the value of X-Forwarded-Proto/Host/Port lists the same way waitress's count does: the
 * one written by the proxy the client spoke to. A malformed value from a trusted proxy is a
 * configuration error of that proxy and gets 400 (as in waitress), never a guess: guessing
 * "the peer" for a client address would make every request through a proxy on 127.0.0.1 look
 * local to web2py, which opens its admin to the world.
 */
import { BlockList, isIP, SocketAddress } from 'node:net';
import type { ProxyHeaderName } from '../config/settings.js';
import { UNIX_PEERS } from '../config/validators.js';

/** The lower-case header names of every forwarding header: honoured or dropped, never passed on raw. */
export const FORWARDING_HEADERS: ReadonlySet<string> = new Set<ProxyHeaderName>([
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-by', 'forwarded',
]);

/** A request's forwarding headers, each name's lines joined with `,` (they are lists). */
export type ForwardingValues = Partial<Record<ProxyHeaderName, string>>;

export interface ProxyTrust {
  /** True when `address` (as the socket reports it, IPv4-mapped or not) is a trusted proxy. */
  isTrusted(address: string): boolean;
  /** Peers on the `--unix-socket` listener are trusted (`unix` in --trusted-proxies). */
  readonly trustsUnixPeers: boolean;
  /** The headers a trusted proxy is believed about (`--proxy-headers`). */
  readonly headers: ReadonlySet<ProxyHeaderName>;
  /** One line for the start-up output. */
  readonly description: string;
}

/** `::ffff:127.0.0.1` → `127.0.0.1`: web2py compares REMOTE_ADDR with IPv4 literals. */
export function normalizeAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * Builds the matcher from the validated `address/prefix` list (config/validators.ts cidrList);
 * null when no proxy is trusted. net.BlockList matches an IPv4-mapped IPv6 address against
 * IPv4 ranges, so `::ffff:10.1.2.3` from a dual-stack listener is inside 10.0.0.0/8.
 */
export function compileProxyTrust(cidrs: readonly string[], headers: readonly ProxyHeaderName[]): ProxyTrust | null {
  if (cidrs.length === 0) return null;
  const list = new BlockList();
  for (const cidr of cidrs) {
    if (cidr === UNIX_PEERS) continue;
    const slash = cidr.lastIndexOf('/');
    const address = cidr.slice(0, slash);
    list.addSubnet(address, Number(cidr.slice(slash + 1)), isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }
  const honoured = new Set(headers);
  return {
    isTrusted(address) {
      const family = isIP(address);
      return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
    },
    trustsUnixPeers: cidrs.includes(UNIX_PEERS),
    headers: honoured,
    description: `${cidrs.join(', ')} (believed about: ${honoured.size === 0 ? 'nothing' : [...honoured].join(', ')})`,
  };
}

/** What a trusted proxy's headers change in the environ; null fields keep the connection's own value. */
export interface ForwardedView {
  /** The client address (IPv4-mapped addresses as IPv4, IPv6 in canonical form). */
  remoteAddr: string | null;
  /** The client's port when the header gave one, else '' (the peer's port is the proxy's). */
  remotePort: string | null;
  scheme: 'http' | 'https' | null;
  /** The new HTTP_HOST. */
  host: string | null;
  /** Environ pairs of the honoured headers, cleaned: X-Forwarded-* hold the one resolved value. */
  pairs: string[];
}

export type ForwardingResult = ForwardedView | { badRequest: string };

/** One hop of a chain: an address (with the port it may carry), or a name that is not one. */
export type Node =
  | { kind: 'ip'; address: string; port: string }
  | { kind: 'unknown' }
  | { kind: 'obfuscated'; name: string }
  | { kind: 'malformed'; text: string };

const V4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/;
const BRACKETED = /^\[([^\]]*)\](?::(\d{1,5}|_[A-Za-z0-9._-]+))?$/;
const OBFUSCATED = /^_[A-Za-z0-9._-]+(?::(?:\d{1,5}|_[A-Za-z0-9._-]+))?$/;
const NUMERIC_PORT = /^\d{1,5}$/;

/** Canonical text of a valid address: `0:0::1` → `::1`, `::ffff:1.2.3.4` → `1.2.3.4`. */
function canonical(address: string, family: 4 | 6): string {
  return normalizeAddress(new SocketAddress({ address, family: family === 6 ? 'ipv6' : 'ipv4' }).address);
}

/**
 * An X-Forwarded-For entry or a Forwarded `for=` value (RFC 7239 §6): `192.0.2.1`,
 * `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`, a bare IPv6 address (common in
 * X-Forwarded-For), `unknown`, or an obfuscated `_name`. Zone ids (`fe80::1%eth0`) are refused.
 */
export function parseNode(text: string): Node {
  if (text.toLowerCase() === 'unknown') return { kind: 'unknown' };
  if (OBFUSCATED.test(text)) return { kind: 'obfuscated', name: text };
  let address = text;
  let port = '';
  let family = isIP(text);
  if (family === 0) {
    const bracketed = BRACKETED.exec(text) ?? V4_WITH_PORT.exec(text);
    if (bracketed === null) return { kind: 'malformed', text };
    address = bracketed[1]!;
    port = bracketed[2] ?? '';
    family = isIP(address);
    if (family !== (text.startsWith('[') ? 6 : 4)) return { kind: 'malformed', text };
  }
  if (address.includes('%') || (NUMERIC_PORT.test(port) && Number(port) > 65535)) return { kind: 'malformed', text };
  return { kind: 'ip', address: canonical(address, family as 4 | 6), port: NUMERIC_PORT.test(port) ? port : '' };
}

/** A Forwarded element's parameters, names lower-cased, values unquoted. */
export type ForwardedElement = ReadonlyMap<string, string>;

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;
/** Unquoted values may also hold `:[]`: `for=[2001:db8::1]` is invalid but common (nginx recipes). */
const LENIENT_VALUE_CHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z:[\]]$/;

/**
 * RFC 7239 §4: `Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8::1]:4711"`.
 * Elements are split on `,`, pairs on `;`, with quoted strings (and their `\` escapes) kept
 * whole; spaces around separators are allowed, empty elements skipped. A parameter twice in one
 * element, a pair without `=`, or stray characters make the whole header malformed (null).
 */
export function parseForwarded(value: string): ForwardedElement[] | null {
  const elements: ForwardedElement[] = [];
  let element = new Map<string, string>();
  let i = 0;
  const skipSpace = (): void => {
    while (value[i] === ' ' || value[i] === '\t') i += 1;
  };
  for (;;) {
    skipSpace();
    if (i < value.length && value[i] !== ',' && value[i] !== ';') {
      const nameStart = i;
      while (i < value.length && TCHAR.test(value[i]!)) i += 1;
      const name = value.slice(nameStart, i).toLowerCase();
      if (name === '' || value[i] !== '=') return null;
      i += 1;
      let parameter = '';
      if (value[i] === '"') {
        i += 1;
        for (;;) {
          if (i >= value.length) return null;
          const char = value[i]!;
          i += 1;
          if (char === '"') break;
          if (char === '\\') {
            if (i >= value.length) return null;
            parameter += value[i];
            i += 1;
          } else {
            parameter += char;
          }
        }
      } else {
        const valueStart = i;
        while (i < value.length && LENIENT_VALUE_CHAR.test(value[i]!)) i += 1;
        parameter = value.slice(valueStart, i);
        if (parameter === '') return null;
      }
      if (element.has(name)) return null;
      element.set(name, parameter);
      skipSpace();
    }
    if (i >= value.length || value[i] === ',') {
      if (element.size > 0) elements.push(element);
      if (i >= value.length) return elements;
      element = new Map();
    } else if (value[i] !== ';') {
      return null;
    }
    i += 1;
  }
}

/** waitress's undquote: `"a\"b"` → `a"b`; an unquoted value as it is. */
function unquote(text: string): string {
  return text.length >= 2 && text.startsWith('"') && text.endsWith('"') ? text.slice(1, -1).replace(/\\(.)/g, '$1') : text;
}

/** An X-Forwarded-* list: comma-separated, trimmed, unquoted, empty entries skipped. */
function listOf(value: string): string[] {
  return value.split(',').map((item) => unquote(item.trim())).filter((item) => item !== '');
}

/**
 * Walks a chain from the right past trusted proxies. The result is the index of the client's
 * hop: the right-most hop that is not a trusted address, or the left-most hop when all are
 * (then the request came from inside the trusted set, e.g. the proxy's own health check).
 */
export function findClientHop(chain: readonly Node[], trust: Pick<ProxyTrust, 'isTrusted'>): number {
  let index = chain.length - 1;
  while (index > 0) {
    const node = chain[index]!;
    if (node.kind !== 'ip' || !trust.isTrusted(node.address)) break;
    index -= 1;
  }
  return index;
}

/** Short and printable: reasons reach the log and the 400 body. */
function shown(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

/** The client's hop is not an address (an element without `for=` is malformed with empty text). */
function unusableClient(header: string, node: Exclude<Node, { kind: 'ip' }>): { badRequest: string } {
  const what = node.kind === 'unknown' ? 'is "unknown"'
    : node.kind === 'obfuscated' ? `is an obfuscated name (${shown(node.name)})`
      : node.text === '' ? 'names no address' : `(${shown(node.text)}) is not an address`;
  return { badRequest: `${header} from a trusted proxy: the client's hop ${what}` };
}

const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::\d{1,5})?$/;

function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

/** What the proxy said, before checking: raw strings picked from the headers. */
interface Claims {
  client: Node | null;
  proto: string | null;
  host: string | null;
  port: string | null;
}

/** Forwarded (RFC 7239): one header says it all; proto/host from the element of the first trusted proxy. */
function claimsFromForwarded(raw: string, trust: ProxyTrust): Claims | { badRequest: string } {
  const elements = parseForwarded(raw);
  if (elements === null) return { badRequest: `Forwarded from a trusted proxy is malformed: ${shown(raw)}` };
  const claims: Claims = { client: null, proto: null, host: null, port: null };
  if (elements.length === 0) return claims;
  let first = elements.length - 1;
  // Without any for=, the proxy only speaks of proto/host; REMOTE_ADDR stays the peer.
  if (elements.some((element) => element.has('for'))) {
    const chain = elements.map((element): Node => {
      const value = element.get('for');
      return value === undefined ? { kind: 'malformed', text: '' } : parseNode(value);
    });
    first = findClientHop(chain, trust);
    const node = chain[first]!;
    if (node.kind !== 'ip') return unusableClient('Forwarded', node);
    claims.client = node;
  }
  // As waitress: the oldest trusted element that says it wins (the proxy the client spoke to).
  for (let index = elements.length - 1; index >= first; index -= 1) {
    claims.proto = elements[index]!.get('proto') ?? claims.proto;
    claims.host = elements[index]!.get('host') ?? claims.host;
  }
  return claims;
}

/** X-Forwarded-*: the client from the For walk; Proto/Host/Port lists aligned to its hop count. */
function claimsFromXForwarded(values: ForwardingValues, trust: ProxyTrust): Claims | { badRequest: string } {
  const honoured = trust.headers;
  const claims: Claims = { client: null, proto: null, host: null, port: null };
  let hops = 1;
  const forValue = honoured.has('x-forwarded-for') ? values['x-forwarded-for'] : undefined;
  if (forValue !== undefined) {
    const chain = listOf(forValue).map(parseNode);
    if (chain.length > 0) {
      const index = findClientHop(chain, trust);
      const node = chain[index]!;
      if (node.kind !== 'ip') return unusableClient('X-Forwarded-For', node);
      claims.client = node;
      hops = chain.length - index;
    }
  }
  const pick = (name: 'x-forwarded-proto' | 'x-forwarded-host' | 'x-forwarded-port'): string | null => {
    const value = honoured.has(name) ? values[name] : undefined;
    if (value === undefined) return null;
    const list = listOf(value);
    return list.length === 0 ? null : list[Math.max(0, list.length - hops)]!;
  };
  claims.proto = pick('x-forwarded-proto');
  claims.host = pick('x-forwarded-host');
  claims.port = pick('x-forwarded-port');
  return claims;
}

/**
 * The environ changes a trusted peer's forwarding headers ask for, or why they are refused.
 * Headers not in `trust.headers` are ignored here (environ.ts drops them).
 *
 * @param request the connection's own scheme and the Host header (for X-Forwarded-Port alone).
 */
export function resolveForwarding(values: ForwardingValues, trust: ProxyTrust, request: { scheme: 'http' | 'https'; host: string | undefined }): ForwardingResult {
  const useForwarded = trust.headers.has('forwarded');
  const claims = useForwarded
    ? (values.forwarded === undefined ? { client: null, proto: null, host: null, port: null } : claimsFromForwarded(values.forwarded, trust))
    : claimsFromXForwarded(values, trust);
  if ('badRequest' in claims) return claims;
  const header = (name: string): string => (useForwarded ? `Forwarded ${name}=` : `X-Forwarded-${name[0]!.toUpperCase()}${name.slice(1)}`);

  let scheme: 'http' | 'https' | null = null;
  if (claims.proto !== null) {
    const proto = claims.proto.toLowerCase();
    if (proto !== 'http' && proto !== 'https') return { badRequest: `${header('proto')} from a trusted proxy must be http or https, not ${shown(claims.proto)}` };
    scheme = proto;
  }
  if (claims.host !== null && !HOST.test(claims.host)) return { badRequest: `${header('host')} from a trusted proxy is not a host: ${shown(claims.host)}` };
  if (claims.port !== null && !(NUMERIC_PORT.test(claims.port) && Number(claims.port) >= 1 && Number(claims.port) <= 65535)) {
    return { badRequest: `X-Forwarded-Port from a trusted proxy is not a port: ${shown(claims.port)}` };
  }

  // A port given with the host wins over X-Forwarded-Port (waitress); a default port is left out.
  let host = claims.host;
  const base = host ?? request.host;
  if (claims.port !== null && base !== undefined && (host === null || hostWithoutPort(host) === host)) {
    const isDefault = claims.port === ((scheme ?? request.scheme) === 'https' ? '443' : '80');
    host = `${hostWithoutPort(base)}${isDefault ? '' : `:${claims.port}`}`;
  }

  const pairs: string[] = [];
  const client = claims.client?.kind === 'ip' ? claims.client : null;
  if (useForwarded) {
    if (values.forwarded !== undefined) pairs.push('HTTP_FORWARDED', values.forwarded);
  } else {
    // web2py's get_client() takes the FIRST X-Forwarded-For address, which the client wrote:
    // the application sees only the address resolved here, so get_client() agrees with REMOTE_ADDR.
    if (client !== null) pairs.push('HTTP_X_FORWARDED_FOR', client.address);
    if (scheme !== null) pairs.push('HTTP_X_FORWARDED_PROTO', scheme);
    if (claims.host !== null) pairs.push('HTTP_X_FORWARDED_HOST', claims.host);
    if (claims.port !== null) pairs.push('HTTP_X_FORWARDED_PORT', claims.port);
    const by = trust.headers.has('x-forwarded-by') ? values['x-forwarded-by'] : undefined;
    if (by !== undefined) pairs.push('HTTP_X_FORWARDED_BY', by);
  }
  return {
    remoteAddr: client?.address ?? null,
    remotePort: client === null ? null : client.port,
    scheme,
    host,
    pairs,
  };
}
