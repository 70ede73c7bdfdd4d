/**
 * @module The applications' `ws` WebSocketServer, made the first time a front needs one.
 *
 * Every front can take applications' WebSockets (`wsgi.websocket`), but most never see an
 * upgrade, and the code a front loads makes each of its requests dearer even when it never runs
 * (README: "A front that loads less"). So `ws` is imported here, once, when the first valid
 * handshake arrives (app-sockets.ts waits for it before the application sees that request);
 * after that the server is at hand synchronously, and every later upgrade is served as before.
 */
import type { WebSocketServer, ServerOptions } from 'ws';

let loading: Promise<typeof import('ws')> | null = null;

/** A WebSocketServer with these options, `ws` imported on the first call (the later ones reuse it). */
export async function createWebSocketServer(options: ServerOptions): Promise<WebSocketServer> {
  loading ??= import('ws');
  const { WebSocketServer: Server } = await loading;
  return new Server(options);
}
