/** A self-signed certificate made by the real openssl, in a temporary folder. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function makeCertificate(commonName = 'localhost'): { dir: string; cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'w2n-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', `/CN=${commonName}`, '-addext', `subjectAltName=DNS:${commonName},IP:127.0.0.1`], { stdio: 'ignore' });
  return { dir, cert, key };
}
