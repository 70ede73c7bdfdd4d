/**
 * @module WebSocket handshakes the front refuses before the 101 (the checks, the plain HTTP
 * refusal), and the front's own close of a WebSocket.
 *
 * Shared by the realtime hub (front/realtime/) and the applications' WebSockets (app-sockets.ts),
 * so both refuse the same bad handshakes and close the same way.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

/** A refused handshake that has not been cut after this is destroyed (a client that never reads). */
export const CLOSE_WAIT_MS = 1_000;
/** RFC 6455 §4.1: 16 random bytes in base64. */
const CLIENT_KEY = /^[+/0-9A-Za-z]{21}[AQgw]==$/;

export type Refusal = { status: 400 | 403 | 404 | 503; reason: string };

/** GET with a well-formed Sec-WebSocket-Key and a version `ws` speaks (13, or 8). */
export function isValidHandshake(req: IncomingMessage): boolean {
  const key = req.headers['sec-websocket-key'];
  const version = req.headers['sec-websocket-version'];
  return req.method === 'GET' && typeof key === 'string' && CLIENT_KEY.test(key) && (version === '13' || version === '8');
}

/** RFC 7230 token chars. */
const PROTOCOL_LIST = /^[-!#$%&'*+.^_`|~0-9A-Za-z]+(?:[ \t]*,[ \t]*[-!#$%&'*+.^_`|~0-9A-Za-z]+)*$/;

/**
 * No Sec-WebSocket-Protocol, or a list ws accepts (tokens, comma-separated, none twice). ws's
 * handleUpgrade refuses any other with its own 400, which for an application's WebSocket would
 * come after the application had accepted it (its access line saying 101).
 */
export function hasWellFormedProtocols(req: IncomingMessage): boolean {
  const header = req.headers['sec-websocket-protocol'];
  if (header === undefined) return true;
  if (!PROTOCOL_LIST.test(header)) return false;
  const protocols = header.split(',').map((protocol) => protocol.trim());
  return new Set(protocols).size === protocols.length;
}

/** `Upgrade: websocket` (any case, among other tokens). */
export function asksForWebSocket(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.split(',').some((token) => token.trim().toLowerCase() === 'websocket');
}

const STATUS_TEXT: Record<Refusal['status'], string> = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' };

/** A close frame, then the socket cut if the peer does not answer it (a slow reader never will). */
export function closeThenCut(ws: WebSocket, code: number, reason: string): void {
  ws.close(code, reason);
  setTimeout(() => ws.terminate(), CLOSE_WAIT_MS).unref();
}

/** A plain HTTP answer to a refused handshake, and the connection closed. */
export function refuseUpgrade(socket: Duplex, refusal: Refusal): void {
  const body = `${refusal.reason}\n`;
  const extra = refusal.status === 503 ? 'Retry-After: 5\r\n' : refusal.status === 400 ? 'Sec-WebSocket-Version: 13\r\n' : '';
  if (socket.writable) {
    socket.end(`HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status]}\r\nConnection: close\r\n${extra}`
      + `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  }
  setTimeout(() => socket.destroy(), CLOSE_WAIT_MS).unref();
}
