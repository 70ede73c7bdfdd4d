/**
 * @module GET /health: readiness for load balancers and orchestrators.
 *
 * 200 once workers are ready; 503 while starting or stopping, so a balancer stops sending
 * traffic before a graceful stop closes the listener.
 */
import type { ServerResponse } from 'node:http';

export const HEALTH_PATH = '/health';

export function answerHealth(res: ServerResponse, isReady: boolean): void {
  const body = isReady ? 'OK\n' : 'Service Unavailable: not ready\n';
  res.writeHead(isReady ? 200 : 503, [
    'Content-Type', 'text/plain; charset=utf-8',
    'Content-Length', String(Buffer.byteLength(body)),
    'Cache-Control', 'no-store',
  ]);
  res.end(body);
}
