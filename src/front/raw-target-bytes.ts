/**
 * @module Raw bytes ≥ 0x80 in an HTTP/1 request target (`GET /app/default/index?q=ü` sent as is).
 *
 * curl, many scripts and older clients send non-ASCII request targets unencoded; Rocket, gevent's
 * pywsgi, nginx and gunicorn serve them, and PEP 3333 says how they reach the application: each
 * byte one latin-1 code point in PATH_INFO, QUERY_STRING and REQUEST_URI. Node's llhttp (9.x,
 * built strict, with no lenient flag for it) refuses them (`HPE_INVALID_URL`), so this module
 * recovers such a request without loosening anything else:
 *
 * - Nothing changes for a request whose target is ASCII: the parser keeps reading the socket in
 *   C++ (Node's "consumed" socket); per read, one JS call notes whether the parser stopped between
 *   messages (the state the recovery below needs).
 * - When llhttp stops with `HPE_INVALID_URL` on a byte ≥ 0x80, a scratch llhttp parser (same
 *   build, same limits, no lenience) replays the read from the same state the connection's parser
 *   began it in. It must stop at the very same byte with the very same error, and it says where
 *   the refused message began (after the last message it completed). So message boundaries are
 *   always llhttp's own, never a guess of ours: that is what keeps request smuggling out.
 * - The connection's parser is then reset and reads the read again from that message on, with
 *   each byte ≥ 0x80 of its request line (up to its LF, which must be in the same read) replaced by
 *   `PLACEHOLDER`, byte for byte, so every offset stays the same. The original target is queued on
 *   the connection; the request handler takes it back (`originalTarget`) before anything reads the
 *   URL. Node then sees nothing unusual: its pipelining, keep-alive, limits and deadlines apply.
 * - What cannot be recovered that way stays refused as before (400): a read that began in the
 *   middle of a message (a request line split across reads, a body's tail), a request line whose
 *   LF is not in the read, a scratch replay that disagrees.
 *
 * HTTP/2 needs nothing of this: nghttp2 passes such a `:path` on, and Node gives it as latin-1
 * characters, one per byte, as the recovered HTTP/1 target is given.
 *
 * This reaches into Node's HTTP parser binding (the parser object Node keeps on `socket.parser`,
 * its callback slots, `initialize`), as upgrade.ts and http1-on-http2.ts do with Node's HTTP
 * internals; test/e2e/raw-target.test.ts checks the behaviour on the Node in use.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/** What stands for a byte ≥ 0x80 while llhttp reads a recovered request line. */
const PLACEHOLDER = 0x78; // 'x'
const LF = 0x0a;

/** llhttp's refusal, as Node's parser binding returns it from `execute`. */
interface ParseError extends Error {
  code: string;
  bytesParsed: number;
}

/** Node's HTTPParser binding, as much of it as this module uses (not in @types/node). */
interface HttpParser {
  socket: Duplex | null;
  incoming: { complete: boolean } | null;
  _url: string;
  _headers: string[];
  execute(data: Buffer): number | ParseError;
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number, connections?: unknown): void;
  headersCompleted(): boolean;
  getCurrentBuffer(): Buffer;
  [slot: number]: unknown;
}

interface HttpParserClass {
  new(): HttpParser;
  REQUEST: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
  kLenientNone: number;
}

/** Node's per-connection handler of a read's outcome (`kOnExecute`). */
type OnExecute = (this: HttpParser, result: number | ParseError) => unknown;

type ParsedSocket = Duplex & { parser?: HttpParser | null; server?: object };

/** Targets recovered on a connection, in request order: what llhttp read, what the client sent. */
const recovered = new WeakMap<object, { read: string; sent: string }[]>();

/**
 * The request target as the client sent it: `req.url`, unless this module recovered it, in which
 * case the original (latin-1, one character per byte) is put back on `req.url` too.
 */
export function originalTarget(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const queue = recovered.get(req.socket);
  if (queue === undefined) return url;
  const next = queue[0];
  if (next === undefined || next.read !== url) return url;
  queue.shift();
  if (queue.length === 0) recovered.delete(req.socket);
  req.url = next.sent;
  return next.sent;
}

/**
 * Watches the HTTP/1 connections of `server`: Node's own connection set-up has run when these
 * events fire (`connection` for plain HTTP, `secureConnection` for TLS and the HTTP/1.1 side of
 * an HTTP/2 server), so the connection's parser is there.
 */
export function acceptRawTargetBytes(server: { on(event: string, listener: (socket: Duplex) => void): unknown }, isTls: boolean, maxHeaderSize: number): void {
  server.on(isTls ? 'secureConnection' : 'connection', (socket) => watchConnection(socket, maxHeaderSize));
}

/** Sets up recovery on one connection's current parser (also after upgrade.ts gives the socket a new one). */
export function watchConnection(socket: Duplex, maxHeaderSize: number): void {
  const parser = (socket as ParsedSocket).parser;
  if (parser == null) return;
  const Parser = parser.constructor as HttpParserClass;
  // Whether the parser stood between messages when the current read began.
  let isIdle = true;
  const afterRead = (): void => {
    const incoming = parser.incoming;
    isIdle = parser.headersCompleted() && (incoming === null || incoming.complete);
  };
  const recoverRead = (data: Buffer, result: ParseError): Recovery | null => {
    if (!isIdle || !isRecoverable(data, result)) return null;
    return recover(parser, Parser, socket as ParsedSocket, data, result, maxHeaderSize);
  };
  // Node reads the socket in C++ and reports each read here ("consumed" socket).
  const onExecute = parser[Parser.kOnExecute] as OnExecute | null | undefined;
  if (typeof onExecute === 'function') {
    parser[Parser.kOnExecute] = function (this: HttpParser, result: number | ParseError): unknown {
      if (parser.socket !== socket) return onExecute.call(this, result);
      if (typeof result === 'number') {
        afterRead();
        return onExecute.call(this, result);
      }
      const recovery = recoverRead(parser.getCurrentBuffer(), result);
      afterRead();
      if (recovery === null) return onExecute.call(this, result);
      // Node reads the rest of the read from getCurrentBuffer() (after an upgrade's head, an
      // error's packet); the replay cleared it, so it is the replayed copy (same offsets) for now.
      parser.getCurrentBuffer = () => recovery.buffer;
      try {
        return onExecute.call(this, recovery.outcome);
      } finally {
        Reflect.deleteProperty(parser, 'getCurrentBuffer');
      }
    };
  }
  // Node's JS path (a socket that is not consumed): `execute` is called with each read.
  const execute = executeOf(parser);
  const wrapped = function (this: HttpParser, data: Buffer): number | ParseError {
    const result = execute.call(this, data);
    if (parser.socket !== socket) return result;
    const recovery = typeof result === 'number' ? null : recoverRead(data, result);
    afterRead();
    return recovery === null ? result : recovery.outcome;
  };
  parser.execute = wrapped;
  // Node keeps up to 1,000 freed parsers for new connections and clears its own fields on them,
  // not this one: left there, the wrapper would hold the closed socket, and with it its last
  // request and response, until another connection takes the parser (after a -c1000 load, about
  // 8 MB of heap for nothing).
  socket.once('close', () => {
    if (parser.execute === wrapped) Reflect.deleteProperty(parser, 'execute');
  });
}

/** The binding's own `execute` (the connection's parser has a wrapped one). */
function executeOf(parser: HttpParser): HttpParser['execute'] {
  return (Object.getPrototypeOf(parser) as HttpParser).execute;
}

/** What a recovered read gives Node: `execute`'s outcome, offsets in `buffer` (the read, replayed). */
interface Recovery {
  outcome: number | ParseError;
  buffer: Buffer;
}

function isRecoverable(data: Buffer, error: ParseError): boolean {
  return error.code === 'HPE_INVALID_URL' && (data[error.bytesParsed] ?? 0) >= 0x80;
}

/**
 * Replays `data` (one read, begun with the parser between messages) with the refused request
 * lines' high bytes replaced, one message at a time; returns what Node would have had from
 * `execute` (offsets in `data`) and the replayed copy.
 */
function recover(parser: HttpParser, Parser: HttpParserClass, socket: ParsedSocket, data: Buffer, first: ParseError, maxHeaderSize: number): Recovery {
  const work = Buffer.from(data);
  const execute = executeOf(parser);
  let base = 0;
  let result: number | ParseError = first;
  while (typeof result !== 'number' && isRecoverable(work.subarray(base), result)) {
    const view = work.subarray(base);
    const start = messageStart(Parser, view, result.bytesParsed, maxHeaderSize);
    const lineEnd = view.indexOf(LF, result.bytesParsed);
    if (start === null || lineEnd < 0) break;
    const target = targetOf(view, start, lineEnd);
    if (target === null) break;
    const sent = view.toString('latin1', target.from, target.to);
    for (let i = start; i < lineEnd; i += 1) if (view[i]! >= 0x80) view[i] = PLACEHOLDER;
    const queue = recovered.get(socket) ?? [];
    queue.push({ sent, read: view.toString('latin1', target.from, target.to) });
    recovered.set(socket, queue);
    base += start;
    restart(parser, Parser, socket, maxHeaderSize);
    result = execute.call(parser, work.subarray(base));
  }
  if (typeof result === 'number') return { outcome: base + result, buffer: work };
  result.bytesParsed += base;
  return { outcome: result, buffer: work };
}

/**
 * Where the message refused at `errorAt` began, as a scratch llhttp parser finds it replaying
 * `data` from between messages; null when its replay does not end in the same refusal.
 */
function messageStart(Parser: HttpParserClass, data: Buffer, errorAt: number, maxHeaderSize: number): number | null {
  const scratch = new Parser();
  scratch.initialize(Parser.REQUEST, {}, maxHeaderSize, Parser.kLenientNone);
  let completed = 0;
  let bodyBytes = 0;
  scratch[Parser.kOnMessageComplete] = () => { completed += 1; };
  scratch[Parser.kOnBody] = (chunk: Buffer) => { bodyBytes += chunk.length; };
  // A request line holds no LF, so the refused one began after the last LF before the refused
  // byte, or after a body that ended between that LF and it (only a Content-Length body can: a
  // head and a chunked body end in LF).
  const lineFrom = data.lastIndexOf(LF, errorAt - 1) + 1;
  if (lineFrom > 0 && scratch.execute(data.subarray(0, lineFrom)) !== lineFrom) return null;
  completed = 0;
  bodyBytes = 0;
  if (errorAt > lineFrom && scratch.execute(data.subarray(lineFrom, errorAt)) !== errorAt - lineFrom) return null;
  const start = completed === 0 ? lineFrom : lineFrom + bodyBytes;
  if (completed > 1) return null;
  const refusal = scratch.execute(data.subarray(errorAt, errorAt + 1));
  if (typeof refusal === 'number' || refusal.code !== 'HPE_INVALID_URL' || refusal.bytesParsed !== 0) return null;
  return start;
}

/** Where the target of the request line `data[start, end)` is (`METHOD SP target SP HTTP/x.y`, then CR). */
function targetOf(data: Buffer, start: number, end: number): { from: number; to: number } | null {
  const firstSpace = data.indexOf(0x20, start);
  const last = data[end - 1] === 0x0d ? end - 2 : end - 1;
  const lastSpace = data.lastIndexOf(0x20, last);
  if (firstSpace < 0 || lastSpace <= firstSpace || lastSpace >= end) return null;
  return { from: firstSpace + 1, to: lastSpace };
}

/** Resets the connection's parser to read a new message, as Node set it up for the connection. */
function restart(parser: HttpParser, Parser: HttpParserClass, socket: ParsedSocket, maxHeaderSize: number): void {
  const server = socket.server ?? {};
  const connections = Object.getOwnPropertySymbols(server).find((s) => s.description === 'http.server.connections');
  parser._headers = [];
  parser._url = '';
  parser.initialize(Parser.REQUEST, { type: 'HTTPINCOMINGMESSAGE', socket }, maxHeaderSize, Parser.kLenientNone,
    connections === undefined ? undefined : (server as Record<symbol, unknown>)[connections]);
}
