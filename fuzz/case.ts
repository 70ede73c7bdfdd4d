/** A fuzz case: the bytes one connection writes, and how. Serialisable (hex) so a failure can be saved and replayed. */

/**
 * - `plain`: TCP to the plain-HTTP port;
 * - `tls-h1`: TLS to the TLS port, ALPN `http/1.1`, then the writes;
 * - `tls-h2`: TLS, ALPN `h2`, then the writes (the preface is part of them);
 * - `tls-raw`: TCP to the TLS port: the writes are the handshake (garbage ClientHellos).
 */
export type Transport = 'plain' | 'tls-h1' | 'tls-h2' | 'tls-raw';
export const TRANSPORTS: readonly Transport[] = ['plain', 'tls-h1', 'tls-h2', 'tls-raw'];

export interface Case {
  klass: string;
  /** What the generator did, for people. */
  name: string;
  transport: Transport;
  /** Written in order, each in its own write() with a turn of the event loop between. */
  writes: Buffer[];
  /** Half-close (end()) after the last write. */
  end?: boolean;
  /** Hold the connection open this long after writing, while the harness checks others are answered. */
  stallMs?: number;
}

export interface SavedCase {
  klass: string;
  name: string;
  transport: Transport;
  /** Each write, hex. */
  writes: string[];
  end?: boolean;
  stallMs?: number;
  /** Free text: what happened, where it came from. */
  note?: string;
  seed?: number;
  index?: number;
  /** The failure's kind and detail when it was saved. */
  failure?: { kind: string; detail: string };
  /** The writes as latin-1 text, for reading (never read back). */
  text?: string;
}

export function toSaved(c: Case, extra: Partial<SavedCase> = {}): SavedCase {
  const text = Buffer.concat(c.writes).toString('latin1');
  return {
    klass: c.klass, name: c.name, transport: c.transport, writes: c.writes.map((w) => w.toString('hex')),
    ...(c.end === true ? { end: true } : {}), ...(c.stallMs !== undefined ? { stallMs: c.stallMs } : {}),
    ...extra, ...(text.length <= 4096 ? { text } : {}),
  };
}

export function fromSaved(saved: SavedCase): Case {
  if (!TRANSPORTS.includes(saved.transport)) throw new Error(`unknown transport ${String(saved.transport)}`);
  return {
    klass: saved.klass ?? 'corpus', name: saved.name ?? 'saved', transport: saved.transport,
    writes: saved.writes.map((w) => Buffer.from(w, 'hex')),
    ...(saved.end === true ? { end: true } : {}), ...(saved.stallMs !== undefined ? { stallMs: saved.stallMs } : {}),
  };
}

export function caseBytes(c: Case): Buffer {
  return Buffer.concat(c.writes);
}

/** Splits `bytes` at `cuts` random places (the split-writes mutation). */
export function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.filter((p) => p > 0 && p < bytes.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) { out.push(bytes.subarray(at, p)); at = p; }
  out.push(bytes.subarray(at));
  return out;
}
