/**
 * @module The hub's HTTP side: publish and token POSTs, and answers to what is not a join.
 *
 * A body is read up to a bound (a form-encoded message may take three bytes per byte, plus the
 * signature and group); past it, 413 at once. A message longer than `--realtime-max-message`
 * is 413 too. Without `--realtime-key`, a POST is accepted only from a loopback client: an
 * unsigned hub open to the world would let anyone publish.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isLoopback } from '../builtins/metrics.js';
import { LogEvents } from '../../observability/events.js';
import type { RealtimeHub } from './hub.js';
import { checkPost, formFields, route, type Route } from './wire.js';

/** Room for the other fields of a POST besides the message. */
const FORM_OVERHEAD_BYTES = 4096;

/** Headers HTTP/2 forbids (connection-specific): sent on HTTP/1.1 only. */
const HTTP1_ONLY = new Set(['connection', 'upgrade']);

export function answer(res: ServerResponse, status: number, body = '', extra: string[] = []): void {
  if (res.headersSent || res.destroyed) return;
  const isHttp2 = 'stream' in res;
  const headers = ['Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(Buffer.byteLength(body)), 'Cache-Control', 'no-store'];
  for (let i = 0; i + 1 < extra.length; i += 2) if (!isHttp2 || !HTTP1_ONLY.has(extra[i]!.toLowerCase())) headers.push(extra[i]!, extra[i + 1]!);
  res.writeHead(status, headers);
  res.end(body);
}

/** Serves a hub request that is not an upgrade; `path` is what follows the prefix, `remoteAddr` the client. */
export function serveHubRequest(hub: RealtimeHub, req: IncomingMessage, res: ServerResponse, path: string, query: string, remoteAddr: string | undefined): void {
  const target: Route = route(path);
  const refuse = (status: number, reason: string, extra: string[] = []): void => {
    hub.options.counters.refused(reason);
    LogEvents.realtimeRefused(hub.options.log, { reason, remoteAddr, status });
    answer(res, status, `${reason}\n`, extra);
    req.resume();
  };
  if (target.kind === 'none') return refuse(404, 'no such realtime path');
  if (target.kind === 'join') return refuse(426, 'a WebSocket upgrade is needed here', ['Upgrade', 'websocket', 'Connection', 'Upgrade']);
  if (req.method !== 'POST') return refuse(405, 'POST only', ['Allow', 'POST']);
  if (hub.options.key === null && !isLoopback(remoteAddr)) return refuse(403, 'unsigned publishing from loopback only');
  const limit = hub.options.maxMessageBytes * 3 + FORM_OVERHEAD_BYTES;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return refuse(413, 'message too large', ['Connection', 'close']);
  const chunks: Buffer[] = [];
  let size = 0;
  let isRefused = false;
  req.on('data', (chunk: Buffer) => {
    if (isRefused) return;
    size += chunk.length;
    if (size > limit) {
      isRefused = true;
      refuse(413, 'message too large', ['Connection', 'close']);
      return;
    }
    chunks.push(chunk);
  });
  req.on('error', () => {});
  req.on('end', () => {
    if (isRefused) return;
    const fields = formFields(query, Buffer.concat(chunks).toString('utf8'));
    const checked = checkPost(fields, hub.options.key);
    if (!checked.ok) return refuse(checked.status, checked.reason === 'no message field' ? checked.reason : 'signature');
    if (Buffer.byteLength(checked.message) > hub.options.maxMessageBytes) return refuse(413, 'message too large');
    if (target.kind === 'publish') {
      hub.publish(checked.group, checked.message).then(() => answer(res, 200), () => answer(res, 200));
      return;
    }
    const armed = hub.armToken(checked.message);
    if (armed.outcome === 'in-use') return refuse(409, 'token in use');
    armed.shared.then(() => answer(res, 200), () => answer(res, 200));
  });
}
