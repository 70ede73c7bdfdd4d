/**
 * @module The status page's recent events: the last lines worth an operator's eye.
 *
 * Fed by the log catalogue's observer (event-spec.ts), so an event is recorded exactly when its
 * line is written: every warning and error (worker deaths, hung workers, 504s, refused reloads)
 * and the routine changes an operator looks for (recycles, reloads, fronts and schedulers
 * starting). Requests that merely failed (500s) are left out: the access log and the charts
 * have those, and a burst of them would push everything else out.
 */
import type { EventLevel } from './event-spec.js';
import { EVENTS_SHOWN, type EventRow } from './status-data.js';

const ROUTINE = /^(worker\.(recycled|recycling)|reload\.(started|finished)|server\.draining|front\.(started|exited)|scheduler\.(started|exited))$/;
const LEFT_OUT = /^(request\.failed|request\.cancelled|worker\.output|scheduler\.output|client\.)/;
/** Fields not shown in the detail: long, or said by the event's name. */
const HIDDEN_FIELDS = new Set(['traceback', 'event', 'line', 'component']);
const DETAIL_MAX = 300;

export class RecentEvents {
  private readonly rows: EventRow[] = [];

  record(name: string, level: EventLevel, fields: Readonly<Record<string, unknown>>): void {
    if (LEFT_OUT.test(name)) return;
    if (level !== 'warn' && level !== 'error' && level !== 'fatal' && !ROUTINE.test(name)) return;
    const detail = Object.entries(fields)
      .filter(([key, value]) => !HIDDEN_FIELDS.has(key) && value !== undefined)
      .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
      .join(' ');
    this.rows.push({ time: Date.now(), name, detail: detail.length > DETAIL_MAX ? `${detail.slice(0, DETAIL_MAX)}…` : detail });
    if (this.rows.length > EVENTS_SHOWN) this.rows.shift();
  }

  list(): EventRow[] {
    return [...this.rows];
  }
}
