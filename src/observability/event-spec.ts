/**
 * @module How a log event is declared and written: the shape of one catalogue entry, and `emit`.
 *
 * An entry says the event's level, its fixed message and its fields; `emit` writes exactly that
 * (the types refuse a field the entry does not declare, or one it declares and the caller
 * left out), so docs/log-events.md, generated from the entries, is the truth about every line.
 * Events that log one of our errors take their level from the error table (`level: 'code'`):
 * the table's `logLevel` is what the log does.
 */
import { errorTable, type ErrorCode } from '../errors/index.js';
import type { Logger } from './log.js';

export type EventLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug';

export interface EventSpec {
  /** `code`: the level the error table gives the line's `code` field. */
  level: EventLevel | 'code';
  /** The message: fixed text, or (`{ field }`) a field's value, for lines relayed as they are. */
  message: string | { field: string };
  /** The fields of the line, besides `event` (and `pid`, `component`... from the logger). */
  fields: readonly string[];
  /** When the line is written, where that is not plain from the message. */
  doc?: string;
}

export type EventSpecs = Readonly<Record<string, EventSpec>>;

type FieldName<S extends EventSpec> = S['fields'][number];

/** The fields a caller passes: every declared one (undefined allowed), nothing else. */
export type EventFields<S extends EventSpec, F> = F & Record<FieldName<S>, unknown> & Record<Exclude<keyof F, FieldName<S>>, never>;

/** The level written for `spec`: its own, or the error table's for the line's code. */
export function levelOf(spec: EventSpec, fields: Readonly<Record<string, unknown>>): EventLevel {
  if (spec.level !== 'code') return spec.level;
  const code = fields.code;
  return typeof code === 'string' && Object.hasOwn(errorTable, code) ? errorTable[code as ErrorCode].logLevel : 'error';
}

/**
 * An area's events (server, pool, request...): the specs, and an emit bound to them.
 *
 * @example
 * const pool = defineEvents({ 'worker.spawned': { level: 'debug', message: 'worker spawned', fields: ['workerId', 'pid'] } });
 * pool.emit(log, 'worker.spawned', { workerId: 1, pid: 42 });
 */
export function defineEvents<const S extends EventSpecs>(specs: S) {
  return {
    specs,
    emit<N extends keyof S & string, F extends object>(log: Logger, name: N, fields: EventFields<S[N], F>, levelOverride?: EventLevel): void {
      const spec: EventSpec = specs[name]!;
      const record = fields as Record<string, unknown>;
      const level = levelOverride ?? levelOf(spec, record);
      if (typeof spec.message === 'string') {
        log[level]({ event: name, ...record }, spec.message);
        return;
      }
      const { [spec.message.field]: text, ...rest } = record;
      log[level]({ event: name, ...rest }, typeof text === 'string' ? text : String(text));
    },
  };
}
