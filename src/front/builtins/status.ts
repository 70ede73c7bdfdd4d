/**
 * @module GET /status (the live page), /status.json (its data) and /status/assets/* (its files).
 *
 * Who may see it: a loopback client (as resolved through a trusted proxy, so the world behind a
 * local nginx is not loopback), or anyone presenting `--status-token` (as `Authorization: Bearer
 * TOKEN` or `?token=TOKEN`). A request with a wrong token gets 401; one with none from elsewhere
 * is an ordinary application path, as /metrics is. The token is compared in constant time (both
 * sides hashed first, so neither its length nor its bytes leak through timing) and never logged.
 *
 * The page's files, uPlot's included, are read once at start and served from memory: no CDN,
 * it works offline.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import { isLoopback } from './metrics.js';

export const STATUS_PATH = '/status';
export const STATUS_JSON_PATH = '/status.json';
const ASSETS_PREFIX = '/status/assets/';

const pageFolder = fileURLToPath(new URL('../../../assets/status/', import.meta.url));
const require = createRequire(import.meta.url);

interface Asset { body: Buffer; type: string }

function loadAssets(): Map<string, Asset> {
  const own = (name: string, type: string): [string, Asset] => [name, { body: readFileSync(pageFolder + name), type }];
  const uplot = (name: string, type: string): [string, Asset] => [name, { body: readFileSync(require.resolve(`uplot/dist/${name}`)), type }];
  return new Map([
    own('status.js', 'text/javascript; charset=utf-8'),
    own('status.css', 'text/css; charset=utf-8'),
    uplot('uPlot.iife.min.js', 'text/javascript; charset=utf-8'),
    uplot('uPlot.min.css', 'text/css; charset=utf-8'),
  ]);
}

/** The page may run its own scripts and styles and fetch from this origin, nothing else. */
const SECURITY_HEADERS = [
  'Content-Security-Policy', "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options', 'nosniff',
  'Referrer-Policy', 'no-referrer',
  'Cache-Control', 'no-store',
];

export type StatusAccess = 'allowed' | 'refused' | 'not-ours';

export class StatusPage {
  private readonly assets = loadAssets();
  private readonly html = readFileSync(`${pageFolder}status.html`);
  private readonly tokenDigest: Buffer | null;

  constructor(token: string | null, private readonly snapshot: () => Promise<string | null>) {
    this.tokenDigest = token === null ? null : digest(token);
  }

  /** Is `path` (PATH_INFO, no query) one of the page's? Cheap: the hot path asks it of every request. */
  static owns(path: string): boolean {
    return path === STATUS_PATH || path === STATUS_JSON_PATH || path.startsWith(ASSETS_PREFIX);
  }

  /** Loopback, or the right token: allowed; a wrong token: refused; no token from elsewhere: the app's path. */
  access(remoteAddr: string, headers: IncomingHttpHeaders, query: string): StatusAccess {
    // Without --status-token a `token` means nothing here: it may be the application's own.
    const given = this.tokenDigest === null ? null : presentedToken(headers, query);
    if (given !== null) {
      if (timingSafeEqual(digest(given), this.tokenDigest!)) return 'allowed';
      return isLoopback(remoteAddr) ? 'allowed' : 'refused';
    }
    return isLoopback(remoteAddr) ? 'allowed' : 'not-ours';
  }

  answer(path: string, res: ServerResponse): void {
    if (path === STATUS_PATH) {
      send(res, 200, 'text/html; charset=utf-8', this.html);
      return;
    }
    if (path === STATUS_JSON_PATH) {
      const unavailable = (): void => send(res, 503, 'text/plain; charset=utf-8', Buffer.from('status unavailable\n'));
      this.snapshot().then((json) => (json === null ? unavailable() : send(res, 200, 'application/json', Buffer.from(json))), unavailable);
      return;
    }
    const asset = this.assets.get(path.slice(ASSETS_PREFIX.length));
    if (asset === undefined) send(res, 404, 'text/plain; charset=utf-8', Buffer.from('Not Found\n'));
    else send(res, 200, asset.type, asset.body);
  }

  refuse(res: ServerResponse): void {
    res.writeHead(401, [...SECURITY_HEADERS, 'Content-Type', 'text/plain; charset=utf-8', 'WWW-Authenticate', 'Bearer realm="status"', 'Content-Length', '13']);
    res.end('Unauthorized\n');
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** `Authorization: Bearer TOKEN`, else `token=` in the query; null when neither is there. */
function presentedToken(headers: IncomingHttpHeaders, query: string): string | null {
  const authorization = headers.authorization;
  if (typeof authorization === 'string' && /^Bearer /i.test(authorization)) return authorization.slice(7).trim();
  if (query === '') return null;
  const value = new URLSearchParams(query).get('token');
  return value === null || value === '' ? null : value;
}

function send(res: ServerResponse, status: number, type: string, body: Buffer): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, [...SECURITY_HEADERS, 'Content-Type', type, 'Content-Length', String(body.length)]);
  res.end(body);
}
