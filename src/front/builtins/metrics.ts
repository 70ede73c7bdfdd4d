/**
 * @module GET /metrics: Prometheus text format, for loopback clients only.
 *
 * Metrics describe the server's insides (queue, workers, errors), so they are not for the
 * world: a request from any other address goes to the application like any other path.
 */
import type { ServerResponse } from 'node:http';
import type { Metrics } from '../../observability/metrics.js';

export const METRICS_PATH = '/metrics';

const loopback = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

export function isLoopback(address: string | undefined): boolean {
  return address !== undefined && loopback.test(address);
}

export function answerMetrics(res: ServerResponse, metrics: Metrics): void {
  metrics.render().then((body) => {
    res.writeHead(200, ['Content-Type', metrics.contentType, 'Content-Length', String(Buffer.byteLength(body)), 'Cache-Control', 'no-store']);
    res.end(body);
  }, () => {
    res.writeHead(500, ['Content-Type', 'text/plain', 'Content-Length', '22']);
    res.end('metrics unavailable\n\n');
  });
}
