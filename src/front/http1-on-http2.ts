/**
 * @module Node's HTTP/1.1 head and request deadlines for the HTTP/1.1 connections that an HTTP/2
 * server takes (`allowHTTP1`, the ALPN fallback on TLS listeners).
 *
 * Node runs those connections with http's own connection code, but its deadlines
 * (`headersTimeout`, `requestTimeout`) are enforced by a periodic check over a connection list
 * that only `http.Server` sets up, when it starts listening. An HTTP/2 server has no such list,
 * so without this a slowloris client that picks HTTP/1.1 on a TLS port could hold a connection
 * forever. This sets up the very same check (http's exported `setupConnectionsTracking`) on the
 * HTTP/2 server, and stops it when the server closes.
 */
import { createRequire } from 'node:module';
import type { Http2SecureServer } from 'node:http2';

interface HttpServerInternals {
  /** Makes `this[kConnections]` and starts `checkConnections` every `connectionsCheckingInterval` ms. */
  setupConnectionsTracking(this: object): void;
}

// `_http_server` is Node's own http server module; @types/node does not describe it.
const { setupConnectionsTracking } = createRequire(import.meta.url)('_http_server') as HttpServerInternals;

/** The check's interval timer, kept by Node under a symbol. */
function checkingTimer(server: object): NodeJS.Timeout | undefined {
  const symbol = Object.getOwnPropertySymbols(server).find((s) => s.description === 'http.server.connectionsCheckingInterval');
  return symbol === undefined ? undefined : (server as Record<symbol, NodeJS.Timeout | undefined>)[symbol];
}

/**
 * Enforces `server.headersTimeout` and `server.requestTimeout` (set on the server object) on its
 * HTTP/1.1 connections, checked every `checkingIntervalMs`.
 */
export function enforceHttp1Deadlines(server: Http2SecureServer, checkingIntervalMs: number): void {
  Object.assign(server, { connectionsCheckingInterval: checkingIntervalMs });
  server.on('listening', setupConnectionsTracking);
  server.on('close', () => clearInterval(checkingTimer(server)));
}
