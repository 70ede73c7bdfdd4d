/**
 * @module An early final answer (413, 500) to a request whose body is not read, then a lingering close.
 *
 * Closing a socket while the client is still sending makes the kernel answer with a reset, and a
 * client that has not read our answer yet loses it (the classic "413 never arrives, connection
 * reset" of servers that close at once). So, as nginx's lingering_close does: the answer goes
 * out with `Connection: close`, then our side is half-closed (FIN) and what the client still
 * sends is read and thrown away until it closes too, or LINGER_MS have passed.
 *
 * The answer is written on the socket itself, not through `res`: Node destroys the socket as
 * soon as a `Connection: close` response is finished, which is the reset this module avoids.
 * `res.statusCode` is still set, so the access log and metrics see the real status when the
 * connection closes. A request pipelined behind one still being answered has no socket of its
 * own yet (Node hands it over when the answer ahead is finished): its answer waits for it, so
 * answers keep the order of their requests.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { sendPlainError } from './response-sink.js';
import { countBody, requestIdHeader, requestIdOf } from './request-id.js';

/** How long a refused client may go on sending before the connection is cut. */
export const LINGER_MS = 5_000;

export function answerAndClose(req: IncomingMessage, res: ServerResponse, statusCode: number, text: string): void {
  res.statusCode = statusCode;
  res.shouldKeepAlive = false;
  const socket = req.socket;
  if (res.headersSent || socket.destroyed || !socket.writable) {
    // Too late for an answer (a response started): cutting is the only honest signal.
    res.destroy();
    return;
  }
  if (req.httpVersionMajor >= 2) {
    // HTTP/2: the stream is answered and reset on its own; the connection carries others.
    sendPlainError(res, statusCode, text, requestIdHeader(res));
    return;
  }
  if (res.socket === null) {
    // Behind an answer still being written: ours goes after it. The body is dropped meanwhile.
    req.resume();
    res.once('socket', () => answerAndClose(req, res, statusCode, text));
    return;
  }
  const body = Buffer.from(text, 'utf8');
  // The id is printable ASCII (request-id.ts): safe in a head written by hand.
  const requestId = requestIdOf(res);
  socket.write(`HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? ''}\r\nConnection: close\r\n`
    + `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n`
    + `${requestId === '' ? '' : `X-Request-ID: ${requestId}\r\n`}\r\n`);
  countBody(res, body.length);
  socket.end(body);
  // The parser goes on taking the body off the wire; nobody listens, so it is discarded.
  req.resume();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('end', () => socket.destroy());
  socket.once('close', () => clearTimeout(timer));
}
