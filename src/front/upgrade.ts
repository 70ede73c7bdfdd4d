/**
 * @module `Upgrade:` and `CONNECT` on HTTP/1.1 connections: WebSockets (the realtime hub's, the
 * applications'), else ordinary requests.
 *
 * The realtime hub (front/realtime/) takes the upgrades on its paths first (`takeUpgrade`), then
 * the applications' WebSockets take a WebSocket handshake (front/websocket/app-sockets.ts).
 * llhttp stops parsing at the end of a head that asks for an upgrade (`Connection: upgrade` with
 * `Upgrade:`), since what follows would be another protocol. Without an `upgrade` listener Node
 * then serves that request as an ordinary one, but throws away the rest of the packet it came in:
 * a request pipelined right behind it was lost. With the listener here, Node hands over the
 * socket and those bytes (`head`); the request is put back in front of them, with `upgrade` taken
 * out of its Connection header (so llhttp reads it as an ordinary request), and Node's own HTTP/1
 * connection code takes the socket again: the request reaches the application (which sees its
 * `Upgrade` header) and the bytes after it are served in order, with the same limits, deadlines
 * and keep-alive as any other request.
 *
 * `CONNECT` (a proxy's tunnel) is not served by an origin server: 400 and the connection closed,
 * where Node alone would reset the connection without an answer.
 */
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ClientRejections } from './client-errors.js';
import { watchConnection } from './raw-target-bytes.js';

interface HttpInternals {
  /** Node's HTTP/1 connection set-up (`http._connectionListener`, what every HTTP server runs on a new connection). */
  _connectionListener(this: object, socket: Duplex): void;
}

// Not in @types/node: `http._connectionListener` is exported for servers that take sockets over.
const { _connectionListener: httpConnectionListener } = createRequire(import.meta.url)('node:http') as HttpInternals;

interface UpgradeServer {
  on(event: 'upgrade' | 'connect', listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): unknown;
  emit(event: 'request', req: IncomingMessage, res: ServerResponse): boolean;
}

/**
 * Takes an upgrade (true) or leaves it to be served as a request (false). `serve` hands a
 * request to the listener's request handler (an application's WebSocket is served as a request
 * on a response of its own: front/websocket/app-sockets.ts).
 */
export type UpgradeTaker = (req: IncomingMessage, socket: Duplex, head: Buffer, serve: (req: IncomingMessage, res: ServerResponse) => void) => boolean;

/**
 * `maxHeaders`: Node keeps only this many fields of a head; a head that reached it is refused (431),
 * not replayed short. `maxHeaderBytes`: the head limit the new parser runs with (raw-target-bytes.ts needs it).
 */
export function serveUpgradesAsRequests(
  server: UpgradeServer, rejections: ClientRejections, { maxHeaders, maxHeaderBytes }: { maxHeaders: number; maxHeaderBytes: number },
  takeUpgrade: UpgradeTaker | null = null,
): void {
  const serveUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (takeUpgrade?.(req, socket, head, (request, res) => server.emit('request', request, res)) === true) return;
    socket.unshift(head.length === 0 ? replayedHead(req) : Buffer.concat([replayedHead(req), head]));
    httpConnectionListener.call(server, socket);
    watchConnection(socket, maxHeaderBytes);
  };
  server.on('upgrade', (req, socket, head) => {
    // Node took its own error listener off the socket before handing it over: without one, a
    // client's reset (ECONNRESET) while the handshake waits for a worker, for the answer pipelined
    // before it, or for a refusal's close would be an uncaught error that ends the front. The
    // error destroys the socket; whoever holds it hears 'close' (ws and Node's connection code add
    // their own listeners when they take it).
    socket.on('error', ignoreError);
    const count = req.rawHeaders.length >> 1;
    if (count >= maxHeaders) {
      rejections.refuseConnection(socket, 'W2N_ERR_CLIENT_TOO_MANY_HEADERS', { count, limit: maxHeaders });
      return;
    }
    // Pipelined behind a request whose answer is still being written: served once that answer
    // is out (served at once, the connection code taking the socket again would never hear of
    // the earlier answer's end, and this request would never be answered).
    const earlier = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (earlier !== null && earlier !== undefined) {
      earlier.once('finish', () => serveUpgrade(req, socket, head));
      return;
    }
    serveUpgrade(req, socket, head);
  });
  server.on('connect', (_req, socket) => {
    rejections.refuseConnection(socket, 'W2N_ERR_CLIENT_BAD_REQUEST', { reason: 'CONNECT is not served here' });
  });
}

function ignoreError(): void {}

/** The request's head as it came, less the `upgrade` token of its Connection header(s). */
function replayedHead(req: IncomingMessage): Buffer {
  let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    let value = raw[i + 1]!;
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      value = value.split(',').map((token) => token.trim()).filter((token) => token !== '' && token.toLowerCase() !== 'upgrade').join(', ');
      if (value === '') continue;
    }
    text += `${name}: ${value}\r\n`;
  }
  // Node gives header text as latin-1, one character per byte received.
  return Buffer.from(`${text}\r\n`, 'latin1');
}
