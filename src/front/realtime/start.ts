/**
 * @module The realtime hub of one front, made from the configuration, and its hooks into the listeners.
 *
 * The hub is on when `--realtime-key`, `--realtime-key-file` or `--realtime-port` is given or
 * `--realtime-prefix` is set; otherwise paths under the prefix reach the application as any
 * other. On the main listeners it answers under the prefix (`/_ws/`; `/_ws` alone publishes,
 * as a `websocket_send` URL without the slash); on `--realtime-port` at web2py's own paths.
 *
 * Imported by setup.ts only when the hub is on; `ioredis` (RedisPeers) is imported here only
 * with `--realtime-redis`, for the same reason (a front loads no code it does not run).
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Config } from '../../config/settings.js';
import { ServerError } from '../../errors/index.js';
import { LogEvents } from '../../observability/events.js';
import type { UpgradeTaker } from '../upgrade.js';
import { RealtimeHub } from './hub.js';
import { answer, serveHubRequest } from './publish.js';
import type { RedisPeers } from './redis-peers.js';
import { SiblingPeers } from './sibling-peers.js';
import type { Peers } from './events.js';
import { maxWebSocketsOf, originsOf, type Realtime, type RealtimeContext } from './setup.js';
import { route } from './wire.js';

function readKey(config: Readonly<Config>): string | null {
  if (config.realtimeKey !== null) return config.realtimeKey;
  if (config.realtimeKeyFile === null) return null;
  let key: string;
  try {
    key = readFileSync(config.realtimeKeyFile, 'utf8').trim();
  } catch (cause: unknown) {
    throw new ServerError('W2N_ERR_CONFIG_BAD_VALUE', { option: '--realtime-key-file', value: config.realtimeKeyFile, reason: 'cannot be read' }, { cause });
  }
  if (key === '') throw new ServerError('W2N_ERR_CONFIG_BAD_VALUE', { option: '--realtime-key-file', value: config.realtimeKeyFile, reason: 'the file is empty' });
  return key;
}

/** The hub, its peers and its hooks into the listeners (setup.ts decided that the hub is on). */
export async function createRealtime(context: RealtimeContext): Promise<Realtime> {
  const { config, log, metrics } = context;
  const key = readKey(config);
  let redis: RedisPeers | null = null;
  const hubRef: { hub: RealtimeHub | null } = { hub: null };
  const counters = metrics.realtime(() => hubRef.hub?.connectionCount ?? 0, () => (redis === null ? null : redis.state));
  const hub = new RealtimeHub({
    key, tokens: config.realtimeTokens, tokenTtlMs: config.realtimeTokenTtlMs,
    presence: config.realtimePresence === 'on', maxMessageBytes: config.realtimeMaxMessageBytes,
    maxConnections: maxWebSocketsOf(config), otherConnections: context.otherConnections,
    sendBufferBytes: config.realtimeSendBufferBytes, pingIntervalMs: config.realtimePingIntervalMs,
    origins: originsOf(config), compression: config.realtimeCompression === 'on', log, counters,
  });
  hubRef.hub = hub;
  const peers: Peers[] = [];
  const siblings = context.siblingLink === null ? null : new SiblingPeers(context.siblingLink);
  if (siblings !== null) peers.push(siblings);
  if (config.realtimeRedis !== null) {
    const { RedisPeers } = await import('./redis-peers.js');
    redis = new RedisPeers({
      url: config.realtimeRedis, instanceId: context.instanceId, maxStringLength: config.realtimeMaxMessageBytes * 2,
      log, counters, onEvent: (event) => hub.apply(event),
    });
    peers.push(redis);
  }
  hub.connectPeers(peers);

  const prefix = config.realtimePrefix === 'off' ? null : config.realtimePrefix;
  const bare = prefix?.slice(0, -1) ?? null;
  /** What follows the prefix in `target` (its query apart), or null when `target` is not under it. */
  const underPrefix = (target: string): { path: string; query: string } | null => {
    if (prefix === null) return null;
    const mark = target.indexOf('?');
    const path = mark === -1 ? target : target.slice(0, mark);
    const query = mark === -1 ? '' : target.slice(mark + 1);
    if (path === bare) return { path: '', query };
    return path.startsWith(prefix) ? { path: path.slice(prefix.length), query } : null;
  };
  const atRoot = (target: string): { path: string; query: string } => {
    const mark = target.indexOf('?');
    const path = mark === -1 ? target : target.slice(0, mark);
    return { path: path.replace(/^\/+/, ''), query: mark === -1 ? '' : target.slice(mark + 1) };
  };
  const takeUpgrade = (locate: (target: string) => { path: string; query: string } | null): UpgradeTaker => (req: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    const where = locate(req.url ?? '/');
    if (where === null) return false;
    hub.upgrade(req, socket, head, route(where.path));
    return true;
  };

  if (context.isFirst) {
    LogEvents.realtimeOn(log, {
      prefix, port: config.realtimePort, signed: key !== null, tokens: config.realtimeTokens,
      presence: config.realtimePresence === 'on', redis: config.realtimeRedis !== null,
    });
  }
  const where = [prefix === null ? null : `under ${prefix}`, config.realtimePort === null ? null : 'on --realtime-port'].filter(Boolean).join(' and ');
  return {
    hub, siblings,
    serveUnderPrefix: (req, res, target, remoteAddr) => {
      const at = underPrefix(target);
      if (at === null) return false;
      serveHubRequest(hub, req, res, at.path, at.query, remoteAddr);
      return true;
    },
    isUnderPrefix: (target) => underPrefix(target) !== null,
    servePort: (req, res) => {
      const at = atRoot(req.url ?? '/');
      try {
        serveHubRequest(hub, req, res, at.path, at.query, req.socket.remoteAddress);
      } catch {
        answer(res, 500, 'realtime hub error\n');
      }
    },
    upgradesFor: (spec) => (spec.kind === 'tcp' && spec.realtime === true ? takeUpgrade((target) => atRoot(target)) : takeUpgrade(underPrefix)),
    fromSibling: (event) => {
      counters.received('front');
      hub.apply(event);
    },
    line: `realtime: on ${where} (${key === null ? 'unsigned, loopback publishers only' : 'signed publishing'}`
      + `${config.realtimeTokens ? ', tokens' : ''}${config.realtimeRedis === null ? '' : ', Redis fan-out'})`,
  };
}
