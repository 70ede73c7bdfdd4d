/**
 * @module Log events of the realtime hub (front/realtime/): on, refusals, slow consumers, Redis.
 *
 * Part of the one catalogue (events.ts); the specs say level, message and fields (event-spec.ts).
 */
import { defineEvents } from './event-spec.js';
import type { Logger } from './log.js';

export const realtimeEvents = defineEvents({
  'realtime.on': {
    level: 'info', message: 'realtime hub on (web2py websocket_messaging)', fields: ['prefix', 'port', 'signed', 'tokens', 'presence', 'redis'],
    doc: 'Written by the first front at start when a key, `--realtime-port` or `--realtime-prefix` turned the hub on. The key is never logged.',
  },
  'realtime.refused': {
    level: 'debug', message: 'realtime request refused', fields: ['reason', 'remoteAddr', 'status'],
    doc: 'A join or publish refused (bad signature, token, origin, size, full...); counted in `w2n_realtime_refused_total`.',
  },
  'realtime.slow_consumer': { level: 'debug', message: 'WebSocket clients read too slowly: closed 1013', fields: ['group', 'dropped'] },
  'realtime.redis_down': {
    level: 'warn', message: 'Redis unreachable: messages reach this instance only until it is back (reconnecting with backoff; logged once per outage)',
    fields: ['reason'],
  },
  'realtime.redis_up': { level: 'info', message: 'Redis connected: realtime messages reach every instance', fields: ['afterOutage'] },
});

const { emit } = realtimeEvents;

export const realtimeLogEvents = {
  realtimeOn(log: Logger, f: { prefix: string | null; port: number | null; signed: boolean; tokens: boolean; presence: boolean; redis: boolean }) {
    emit(log, 'realtime.on', f);
  },
  realtimeRefused(log: Logger, f: { reason: string; remoteAddr: string | undefined; status: number }) {
    emit(log, 'realtime.refused', f);
  },
  realtimeSlowConsumer(log: Logger, f: { group: string; dropped: number }) {
    emit(log, 'realtime.slow_consumer', f);
  },
  realtimeRedisDown(log: Logger, f: { reason: string }) {
    emit(log, 'realtime.redis_down', f);
  },
  realtimeRedisUp(log: Logger, f: { afterOutage: boolean }) {
    emit(log, 'realtime.redis_up', f);
  },
} as const;
