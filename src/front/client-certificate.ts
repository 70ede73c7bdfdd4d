/**
 * @module A client certificate, for the application: SSL_CLIENT_RAW_CERT as Rocket sets it.
 *
 * web2py's x509 login (gluon/contrib/login_methods/x509_auth.py) reads
 * `request.env.ssl_client_raw_cert`, the PEM that Rocket puts there
 * (`ssl.DER_cert_to_PEM_cert(getpeercert(binary_form=True))`). The login trusts it, so it is
 * passed on only when the listener's CA verified it (`socket.authorized`); an unverified or
 * missing certificate means no variable at all. Header names cannot alias it (they become HTTP_*).
 */
import type { TLSSocket } from 'node:tls';

/** Python's ssl.DER_cert_to_PEM_cert: base64 in 64-character lines between the markers. */
export function derToPem(der: Buffer): string {
  const base64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64));
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** `['SSL_CLIENT_RAW_CERT', pem]` for a verified client certificate, else `[]`. */
export function clientCertificatePairs(socket: unknown): string[] {
  const tls = socket as Partial<TLSSocket>;
  if (tls.authorized !== true || typeof tls.getPeerCertificate !== 'function') return [];
  const certificate = tls.getPeerCertificate(false);
  const der = (certificate as { raw?: Buffer } | undefined)?.raw;
  return der === undefined ? [] : ['SSL_CLIENT_RAW_CERT', derToPem(der)];
}
