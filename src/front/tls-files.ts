/**
 * @module TLS files: read and checked by the primary at start and on SIGHUP, handed to each front
 * as PEM text, turned into a secure context there.
 */
import { createSecureContext, type SecureContext, type TlsOptions } from 'node:tls';
import { readFileSync } from 'node:fs';
import { ServerError } from '../errors/index.js';

export interface TlsFiles {
  certificateFile: string;
  privateKeyFile: string;
  /** CA certificates for client certificates (web2py's `--interfaces` fifth field); none = not asked. */
  caFile?: string | null;
}

export interface LoadedTls {
  cert: Buffer;
  key: Buffer;
  /** Client certificates are asked for (optional) and checked against these. */
  ca: Buffer | null;
  context: SecureContext;
}

/** A certificate, key and CA as PEM text: what the primary reads and hands to each front it starts. */
export interface TlsPem {
  cert: string;
  key: string;
  ca: string | null;
}

export function tlsToPem(tls: LoadedTls): TlsPem {
  return { cert: tls.cert.toString('utf8'), key: tls.key.toString('utf8'), ca: tls.ca === null ? null : tls.ca.toString('utf8') };
}

/** The front's side: PEM text the primary already checked becomes a listener's TLS. */
export function tlsFromPem(pem: TlsPem): LoadedTls {
  const cert = Buffer.from(pem.cert, 'utf8');
  const key = Buffer.from(pem.key, 'utf8');
  const ca = pem.ca === null ? null : Buffer.from(pem.ca, 'utf8');
  return { cert, key, ca, context: createSecureContext(secureContextOptions({ cert, key, ca })) };
}

/** Reads and checks a certificate and key; any problem is W2N_ERR_TLS (exit 2 before listening). */
export function loadTls(files: TlsFiles): LoadedTls {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(files.certificateFile);
  } catch (cause: unknown) {
    throw new ServerError('W2N_ERR_TLS', { reason: `cannot read certificate ${files.certificateFile}: ${(cause as Error).message}` }, { cause });
  }
  try {
    key = readFileSync(files.privateKeyFile);
  } catch (cause: unknown) {
    throw new ServerError('W2N_ERR_TLS', { reason: `cannot read private key ${files.privateKeyFile}: ${(cause as Error).message}` }, { cause });
  }
  let ca: Buffer | null = null;
  if (files.caFile != null) {
    try {
      ca = readFileSync(files.caFile);
    } catch (cause: unknown) {
      throw new ServerError('W2N_ERR_TLS', { reason: `cannot read CA file ${files.caFile}: ${(cause as Error).message}` }, { cause });
    }
  }
  try {
    const context = createSecureContext(secureContextOptions({ cert, key, ca }));
    return { cert, key, ca, context };
  } catch (cause: unknown) {
    const message = (cause as Error).message;
    const reason = /mismatch/i.test(message)
      ? `the private key ${files.privateKeyFile} does not belong to the certificate ${files.certificateFile}`
      : `cannot use certificate ${files.certificateFile} with key ${files.privateKeyFile}: ${message}`;
    throw new ServerError('W2N_ERR_TLS', { reason }, { cause });
  }
}

/** The TLS options of a listener, also used to re-read them on SIGHUP. */
export function secureContextOptions(tls: Pick<LoadedTls, 'cert' | 'key' | 'ca'>): TlsOptions {
  return { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', ...(tls.ca === null ? {} : { ca: tls.ca }) };
}

