/**
 * @module The catalogue of server-log events: one function per line the server writes.
 *
 * Each event has a stable dotted name, a level, a fixed message and fixed fields, so a line means
 * the same thing wherever it is written (fastify's log-controller.js is the model). Code never
 * calls logger.info(...) itself: it calls one of these (lint refuses the rest, eslint.config.js).
 * The entries are split by area (events-server.ts, events-pool.ts, events-request.ts,
 * events-realtime.ts) and joined here; docs/log-events.md is generated from `eventCatalogue` (`npm run docs`).
 */
import type { EventSpec } from './event-spec.js';
import { poolEvents, poolLogEvents } from './events-pool.js';
import { requestEvents, requestLogEvents } from './events-request.js';
import { serverEvents, serverLogEvents } from './events-server.js';
import { realtimeEvents, realtimeLogEvents } from './events-realtime.js';

export const LogEvents = { ...serverLogEvents, ...poolLogEvents, ...requestLogEvents, ...realtimeLogEvents } as const;

/** Every event, by name, with its level, message and fields. */
export const eventCatalogue: Readonly<Record<string, EventSpec>> = (() => {
  const areas = [serverEvents.specs, poolEvents.specs, requestEvents.specs, realtimeEvents.specs];
  const all: Record<string, EventSpec> = {};
  for (const specs of areas) {
    for (const [name, spec] of Object.entries(specs)) {
      if (name in all) throw new Error(`log event ${name} is declared twice`);
      all[name] = spec;
    }
  }
  return all;
})();

export type { EventSpec };
