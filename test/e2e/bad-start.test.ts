/**
 * Every bad start is one clear line on stderr and a non-zero exit, with nothing left listening.
 */
import { test } from 'node:test';
import { createServer } from 'node:net';
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { assertOneLine, fixtures, runToExit, serverEnv } from '../helpers/server.js';
import { makeCertificate } from '../helpers/tls.js';


const apps = join(fixtures, 'apps');

test('unknown flag', async () => {
  assertOneLine(await runToExit(['--no-such-flag']), 'W2N_ERR_CONFIG_UNKNOWN_OPTION', /--no-such-flag/);
});

test('bad value: -p 80a', async () => {
  assertOneLine(await runToExit(['-p', '80a']), 'W2N_ERR_CONFIG_BAD_VALUE', /-p "80a": not an integer/);
});

test('bad value from the environment names the variable', async () => {
  assertOneLine(await runToExit([], { env: { W2N_PORT: 'x' } }), 'W2N_ERR_CONFIG_BAD_VALUE', /W2N_PORT/);
});

test('port in use', async () => {
  const blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const { port } = blocker.address() as { port: number };
  try {
    const result = await runToExit(['-p', String(port), '--app', 'hello:app', '-f', apps]);
    assertOneLine(result, 'W2N_ERR_LISTEN_IN_USE', new RegExp(`127\\.0\\.0\\.1:${port}: address already in use`));
  } finally {
    blocker.close();
  }
});

test('address that is not this machine\'s', async () => {
  assertOneLine(await runToExit(['-i', '192.0.2.1', '-p', '0', '--app', 'hello:app', '-f', apps]), 'W2N_ERR_LISTEN_FAILED', /192\.0\.2\.1/);
});

test('no permission to bind a low port (as an unprivileged user)', async (t) => {
  if (process.getuid?.() !== 0) {
    assertOneLine(await runToExit(['-p', '81', '--app', 'hello:app', '-f', apps]), 'W2N_ERR_LISTEN_DENIED', /permission denied/);
    return;
  }
  // As root, drop to nobody with runuser (util-linux) so the kernel refuses port 81.
  const { spawnSync } = await import('node:child_process');
  if (spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, '--version']).status !== 0) {
    t.skip('runuser cannot run node as nobody here');
    return;
  }
  const result = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, join(fixtures, '..', '..', 'bin', 'web2py-on-node'),
    '-p', '81', '--app', 'hello:app', '-f', apps], { encoding: 'utf8', cwd: '/tmp', env: serverEnv(undefined) });
  assertOneLine({ code: result.status, stderr: result.stderr }, 'W2N_ERR_LISTEN_DENIED', /permission denied/);
});

test('-f folder without gluon/', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'w2n-empty-'));
  assertOneLine(await runToExit(['-f', empty, '-p', '0']), 'W2N_ERR_FOLDER_NOT_WEB2PY', /is not a web2py folder \(no gluon\/ in it\)/);
});

test('Python missing', async () => {
  assertOneLine(await runToExit(['--python', '/nonexistent/python3', '-p', '0', '--app', 'hello:app', '-f', apps]), 'W2N_ERR_PYTHON_MISSING', /\/nonexistent\/python3/);
});

test('Python older than 3.8', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'w2n-oldpy-'));
  const fake = join(dir, 'python');
  writeFileSync(fake, '#!/bin/sh\necho 3.7.9\n');
  chmodSync(fake, 0o755);
  assertOneLine(await runToExit(['--python', fake, '-p', '0', '--app', 'hello:app', '-f', apps]), 'W2N_ERR_PYTHON_TOO_OLD', /Python 3\.7\.9 .* too old/);
});

test('application import error shows Python\'s message', async () => {
  assertOneLine(await runToExit(['-p', '0', '--app', 'no_such_module_xyz:app', '-f', apps]), 'W2N_ERR_APP_IMPORT', /No module named 'no_such_module_xyz'/);
});

test('web2py folder whose gluon cannot be imported mentions gluon/packages', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'w2n-brokenw2p-'));
  mkdirSync(join(folder, 'gluon'));
  writeFileSync(join(folder, 'gluon', '__init__.py'), 'import pydal_missing_for_test\n');
  const result = await runToExit(['-f', folder, '-p', '0', '-a', '<recycle>']);
  assertOneLine(result, 'W2N_ERR_APP_IMPORT', /gluon\/packages/);
});

test('unwritable profiler folder', async () => {
  assertOneLine(await runToExit(['-p', '0', '--app', 'hello:app', '-f', apps, '-F', '/proc/w2n-cannot-exist']), 'W2N_ERR_PROFILER_DIR', /w2n-cannot-exist/);
});

test('unwritable access log', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'w2n-log-'));
  mkdirSync(join(folder, 'httpserver.log')); // a folder where the log file should be
  writeFileSync(join(folder, 'hello.py'), 'def app(e, s):\n    s("200 OK", [])\n    return [b""]\n');
  assertOneLine(await runToExit(['-p', '0', '--app', 'hello:app', '-f', folder, '-l']), 'W2N_ERR_LOG_FILE', /httpserver\.log/);
});

test('TLS: certificate file missing', async () => {
  const result = await runToExit(['-p', '0', '--app', 'hello:app', '-f', apps, '-c', '/nonexistent/cert.pem', '-k', '/nonexistent/key.pem']);
  assertOneLine(result, 'W2N_ERR_CONFIG_BAD_VALUE', /cert\.pem/);
});

test('TLS: certificate without key', async () => {
  const { cert } = makeCertificate();
  assertOneLine(await runToExit(['-p', '0', '--app', 'hello:app', '-f', apps, '-c', cert]), 'W2N_ERR_TLS', /needs a private key/);
});

test('TLS: key that does not belong to the certificate', async () => {
  const first = makeCertificate();
  const second = makeCertificate();
  assertOneLine(await runToExit(['-p', '0', '--app', 'hello:app', '-f', apps, '-c', first.cert, '-k', second.key]), 'W2N_ERR_TLS', /does not belong/);
});

test('TLS: a file that is not a certificate', async () => {
  const { key } = makeCertificate();
  assertOneLine(await runToExit(['-p', '0', '--app', 'hello:app', '-f', apps, '-c', key, '-k', key]), 'W2N_ERR_TLS', /cannot use certificate/);
});
