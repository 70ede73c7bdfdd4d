/**
 * @module A worker's stdout and stderr, cut into lines fit for the server log.
 *
 * What a worker prints is untrusted: an application can write hundreds of MiB without a newline
 * (readline would grow one string until V8's limit and crash the front) or terminal escapes and
 * NUL bytes meant to forge or hide log lines. So a line is cut at MAX_LINE_BYTES (the rest, up
 * to the next newline, is dropped and the cut is marked), and control characters are written
 * escaped (`\x1b`, `\x00`, `\u2028`...): one worker line is one log line, printable.
 *
 * A stderr line `w2n-event <name> <JSON object>` is an event the worker reports
 * (python/web2py_on_node_worker/events.py): parseWorkerEvent reads it, and the worker process
 * logs it as its own declared event when the name is one of WORKER_EVENTS.
 */
import type { Readable } from 'node:stream';
import { escapeControl } from '../observability/escape.js';

/** Longest line relayed; the rest of a longer line is dropped. */
export const MAX_LINE_BYTES = 16 * 1024;

const NEWLINE = 0x0a;

/** Calls `onLine` with each line of `source`: escaped, at most MAX_LINE_BYTES (then marked as cut). */
export function relayLines(source: Readable, onLine: (line: string) => void, maxLineBytes = MAX_LINE_BYTES): void {
  let parts: Buffer[] = [];
  let partBytes = 0;
  /** The current line was cut: drop bytes until its newline. */
  let isDropping = false;

  const emit = (isCut: boolean): void => {
    let bytes = Buffer.concat(parts, partBytes);
    parts = [];
    partBytes = 0;
    if (!isCut && bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, -1); // CRLF
    const text = escapeControl(bytes.toString('utf8'));
    onLine(isCut ? `${text} … [line cut at ${maxLineBytes} bytes]` : text);
  };

  const take = (chunk: Buffer): void => {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, start);
      const end = newline === -1 ? chunk.length : newline;
      if (!isDropping) {
        const room = maxLineBytes - partBytes;
        if (end - start > room) {
          parts.push(chunk.subarray(start, start + room));
          partBytes += room;
          emit(true);
          isDropping = true;
        } else if (end > start) {
          parts.push(chunk.subarray(start, end));
          partBytes += end - start;
        }
      }
      if (newline === -1) return;
      if (!isDropping) emit(false);
      isDropping = false;
      start = newline + 1;
    }
  };

  source.on('data', (chunk: Buffer) => take(chunk));
  source.on('end', () => {
    if (partBytes > 0 && !isDropping) emit(false);
  });
  source.on('error', () => undefined);
}

/** What opens a worker's event line (events.py PREFIX). */
export const WORKER_EVENT_PREFIX = 'w2n-event ';
/** The events a worker may report; events.py EVENTS is the same list (test/unit/protocol-constants.test.ts). */
export const WORKER_EVENTS = ['app.str_body'] as const;
export type WorkerEventName = (typeof WORKER_EVENTS)[number];

/**
 * A relayed line as a worker event: its name (one of WORKER_EVENTS) and its JSON fields; null
 * for any other line, which stays worker output. The line is untrusted: the caller checks each
 * field's type.
 */
export function parseWorkerEvent(line: string): { name: WorkerEventName; fields: Record<string, unknown> } | null {
  if (!line.startsWith(WORKER_EVENT_PREFIX)) return null;
  const space = line.indexOf(' ', WORKER_EVENT_PREFIX.length);
  if (space === -1) return null;
  const name = WORKER_EVENTS.find((known) => known === line.slice(WORKER_EVENT_PREFIX.length, space));
  if (name === undefined) return null;
  let fields: unknown;
  try {
    fields = JSON.parse(line.slice(space + 1));
  } catch {
    return null;
  }
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) return null;
  return { name, fields: fields as Record<string, unknown> };
}
