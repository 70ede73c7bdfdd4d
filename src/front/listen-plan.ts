/**
 * @module Which listeners the configuration asks for: `-i/-p/-c/-k`, `--interfaces`, `--unix-socket`.
 *
 * - `--interfaces` replaces `-i`, `-p`, `-c` and `-k`, as in web2py.py ("this option is ignored
 *   if --interface is specified"); a note says so when any of them was given.
 * - `--unix-socket` alone replaces the default TCP listener (a server behind a local proxy
 *   usually wants no TCP port); with `-i`, `-p`, `-c` or `-k` set, or `--interfaces`, it is added to them.
 * TCP listeners come first, in the order given; the first one is the "main" address.
 * `--realtime-port` adds the realtime hub's own listener last, on the first TCP listener's
 * address and with its certificate (`realtime: true`: the hub alone answers there).
 * `--metrics-address` adds the metrics listener after it (`metrics: true`: plain HTTP, `/metrics`
 * alone answers there).
 */
import type { Config, SettingKey } from '../config/settings.js';
import type { Source } from '../config/load.js';
import { ServerError } from '../errors/index.js';
import type { TlsFiles } from './tls-files.js';

export type ListenerSpec =
  | { readonly kind: 'tcp'; readonly ip: string; readonly port: number; readonly tls: TlsFiles | null; readonly realtime?: true; readonly metrics?: true }
  | { readonly kind: 'unix'; readonly path: string; readonly mode: number };

export interface ListenPlan {
  readonly specs: readonly ListenerSpec[];
  /** Start-up lines worth saying (ignored flags). */
  readonly notes: readonly string[];
}

/** `-c`/`-k`: both or neither. */
function seedTls(config: Readonly<Config>): TlsFiles | null {
  const { sslCertificate, sslPrivateKey } = config;
  if (sslCertificate === null && sslPrivateKey === null) return null;
  if (sslCertificate === null || sslPrivateKey === null) {
    throw new ServerError('W2N_ERR_TLS', { reason: sslCertificate === null ? 'a private key (-k) needs a certificate (-c)' : 'a certificate (-c) needs a private key (-k)' });
  }
  return { certificateFile: sslCertificate, privateKeyFile: sslPrivateKey };
}

const replacedByInterfaces: readonly [SettingKey, string][] = [['ip', '-i'], ['port', '-p'], ['sslCertificate', '-c'], ['sslPrivateKey', '-k']];

export function planListeners(config: Readonly<Config>, sources: Readonly<Record<SettingKey, Source>>): ListenPlan {
  const specs: ListenerSpec[] = [];
  const notes: string[] = [];
  if (config.interfaces !== null) {
    for (const spec of config.interfaces) {
      const tls = spec.keyFile !== null && spec.certFile !== null
        ? { certificateFile: spec.certFile, privateKeyFile: spec.keyFile, caFile: spec.caFile }
        : null;
      specs.push({ kind: 'tcp', ip: spec.ip, port: spec.port, tls });
    }
    const ignored = replacedByInterfaces.filter(([key]) => sources[key] !== 'default').map(([, flag]) => flag);
    if (ignored.length > 0) notes.push(`note: ${ignored.join(', ')} ignored: --interfaces names the listeners (as web2py.py does)`);
  } else {
    const isTcpAsked = config.unixSocket === null || replacedByInterfaces.some(([key]) => sources[key] !== 'default');
    if (isTcpAsked) specs.push({ kind: 'tcp', ip: config.ip, port: config.port, tls: seedTls(config) });
  }
  if (config.unixSocket !== null) specs.push({ kind: 'unix', path: config.unixSocket, mode: config.unixSocketMode });
  if (config.realtimePort !== null) {
    const main = specs.find((spec) => spec.kind === 'tcp');
    specs.push({ kind: 'tcp', ip: main?.ip ?? config.ip, port: config.realtimePort, tls: main?.tls ?? null, realtime: true });
  }
  if (config.metricsAddress !== null) specs.push({ kind: 'tcp', ip: config.metricsAddress.ip, port: config.metricsAddress.port, tls: null, metrics: true });
  return { specs, notes };
}

/** A listener that serves the application (not the realtime hub's or the metrics' own port). */
export function isAppListener(spec: ListenerSpec): boolean {
  return spec.kind === 'unix' || (spec.realtime !== true && spec.metrics !== true);
}

/** Where a listener binds: a TCP address, or a Unix socket path. */
export type BindTarget = { ip: string; port: number } | { path: string };

/** `127.0.0.1:8000`, `[::1]:8000`, `unix:/run/app.sock`: how addresses appear in messages. */
export function formatBindTarget(target: BindTarget): string {
  if ('path' in target) return `unix:${target.path}`;
  return `${target.ip.includes(':') ? `[${target.ip}]` : target.ip}:${target.port}`;
}
