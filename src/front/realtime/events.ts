/**
 * @module What the hub shares with the other fronts of its instance and with other instances.
 *
 * A message (or presence notice) for a group, and the token changes (armed, taken, freed), as
 * small JSON objects. The same shape travels over the primary's IPC channel and over Redis;
 * `readEvent` checks one that arrives, since neither a front nor a Redis peer is trusted to
 * send well-formed ones.
 */

export type RealtimeEvent =
  | { t: 'msg'; g: string; m: string }
  | { t: 'arm' | 'take' | 'free'; k: string };

/** Where the hub's events go to and come from besides this front: the sibling fronts, Redis. */
export interface Peers {
  /** Resolves once the event is on its way to every peer that can have it now. */
  send(event: RealtimeEvent): Promise<void>;
  close(): Promise<void>;
}

const isText = (value: unknown, maxLength: number): value is string => typeof value === 'string' && value.length <= maxLength;

/** An event, or null when `raw` is not one. `maxLength`: the longest string accepted. */
export function readEvent(raw: unknown, maxLength: number): RealtimeEvent | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const record = raw as Record<string, unknown>;
  switch (record.t) {
    case 'msg':
      return isText(record.g, maxLength) && isText(record.m, maxLength) ? { t: 'msg', g: record.g, m: record.m } : null;
    case 'arm':
    case 'take':
    case 'free':
      return isText(record.k, maxLength) ? { t: record.t, k: record.k } : null;
    default:
      return null;
  }
}
