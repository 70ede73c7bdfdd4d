/**
 * @module `--interfaces`: web2py's list of listening interfaces, parsed and checked.
 *
 * The format is the one web2py.py takes (gluon/console.py, `ifaces` / `iface(v, ":")`):
 * `IP:PORT[:KEY_FILE:CERT_FILE[:CA_FILE]]`, several joined with `;`, an IPv6 address in
 * brackets (`[::1]:8000`). Key before certificate, as web2py and Rocket read them
 * (`load_cert_chain(keyfile=interface[2], certfile=interface[3])`); an entry has 2, 4 or 5
 * fields. The CA file turns on client certificates (Rocket's `load_verify_locations` with
 * CERT_OPTIONAL: asked for, not required). Pure: the files are only checked to be readable.
 */

import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { resolve } from 'node:path';

import { InvalidValueError, type ValidationContext, type Validator } from './validators.js';

/** One listening interface of `--interfaces`. */
export interface InterfaceSpec {
  /** The address as written, without brackets (`::1`). */
  readonly ip: string;
  /** 0 = any free port. */
  readonly port: number;
  /** TLS when both are set: the private key and certificate (chain) files, absolute. */
  readonly keyFile: string | null;
  readonly certFile: string | null;
  /** CA certificates that client certificates are checked against (web2py's fifth field). */
  readonly caFile: string | null;
}

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** web2py's is_valid_ip_address takes IP literals and `localhost`; the URL parser knows IPv6. */
export function isIpAddress(text: string, isBracketed: boolean): boolean {
  if (!isBracketed) return IPV4.test(text) || text === 'localhost';
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return false;
  try {
    return new URL(`http://[${text}]/`).hostname !== '';
  } catch {
    return false;
  }
}

function fail(entry: string, reason: string): never {
  throw new InvalidValueError(`bad interface "${entry}": ${reason}`);
}

function readableFile(entry: string, what: string, raw: string, cwd: string): string {
  if (raw === '') fail(entry, `empty ${what} file name`);
  const file = resolve(cwd, raw);
  try {
    if (statSync(file).isDirectory()) fail(entry, `${what} ${file} is a folder`);
    accessSync(file, fsConstants.R_OK);
  } catch (error: unknown) {
    if (error instanceof InvalidValueError) throw error;
    fail(entry, `cannot read ${what} file ${file}`);
  }
  return file;
}

/** Parses one `IP:PORT[:KEY:CERT[:CA]]` entry. */
export function parseInterface(entry: string, context: ValidationContext): InterfaceSpec {
  let ip: string;
  let fields: string[];
  const isBracketed = entry.startsWith('[');
  if (isBracketed) {
    const close = entry.indexOf(']');
    if (close < 0) fail(entry, 'no closing ] after the IPv6 address');
    ip = entry.slice(1, close);
    const rest = entry.slice(close + 1);
    if (!rest.startsWith(':')) fail(entry, 'expected :PORT after the ]');
    fields = rest.slice(1).split(':');
  } else {
    [ip = '', ...fields] = entry.split(':');
  }
  if (!isBracketed && !isIpAddress(ip, false) && (entry.includes('::') || fields.length > 4)) {
    fail(entry, 'an IPv6 address goes in brackets: [::1]:8000');
  }
  if (![1, 3, 4].includes(fields.length)) fail(entry, 'expected IP:PORT, IP:PORT:KEY:CERT or IP:PORT:KEY:CERT:CA');
  if (!isIpAddress(ip, isBracketed)) fail(entry, `"${ip}" is not an IP address`);
  const portText = fields[0]!;
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) fail(entry, `port "${portText}" is not an integer from 0 to 65535`);
  const [keyRaw, certRaw, caRaw] = fields.slice(1);
  const { cwd } = context;
  return {
    ip,
    port: Number(portText),
    keyFile: keyRaw === undefined ? null : readableFile(entry, 'key', keyRaw, cwd),
    certFile: certRaw === undefined ? null : readableFile(entry, 'certificate', certRaw, cwd),
    caFile: caRaw === undefined ? null : readableFile(entry, 'CA', caRaw, cwd),
  };
}

/** One entry back in web2py's spelling. */
export function formatInterface(spec: InterfaceSpec): string {
  const host = spec.ip.includes(':') ? `[${spec.ip}]` : spec.ip;
  return [`${host}:${spec.port}`, spec.keyFile, spec.certFile, spec.caFile].filter((part) => part !== null).join(':');
}

/**
 * The `--interfaces` validator: `;`-separated entries on the command line or in W2N_INTERFACES;
 * the same string, or an array of entries, in the config file.
 */
export function interfaces(): Validator<readonly InterfaceSpec[]> {
  return {
    kind: 'string',
    metavar: 'IP:PORT[:KEY:CERT[:CA]];...',
    description: 'web2py\'s interface list',
    parse(raw, context) {
      const entries = Array.isArray(raw) && raw.every((item) => typeof item === 'string')
        ? raw as string[]
        : typeof raw === 'string' ? raw.split(';') : null;
      if (entries === null) throw new InvalidValueError('not a string (or a list of strings)');
      if (entries.length === 0) throw new InvalidValueError('no interface given');
      return entries.map((entry) => {
        if (entry.trim() === '') throw new InvalidValueError('empty interface (two `;` in a row, or one at an end)');
        return parseInterface(entry.trim(), context);
      });
    },
    format: (value) => value.map(formatInterface).join(';'),
  };
}

/** One TCP address to listen on, without TLS. */
export interface ListenAddress {
  /** The address as written, without brackets (`::`). */
  readonly ip: string;
  /** 0 = any free port (the chosen one is reported at start). */
  readonly port: number;
}

/**
 * `IP:PORT`, an IPv6 address in brackets (`[::]:9100`), as one `--interfaces` entry without its
 * key and certificate: a listener of the server's own (`--metrics-address`), plain HTTP.
 */
export function listenAddress(): Validator<ListenAddress> {
  return {
    kind: 'string',
    metavar: 'IP:PORT',
    description: '`IP:PORT`, an IPv6 address in brackets (`[::]:9100`)',
    parse(raw) {
      if (typeof raw !== 'string') throw new InvalidValueError('not text: give IP:PORT');
      const match = /^(?:\[([^\]]*)\]|([^:[\]]+)):(\d{1,5})$/.exec(raw.trim());
      if (match === null) throw new InvalidValueError('expected IP:PORT (an IPv6 address in brackets: [::]:9100)');
      const isBracketed = match[1] !== undefined;
      const ip = match[1] ?? match[2] ?? '';
      if (!isIpAddress(ip, isBracketed)) throw new InvalidValueError(`"${ip}" is not an IP address`);
      const port = Number(match[3]);
      if (port > 65535) throw new InvalidValueError(`port ${port} is not from 0 to 65535`);
      return { ip, port };
    },
    format: formatListenAddress,
    // As the config file takes it: the same text.
    toUser: formatListenAddress,
  };
}

function formatListenAddress({ ip, port }: ListenAddress): string {
  return `${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
}
