/**
 * @module bench/scenarios
 * What is measured: a scenario is one app and URL plus an ordered list of loads, all run on
 * one server instance (heaviest last, so a server that falls over does so after the lighter
 * figures are in). To add a scenario: append to {@link SCENARIOS}; a new kind of load needs a
 * runner in run.ts and a table in report.ts.
 */

/** Keep-alive HTTP load by wrk (-t1), with the newcomer probe running alongside. */
export interface WrkLoad {
  kind: 'wrk';
  conns: number;
  /** wrk --timeout: slower answers count as timeout errors, not as latency. */
  timeoutS: number;
}

/** N idle keep-alive connections (one GET each, then silence): memory and holding power. */
export interface IdleLoad {
  kind: 'idle';
  conns: number;
  /** How long after the connections settle we count again what is still held. */
  holdS: number;
}

export type Load = WrkLoad | IdleLoad;

export interface Scenario {
  name: string;
  about: string;
  path: string;
  loads: Load[];
  /** Servers run when --servers is not given. */
  defaultServers: string[];
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'hello',
    about: 'hello world (13-byte body), keep-alive',
    path: '/',
    loads: [
      { kind: 'wrk', conns: 50, timeoutS: 2 },
      { kind: 'wrk', conns: 1000, timeoutS: 2 },
    ],
    defaultServers: ['ours', 'ours-thread', 'gevent', 'gunicorn', 'gunicorn-gevent', 'uwsgi', 'node'],
  },
  {
    name: 'idle',
    about: 'idle keep-alive connections: held, and memory of the front process',
    path: '/',
    loads: [{ kind: 'idle', conns: 5000, holdS: 10 }],
    // raw Node.js is the floor the goals refer to (≤ 11 kB per connection)
    defaultServers: ['ours', 'node'],
  },
];

export function loadLabel(load: Load): string {
  return load.kind === 'wrk' ? `wrk -c${load.conns}` : `${load.conns} idle`;
}

/** The scenario's loads with other connection counts (--connections), same kind and settings. */
export function withConnections(s: Scenario, conns: number[]): Scenario {
  const first = s.loads[0];
  if (!first || conns.length === 0) return s;
  return { ...s, loads: conns.map((c) => ({ ...first, conns: c })) };
}
