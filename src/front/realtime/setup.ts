/**
 * @module The realtime hub of one front, made from the configuration, and its hooks into the listeners.
 *
 * The hub is on when `--realtime-key`, `--realtime-key-file` or `--realtime-port` is given or
 * `--realtime-prefix` is set; otherwise paths under the prefix reach the application as any
 * other. On the main listeners it answers under the prefix (`/_ws/`; `/_ws` alone publishes,
 * as a `websocket_send` URL without the slash); on `--realtime-port` at web2py's own paths.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Config, SettingKey } from '../../config/settings.js';
import type { Source } from '../../config/load.js';
import { ServerError } from '../../errors/index.js';
import { LogEvents } from '../../observability/events.js';
import type { Logger } from '../../observability/log.js';
import type { Metrics } from '../../observability/metrics.js';
import type { ListenerSpec } from '../listen-plan.js';
import type { UpgradeTaker } from '../upgrade.js';
import { RealtimeHub } from './hub.js';
import { answer, serveHubRequest } from './publish.js';
import { RedisPeers } from './redis-peers.js';
import { SiblingPeers, type SiblingLink } from './sibling-peers.js';
import type { Peers, RealtimeEvent } from './events.js';
import { route } from './wire.js';

export interface Realtime {
  hub: RealtimeHub;
  /** The main listeners' hook: serves a hub request and returns true, or false for the application's. */
  serveUnderPrefix(req: IncomingMessage, res: ServerResponse, target: string, remoteAddr: string | undefined): boolean;
  /** Whether serveUnderPrefix would take this target (it is under the prefix). */
  isUnderPrefix(target: string): boolean;
  /** The request handler of `--realtime-port`. */
  servePort(req: IncomingMessage, res: ServerResponse): void;
  upgradesFor(spec: ListenerSpec): UpgradeTaker | null;
  /** An event the primary relayed from another front. */
  fromSibling(event: RealtimeEvent): void;
  siblings: SiblingPeers | null;
  /** The start-up line. */
  line: string;
}

export function isRealtimeOn(config: Readonly<Config>, sources: Readonly<Record<SettingKey, Source>>): boolean {
  return config.realtimeKey !== null || config.realtimeKeyFile !== null || config.realtimePort !== null || sources.realtimePrefix !== 'default';
}

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

export interface RealtimeContext {
  config: Readonly<Config>;
  sources: Readonly<Record<SettingKey, Source>>;
  log: Logger;
  metrics: Metrics;
  instanceId: string;
  /** The primary's channel, when there are other fronts. */
  siblingLink: SiblingLink | null;
  /** Whether this front logs the server-wide line (the first front). */
  isFirst: boolean;
  /** The applications' WebSockets open now: one limit for both (`maxWebSocketsOf`). */
  otherConnections: () => number;
}

/** WebSockets (the hub's and the applications') one front holds at most. */
export function maxWebSocketsOf(config: Readonly<Config>): number {
  return config.realtimeMaxConnections ?? Math.max(1, Math.floor(config.maxConnections / 2));
}

/** `--realtime-origins` as a set; null: any origin. */
export function originsOf(config: Readonly<Config>): ReadonlySet<string> | null {
  return config.realtimeOrigins === null ? null : new Set(config.realtimeOrigins.split(',').map((origin) => origin.trim()).filter(Boolean));
}

export function startRealtime(context: RealtimeContext): Realtime | null {
  const { config, sources, log, metrics } = context;
  if (!isRealtimeOn(config, sources)) return null;
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
