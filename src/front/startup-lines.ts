/**
 * @module The start-up lines a front reports once it is ready (the primary prints the first
 * front's): what it serves, with which workers, and how. Every line and its order is decided
 * here, from facts the start gathered; nothing here looks anything up.
 */
import type { ProxyTrust } from './proxy-trust.js';
import { describeStaticOffload, type StaticOffloadFacts } from './static/offload.js';

export interface FrontStartupFacts {
  /** `web2py in /srv/web2py`, `WSGI app mod:app from /srv`, the demo's reason. */
  appDetail: string;
  workers: {
    /** `--processes`: the whole server's. */
    processes: number;
    fronts: number;
    /** What each worker said when ready. */
    capacity: number;
    workerClass: string;
    pythonVersion: string;
    /** Why this class (`as asked`, `auto: ...`). */
    why: string;
  };
  /** web2py's static files; null for another application. */
  staticOffload: StaticOffloadFacts | null;
  reload: boolean;
  /** The listeners' `TLS: ...` line. */
  tlsLine: string;
  proxies: ProxyTrust | null;
  /** `--proxy-headers` was given (it needs `--trusted-proxies` to mean anything). */
  hasProxyHeaders: boolean;
  /** The access log's path (or `stdout`) and format; null when it is off. */
  accessLog: { file: string; format: string } | null;
}

export function frontStartupLines(facts: FrontStartupFacts): string[] {
  const { workers } = facts;
  const processes = `${workers.processes} process${workers.processes === 1 ? '' : 'es'}`;
  const fronts = workers.fronts === 1 ? '' : ` in ${workers.fronts} front processes`;
  const lines = [
    `application: ${facts.appDetail}`,
    `workers: ${processes} × ${workers.capacity} ready${fronts} (${workers.workerClass}, ${workers.why}; Python ${workers.pythonVersion})`,
  ];
  if (facts.staticOffload !== null) lines.push(describeStaticOffload(facts.staticOffload));
  if (facts.reload) lines.push('reload: on (workers restart when a Python file changes)');
  lines.push(facts.tlsLine);
  lines.push(facts.proxies === null
    ? `trusted proxies: none (forwarding headers are dropped${facts.hasProxyHeaders ? '; --proxy-headers needs --trusted-proxies' : ''})`
    : `trusted proxies: ${facts.proxies.description}`);
  // web2py's format in a file is the seed's line, unchanged: `access log: /srv/web2py/httpserver.log`.
  const { accessLog } = facts;
  lines.push(accessLog === null ? 'access log: off (-l to write httpserver.log, --access-log - for stdout)'
    : `access log: ${accessLog.file}${accessLog.format === 'web2py' && accessLog.file !== 'stdout' ? '' : ` (${accessLog.format} format)`}`);
  return lines;
}
