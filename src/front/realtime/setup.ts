/**
 * @module The realtime hub of one front, made from the configuration, and its hooks into the listeners.
 *
 * The hub is on when `--realtime-key`, `--realtime-key-file` or `--realtime-port` is given or
 * `--realtime-prefix` is set; otherwise paths under the prefix reach the application as any
 * other. On the main listeners it answers under the prefix (`/_ws/`; `/_ws` alone publishes,
 * as a `websocket_send` URL without the slash); on `--realtime-port` at web2py's own paths.
 *
 * This module is all of the hub that a front loads while the hub is off: startRealtime imports
 * the hub (start.ts and what it imports: `ws`, the hub's code, `ioredis` with `--realtime-redis`)
 * only when the configuration turns it on, once, at start-up, before the listeners open, so a
 * front without it carries none of that code (README: "A front that loads less").
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config, SettingKey } from '../../config/settings.js';
import type { Source } from '../../config/load.js';
import type { Logger } from '../../observability/log.js';
import type { Metrics } from '../../observability/metrics.js';
import type { ListenerSpec } from '../listen-plan.js';
import type { UpgradeTaker } from '../upgrade.js';
import type { RealtimeHub } from './hub.js';
import type { SiblingPeers, SiblingLink } from './sibling-peers.js';
import type { RealtimeEvent } from './events.js';

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

/** The hub when the configuration turns it on (imported now, once), else null. */
export async function startRealtime(context: RealtimeContext): Promise<Realtime | null> {
  if (!isRealtimeOn(context.config, context.sources)) return null;
  const { createRealtime } = await import('./start.js');
  return createRealtime(context);
}
