/**
 * @module The server log: one pino root logger, written to stderr as JSON lines or as text.
 *
 * The server log is for operators (lifecycle, failures, Python tracebacks); the access log is a
 * separate stream in web2py's format (access-log.ts). Every line carries a stable `event` name
 * (events.ts), so tests and log pipelines match on names, not prose. The admin password is never
 * passed to a logger; `redact` is the second line of defence for fields that might hold secrets.
 */
import { pino, type Logger, type DestinationStream, type Level } from 'pino';

export type { Logger };
export type LogFormat = 'text' | 'json';
export type LogLevelSetting = Level | 'silent';

export interface LogOptions {
  level: LogLevelSetting;
  format: LogFormat;
  /** Where lines go; stderr unless a test captures them. */
  destination?: { write(line: string): unknown };
}

const levelNames: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const standardKeys = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'event', 'component', 'traceback']);

const UNSAFE_IN_TEXT = /[\s"=\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const INVISIBLE = /[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * A field's value in a text line: quoted (JSON) when it holds anything that could end it or start
 * another (space, quote, `=`) or any control or invisible character, so no value forges a field
 * or a line.
 */
function formatValue(value: unknown): string {
  if (typeof value !== 'string') return JSON.stringify(value);
  if (!UNSAFE_IN_TEXT.test(value)) return value;
  // JSON.stringify escapes C0 controls, quotes and backslashes; these it leaves raw.
  return JSON.stringify(value).replace(INVISIBLE, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}


/** Turns one pino JSON line into `2026-11-24 12:00:00 INFO  [pool] worker.ready msg k=v`. */
export function formatTextLine(jsonLine: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const time = new Date(typeof record.time === 'number' ? record.time : Date.now());
  const stamp = `${time.getFullYear()}-${String(time.getMonth() + 1).padStart(2, '0')}-${String(time.getDate()).padStart(2, '0')} `
    + `${String(time.getHours()).padStart(2, '0')}:${String(time.getMinutes()).padStart(2, '0')}:${String(time.getSeconds()).padStart(2, '0')}`;
  const level = (levelNames[record.level as number] ?? String(record.level)).padEnd(5);
  const component = typeof record.component === 'string' ? ` [${record.component}]` : '';
  const event = typeof record.event === 'string' ? ` ${record.event}` : '';
  const message = typeof record.msg === 'string' && record.msg !== '' ? ` ${record.msg}` : '';
  const fields = Object.entries(record)
    .filter(([key]) => !standardKeys.has(key))
    .map(([key, value]) => ` ${key}=${formatValue(value)}`)
    .join('');
  const traceback = typeof record.traceback === 'string' ? `\n${record.traceback.trimEnd()}` : '';
  return `${stamp} ${level}${component}${event}${message}${fields}${traceback}\n`;
}

class TextDestination implements DestinationStream {
  constructor(private readonly target: { write(line: string): unknown }) {}
  write(line: string): void {
    this.target.write(formatTextLine(line));
  }
}

export function createLogger(options: LogOptions): Logger {
  const target = options.destination ?? process.stderr;
  const destination: DestinationStream = options.format === 'text'
    ? new TextDestination(target)
    : { write: (line: string) => { target.write(line); } };
  return pino({
    level: options.level,
    base: { pid: process.pid },
    redact: { paths: ['password', '*.password', 'headers.authorization', 'headers.cookie'], censor: '***' },
  }, destination);
}
