/**
 * @module Static files of web2py applications, served by the front without Python.
 *
 * `createStaticHandler` takes GET/HEAD requests whose URL web2py would answer from
 * `applications/<app>/static` (mapping in web2py-url.ts), resolves the file with realpath so a
 * symlink cannot lead out of that folder, and streams it with `send` (ETag, Last-Modified, 304 on
 * either validator, 206/416, HEAD). Multiple byte ranges (multipart/byteranges), which send
 * answers with the whole file, are added here. On top come web2py's own headers
 * (gluon/main.py, gluon/streamer.py), answers in web2py's error format, and precompressed `.br` /
 * `.gz` siblings chosen by `Accept-Encoding`. Small files served once are then answered from
 * memory (file-cache.ts) with the same headers, until they change.
 *
 * Whatever the front is not sure to answer as web2py would (an unknown application, a URL the
 * mapping passes) goes to Python: passing is always safe.
 */
import { createReadStream, realpathSync, statSync, type Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { join, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fresh from 'fresh';
import send from 'send';
import type { Logger } from '../../observability/log.js';
import { LogEvents } from '../../observability/events.js';
import { streamFileBody } from '../file-body.js';
import { FrontGuard } from '../guard.js';
import type { CachedFile, FileCache, FoundFile } from './file-cache.js';
import { mapStaticUrl, type StaticUrl } from './web2py-url.js';
import { isResponseGone } from '../response-gone.js';
import { countBody, REQUEST_ID_HEADER, requestIdOf } from '../request-id.js';

export interface StaticHandlerOptions {
  /** The web2py folder: files come from `<web2pyFolder>/applications/<app>/static`. */
  readonly web2pyFolder: string;
  readonly log: Logger;
  /** The in-memory cache of hot small files (file-cache.ts); one with maxBytes 0 is off. */
  readonly cache: FileCache;
  /** `Server` header of the answers (null: none). */
  readonly serverHeader?: string | null;
  /** The front's guard (guard.ts): the file streams' listeners run behind it. */
  readonly guard?: FrontGuard;
}

/** true: the request is taken (answered, or being answered); false: pass it to Python. */
export interface StaticHandler {
  (req: IncomingMessage, res: ServerResponse, pathInfo: string): boolean;
  /**
   * For an HTTP/2 stream answered without Node's compatibility layer (front/http2-static.ts): the
   * cached file a plain GET or HEAD of this path gets from memory, or null when the request must
   * go the usual way (not a static URL, not cached, a Range or a precondition to evaluate).
   */
  readonly cachedFor: (method: string, pathInfo: string, query: string, headers: IncomingHttpHeaders) => MemoryHit | null;
  /** For an HTTP/2 stream answered without the compatibility layer: true when the handler would leave this request to the application. */
  readonly leaves: (method: string, pathInfo: string, target: string) => boolean;
  /** answerOf, for front/http2-static.ts (which reaches this module only through a handler: it is imported only when static offload is on). */
  readonly answer: typeof answerOf;
}

/** A request the cache answers: the file, and the URL's facts that pick web2py's headers. */
export interface MemoryHit {
  readonly cached: CachedFile;
  readonly url: StaticUrl & { kind: 'file' };
}

/** What answering a MemoryHit sends: the status, the head as a flat name, value list, the body (null: none). */
export interface MemoryAnswer {
  readonly status: 200 | 304;
  readonly fields: (string | number)[];
  readonly body: Buffer | null;
}

/** gluon/main.py, for versioned URLs: `Cache-Control: max-age=315360000` and this Expires. */
const VERSIONED_MAX_AGE = 'max-age=315360000';
const VERSIONED_EXPIRES = 'Thu, 31 Dec 2037 23:59:59 GMT';
/** How long an application's static folder (or its absence) is trusted before a new realpath. */
const ROOT_TTL_MS = 5_000;
/** Applications remembered at once; scanners inventing app names cannot grow it further. */
const MAX_ROOTS = 256;
/** More ranges than this in one request: the whole file is sent instead (no range amplification). */
const MAX_RANGES = 64;
/** Precompressed siblings in order of preference on equal q; `web2py.css.gz` next to `web2py.css`. */
const ENCODINGS = [{ coding: 'br', suffix: '.br' }, { coding: 'gzip', suffix: '.gz' }] as const;

export function createStaticHandler(options: StaticHandlerOptions): StaticHandler {
  const { log } = options;
  const serverHeader = options.serverHeader ?? null;
  // Only once the request is taken: a request passed to Python gets its Server header there.
  const stampServer = (res: ServerResponse): void => {
    if (serverHeader !== null) res.setHeader('Server', serverHeader);
    const requestId = requestIdOf(res);
    if (requestId !== '') res.setHeader(REQUEST_ID_HEADER, requestId);
  };
  const roots = new StaticRoots(join(options.web2pyFolder, 'applications'));
  const urls = new MappedUrls();
  const { cache } = options;
  const guard = options.guard ?? new FrontGuard(log, { frontBug() {} });
  const cachedFor = (method: string, pathInfo: string, query: string, headers: IncomingHttpHeaders): MemoryHit | null => {
    if ((method !== 'GET' && method !== 'HEAD') || !cache.enabled || !isPlainRequest(headers)) return null;
    const mapped = urls.map(pathInfo, query);
    const { url } = mapped;
    if (url.kind !== 'file') return null;
    const root = roots.get(url.app);
    const cached = root === null ? undefined : cache.get(mapped.keyIn(root, url.file));
    return cached === undefined ? null : { cached, url };
  };
  /**
   * What handle() does with a request: null when it leaves it to the application (not GET/HEAD,
   * not a static URL, or an unknown application: web2py answers that, 404 today, exactly as it
   * would); else a URL it refuses (400), or a file of a known application with its root.
   */
  const claim = (method: string | undefined, pathInfo: string, target: string):
    (StaticUrl & { kind: 'refuse' }) | { kind: 'file'; url: StaticUrl & { kind: 'file' }; root: string; key: string } | null => {
    if (method !== 'GET' && method !== 'HEAD') return null;
    const remembered = urls.map(pathInfo, queryOf(target));
    const mapped = remembered.url;
    if (mapped.kind === 'pass') return null;
    if (mapped.kind === 'refuse') return mapped;
    const root = roots.get(mapped.app);
    return root === null ? null : { kind: 'file', url: mapped, root, key: remembered.keyIn(root, mapped.file) };
  };
  const handle = (req: IncomingMessage, res: ServerResponse, pathInfo: string): boolean => {
    const claimed = claim(req.method, pathInfo, req.url ?? '/');
    if (claimed === null) return false;
    if (claimed.kind === 'refuse') {
      stampServer(res);
      LogEvents.staticRefused(log, { status: 400, reason: claimed.reason, path: pathInfo, requestId: requestIdOf(res) });
      answerLikeWeb2py(res, 400, { web2pyError: 'invalid path', body: INVALID_REQUEST_BODY });
      return true;
    }
    const { url: mapped, root } = claimed;
    const cached = cache.enabled && isPlainRequest(req.headers) ? cache.get(claimed.key) : undefined;
    if (cached !== undefined) {
      answerFromMemory(req, res, answerOf(req.method, req.headers, { cached, url: mapped }, serverHeader, requestIdOf(res)));
      return true;
    }
    stampServer(res);
    const context = { log, guard, path: pathInfo, requestId: requestIdOf(res) };
    serveFile(req, res, root, mapped, cache, context).catch((error: unknown) => {
      LogEvents.staticFailed(log, { path: pathInfo, reason: String(error), requestId: context.requestId });
      if (res.headersSent) res.destroy();
      else answerLikeWeb2py(res, 500, {});
    });
    return true;
  };
  const leaves = (method: string, pathInfo: string, target: string): boolean => claim(method, pathInfo, target) === null;
  return Object.assign(handle, { cachedFor, leaves, answer: answerOf });
}

/** QUERY_STRING of a request target (web2py's `?attachment` test reads it). */
function queryOf(target: string): string {
  const question = target.indexOf('?');
  if (question < 0) return '';
  const hash = target.indexOf('#', question);
  return hash < 0 ? target.slice(question + 1) : target.slice(question + 1, hash);
}

/** URLs mapped at once; past it the memo starts over (scanners inventing URLs cannot grow it). */
const MAX_MAPPED_URLS = 1024;
/** A longer path or query is mapped each time (a memo entry stays small). */
const MAX_MAPPED_KEY = 512;

/**
 * mapStaticUrl's answers, remembered: it is a pure function of the path and the query, and its
 * regular expressions and decoding rounds were the largest item of this project's JavaScript per
 * cached static answer (`perf record` of the front: about 2.3 µs a request). Every answer is
 * remembered, refusals and passes too: the same input always gets the same one.
 */
class MappedUrls {
  readonly #memo = new Map<string, MappedUrl>();

  map(pathInfo: string, query: string): MappedUrl {
    if (pathInfo.length + query.length > MAX_MAPPED_KEY) return new MappedUrl(mapStaticUrl(pathInfo, query));
    // The path's length first: no path and query can give another pair's key.
    const key = `${pathInfo.length}:${pathInfo}${query}`;
    let mapped = this.#memo.get(key);
    if (mapped === undefined) {
      mapped = new MappedUrl(mapStaticUrl(pathInfo, query));
      if (this.#memo.size >= MAX_MAPPED_URLS) this.#memo.clear();
      this.#memo.set(key, mapped);
    }
    return mapped;
  }
}

/** A mapped URL and, for a file, its file cache key under the root last asked (one string kept, not built a request). */
class MappedUrl {
  #keyRoot: string | null = null;
  #key = '';

  constructor(readonly url: StaticUrl) {}

  /** cacheKey(root, file), `file` being this URL's own (url.file). */
  keyIn(root: string, file: string): string {
    if (this.#keyRoot !== root) {
      this.#key = cacheKey(root, file);
      this.#keyRoot = root;
    }
    return this.#key;
  }
}

/**
 * `applications/<app>/static` of each application, realpath'd, cached for ROOT_TTL_MS. The look-up
 * is synchronous because the handler must say at once whether it takes the request; it costs one
 * realpath(3) per application every few seconds.
 */
class StaticRoots {
  readonly #applications: string;
  readonly #entries = new Map<string, { root: string | null; checkedAt: number }>();

  constructor(applications: string) {
    this.#applications = applications;
  }

  get(app: string): string | null {
    const now = Date.now();
    const cached = this.#entries.get(app);
    if (cached !== undefined && now - cached.checkedAt < ROOT_TTL_MS) return cached.root;
    const root = this.#resolve(app);
    this.#entries.delete(app);
    if (this.#entries.size >= MAX_ROOTS) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(app, { root, checkedAt: now });
    return root;
  }

  #resolve(app: string): string | null {
    try {
      const root = realpathSync(join(this.#applications, app, 'static'));
      return statSync(root).isDirectory() ? root : null;
    } catch {
      return null;
    }
  }
}

type Resolved =
  | { readonly kind: 'file'; readonly path: string; readonly stats: Stats }
  | { readonly kind: 'missing' | 'outside' | 'denied' | 'directory' };

/** realpath + stat, and the real path must stay inside `root`: symlinks out of the folder are refused. */
async function resolveInside(root: string, candidate: string): Promise<Resolved> {
  let real: string;
  try {
    real = await realpath(candidate);
  } catch (error: unknown) {
    const code = (error as NodeJS.ErrnoException).code;
    return { kind: code === 'EACCES' || code === 'EPERM' ? 'denied' : 'missing' };
  }
  if (!real.startsWith(root + sep)) return { kind: 'outside' };
  let stats: Stats;
  try {
    stats = await stat(real);
  } catch {
    return { kind: 'missing' }; // removed between realpath and stat
  }
  if (stats.isDirectory()) return { kind: 'directory' };
  return stats.isFile() ? { kind: 'file', path: real, stats } : { kind: 'missing' };
}

const cacheKey = (root: string, file: string): string => `${root}\0${file}`;

/** What streaming a file needs besides the request: the log, the guard, the path for messages. */
interface StreamContext { readonly log: Logger; readonly guard: FrontGuard; readonly path: string; readonly requestId: string }

async function serveFile(
  req: IncomingMessage, res: ServerResponse, root: string, url: StaticUrl & { kind: 'file' }, cache: FileCache, context: StreamContext,
): Promise<void> {
  // url.file has no empty, `.` or `..` segment, so the join stays lexically under root.
  const candidate = join(root, url.file);
  const found = await resolveInside(root, candidate);
  switch (found.kind) {
    // streamer.py: EISDIR → 403 "file is a directory", EACCES → 403 "inaccessible file", else 404.
    case 'directory': return refuse(context, res, 403, { web2pyError: 'file is a directory' });
    case 'denied': return refuse(context, res, 403, { web2pyError: 'inaccessible file' });
    case 'missing': case 'outside': return refuse(context, res, 404, { web2pyError: 'invalid file' });
    case 'file': break;
  }
  let served = found.path;
  const precompressed = await choosePrecompressed(req, root, candidate, found.stats);
  if (precompressed.vary) res.setHeader('Vary', 'Accept-Encoding');
  if (precompressed.chosen !== null) {
    res.setHeader('Content-Encoding', precompressed.chosen.coding);
    // streamer.py keeps the original's Last-Modified for its .gz (send sets it only when unset,
    // and checks If-Modified-Since against it); the ETag stays the sibling's own.
    res.setHeader('Last-Modified', found.stats.mtime.toUTCString());
    served = precompressed.chosen.path;
  }
  setWeb2pyHeaders(res, url);
  streamWithSend(req, res, served, candidate, context);
  if (cache.admits(found.stats.size)) {
    const file = { path: found.path, stats: found.stats };
    const { siblings } = precompressed;
    cache.fill({ key: cacheKey(root, url.file), namedAs: candidate, file, siblings, recheck: () => isUnchanged(root, candidate, file, siblings) });
  }
}

/** The cache's recheck (file-cache.ts): the same lookups as serveFile, and every answer the same as when read. */
async function isUnchanged(root: string, candidate: string, file: FoundFile, siblings: readonly Sibling[]): Promise<boolean> {
  const now = await resolveInside(root, candidate);
  if (now.kind !== 'file' || !isSameFile(now, file)) return false;
  const nowSiblings = await findSiblings(root, candidate, now.stats);
  return nowSiblings.length === siblings.length && nowSiblings.every((sibling, index) => {
    const then = siblings[index]!;
    return sibling.coding === then.coding && sibling.fresh === then.fresh && isSameFile(sibling.file, then.file);
  });
}

/** The same real path and, as far as stat can tell, the same content (any write moves ctime). */
function isSameFile(a: FoundFile, b: FoundFile): boolean {
  return a.path === b.path && a.stats.dev === b.stats.dev && a.stats.ino === b.stats.ino && a.stats.size === b.stats.size
    && a.stats.mtimeMs === b.stats.mtimeMs && a.stats.ctimeMs === b.stats.ctimeMs;
}

/** Every precompressed sibling inside the static folder, and whether choosePrecompressed would take it. */
async function findSiblings(root: string, candidate: string, original: Stats): Promise<Sibling[]> {
  const found: Sibling[] = [];
  for (const { coding, suffix } of ENCODINGS) {
    const sibling = await resolveInside(root, candidate + suffix);
    if (sibling.kind === 'file') found.push({ coding, file: { path: sibling.path, stats: sibling.stats }, fresh: sibling.stats.mtimeMs >= original.mtimeMs });
  }
  return found;
}

/**
 * The answer send and serveFile would give, from memory: same headers in the same order, 304 on
 * either validator. `requestId` '' for none.
 */
export function answerOf(method: string | undefined, headers: IncomingHttpHeaders, hit: MemoryHit, serverHeader: string | null, requestId: string): MemoryAnswer {
  const { cached, url } = hit;
  let chosen = cached.identity;
  let coding: string | null = null;
  if (cached.encoded.size > 0) {
    for (const accepted of acceptedCodings(headers['accept-encoding'])) {
      const body = cached.encoded.get(accepted);
      if (body !== undefined) {
        chosen = body;
        coding = accepted;
        break;
      }
    }
  }
  // A flat list (Node's HTTP/1 fast path: no per-header setHeader), in the order the disk answer
  // gets them from serveFile and send; a sibling's Last-Modified comes with its coding.
  const isNotModified = (headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined)
    && fresh(headers, { etag: chosen.etag, 'last-modified': chosen.lastModified });
  const fields: (string | number)[] = [];
  if (serverHeader !== null) fields.push('Server', serverHeader);
  if (requestId !== '') fields.push(REQUEST_ID_HEADER, requestId);
  if (cached.vary) fields.push('Vary', 'Accept-Encoding');
  // send's notModified(): the content fields go, the validators stay.
  if (coding !== null) {
    if (!isNotModified) fields.push('Content-Encoding', coding);
    fields.push('Last-Modified', chosen.lastModified);
  }
  fields.push(...web2pyHeaderPairs(url), 'Accept-Ranges', 'bytes');
  if (coding === null) fields.push('Last-Modified', chosen.lastModified);
  fields.push('ETag', chosen.etag);
  if (isNotModified) return { status: 304, fields, body: null };
  fields.push('Content-Type', cached.contentType, 'Content-Length', chosen.body.length);
  return { status: 200, fields, body: method === 'HEAD' ? null : chosen.body };
}

function answerFromMemory(req: IncomingMessage, res: ServerResponse, answer: MemoryAnswer): void {
  writeHeadOnce(req, res, answer.status, answer.fields);
  if (answer.body === null) {
    res.end();
  } else {
    countBody(res, answer.body.length);
    res.end(answer.body);
  }
}

/**
 * The head of an answer from memory, each name once. HTTP/1: the flat list, Node's fast path.
 * HTTP/2: an object, because Node's compatibility writeHead, given a list, first removes each
 * name (validated, trimmed, lower-cased) in case setHeader set it, then appends it.
 */
function writeHeadOnce(req: IncomingMessage, res: ServerResponse, status: number, fields: (string | number)[]): void {
  if (req.httpVersionMajor !== 2) {
    res.writeHead(status, fields as string[]);
    return;
  }
  const headers: Record<string, string | number> = {};
  for (let i = 0; i < fields.length; i += 2) headers[fields[i] as string] = fields[i + 1]!;
  res.writeHead(status, headers);
}

/** Ranges and If-Match / If-Unmodified-Since are rare: they are answered from disk, by send. */
function isPlainRequest(headers: IncomingHttpHeaders): boolean {
  return headers.range === undefined && headers['if-match'] === undefined && headers['if-unmodified-since'] === undefined;
}

/**
 * gluon/main.py (`if eget("QUERY_STRING", "").startswith("attachment")`, `if version:`) and the
 * defaults of gluon/streamer.py (`headers.setdefault("Pragma", "cache")`,
 * `headers.setdefault("Cache-Control", "private")`). web2py's response also says X-Powered-By.
 */
function setWeb2pyHeaders(res: ServerResponse, url: StaticUrl & { kind: 'file' }): void {
  const pairs = web2pyHeaderPairs(url);
  for (let i = 0; i < pairs.length; i += 2) res.setHeader(pairs[i]!, pairs[i + 1]!);
}

/** streamer.py's headers for this URL, as a flat name, value list. */
function web2pyHeaderPairs(url: StaticUrl & { kind: 'file' }): string[] {
  const pairs = ['X-Powered-By', 'web2py'];
  if (url.attachment) pairs.push('Content-Disposition', 'attachment');
  if (url.version !== null) pairs.push('Cache-Control', VERSIONED_MAX_AGE, 'Expires', VERSIONED_EXPIRES);
  else pairs.push('Cache-Control', 'private');
  pairs.push('Pragma', 'cache');
  return pairs;
}

interface Precompressed {
  readonly chosen: { readonly coding: string; readonly path: string } | null;
  /** A sibling exists: the answer depends on Accept-Encoding. */
  readonly vary: boolean;
  readonly siblings: readonly Sibling[];
}

interface Sibling { readonly coding: string; readonly file: { readonly path: string; readonly stats: Stats }; readonly fresh: boolean }

/**
 * streamer.py serves `static_file + ".gz"` when the client accepts gzip, the sibling is a file,
 * `os.path.getmtime(gzipped) >= modified`, and the answer is not a 206; the same rule here for
 * `.br` too, and the sibling must also resolve inside the static folder. When a sibling exists the
 * answer says `Vary: Accept-Encoding` whatever the client accepts (shared caches must not keep
 * one representation for all).
 */
async function choosePrecompressed(req: IncomingMessage, root: string, candidate: string, original: Stats): Promise<Precompressed> {
  const siblings = await findSiblings(root, candidate, original);
  if (siblings.length === 0) return { chosen: null, vary: false, siblings };
  // A range is of the file itself (streamer.py: no `.gz` for a 206).
  if (req.headers.range === undefined) {
    for (const coding of acceptedCodings(req.headers['accept-encoding'])) {
      const sibling = siblings.find((found) => found.coding === coding && found.fresh);
      if (sibling !== undefined) return { chosen: { coding, path: sibling.file.path }, vary: true, siblings };
    }
  }
  return { chosen: null, vary: true, siblings };
}

/** `br` and `gzip` as the client accepts them (q > 0, `*` included), best first, `br` first on a tie. */
export function acceptedCodings(header: string | undefined): string[] {
  if (header === undefined || header === '') return [];
  const quality = new Map<string, number>();
  for (const item of header.split(',')) {
    const [name = '', ...params] = item.split(';').map((part) => part.trim().toLowerCase());
    const q = params.find((param) => param.startsWith('q='));
    const value = q === undefined ? 1 : Number(q.slice(2));
    quality.set(name, Number.isFinite(value) ? value : 0);
  }
  const qOf = (coding: string): number => quality.get(coding) ?? quality.get('*') ?? 0;
  return ENCODINGS.map((encoding) => encoding.coding)
    .filter((coding) => qOf(coding) > 0)
    .sort((a, b) => qOf(b) - qOf(a));
}

/**
 * send does the HTTP caching and single-range parts. Two of its steps are replaced on this one
 * stream: `type` names the type after the URL's file (not `.gz`), as web2py's contenttype() does,
 * and `stream` answers several ranges with multipart/byteranges, where send sends the whole file.
 */
function streamWithSend(req: IncomingMessage, res: ServerResponse, served: string, named: string, context: StreamContext): void {
  const stream = send(req, encodeForSend(served), {
    acceptRanges: true, cacheControl: false, dotfiles: 'allow', etag: true, index: false, lastModified: true,
  });
  const sendType = stream.type.bind(stream);
  stream.type = () => sendType(named);
  stream.stream = (path: string, options?: object) => {
    const { start = 0, end = 0 } = (options ?? {}) as { start?: number; end?: number };
    const size = end - start + 1;
    const ranges = stream.isRangeFresh() ? parseByteRanges(req.headers.range, size) : null;
    if (ranges === null || ranges.length < 2) streamCounted(req, res, path, start, end, context);
    else void sendMultipart(res, path, size, ranges, context);
  };
  // send pipes the file without destroying it when the response closes first (an HTTP/2 stream
  // reset, which its on-finished does not always see): its descriptor is closed here.
  stream.on('stream', (file: Readable) => {
    if (isResponseGone(res)) file.destroy();
    else res.once('close', () => file.destroy());
  });
  stream.on('directory', () => refuse(context, res, 403, { web2pyError: 'file is a directory' }));
  stream.on('error', (error: SendError) => answerSendError(res, error, context));
  stream.pipe(res);
}

/**
 * send's own `stream` pipes the file: a file that shrank after send read its size would end the
 * answer short of its Content-Length, and the next answer on the kept-alive connection would be
 * read as the rest of this one. Counted instead (file-body.ts): short means cut, never reused.
 */
function streamCounted(req: IncomingMessage, res: ServerResponse, path: string, start: number, end: number, context: StreamContext): void {
  const promised = Number(res.getHeader('Content-Length') ?? end - start + 1);
  const file = createReadStream(path, { start, end });
  streamFileBody(file, res, promised, context.guard, {
    onShort: (sent, expected) => logShortFile(req, context, `the file ended after ${sent} of ${expected} bytes: it shrank while being sent`),
    onError: (error: SendError) => answerSendError(res, error, context),
  });
}

function logShortFile(req: IncomingMessage, context: StreamContext, reason: string): void {
  LogEvents.responseCut(context.log, { reqId: 0, requestId: context.requestId, method: req.method ?? 'GET', path: context.path, reason });
}

/** send takes a URL-encoded path (it decodes it): each segment of the real path, encoded. */
function encodeForSend(path: string): string {
  return path.split(sep).map(encodeURIComponent).join('/');
}

interface SendError extends Error {
  status?: number;
  code?: string;
  headers?: Record<string, string>;
}

/** send's errors in web2py's format (a race with a deleted file, 412, 416, an unreadable file). */
function answerSendError(res: ServerResponse, error: SendError, context: StreamContext): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = error.status ?? 500;
  if (error.code === 'EACCES' || error.code === 'EPERM') refuse(context, res, 403, { web2pyError: 'inaccessible file' });
  else if (status === 404) refuse(context, res, 404, { web2pyError: 'invalid file' });
  // streamer.py: `raise HTTP(416, **headers)`, the file's headers kept, Content-Range added.
  else if (status === 416) refuse(context, res, 416, { headers: error.headers ?? {}, keepHeaders: true }, 'no satisfiable range');
  else if (status < 500) refuse(context, res, status, { headers: error.headers ?? {} }, error.message);
  else answerLikeWeb2py(res, status, { headers: error.headers ?? {} });
}

/** A 4xx the front answers for a static file: logged at debug with its reason, then answered as web2py does. */
function refuse(context: StreamContext, res: ServerResponse, status: number, answer: WebError, reason?: string): void {
  LogEvents.staticRefused(context.log, { status, reason: reason ?? answer.web2pyError ?? String(status), path: context.path, requestId: context.requestId });
  answerLikeWeb2py(res, status, answer);
}

export interface ByteRange { readonly start: number; readonly end: number }

/**
 * `bytes=a-b, c-, -n` → satisfiable ranges, overlapping and adjacent ones merged, in order; null
 * when there is no usable Range header (then the whole file is the answer). send has already
 * answered 416 when none is satisfiable, with the same rules (range-parser's).
 */
export function parseByteRanges(header: string | undefined, size: number): ByteRange[] | null {
  const match = header === undefined ? null : /^\s*bytes\s*=(.*)$/i.exec(header);
  if (match === null) return null;
  const specs = match[1]!.split(',');
  if (specs.length > MAX_RANGES) return null;
  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const parts = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(spec);
    if (parts === null || (parts[1] === '' && parts[2] === '')) return null;
    const range = parts[1] === ''
      ? { start: Math.max(size - Number(parts[2]), 0), end: size - 1 }
      : { start: Number(parts[1]), end: parts[2] === '' ? size - 1 : Math.min(Number(parts[2]), size - 1) };
    if (range.start <= range.end && range.start < size) ranges.push(range);
  }
  ranges.sort((a, b) => a.start - b.start);
  const merged: ByteRange[] = [];
  for (const range of ranges) {
    const last = merged.at(-1);
    if (last !== undefined && range.start <= last.end + 1) merged[merged.length - 1] = { start: last.start, end: Math.max(last.end, range.end) };
    else merged.push(range);
  }
  return merged.length === 0 ? null : merged;
}

/** 206 multipart/byteranges (RFC 9110 §14.6): each part with its Content-Type and Content-Range. */
async function sendMultipart(res: ServerResponse, path: string, size: number, ranges: ByteRange[], context: StreamContext): Promise<void> {
  const boundary = randomBytes(16).toString('hex');
  const type = String(res.getHeader('Content-Type') ?? 'application/octet-stream');
  const heads = ranges.map((range, index) => Buffer.from(`${index === 0 ? '' : '\r\n'}--${boundary}\r\n`
    + `Content-Type: ${type}\r\nContent-Range: bytes ${range.start}-${range.end}/${size}\r\n\r\n`));
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const length = heads.reduce((sum, head) => sum + head.length, tail.length)
    + ranges.reduce((sum, range) => sum + range.end - range.start + 1, 0);
  res.statusCode = 206;
  res.setHeader('Content-Type', `multipart/byteranges; boundary=${boundary}`);
  res.setHeader('Content-Length', length);
  try {
    for (const [index, range] of ranges.entries()) {
      if (isResponseGone(res)) return; // reset between parts: open no more files for it
      res.write(heads[index]);
      const file = createReadStream(path, range);
      await pipeline(file, res, { end: false });
      // A file that shrank meanwhile: the parts would be short of the Content-Length.
      if (file.bytesRead < range.end - range.start + 1) {
        logShortFile(res.req, context, `the file ended after ${file.bytesRead} of the ${range.end - range.start + 1} bytes of a range: it shrank while being sent`);
        res.destroy();
        return;
      }
    }
    res.end(tail);
  } catch {
    res.destroy();
  }
}

const INVALID_REQUEST_BODY = '<html><body><h1>invalid request</h1></body></html>';

/** gluon/http.py `defined_status`: web2py's reason phrases, upper case. */
const WEB2PY_REASONS: Readonly<Record<number, string>> = {
  400: 'BAD REQUEST', 403: 'FORBIDDEN', 404: 'NOT FOUND', 412: 'PRECONDITION FAILED',
  416: 'REQUESTED RANGE NOT SATISFIABLE', 500: 'INTERNAL SERVER ERROR',
};

interface WebError {
  /** gluon's `web2py_error=` keyword, sent as a `web2py_error` header. */
  readonly web2pyError?: string;
  /** Default: the status line itself, as `HTTP.to` does for a 4xx without a body. */
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Keep the headers already set for the file (web2py's 416 carries them). */
  readonly keepHeaders?: boolean;
}

/**
 * An error as gluon/http.py `HTTP.to` writes it: `web2py_error` header when given, Content-Type
 * `text/html; charset=UTF-8`, and for 4xx without a body the status line itself as the body
 * (`404 NOT FOUND`). Headers set earlier for the file are dropped unless `keepHeaders`.
 */
function answerLikeWeb2py(res: ServerResponse, status: number, answer: WebError): void {
  // The request's id stays: the answer and the log lines must agree (request-id.ts).
  if (answer.keepHeaders !== true) for (const name of res.getHeaderNames()) if (name !== 'x-request-id') res.removeHeader(name);
  const reason = WEB2PY_REASONS[status] ?? 'UNKNOWN ERROR';
  const body = Buffer.from(answer.body ?? `${status} ${reason}`);
  res.statusCode = status;
  if (res.req.httpVersionMajor !== 2) res.statusMessage = reason; // HTTP/2 has no reason phrase
  if (answer.web2pyError !== undefined) res.setHeader('web2py_error', answer.web2pyError);
  for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
  if (!res.hasHeader('Content-Type')) res.setHeader('Content-Type', 'text/html; charset=UTF-8');
  res.setHeader('Content-Length', body.length);
  res.end(body);
}
