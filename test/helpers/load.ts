/**
 * A bounded keep-alive load: `concurrency` loops of GETs until `until()` says stop; counts answers
 * by status. `answered` (optional) counts each answer as it comes, so a test can await "the load
 * is under way" (answered.more(n)) instead of sleeping.
 */
import { Agent, request } from 'node:http';
import type { Tally } from './waits.js';

export interface LoadResult {
  statuses: Map<number, number>;
  /** Requests that got no HTTP answer at all (connection refused or cut). */
  failures: number;
  bodies: Set<string>;
}

export async function runLoad(port: number, path: string, concurrency: number, until: () => boolean, maxRequests = 100_000, answered?: Tally): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const result: LoadResult = { statuses: new Map(), failures: 0, bodies: new Set() };
  let sent = 0;
  const one = (): Promise<void> => new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => {
        result.statuses.set(res.statusCode ?? 0, (result.statuses.get(res.statusCode ?? 0) ?? 0) + 1);
        result.bodies.add(body);
        answered?.add();
        resolve();
      });
      res.on('error', () => { result.failures += 1; resolve(); });
    });
    req.on('error', () => { result.failures += 1; resolve(); });
    req.end();
  });
  const loop = async (): Promise<void> => {
    while (!until() && sent < maxRequests) {
      sent += 1;
      await one();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  agent.destroy();
  return result;
}
