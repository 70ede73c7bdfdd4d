/**
 * HTTP/1.1 cases: a valid request, then structural mutations (version, method, target, headers
 * near and past the limits, framing, expectations, upgrades, pipelining), then byte mutations,
 * then random write boundaries and maybe a half-close.
 */
import type { Rng } from './prng.js';
import { splitAt, type Case, type Transport } from './case.js';
import { preface } from './gen-h2.js';

/** The server's limits the mutations aim at (src/config/settings.ts defaults). */
export const LIMITS = { maxRequestLine: 8190, maxHeaderSize: 16384, maxHeaders: 100 } as const;

export interface TargetPaths {
  /** Paths the application answers (the fixture's routes, static files). */
  paths: readonly string[];
}

interface Req {
  method: string;
  target: string;
  version: string;
  headers: [string, string][];
  body: Buffer;
  /** Raw bytes to send after the head instead of `body` (chunked bodies, garbage). */
  rawBody?: Buffer;
  /** Replaces the request line entirely. */
  rawLine?: string;
  /** Line ending used in the head. */
  eol: string;
}

const VERSIONS = ['HTTP/0.9', 'HTTP/1.0', 'HTTP/1.2', 'HTTP/2.0', 'HTTP/2', 'HTTP/3', 'HTTP/3.0', 'HTTP/1.1 ', 'HTTP/11',
  'http/1.1', 'HTTP/1.1x', '', 'HTTP/', 'HTTP/1.', 'HTTP/9.9', 'HTTP/1.01', 'HTTP/01.1', 'HTTP/1.1\t', 'HTTPS/1.1', 'HTTP/-1.1',
  'HTTP/1.\u00ff', 'HTTP/4294967297.1', 'ICE/1.0', 'RTSP/1.0', 'PRI'];
const METHODS = ['GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'PATCH', 'CONNECT', 'PRI', 'get', 'Get', 'FOO',
  'M-SEARCH', 'PROPFIND', 'MKCOL', 'SOURCE', 'QUERY', 'G\u00c9T', 'GET\0', '', ' GET', 'GE T', 'ACL', 'LINK', 'PURGE'];

/** Latin-1 text of arbitrary bytes (the generator builds heads as latin-1 strings). */
function rawText(rng: Rng, n: number, lo = 0, hi = 255): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(rng.range(lo, hi));
  return s;
}

function baseRequest(rng: Rng, paths: readonly string[]): Req {
  const method = rng.pick(['GET', 'GET', 'GET', 'POST', 'HEAD', 'PUT']);
  const body = method === 'POST' || method === 'PUT' ? Buffer.from(rawText(rng, rng.range(0, 40), 32, 126), 'latin1') : Buffer.alloc(0);
  const headers: [string, string][] = [['Host', 'localhost']];
  if (rng.chance(0.3)) headers.push(['User-Agent', 'fuzz/1']);
  if (rng.chance(0.2)) headers.push(['Accept-Encoding', rng.pick(['gzip', 'br', 'gzip, br', 'identity;q=0', '*'])]);
  if (rng.chance(0.1)) headers.push(['Range', rng.pick(['bytes=0-1', 'bytes=-5', 'bytes=1-0', 'bytes=0-1,2-3,0-', 'bytes=99999999999999999999-'])]);
  if (rng.chance(0.1)) headers.push(['If-None-Match', rng.pick(['*', '"x"', 'W/"x"', ''])]);
  if (body.length > 0 || method === 'POST') headers.push(['Content-Length', String(body.length)]);
  return { method, target: rng.pick(paths), version: 'HTTP/1.1', headers, body, eol: '\r\n' };
}

function longTarget(rng: Rng, method: string, version: string): string {
  const lineLen = rng.near(LIMITS.maxRequestLine);
  const n = Math.max(1, lineLen - method.length - version.length - 2);
  return '/' + 'a'.repeat(n - 1);
}

function chunkedBody(rng: Rng): Buffer {
  let s = '';
  const pieces = rng.range(0, 4);
  for (let i = 0; i < pieces; i++) {
    const data = rawText(rng, rng.range(1, 20), 32, 126);
    const size = rng.chance(0.7) ? data.length.toString(16) : rng.pick([
      'ffffffffffffffff', '1ffffffffffffffff', '-1', '0x5', ' 5', '5 ', '+5', 'FFFFFFFF', '7fffffff', '80000000', '', 'g', '00000000000000000001',
      data.length.toString(16).toUpperCase(), '0'.repeat(rng.range(1, 300)) + data.length.toString(16)]);
    const ext = rng.chance(0.2) ? rng.pick([';a=b', ';a', ';' + 'x'.repeat(rng.range(100, 20000)), ';a="b\\"c"', '; a = b', ';\0', ';a=\r']) : '';
    const crlf = rng.chance(0.1) ? rng.pick(['', '\n', '\r', '\r\r\n', 'XX']) : '\r\n';
    s += `${size}${ext}\r\n${data}${crlf}`;
  }
  if (rng.chance(0.9)) {
    s += rng.pick(['0', '0', '0', '00', '0;ext=1', '000000000000000']) + '\r\n';
    if (rng.chance(0.3)) {
      const trailers = rng.range(1, 3);
      for (let i = 0; i < trailers; i++) {
        s += rng.pick(['X-Trailer: v', 'Content-Length: 5', 'Transfer-Encoding: chunked', 'Host: evil', ': novalue', 'Bad Name: v', 'X: ' + 'v'.repeat(rng.range(100, 20000)), ' folded', 'X-T: a\r\n b']) + '\r\n';
      }
    }
    if (rng.chance(0.9)) s += '\r\n';
  }
  return Buffer.from(s, 'latin1');
}

type Mutator = (rng: Rng, req: Req, notes: string[], paths: readonly string[]) => void;

const mutators: Record<string, Mutator> = {
  version(rng, req, notes) {
    req.version = rng.chance(0.9) ? rng.pick(VERSIONS) : rawText(rng, rng.range(1, 12));
    notes.push(`version ${JSON.stringify(req.version)}`);
  },
  method(rng, req, notes) {
    const kind = rng.int(4);
    if (kind === 0) req.method = 'A'.repeat(rng.pick([16, 32, 64, 256, 1024, rng.near(LIMITS.maxRequestLine)]));
    else if (kind === 1) { req.method = 'CONNECT'; req.target = rng.pick(['localhost:443', 'a:80', '127.0.0.1:1', '[::1]:80', 'a:', ':80', 'a:99999', 'localhost']); }
    else if (kind === 2) req.method = rawText(rng, rng.range(1, 10), 33, 255);
    else req.method = rng.pick(METHODS);
    notes.push(`method ${JSON.stringify(req.method.slice(0, 20))}${req.method.length > 20 ? `x${req.method.length}` : ''}`);
  },
  target(rng, req, notes) {
    const kind = rng.int(11);
    const forms: (() => string)[] = [
      () => rng.pick(['http://localhost/', 'http://a/b?c', 'https://localhost:443/x', 'http://localhost:99999/', 'HTTP://LOCALHOST/', 'http://user:pw@localhost/', 'ftp://a/', 'http:///x', 'http://[::1/']),
      () => rng.pick(['localhost:80', 'a:443', '[::1]:8080']),
      () => '*',
      () => longTarget(rng, req.method, req.version),
      () => '/' + Array.from({ length: rng.range(1, 30) }, () => rng.pick(['%', '%%', '%zz', '%0', '%00', '%ff', '%c0%ae', '%2e%2e', '%25', '%u0041', '%C3%A9', '%ED%A0%80'])).join(''),
      () => '/' + rawText(rng, rng.range(1, 30), 0x80, 0xff),
      () => rng.pick(['', '/', '//', '/../../etc/passwd', '/welcome/static/../../../etc/passwd', '/welcome/static/%2e%2e/%2e%2e/x', '/a#frag', '/a?', '/?' + '&'.repeat(500), '/welcome/static/', '/welcome/static/css/web2py.css/', '/welcome/static/_1.2.3/css/web2py.css', '/\\..\\x', '/welcome/static/css/web2py.css%00.png', '/a b', '/a\tb']),
      () => '/' + rawText(rng, rng.range(1, 40), 0, 255),
      () => rng.pick(['/welcome/static/css/web2py.css', '/welcome/static/js/app.js']) + rng.pick(['?', '?a=b', '%00', ';x', '/..', '.gz', '.br', '~']),
      () => '/?' + 'q='.repeat(rng.range(1, 3000)),
      () => rng.pick(['/env', '/body', '/welcome/default/index']) + '?' + rawText(rng, rng.range(1, 30), 33, 126),
    ];
    req.target = forms[kind]!();
    notes.push(`target#${kind}`);
  },
  headerNearLimits(rng, req, notes) {
    const kind = rng.int(6);
    if (kind === 0) {
      // The whole head near --max-header-size: one big value.
      const used = req.method.length + req.target.length + req.version.length + 4 + req.headers.reduce((n, [k, v]) => n + k.length + v.length + 4, 0) + 2;
      const n = Math.max(0, rng.near(LIMITS.maxHeaderSize) - used - 'X-Big: '.length - 2);
      req.headers.push(['X-Big', 'v'.repeat(n)]);
    } else if (kind === 1) {
      // The count near --max-headers.
      const total = rng.near(LIMITS.maxHeaders);
      for (let i = req.headers.length; i < total; i++) req.headers.push([`X-H${i}`, 'v']);
    } else if (kind === 2) {
      req.headers.push(['X-' + 'n'.repeat(rng.near(rng.pick([LIMITS.maxHeaderSize, 8192, 4096, 256]))), 'v']);
    } else if (kind === 3) {
      // Many headers with the same name.
      const total = rng.near(LIMITS.maxHeaders);
      for (let i = 0; i < total; i++) req.headers.push([rng.pick(['Cookie', 'X-Same', 'Accept', 'Host']), 'v' + i]);
    } else if (kind === 4) {
      req.headers.push([rng.pick(['Cookie', 'Authorization', 'Referer', 'X-Forwarded-For']), 'a'.repeat(rng.pick([LIMITS.maxRequestLine, LIMITS.maxHeaderSize - 100, 65536, 100000]))]);
    } else {
      // Many tiny headers under the count limit but over the size.
      for (let i = 0; i < 99; i++) req.headers.push([`X-${i}`, 'x'.repeat(170)]);
    }
    notes.push(`limits#${kind}`);
  },
  headerSyntax(rng, req, notes) {
    const bad: [string, string][] = [
      ['', 'empty-name'], ['Bad Name', 'v'], ['Bad\tName', 'v'], ['X:Y', 'v'], ['X-Ctl', 'a\x01b'], ['X-Nul', 'a\0b'], ['X-CR', 'a\rb'],
      ['X-LF', 'a\nb'], ['X-Del', 'a\x7fb'], ['X-High', '\u00e9\u00ff\u0080'], ['X-Utf8', '\u00c3\u00a9'], [' Leading', 'space'],
      ['Trailing ', 'space'], ['X-Empty', ''], ['X-Spaces', '   '], ['\u00e9', 'v'], ['X\0', 'v'], ['(', ')'], ['Host', ''],
      ['Connection', rng.pick(['close', 'keep-alive', 'upgrade', 'close, keep-alive', 'TE', 'Host', 'x'.repeat(300)])],
      ['TE', rng.pick(['trailers', 'gzip', 'chunked'])], ['Keep-Alive', 'timeout=0'], ['Proxy-Connection', 'keep-alive'],
      ['Content-Type', rng.pick(['multipart/form-data; boundary=', 'multipart/form-data; boundary=' + 'b'.repeat(100), 'text/plain; charset=\u00ff', 'application/x-www-form-urlencoded'])],
      ['X-Forwarded-For', rng.pick(['1.2.3.4', 'garbage', '::1, 127.0.0.1', ''])], ['Forwarded', 'for="[::1]";proto=https'],
      ['Cookie', rng.pick(['a=b; a=c', '=', ';;;;', '\u00ff=\u00ff'])], ['Authorization', 'Basic !!!'],
    ];
    const count = rng.range(1, 3);
    for (let i = 0; i < count; i++) {
      const [k, v] = rng.pick(bad);
      if (rng.chance(0.5)) req.headers.splice(rng.int(req.headers.length + 1), 0, [k, v]);
      else req.headers.push([k, v]);
    }
    if (rng.chance(0.15)) req.headers.unshift([' X-Fold-First', 'v']);
    if (rng.chance(0.15)) req.headers.push(['X-Folded', 'a\r\n b']);
    if (rng.chance(0.1)) req.headers = req.headers.filter(([k]) => k.toLowerCase() !== 'host');
    if (rng.chance(0.1)) req.headers.push(['Host', rng.pick(['other', 'localhost', 'a b', 'a:99999', '[::1', '', '\u00e9'])]);
    if (rng.chance(0.05)) req.headers.push(['No colon line', '\0']);
    notes.push('header-syntax');
  },
  framing(rng, req, notes) {
    req.headers = req.headers.filter(([k]) => !/^(content-length|transfer-encoding)$/i.test(k));
    if (req.method === 'GET' || req.method === 'HEAD') req.method = rng.pick(['POST', 'PUT', 'GET']);
    const kind = rng.int(9);
    const cl = (v: string): void => { req.headers.push([rng.pick(['Content-Length', 'content-length', 'CONTENT-LENGTH']), v]); };
    const te = (v: string): void => { req.headers.push([rng.pick(['Transfer-Encoding', 'transfer-encoding']), v]); };
    if (kind === 0) { cl(String(req.body.length)); cl(rng.chance(0.5) ? String(req.body.length) : String(req.body.length + 1)); }
    else if (kind === 1) cl(rng.pick(['-1', '-0', '+5', '0x5', ' 5', '5 ', '5, 5', '5,5', '', 'abc', '1e3', '99999999999999999999', '18446744073709551616',
      '9007199254740993', '1073741825', String(2 ** 31), '00000000000000000000005', '5\0', '\u00b5']));
    else if (kind === 2) { te('chunked'); if (rng.chance(0.5)) cl(String(rng.range(0, 10))); }
    else if (kind === 3) { cl(String(rng.range(0, 10))); te('chunked'); }
    else if (kind === 4) te(rng.pick(['chunked, chunked', 'gzip, chunked', 'chunked, gzip', 'identity', 'Chunked', 'CHUNKED', 'xchunked', 'chunked ', ' chunked',
      'chunked;q=1', 'chunk', 'deflate', '', 'chunked\0', 'chunked,', ',chunked', 'identity, chunked']));
    else if (kind === 5) { te('chunked'); te(rng.pick(['chunked', 'identity', 'gzip'])); }
    else if (kind === 6) { req.headers.push(['Transfer-Encoding', 'gzip']); req.headers.push(['X-Fold', 'x\r\n chunked']); req.headers.push(['Transfer-Encoding', '\r\n chunked']); }
    else if (kind === 7) { te('chunked'); req.version = 'HTTP/1.0'; }
    else { te('chunked'); }
    if (kind >= 2 && kind !== 4 && rng.chance(0.8)) req.rawBody = chunkedBody(rng);
    else if (kind === 4 && rng.chance(0.6)) req.rawBody = chunkedBody(rng);
    notes.push(`framing#${kind}`);
  },
  chunked(rng, req, notes) {
    req.headers = req.headers.filter(([k]) => !/^(content-length|transfer-encoding)$/i.test(k));
    if (req.method === 'GET' || req.method === 'HEAD') req.method = 'POST';
    req.headers.push(['Transfer-Encoding', 'chunked']);
    req.rawBody = chunkedBody(rng);
    if (rng.chance(0.1)) req.rawBody = Buffer.concat([Buffer.from(`${'f'.repeat(rng.range(6, 16))}\r\n`), rng.bytes(rng.range(0, 2000))]);
    notes.push('chunked');
  },
  expect(rng, req, notes) {
    req.headers.push(['Expect', rng.pick(['100-continue', '100-Continue', '100-continue, foo', '200-ok', '', 'x'.repeat(200), '100-continue'])]);
    if (rng.chance(0.7)) {
      req.method = rng.pick(['POST', 'PUT', 'GET']);
      req.headers = req.headers.filter(([k]) => !/^content-length$/i.test(k));
      req.headers.push(['Content-Length', String(rng.pick([0, 5, 100, 2 ** 31, 2 ** 40]))]);
      req.body = rng.chance(0.5) ? Buffer.alloc(0) : Buffer.from('hello');
    }
    notes.push('expect');
  },
  upgrade(rng, req, notes) {
    if (rng.chance(0.5)) {
      req.headers.push(['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13']);
      if (rng.chance(0.5)) req.rawBody = Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    } else {
      req.headers.push(['Connection', 'Upgrade, HTTP2-Settings'], ['Upgrade', rng.pick(['h2c', 'h2', 'HTTP/2.0', 'foo/1, h2c'])], ['HTTP2-Settings', rng.pick(['AAMAAABkAARAAAAAAAIAAAAA', '', '!!!'])]);
      if (rng.chance(0.5)) req.rawBody = preface();
    }
    notes.push('upgrade');
  },
  requestLine(rng, req, notes) {
    const sp = (): string => rng.pick([' ', '  ', '\t', ' \t', '']);
    req.rawLine = rng.pick([
      () => `${req.method}${sp()}${req.target}${sp()}${req.version}`,
      () => `${req.method} ${req.target}`,
      () => `${req.method}`,
      () => `${req.method} ${req.target} ${req.version} extra`,
      () => ` ${req.method} ${req.target} ${req.version}`,
      () => `\r\n${req.method} ${req.target} ${req.version}`,
      () => `\r\n\r\n\r\n${req.method} ${req.target} ${req.version}`,
      () => `${req.method} ${req.target} ${req.version}\r`,
    ])();
    if (rng.chance(0.2)) req.eol = rng.pick(['\n', '\r', '\r\r\n', '\n\r']);
    notes.push('request-line');
  },
  h2preface(_rng, req, notes) {
    req.rawLine = 'PRI * HTTP/2.0';
    req.headers = [];
    req.rawBody = Buffer.concat([Buffer.from('SM\r\n\r\n'), preface().subarray(24)]);
    notes.push('h2-preface');
  },
};

function serialise(req: Req): Buffer {
  const line = req.rawLine ?? `${req.method} ${req.target} ${req.version}`;
  const head = line + req.eol + req.headers.map(([k, v]) => `${k}: ${v}${req.eol}`).join('') + req.eol;
  return Buffer.concat([Buffer.from(head, 'latin1'), req.rawBody ?? req.body]);
}

const BYTE_INSERTS = [0x0d, 0x0a, 0x00, 0x20, 0x09, 0x0d0a];

export function byteMutate(rng: Rng, input: Buffer, notes: string[]): Buffer {
  let bytes: Buffer = Buffer.from(input);
  const count = rng.range(1, 4);
  for (let i = 0; i < count && bytes.length > 0; i++) {
    const at = rng.int(bytes.length);
    const kind = rng.int(6);
    if (kind === 0) { bytes[at] = bytes[at]! ^ (1 << rng.int(8)); notes.push(`flip@${at}`); }
    else if (kind === 1) {
      const ins = rng.pick(BYTE_INSERTS);
      const add = ins === 0x0d0a ? Buffer.from('\r\n') : Buffer.from([ins]);
      bytes = Buffer.concat([bytes.subarray(0, at), add, bytes.subarray(at)]);
      notes.push(`insert${add.toString('hex')}@${at}`);
    } else if (kind === 2) { bytes[at] = rng.int(256); notes.push(`set@${at}`); }
    else if (kind === 3) { const n = rng.range(1, 8); bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + n)]); notes.push(`delete${n}@${at}`); }
    else if (kind === 4) { const n = rng.range(1, 32); bytes = Buffer.concat([bytes.subarray(0, at + n), bytes.subarray(at, at + n), bytes.subarray(at + n)]); notes.push(`dup${n}@${at}`); }
    else { bytes = bytes.subarray(0, at); notes.push(`truncate@${at}`); }
  }
  return bytes;
}

/** Random write boundaries: none, a few, or (short inputs) one byte per write. */
export function splitWrites(rng: Rng, bytes: Buffer, notes: string[]): Buffer[] {
  const r = rng.next();
  if (r < 0.65 || bytes.length < 2) return [bytes];
  if (r < 0.97 || bytes.length > 300) {
    const cuts = Array.from({ length: rng.range(1, 5) }, () => rng.int(bytes.length));
    notes.push(`split${cuts.length}`);
    return splitAt(bytes, cuts);
  }
  notes.push('bytewise');
  return [...bytes].map((b) => Buffer.from([b]));
}

export function generateH1(rng: Rng, klass: string, transport: Transport, paths: readonly string[]): Case {
  const names = Object.keys(mutators);
  const notes: string[] = [];
  const requests: Buffer[] = [];
  const pipelined = rng.chance(0.12) ? rng.range(2, 6) : 1;
  if (pipelined > 1) notes.push(`pipeline${pipelined}`);
  for (let r = 0; r < pipelined; r++) {
    const req = baseRequest(rng, paths);
    const mutations = r === 0 || rng.chance(0.3) ? rng.range(r === 0 ? 1 : 0, 3) : 0;
    for (let m = 0; m < mutations; m++) {
      let name = rng.pick(names);
      if (name === 'h2preface' && rng.chance(0.7)) name = 'version';
      mutators[name]!(rng, req, notes, paths);
    }
    requests.push(serialise(req));
  }
  let bytes: Buffer = Buffer.concat(requests);
  if (rng.chance(0.25)) bytes = byteMutate(rng, bytes, notes);
  const writes = splitWrites(rng, bytes, notes);
  const end = rng.chance(0.2);
  if (end) notes.push('half-close');
  return { klass, name: notes.join(' '), transport, writes, ...(end ? { end } : {}) };
}
