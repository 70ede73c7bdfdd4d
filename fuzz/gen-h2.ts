/**
 * HTTP/2 cases, written frame by frame (a tiny frame encoder and an HPACK encoder of literals
 * without indexing), sent over TLS with ALPN h2: pseudo-header abuse, huge header lists, floods,
 * rapid reset, flow-control overflow, streams after GOAWAY, bad frame sizes and flags.
 */
import type { Rng } from './prng.js';
import type { Case } from './case.js';
import { byteMutate } from './gen-h1.js';

export const FRAME = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** One frame: 24-bit length (of the payload, unless `length` lies), type, flags, 31-bit stream id. */
export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0), length = payload.length): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(length & 0xffffff, 0, 3);
  head[3] = type & 0xff;
  head[4] = flags & 0xff;
  head.writeUInt32BE(stream >>> 0, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 5.1); `first` carries the bits above the prefix. */
export function hpackInt(value: number, prefixBits: number, first = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let rest = value - max;
  while (rest >= 128) { out.push((rest % 128) + 128); rest = Math.floor(rest / 128); }
  out.push(rest);
  return Buffer.from(out);
}

function hpackString(s: string | Buffer): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
  return Buffer.concat([hpackInt(bytes.length, 7), bytes]);
}

/** A header block of literals without indexing, new names (RFC 7541 6.2.2): nothing enters the dynamic table. */
export function hpack(headers: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(headers.flatMap(([name, value]) => [Buffer.from([0x00]), hpackString(name), hpackString(value)]));
}

export function settingsFrame(pairs: readonly (readonly [number, number])[] = [], flags = 0): Buffer {
  const payload = Buffer.alloc(6 * pairs.length);
  pairs.forEach(([id, value], i) => { payload.writeUInt16BE(id & 0xffff, i * 6); payload.writeUInt32BE(value >>> 0, i * 6 + 2); });
  return frame(FRAME.SETTINGS, flags, 0, payload);
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** The client preface and an empty SETTINGS: what every h2 case starts with. */
export function preface(): Buffer {
  return Buffer.concat([CLIENT_PREFACE, settingsFrame()]);
}

export const REQUEST: readonly [string, string][] = [[':method', 'GET'], [':scheme', 'https'], [':path', '/'], [':authority', 'localhost']];

function headers(stream: number, block: Buffer, flags = FLAG.END_HEADERS | FLAG.END_STREAM): Buffer {
  return frame(FRAME.HEADERS, flags, stream, block);
}

function rst(stream: number, code = 8): Buffer {
  return frame(FRAME.RST_STREAM, 0, stream, u32(code));
}

type Scenario = (rng: Rng, next: () => number) => Buffer[];

function pseudoAbuse(rng: Rng): [string, string][] {
  const h: [string, string][] = REQUEST.map(([k, v]) => [k, v]);
  const kind = rng.int(18);
  switch (kind) {
    case 0: return h.filter(([k]) => k !== ':path');
    case 1: return [...h, [':method', 'POST']];
    case 2: return h.map(([k, v]) => [k === ':method' ? ':Method' : k, v]);
    case 3: return [...h, ['Host', 'localhost']];
    case 4: return [...h, [rng.pick(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']), rng.pick(['keep-alive', 'chunked', 'h2c', 'close'])]];
    case 5: return [...h, ['te', rng.pick(['gzip', 'trailers', 'trailers, gzip'])]];
    case 6: return [['x-first', 'v'], ...h];
    case 7: return [...h, [':foo', 'bar']];
    case 8: return h.map(([k, v]) => [k, k === ':path' ? rng.pick(['', 'x', '*', '//', '/\0', '/a b', 'http://a/', '/' + '\u00ff'.repeat(10)]) : v]);
    case 9: return [[':method', 'CONNECT'], ...rng.pick([[], [[':authority', 'localhost:443']], [[':authority', 'a:1'], [':path', '/']], [[':protocol', 'websocket'], [':scheme', 'https'], [':path', '/'], [':authority', 'a']]])] as [string, string][];
    case 10: return [...h, ['x-bad', rng.pick(['a\r\nb', 'a\0b', 'a\nb', ' lead', 'trail ', '\u00ff'])]];
    case 11: return [...h, [rng.pick(['x bad', 'x:bad', '', 'X', '\u00e9', 'x\0', ':']), 'v']];
    case 12: return h.map(([k, v]) => [k, k === ':method' ? rng.pick(['', 'get', 'G T', 'PRI', 'A'.repeat(5000), 'HEAD', 'OPTIONS']) : v]);
    case 13: return h.map(([k, v]) => [k, k === ':scheme' ? rng.pick(['', 'http', 'ftp', 'HTTPS', 'x'.repeat(300)]) : v]);
    case 14: return h.map(([k, v]) => [k, k === ':authority' ? rng.pick(['', 'a b', 'a:99999', '[::1', 'user@host', '\u00ff']) : v]);
    case 15: return [...h, [':path', '/second']];
    case 16: return [...h, ['content-length', rng.pick(['-1', 'abc', '5', '99999999999999999999', '0, 1'])]];
    default: return [[':path', '/'], [':method', 'GET']];
  }
}

const scenarios: Record<string, Scenario> = {
  valid: (rng, next) => [headers(next(), hpack(rng.chance(0.5) ? REQUEST : [...REQUEST.slice(0, 2), [':path', rng.pick(['/welcome/static/css/web2py.css', '/welcome/default/index', '/env'])], REQUEST[3]!]))],
  post: (rng, next) => {
    const id = next();
    const body = rng.bytes(rng.range(0, 3000));
    const out = [headers(id, hpack([[':method', 'POST'], ...REQUEST.slice(1), ...(rng.chance(0.5) ? [['content-length', String(rng.chance(0.8) ? body.length : body.length + 5)] as [string, string]] : [])]), FLAG.END_HEADERS)];
    for (let at = 0; at < body.length; at += 1000) out.push(frame(FRAME.DATA, 0, id, body.subarray(at, at + 1000)));
    if (rng.chance(0.8)) out.push(frame(FRAME.DATA, FLAG.END_STREAM, id));
    if (rng.chance(0.2)) out.push(frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from('after end')));
    return out;
  },
  pseudo: (rng, next) => [headers(next(), hpack(pseudoAbuse(rng)))],
  hugeHeaders: (rng, next) => {
    const id = next();
    const kind = rng.int(3);
    const list: [string, string][] = [...REQUEST];
    if (kind === 0) list.push(['x-big', 'v'.repeat(rng.pick([16000, 16384, 17000, 65536, 200000]))]);
    else if (kind === 1) for (let i = 0; i < rng.pick([99, 100, 101, 104, 105, 1000, 5000]); i++) list.push([`x-h${i}`, 'v']);
    else for (let i = 0; i < rng.pick([100, 2000]); i++) list.push(['cookie', `c${i}=v`]);
    const block = hpack(list);
    const size = rng.pick([16384, 1000, 100]);
    const out = [frame(FRAME.HEADERS, block.length <= size ? FLAG.END_HEADERS | FLAG.END_STREAM : FLAG.END_STREAM, id, block.subarray(0, size))];
    for (let at = size; at < block.length; at += size) out.push(frame(FRAME.CONTINUATION, at + size >= block.length ? FLAG.END_HEADERS : 0, id, block.subarray(at, at + size)));
    return out;
  },
  continuationFlood: (rng, next) => {
    const id = next();
    const out = [frame(FRAME.HEADERS, FLAG.END_STREAM, id, hpack(REQUEST))];
    const n = rng.pick([100, 1000, 5000]);
    const each = rng.pick([0, 1, 10]);
    for (let i = 0; i < n; i++) out.push(frame(FRAME.CONTINUATION, 0, id, hpack([['x', 'y'.repeat(each)]]).subarray(0, each === 0 ? 0 : undefined)));
    if (rng.chance(0.5)) out.push(frame(FRAME.CONTINUATION, FLAG.END_HEADERS, id));
    return out;
  },
  rapidReset: (rng, next) => {
    const out: Buffer[] = [];
    const n = rng.pick([50, 200, 1000, 3000]);
    const block = hpack(REQUEST);
    for (let i = 0; i < n; i++) { const id = next(); out.push(headers(id, block), rst(id, rng.chance(0.9) ? 8 : rng.int(20))); }
    return out;
  },
  rstFlood: (rng, next) => {
    const n = rng.pick([100, 1000, 5000]);
    return Array.from({ length: n }, () => rst(rng.chance(0.5) ? next() : rng.range(1, 2 ** 31 - 1), rng.int(16)));
  },
  settingsFlood: (rng) => Array.from({ length: rng.pick([100, 1000, 10000]) }, () => settingsFrame(rng.chance(0.5) ? [] : [[rng.range(1, 6), rng.range(0, 65535)]])),
  pingFlood: (rng) => Array.from({ length: rng.pick([100, 1000, 10000]) }, () => frame(FRAME.PING, 0, 0, rng.bytes(8))),
  emptyDataFlood: (rng, next) => {
    const id = next();
    const out = [headers(id, hpack([[':method', 'POST'], ...REQUEST.slice(1)]), FLAG.END_HEADERS)];
    for (let i = 0; i < rng.pick([100, 1000, 10000]); i++) out.push(frame(FRAME.DATA, 0, id));
    return out;
  },
  priorityFlood: (rng, next) => Array.from({ length: rng.pick([100, 1000, 5000]) }, () => {
    const p = Buffer.alloc(5);
    const id = next();
    p.writeUInt32BE(rng.chance(0.3) ? id : rng.range(0, 1000));
    p[4] = rng.int(256);
    return frame(FRAME.PRIORITY, 0, id, p);
  }),
  windowOverflow: (rng, next) => {
    const id = rng.chance(0.5) ? 0 : next();
    const out = id === 0 ? [] : [headers(id, hpack([[':method', 'POST'], ...REQUEST.slice(1)]), FLAG.END_HEADERS)];
    const incs = rng.pick([[0x7fffffff, 0x7fffffff], [0x7fffffff], [0], [0x80000000], [0xffffffff], [1, 0x7fffffff], [0x7fff0000, 0x10000]]);
    for (const inc of incs) out.push(frame(FRAME.WINDOW_UPDATE, 0, id, u32(inc)));
    if (rng.chance(0.3)) out.push(settingsFrame([[4, rng.pick([0x7fffffff, 0x80000000, 0])]]));
    if (id !== 0 && rng.chance(0.5)) out.push(frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from('x')));
    return out;
  },
  afterGoaway: (rng, next) => {
    const goaway = Buffer.concat([u32(rng.chance(0.5) ? 0 : 0x7fffffff), u32(rng.int(14)), Buffer.from('bye')]);
    return [frame(FRAME.GOAWAY, 0, 0, goaway), headers(next(), hpack(REQUEST)), ...(rng.chance(0.5) ? [frame(FRAME.GOAWAY, 0, 0, goaway), headers(next(), hpack(REQUEST))] : [])];
  },
  badSizes: (rng, next) => {
    const kind = rng.int(12);
    const id = next();
    switch (kind) {
      case 0: return [frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(rng.pick([1, 5, 7])))];
      case 1: return [frame(FRAME.PING, 0, 0, Buffer.alloc(rng.pick([0, 7, 9])))];
      case 2: return [frame(FRAME.WINDOW_UPDATE, 0, rng.chance(0.5) ? 0 : id, Buffer.alloc(rng.pick([0, 3, 5])))];
      case 3: return [frame(FRAME.RST_STREAM, 0, id, Buffer.alloc(rng.pick([0, 3, 5])))];
      case 4: return [frame(FRAME.PRIORITY, 0, id, Buffer.alloc(rng.pick([0, 4, 6])))];
      case 5: return [frame(FRAME.DATA, 0, id, Buffer.alloc(rng.pick([16385, 20000, 70000])))];
      case 6: return [frame(FRAME.HEADERS, FLAG.END_HEADERS, id, hpack(REQUEST), rng.pick([200, 0xffffff, 16385]))];
      case 7: return [frame(FRAME.SETTINGS, FLAG.ACK, 0, Buffer.alloc(6))];
      case 8: return [frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.PADDED, id, Buffer.concat([Buffer.from([rng.pick([200, 255, 40])]), hpack(REQUEST)]))];
      case 9: return [frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.PRIORITY, id, Buffer.concat([u32(id), Buffer.from([16]), hpack(REQUEST)]))];
      case 10: return [frame(FRAME.GOAWAY, 0, 0, Buffer.alloc(rng.pick([0, 4, 7])))];
      default: return [frame(rng.pick([FRAME.SETTINGS, FRAME.PING, FRAME.GOAWAY, FRAME.WINDOW_UPDATE]), 0, id, Buffer.alloc(8))];
    }
  },
  streamIds: (rng, next) => {
    const block = hpack(REQUEST);
    const kind = rng.int(8);
    switch (kind) {
      case 0: return [headers(2, block)];
      case 1: return [headers(0, block)];
      case 2: { const a = next(); next(); const b = next(); return [headers(b, block), headers(a, block)]; }
      case 3: return [frame(FRAME.DATA, FLAG.END_STREAM, rng.chance(0.5) ? 0 : 99, Buffer.from('x'))];
      case 4: { const id = next(); return [headers(id, block), headers(id, block)]; }
      case 5: return [headers(0x7fffffff, block), headers(next(), block)];
      case 6: return [frame(FRAME.PUSH_PROMISE, FLAG.END_HEADERS, 1, Buffer.concat([u32(2), block]))];
      default: { const id = next(); return [frame(FRAME.CONTINUATION, FLAG.END_HEADERS, id, block)]; }
    }
  },
  badSettings: (rng) => [settingsFrame([[rng.pick([1, 2, 3, 4, 5, 6, 8, 0, 0xffff, 9]), rng.pick([0, 1, 2, 16383, 16384, 16777215, 16777216, 0x7fffffff, 0x80000000, 0xffffffff])]])],
  randomFrames: (rng, next) => Array.from({ length: rng.range(1, 20) }, () => frame(rng.int(256), rng.int(256), rng.chance(0.5) ? next() : rng.int(8), rng.bytes(rng.range(0, 64)))),
  hpackGarbage: (rng, next) => [headers(next(), rng.chance(0.5) ? rng.bytes(rng.range(1, 200)) : Buffer.concat([
    rng.pick([Buffer.from([0x3f, 0xe1, 0xff, 0xff, 0xff, 0x0f]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), Buffer.from([0x20]), Buffer.from([0x3f, 0xff, 0xff, 0xff, 0xff, 0x0f]),
      Buffer.from([0xbe]), Buffer.from([0x00, 0x7f, 0xff, 0xff, 0xff, 0x0f]), Buffer.from([0x00, 0x81, 0xff, 0x01, 0x61])]),
    hpack(REQUEST)]))],
};

export const H2_SCENARIOS = Object.keys(scenarios);

export function generateH2(rng: Rng, klass: string): Case {
  const notes: string[] = [];
  let stream = -1;
  const next = (): number => { stream += 2; return stream; };
  const frames: Buffer[] = [];
  const names = Object.keys(scenarios);
  const count = rng.range(1, 3);
  for (let i = 0; i < count; i++) {
    const name = rng.pick(names);
    notes.push(name);
    frames.push(...scenarios[name]!(rng, next));
  }
  if (rng.chance(0.3)) frames.push(...scenarios.valid!(rng, next));
  let head = preface();
  if (rng.chance(0.03)) { head = rng.pick([Buffer.alloc(0), CLIENT_PREFACE, CLIENT_PREFACE.subarray(0, 10), Buffer.from('PRI * HTTP/2.0\r\n\r\n')]); notes.push('bad-preface'); }
  if (rng.chance(0.3)) frames.unshift(frame(FRAME.SETTINGS, FLAG.ACK, 0));
  // Group frames into writes: all at once, a few groups, or frame by frame (short sequences).
  let writes: Buffer[];
  const r = rng.next();
  if (r < 0.6 || frames.length > 200) writes = [Buffer.concat([head, ...frames])];
  else if (r < 0.85) writes = [head, ...frames];
  else { writes = [head, Buffer.concat(frames)]; }
  if (rng.chance(0.1)) { writes = [byteMutate(rng, Buffer.concat(writes), notes)]; }
  const end = rng.chance(0.15);
  if (end) notes.push('half-close');
  return { klass, name: notes.join(' '), transport: 'tls-h2', writes: writes.filter((w) => w.length > 0), ...(end ? { end } : {}) };
}
