/**
 * @module Setting validators: parse one raw value (argv/env string, CLI flag presence, or a JSON
 * value from the config file) into a typed value, range-checked, or reject it with a reason.
 *
 * A validator knows nothing of where the value came from: it throws `InvalidValueError` with a
 * short reason ("not an integer"), and config/load.ts adds the option name and the source. Each
 * validator also carries what `--help` and docs/settings.md need (metavar, description) and its
 * `kind`, which tells util.parseArgs whether the flag takes a value.
 *
 * A value with a unit is kept in the unit the code uses, converted here once: `durationMs()`
 * reads seconds as the user writes them (`--timeout 2.5`) and keeps 2500 ms; `megabytes()`
 * reads MB and keeps bytes. Such a validator names its unit, and `Config` puts it at the end of
 * the setting's name (`timeout` → `config.timeoutMs`), so the unit is read where it is used.
 */

import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { BlockList, isIP, SocketAddress } from 'node:net';
import { resolve } from 'node:path';

/** How a flag appears on the command line: a bare switch or a switch followed by a value. */
export type ValueKind = 'boolean' | 'string';

/** What a validator may consult besides the raw value. */
export interface ValidationContext {
  /** Relative paths are resolved against this folder. */
  readonly cwd: string;
}

/** The unit a value is kept in; `Config` appends it to the setting's name (`maxBody` → `maxBodyBytes`). */
export type Unit = 'Ms' | 'Bytes';

export interface Validator<T> {
  readonly kind: ValueKind;
  /** The unit the parsed value is in; absent for values without one. */
  readonly unit?: Unit;
  /** Placeholder for the value in --help (`N`, `SECONDS`, `FILE`); '' for switches. */
  readonly metavar: string;
  /** Human description of accepted values, for --help and the docs ("integer from 0 to 65535"). */
  readonly description: string;
  /**
   * @param raw a string (argv, env), `true` (a bare CLI switch) or any JSON value (config file).
   * @throws InvalidValueError when the value is rejected.
   */
  parse(raw: unknown, context: ValidationContext): T;
  /** Shows a value the way a user would type it (docs defaults, messages). */
  format(value: T): string;
  /**
   * The value as the user gives it in the config file (JSON; `--print-config`), when that is
   * not the value itself: seconds for a value kept in ms.
   */
  toUser?(value: T): unknown;
}

/** A validator whose values are kept in `unit`. */
export interface MeasuredValidator<T, U extends Unit> extends Validator<T> {
  readonly unit: U;
}

/** The value type a validator produces. */
export type ValueOf<V> = V extends Validator<infer T> ? T : never;

/** A rejected value; `reason` is a short lowercase phrase, without the value or the option. */
export class InvalidValueError extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.name = 'InvalidValueError';
    this.reason = reason;
  }
}

function reject(reason: string): never {
  throw new InvalidValueError(reason);
}

interface Range {
  readonly min?: number;
  readonly max?: number;
}

function describeRange(noun: string, { min, max }: Range): string {
  if (min !== undefined && max !== undefined) return `${noun} from ${min} to ${max}`;
  if (min !== undefined) return `${noun} ≥ ${min}`;
  if (max !== undefined) return `${noun} ≤ ${max}`;
  return noun;
}

function checkRange(value: number, { min, max }: Range): number {
  if (min !== undefined && value < min) reject(`must be at least ${min}`);
  if (max !== undefined && value > max) reject(`must be at most ${max}`);
  return value;
}

const INTEGER_TEXT = /^[+-]?\d+$/;
const DECIMAL_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A whole number within `min`..`max`; accepts "8000" or the JSON number 8000. */
export function int(range: Range = {}): Validator<number> {
  return {
    kind: 'string',
    metavar: 'N',
    description: describeRange('integer', range),
    parse(raw) {
      const value = typeof raw === 'string' && INTEGER_TEXT.test(raw) ? Number(raw) : raw;
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) reject('not an integer');
      return checkRange(value, range);
    },
    format: (value) => String(value),
  };
}

/** A whole number within `min`..`max`, or the word `auto` (resolved where the machine is known). */
export function intOrAuto(range: Range = {}): Validator<number | 'auto'> {
  const whole = int(range);
  return {
    kind: 'string',
    metavar: 'N|auto',
    description: `${whole.description}, or auto`,
    parse(raw, context) {
      return raw === 'auto' ? 'auto' : whole.parse(raw, context);
    },
    format: (value) => String(value),
  };
}

/** Node's timers overflow past 2^31-1 ms; a longer duration would silently fire at once. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/** Seconds → ms as the timers take them; never rounded, so no positive duration becomes 0 (= off). */
const secondsToMs = (seconds: number): number => seconds * 1000;
/** ms → the seconds the user wrote: 15 significant digits drop the float noise of × 1000 / 1000. */
const msToSeconds = (ms: number): number => Number((ms / 1000).toPrecision(15));

/**
 * A duration, given in seconds with decimals allowed ("0.5", "30"), kept in milliseconds.
 * `range` is in seconds, as the user writes the value.
 */
export function durationMs(range: Range = {}): MeasuredValidator<number, 'Ms'> {
  const checked = { min: range.min ?? 0, max: range.max ?? MAX_TIMER_SECONDS };
  return {
    kind: 'string',
    unit: 'Ms',
    metavar: 'SECONDS',
    description: describeRange('seconds', { min: checked.min, max: range.max }),
    parse(raw) {
      const value = typeof raw === 'string' && DECIMAL_TEXT.test(raw) ? Number(raw) : raw;
      if (typeof value !== 'number' || !Number.isFinite(value)) reject('not a number of seconds');
      return secondsToMs(checkRange(value, checked));
    },
    format: (ms) => String(msToSeconds(ms)),
    toUser: msToSeconds,
  };
}

const MEGABYTE = 1024 * 1024;

/** A whole number of megabytes (MiB, as /proc and `ps` count them), kept in bytes; `range` is in MB. */
export function megabytes(range: Range = {}): MeasuredValidator<number, 'Bytes'> {
  const whole = int(range);
  return {
    kind: 'string',
    unit: 'Bytes',
    metavar: 'MB',
    description: whole.description,
    parse: (raw, context) => whole.parse(raw, context) * MEGABYTE,
    format: (bytes) => String(bytes / MEGABYTE),
    toUser: (bytes) => bytes / MEGABYTE,
  };
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

/** A switch: as a CLI flag its presence means true; as text true/false, 1/0, yes/no, on/off. */
export function bool(): Validator<boolean> {
  return {
    kind: 'boolean',
    metavar: '',
    description: 'boolean (true/false, 1/0, yes/no, on/off)',
    parse(raw) {
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string') {
        const word = raw.toLowerCase();
        if (TRUE_WORDS.has(word)) return true;
        if (FALSE_WORDS.has(word)) return false;
      }
      return reject('not a boolean: use true/false, 1/0, yes/no or on/off');
    },
    format: (value) => String(value),
  };
}

interface TextOptions {
  readonly minLength?: number;
  /** The whole value must match. */
  readonly pattern?: RegExp;
  /** Says what `pattern` wants, e.g. "module:callable". */
  readonly expected?: string;
  readonly metavar?: string;
}

/** Free text, optionally non-empty or matching a pattern. */
export function str(options: TextOptions = {}): Validator<string> {
  const { minLength = 0, pattern, expected } = options;
  return {
    kind: 'string',
    metavar: options.metavar ?? 'TEXT',
    description: expected ?? (minLength > 0 ? 'non-empty text' : 'text'),
    parse(raw) {
      if (typeof raw !== 'string') reject('not a string');
      if (raw.length < minLength) reject(minLength === 1 ? 'must not be empty' : `must be at least ${minLength} characters`);
      if (pattern !== undefined && !pattern.test(raw)) reject(`expected ${expected ?? pattern.source}`);
      return raw;
    },
    format: (value) => value,
  };
}

/** One of a fixed set of words; the value type is their union. */
export function enumOf<const T extends readonly string[]>(values: T): Validator<T[number]> {
  const allowed: ReadonlySet<string> = new Set(values);
  return {
    kind: 'string',
    metavar: values.join('|'),
    description: `one of ${values.join(', ')}`,
    parse(raw) {
      if (typeof raw !== 'string' || !allowed.has(raw)) reject(`must be one of ${values.join(', ')}`);
      return raw as T[number];
    },
    format: (value) => value,
  };
}

interface PathOptions {
  /** The path must exist when the config is loaded. */
  readonly mustExist?: boolean;
  /** This user must be able to read it (checked when it exists). */
  readonly readable?: boolean;
  /** true: it must be a folder; false/absent: it must be a file (checked when it exists). */
  readonly dir?: boolean;
}

/** A file or folder path, made absolute against the context's cwd. */
export function path(options: PathOptions = {}): Validator<string> {
  const { mustExist = false, readable = false, dir = false } = options;
  const noun = dir ? 'folder' : 'file';
  const adjectives = [mustExist ? 'existing' : '', readable ? 'readable' : ''].filter(Boolean).join(', ');
  const article = adjectives.startsWith('e') ? 'an' : 'a';
  return {
    kind: 'string',
    metavar: dir ? 'DIR' : 'FILE',
    description: `path to ${article} ${adjectives === '' ? '' : `${adjectives} `}${noun}`,
    parse(raw, { cwd }) {
      if (typeof raw !== 'string') reject('not a path');
      if (raw === '') reject('must not be empty');
      const absolute = resolve(cwd, raw);
      let isDirectory: boolean;
      try {
        isDirectory = statSync(absolute).isDirectory();
      } catch {
        // Missing (or unreachable): fine unless it must exist; whoever uses it creates it.
        if (mustExist) reject(`no such ${noun}`);
        return absolute;
      }
      if (dir && !isDirectory) reject('not a folder');
      if (!dir && isDirectory) reject('is a folder, not a file');
      if (readable) {
        try {
          accessSync(absolute, fsConstants.R_OK);
        } catch {
          reject('not readable by this user');
        }
      }
      return absolute;
    },
    format: (value) => value,
  };
}

const SIZE_TEXT = /^(\d+)(?:([kmg])(?:i?b)?|b)?$/i;
const SIZE_UNITS: Readonly<Record<string, number>> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A size in bytes: an integer, or with a binary suffix ("16k" = 16384, "1m", "1g"). */
export function bytes(range: Range = {}): MeasuredValidator<number, 'Bytes'> {
  return {
    kind: 'string',
    unit: 'Bytes',
    metavar: 'SIZE',
    description: describeRange('bytes (or 16k, 1m, 1g)', range),
    parse(raw) {
      let value: number | undefined;
      if (typeof raw === 'number' && Number.isSafeInteger(raw)) value = raw;
      const match = typeof raw === 'string' ? SIZE_TEXT.exec(raw) : null;
      if (match !== null) value = Number(match[1]) * (SIZE_UNITS[match[2]?.toLowerCase() ?? ''] ?? 1);
      if (value === undefined || !Number.isSafeInteger(value)) reject('not a size (an integer, or with k, m or g)');
      return checkRange(value, range);
    },
    format: (value) => {
      for (const [suffix, unit] of Object.entries(SIZE_UNITS).reverse()) {
        if (value >= unit && value % unit === 0) return `${value / unit}${suffix}`;
      }
      return String(value);
    },
  };
}

/**
 * Also accepts "none": JSON `null` in the config file, or an empty string from argv/env
 * (the seed's own "not given" value for -c/-k).
 */
export function nullable<T, U extends Unit>(inner: MeasuredValidator<T, U>): MeasuredValidator<T | null, U>;
export function nullable<T>(inner: Validator<T>): Validator<T | null>;
export function nullable<T>(inner: Validator<T>): Validator<T | null> {
  return {
    kind: inner.kind,
    ...(inner.unit === undefined ? {} : { unit: inner.unit }),
    metavar: inner.metavar,
    description: `${inner.description}, or none`,
    parse(raw, context) {
      if (raw === null || raw === '') return null;
      return inner.parse(raw, context);
    },
    format: (value) => (value === null ? 'none' : inner.format(value)),
    toUser: (value) => (value === null || inner.toUser === undefined ? value : inner.toUser(value)),
  };
}

/** A file mode in octal, as chmod takes it: "0660", "660" or "0o660" (JSON: the same as a string). */
export function fileMode(): Validator<number> {
  return {
    kind: 'string',
    metavar: 'MODE',
    description: 'octal file mode (e.g. 0660)',
    parse(raw) {
      const match = typeof raw === 'string' ? /^(?:0o?)?([0-7]{3})$/i.exec(raw) : null;
      if (match === null) reject('not an octal file mode such as 0660');
      return parseInt(match[1]!, 8);
    },
    format: (value) => `0${value.toString(8).padStart(3, '0')}`,
  };
}

/** Comma-separated text (argv, env) or a JSON array of strings (config file) → trimmed, non-empty items. */
function listItems(raw: unknown): string[] {
  if (typeof raw === 'string') return raw.split(',').map((item) => item.trim()).filter((item) => item !== '');
  if (Array.isArray(raw) && raw.every((item) => typeof item === 'string')) {
    return raw.map((item: string) => item.trim()).filter((item) => item !== '');
  }
  return reject('not a list: give comma-separated text, or a JSON array of strings in the config file');
}

/** The `unix` keyword of `cidrList`: whoever connects over `--unix-socket` (it has no address to match). */
export const UNIX_PEERS = 'unix';

/** What the `loopback` keyword of `cidrList` stands for. */
export const LOOPBACK_CIDRS: readonly string[] = ['127.0.0.0/8', '::1/128'];

/**
 * One address or CIDR → `address/prefix` as Node prints it (`10.0.0.1` → `10.0.0.1/32`,
 * `2001:DB8::/32` → `2001:db8::/32`). net.BlockList is the judge of the address: it is what the
 * front matches peers with (front/proxy-trust.ts), so nothing accepted here can fail there.
 */
function parseCidr(text: string): string {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0 || address.includes('%')) reject(`"${text}" is not an IPv4 or IPv6 address or CIDR`);
  const bits = family === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(bits) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) reject(`"${text}": the prefix length must be 0 to ${bits}`);
  const prefix = Number(prefixText);
  // Trusting everyone makes the left-most X-Forwarded-For entry, which the client writes, the client.
  if (prefix === 0) reject(`"${text}" trusts every address, so any client could choose its own address; list the proxies' addresses`);
  const list = new BlockList();
  try {
    list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  } catch {
    reject(`"${text}" is not an IPv4 or IPv6 address or CIDR`);
  }
  return `${new SocketAddress({ address, family: family === 4 ? 'ipv4' : 'ipv6' }).address}/${prefix}`;
}

/**
 * A list of IPv4/IPv6 addresses and CIDRs (`10.0.0.0/8, 2001:db8::1`), plus the keywords `loopback`
 * (127.0.0.0/8 and ::1) and `unix` (kept as is); an empty text or array is the empty list. Addresses
 * come out as `address/prefix`.
 */
export function cidrList(): Validator<readonly string[]> {
  return {
    kind: 'string',
    metavar: 'CIDR,...',
    description: 'comma-separated IPv4/IPv6 addresses or CIDRs, `loopback` or `unix` (a JSON array in the config file)',
    parse(raw) {
      const out = new Set<string>();
      for (const item of listItems(raw)) {
        const word = item.toLowerCase();
        if (word === UNIX_PEERS) out.add(UNIX_PEERS);
        else for (const cidr of word === 'loopback' ? LOOPBACK_CIDRS : [parseCidr(item)]) out.add(cidr);
      }
      return [...out];
    },
    format: (value) => (value.length === 0 ? 'none' : value.join(',')),
  };
}

/**
 * A list of words from a fixed set, comma-separated or a JSON array, case-insensitive; `check`
 * may refuse a combination (it returns the reason).
 */
export function wordList<const T extends readonly string[]>(
  values: T, check?: (words: readonly T[number][]) => string | null,
): Validator<readonly T[number][]> {
  const allowed: ReadonlySet<string> = new Set(values);
  return {
    kind: 'string',
    metavar: 'NAME,...',
    description: `comma-separated words from ${values.join(', ')} (a JSON array in the config file)`,
    parse(raw) {
      const words: T[number][] = [];
      for (const item of listItems(raw)) {
        const word = item.toLowerCase();
        if (!allowed.has(word)) reject(`"${item}" is not one of ${values.join(', ')}`);
        if (!words.includes(word)) words.push(word);
      }
      const refused = check?.(words) ?? null;
      if (refused !== null) reject(refused);
      return words;
    },
    format: (value) => (value.length === 0 ? 'none' : value.join(',')),
  };
}

/**
 * web2py.py's `-K` list: `APP[:GROUP...]` entries, comma-separated or a JSON array. Each entry is
 * kept as web2py.py keeps it (parts trimmed, empty groups dropped). Names are word characters
 * (web2py's application folders), and groups may not hold a space or a comma, so an entry can
 * never become a second argument of the scheduler's command line.
 */
export function schedulerList(): Validator<readonly string[]> {
  return {
    kind: 'string',
    metavar: 'APP[:GROUP...]',
    description: '`APP[:GROUP...]` entries, comma-separated or by repeating the flag (a JSON array in the config file)',
    parse(raw) {
      const entries: string[] = [];
      for (const item of listItems(raw)) {
        const [app = '', ...groups] = item.split(':').map((part) => part.trim());
        if (!/^\w+$/.test(app)) reject(`"${item}": the application must be a folder name of letters, digits and _`);
        for (const group of groups) if (group !== '' && !/^[\w.-]+$/.test(group)) reject(`"${item}": group "${group}" may hold letters, digits, _, . and - only`);
        const entry = [app, ...groups.filter((group) => group !== '')].join(':');
        if (!entries.includes(entry)) entries.push(entry);
      }
      return entries;
    },
    format: (value) => (value.length === 0 ? 'none' : value.join(',')),
  };
}
