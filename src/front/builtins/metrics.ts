/**
 * @module GET /metrics: Prometheus text format, for loopback clients only, and on the metrics listener.
 *
 * Metrics describe the server's insides (queue, workers, errors), so they are not for the
 * world: a request from any other address goes to the application like any other path. The
 * operator who wants them scraped from elsewhere names a listener of their own
 * (`--metrics-address`, as Granian's metrics server): there `/metrics` is for whoever reaches
 * it and nothing else is served (no application, no status page, no /health).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
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

function answerText(res: ServerResponse, status: number, body: string, headers: string[] = []): void {
  res.writeHead(status, ['Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(Buffer.byteLength(body)), 'Cache-Control', 'no-store', ...headers]);
  res.end(body);
}

/**
 * The metrics listener's only handler: GET or HEAD `/metrics` (a query string is ignored, as
 * Prometheus may add one), 405 for another method there, 404 for every other path.
 */
export function createMetricsListenerHandler(metrics: Metrics, serverHeader: string | null): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (serverHeader !== null) res.setHeader('Server', serverHeader);
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (path !== METRICS_PATH) {
      answerText(res, 404, 'not found: this listener serves /metrics only\n');
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      answerText(res, 405, 'method not allowed\n', ['Allow', 'GET, HEAD']);
    } else {
      answerMetrics(res, metrics);
    }
  };
}
