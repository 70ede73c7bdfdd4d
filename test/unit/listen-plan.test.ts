/**
 * @module `--interfaces` parsing (web2py's format) and the listener plan: which flags make which
 * listeners, and which are ignored.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { formatInterface, interfaces } from '../../src/config/interfaces.js';
import { loadConfig } from '../../src/config/load.js';
import { InvalidValueError } from '../../src/config/validators.js';
import { isAppListener, planListeners } from '../../src/front/listen-plan.js';

const scratch = mkdtempSync(join(tmpdir(), 'w2n-plan-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const key = join(scratch, 'key.pem');
const cert = join(scratch, 'cert.pem');
const ca = join(scratch, 'ca.pem');
for (const file of [key, cert, ca]) writeFileSync(file, 'PEM');

const parse = (raw: unknown): ReturnType<ReturnType<typeof interfaces>['parse']> => interfaces().parse(raw, { cwd: scratch });

describe('--interfaces', () => {
  test('web2py\'s format: IP:PORT[:KEY:CERT[:CA]] joined with ;, IPv6 in brackets, key before cert', () => {
    assert.deepEqual(parse('0.0.0.0:80;[::1]:8443:key.pem:cert.pem;127.0.0.1:0:key.pem:cert.pem:ca.pem'), [
      { ip: '0.0.0.0', port: 80, keyFile: null, certFile: null, caFile: null },
      { ip: '::1', port: 8443, keyFile: key, certFile: cert, caFile: null },
      { ip: '127.0.0.1', port: 0, keyFile: key, certFile: cert, caFile: ca },
    ]);
    assert.deepEqual(parse('[fe80::1:2]:8000')[0]!.ip, 'fe80::1:2');
    assert.deepEqual(parse('localhost:8000')[0]!.ip, 'localhost');
  });

  test('the config file may give the same string or a list', () => {
    assert.deepEqual(parse(['127.0.0.1:8000', '127.0.0.1:8001']).map((spec) => spec.port), [8000, 8001]);
  });

  test('formats back to the same spelling', () => {
    const text = `0.0.0.0:80;[::1]:8443:${key}:${cert}:${ca}`;
    assert.equal(interfaces().format(parse(text)), text);
    assert.equal(formatInterface({ ip: '::', port: 1, keyFile: null, certFile: null, caFile: null }), '[::]:1');
  });

  const bad: [string, RegExp][] = [
    ['127.0.0.1', /expected IP:PORT/],
    ['127.0.0.1:8000:key.pem', /expected IP:PORT/],
    ['127.0.0.1:8000:key.pem:cert.pem:ca.pem:extra', /expected IP:PORT/],
    ['::1:8000', /IPv6 address goes in brackets/],
    ['2001:db8:0:0:0:0:0:1:8000', /IPv6 address goes in brackets/],
    ['[::1:8000', /no closing \]/],
    ['[::1]8000', /expected :PORT after the \]/],
    ['[nope]:8000', /"nope" is not an IP address/],
    ['example.com:8000', /"example\.com" is not an IP address/],
    ['256.0.0.1:8000', /not an IP address/],
    ['127.0.0.1:65536', /port "65536"/],
    ['127.0.0.1:http', /port "http"/],
    ['127.0.0.1:8000:missing.pem:cert.pem', /cannot read key file .*missing\.pem/],
    ['127.0.0.1:8000:key.pem:cert.pem:missing.pem', /cannot read CA file/],
    ['127.0.0.1:8000;', /empty interface/],
  ];
  for (const [raw, reason] of bad) {
    test(`refuses ${JSON.stringify(raw)}`, () => {
      assert.throws(() => parse(raw), (error: unknown) => error instanceof InvalidValueError && reason.test(error.reason));
    });
  }

  test('a bad value is one configuration error naming the flag', () => {
    assert.throws(() => loadConfig({ argv: ['--interfaces', '::1:80'], env: {}, cwd: scratch }),
      /--interfaces "::1:80": bad interface "::1:80": an IPv6 address goes in brackets/);
  });
});

describe('the listener plan', () => {
  const plan = (argv: string[]): ReturnType<typeof planListeners> => {
    const { config, sources } = loadConfig({ argv, env: {}, cwd: scratch });
    return planListeners(config, sources);
  };

  test('by default: one TCP listener from -i/-p, TLS from -c/-k', () => {
    assert.deepEqual(plan([]).specs, [{ kind: 'tcp', ip: '127.0.0.1', port: 8000, tls: null }]);
    assert.deepEqual(plan(['-i', '::', '-p', '1', '-c', cert, '-k', key]).specs,
      [{ kind: 'tcp', ip: '::', port: 1, tls: { certificateFile: cert, privateKeyFile: key } }]);
  });

  test('-c without -k (or the reverse) is a TLS error', () => {
    assert.throws(() => plan(['-c', cert]), /a certificate \(-c\) needs a private key \(-k\)/);
  });

  test('--interfaces replaces -i/-p/-c/-k and says which were ignored', () => {
    const result = plan(['-p', '1', '-c', cert, '--interfaces', `127.0.0.1:2;[::1]:3:${key}:${cert}:${ca}`]);
    assert.deepEqual(result.specs, [
      { kind: 'tcp', ip: '127.0.0.1', port: 2, tls: null },
      { kind: 'tcp', ip: '::1', port: 3, tls: { certificateFile: cert, privateKeyFile: key, caFile: ca } },
    ]);
    assert.deepEqual(result.notes, ['note: -p, -c ignored: --interfaces names the listeners (as web2py.py does)']);
    assert.deepEqual(plan(['--interfaces', '127.0.0.1:2']).notes, []);
  });

  test('--unix-socket alone replaces the default TCP listener; with -i/-p/-c/-k or --interfaces it is added', () => {
    const socket = join(scratch, 'app.sock');
    assert.deepEqual(plan(['--unix-socket', socket, '--unix-socket-mode', '600']).specs, [{ kind: 'unix', path: socket, mode: 0o600 }]);
    assert.deepEqual(plan(['--unix-socket', socket, '-p', '9']).specs.map((spec) => spec.kind), ['tcp', 'unix']);
    assert.deepEqual(plan(['--unix-socket', socket, '-i', '0.0.0.0']).specs.map((spec) => spec.kind), ['tcp', 'unix']);
    assert.deepEqual(plan(['--unix-socket', socket, '--interfaces', '127.0.0.1:1;127.0.0.1:2']).specs.map((spec) => spec.kind), ['tcp', 'tcp', 'unix']);
  });

  test('--metrics-address: its own plain listener, last, never an application listener (TLS of -c/-k not taken)', () => {
    const specs = plan(['--realtime-port', '8001', '--metrics-address', '[::]:9100', '-c', cert, '-k', key]).specs;
    assert.deepEqual(specs.at(-1), { kind: 'tcp', ip: '::', port: 9100, tls: null, metrics: true });
    assert.deepEqual(specs.map(isAppListener), [true, false, false]);
    assert.equal(plan([]).specs.some((spec) => spec.kind === 'tcp' && spec.metrics === true), false);
  });

  test('--unix-socket-mode is octal', () => {
    assert.throws(() => plan(['--unix-socket-mode', '0999']), /not an octal file mode/);
    assert.throws(() => plan(['--unix-socket-mode', '12']), /not an octal file mode/);
  });
});
