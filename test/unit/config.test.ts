/**
 * @module Config loading: every flag spelling, defaults, precedence and sources, validator
 * rejections, error messages, config-file errors, secrets, env var names and --help coverage.
 */

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { renderHelp } from '../../src/cli/help.js';
import { formatConfig, loadConfig, type LoadOptions } from '../../src/config/load.js';
import {
  actionFlags, configKeyOf, envVarName, envVarOf, settingKeys, settingValue, specOf, type Config, type SettingKey, type SettingValue,
} from '../../src/config/settings.js';
import {
  bool, bytes, cidrList, durationMs, enumOf, int, InvalidValueError, megabytes, nullable, path, str, wordList, type Validator,
} from '../../src/config/validators.js';
import { listenAddress } from '../../src/config/interfaces.js';
import { isServerError, ServerError } from '../../src/errors/index.js';

const scratch = mkdtempSync(join(tmpdir(), 'w2n-config-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const certFile = join(scratch, 'cert.pem');
const keyFile = join(scratch, 'key.pem');
const profileDir = join(scratch, 'profiles');
const web2pyDir = join(scratch, 'web2py');
writeFileSync(certFile, 'CERT');
writeFileSync(keyFile, 'KEY');
mkdirSync(web2pyDir);

function load(options: Partial<LoadOptions> = {}): ReturnType<typeof loadConfig> {
  return loadConfig({ argv: [], env: {}, cwd: scratch, ...options });
}

function writeJson(name: string, data: unknown): string {
  const file = join(scratch, name);
  writeFileSync(file, typeof data === 'string' ? data : JSON.stringify(data));
  return file;
}

/** Asserts that `run` throws a ServerError with this code (and message, when given). */
function assertServerError(run: () => unknown, code: ServerError['code'], message?: string | RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ServerError, `expected a ServerError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.equal(error.exitCode, 2);
    if (typeof message === 'string') assert.equal(error.message, message);
    else if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}

// A sample per setting; typed by SettingKey, so a new setting without a sample fails the typecheck.
// `value` is what Config holds: durations in ms, sizes in bytes.
const samples: { readonly [K in SettingKey]: { readonly raw: string | null; readonly value: SettingValue<K> } } = {
  ip: { raw: '0.0.0.0', value: '0.0.0.0' },
  port: { raw: '8080', value: 8080 },
  interfaces: {
    raw: '0.0.0.0:80;[::1]:8443:key.pem:cert.pem',
    value: [
      { ip: '0.0.0.0', port: 80, keyFile: null, certFile: null, caFile: null },
      { ip: '::1', port: 8443, keyFile, certFile, caFile: null },
    ],
  },
  unixSocket: { raw: 'app.sock', value: join(scratch, 'app.sock') },
  unixSocketMode: { raw: '0600', value: 0o600 },
  http2: { raw: 'off', value: 'off' },
  acceptBatch: { raw: '4', value: 4 },
  http2MaxStreams: { raw: '64', value: 64 },
  password: { raw: '<recycle>', value: '<recycle>' },
  realtimeKey: { raw: 'sekrit', value: 'sekrit' },
  realtimeKeyFile: { raw: keyFile, value: keyFile },
  realtimePrefix: { raw: '/live/ws/', value: '/live/ws/' },
  realtimePort: { raw: '8888', value: 8888 },
  realtimeTokens: { raw: null, value: true },
  realtimeTokenTtl: { raw: '60', value: 60_000 },
  realtimePresence: { raw: 'off', value: 'off' },
  realtimeRedis: { raw: 'redis://127.0.0.1:6379/0', value: 'redis://127.0.0.1:6379/0' },
  realtimeMaxMessage: { raw: '1m', value: 1024 * 1024 },
  realtimeMaxConnections: { raw: '5000', value: 5000 },
  realtimeSendBuffer: { raw: '256k', value: 256 * 1024 },
  realtimePingInterval: { raw: '10', value: 10_000 },
  realtimeOrigins: { raw: 'https://example.com', value: 'https://example.com' },
  realtimeCompression: { raw: 'on', value: 'on' },
  sslCertificate: { raw: 'cert.pem', value: certFile },
  sslPrivateKey: { raw: keyFile, value: keyFile },
  workers: { raw: '100', value: 100 },
  logging: { raw: null, value: true },
  profiler: { raw: 'profiles', value: profileDir },
  folder: { raw: 'web2py', value: web2pyDir },
  app: { raw: 'myapp.wsgi:application', value: 'myapp.wsgi:application' },
  reload: { raw: null, value: true },
  staticOffload: { raw: 'off', value: 'off' },
  staticCacheSize: { raw: '8m', value: 8 * 1024 * 1024 },
  staticCacheFileSize: { raw: '64k', value: 64 * 1024 },
  chunkedInput: { raw: 'stream', value: 'stream' },
  python: { raw: '/usr/bin/python3.11', value: '/usr/bin/python3.11' },
  processes: { raw: '3', value: 3 },
  threads: { raw: '16', value: 16 },
  greenlets: { raw: '500', value: 500 },
  workerClass: { raw: 'gevent', value: 'gevent' },
  fronts: { raw: '2', value: 2 },
  queueSize: { raw: '0', value: 0 },
  queueTimeout: { raw: '2.5', value: 2500 },
  queueTarget: { raw: '0.005', value: 5 },
  timeout: { raw: '60', value: 60_000 },
  timeoutGrace: { raw: '5', value: 5000 },
  maxRequests: { raw: '1000', value: 1000 },
  maxRequestsJitter: { raw: '50', value: 50 },
  maxRss: { raw: '512', value: 512 * 1024 * 1024 },
  maxLifetime: { raw: '3600', value: 3_600_000 },
  gracefulTimeout: { raw: '2.5', value: 2500 },
  maxRequestLine: { raw: '4k', value: 4096 },
  maxHeaderSize: { raw: '32k', value: 32768 },
  maxHeaders: { raw: '50', value: 50 },
  headersTimeout: { raw: '0.5', value: 500 },
  requestTimeout: { raw: '0', value: 0 },
  keepAliveTimeout: { raw: '65', value: 65_000 },
  maxConnections: { raw: '500', value: 500 },
  serverHeader: { raw: 'Acme/1', value: 'Acme/1' },
  maxBody: { raw: '10g', value: 10 * 1024 ** 3 },
  bodyBufferSize: { raw: '0', value: 0 },
  spoolDir: { raw: 'web2py', value: web2pyDir },
  trustedProxies: { raw: '10.0.0.0/8, ::1', value: ['10.0.0.0/8', '::1/128'] },
  proxyHeaders: { raw: 'forwarded', value: ['forwarded'] },
  logLevel: { raw: 'debug', value: 'debug' },
  logFormat: { raw: 'json', value: 'json' },
  accessLog: { raw: '-', value: '-' },
  accessLogFormat: { raw: 'combined', value: 'combined' },
  statusToken: { raw: 'a-long-random-token', value: 'a-long-random-token' },
  statsInterval: { raw: '0.5', value: 500 },
  metricsAddress: { raw: '[::]:9100', value: { ip: '::', port: 9100 } },
  scheduler: { raw: 'app1,app2:fast:slow', value: ['app1', 'app2:fast:slow'] },
  schedulerWorkers: { raw: '3', value: 3 },
  schedulerStopTimeout: { raw: '2.5', value: 2500 },
  config: { raw: '', value: null },
};

describe('command line', () => {
  for (const key of settingKeys) {
    for (const flag of specOf(key).cli) {
      test(`${flag} sets ${key}`, () => {
        const { raw, value } = samples[key];
        const argv = raw === null ? [flag] : [flag, raw];
        const loaded = load({ argv });
        assert.deepEqual(settingValue(loaded.config, key), value);
        assert.equal(loaded.sources[key], 'argv');
      });
    }
  }

  test('-l - turns the access log on, to stdout; -l before another flag reads as before', () => {
    for (const argv of [['-l', '-'], ['--logging', '-', '-p', '9'], ['-p', '9', '-l', '-']]) {
      const { config, sources } = load({ argv });
      assert.deepEqual([config.logging, config.accessLog, sources.accessLog], [true, '-', 'argv'], argv.join(' '));
    }
    const plain = load({ argv: ['-l', '-p', '9'] }).config;
    assert.deepEqual([plain.logging, plain.accessLog, plain.port], [true, null, 9]);
    // The last word wins, as for any flag.
    assert.equal(load({ argv: ['-l', '-', '--access-log', 'a.log'] }).config.accessLog, 'a.log');
    assert.equal(load({ argv: ['--access-log', 'a.log', '-l', '-'] }).config.accessLog, '-');
    // A lone `-` anywhere else is still no option.
    assert.throws(() => load({ argv: ['-p', '9', '-'] }), (error: unknown) => isServerError(error) && error.code === 'W2N_ERR_CONFIG_UNKNOWN_OPTION');
    assert.throws(() => load({ argv: ['--reload', '-'] }), (error: unknown) => isServerError(error) && error.code === 'W2N_ERR_CONFIG_UNKNOWN_OPTION');
  });

  test('-p8000, -p 8000, --port=8000 and --port 8000 all work', () => {
    for (const argv of [['-p8000'], ['-p', '8000'], ['--port=8000'], ['--port', '8000']]) {
      assert.equal(load({ argv: ['-p', '1', ...argv] }).config.port, 8000, argv.join(' '));
    }
  });

  test('the seed command line works unchanged', () => {
    const { config } = load({ argv: ['-i', '0.0.0.0', '-p', '8000', '-a', '<recycle>', '-l', '-w', '10'] });
    assert.deepEqual([config.ip, config.port, config.password, config.logging, config.workers],
      ['0.0.0.0', 8000, '<recycle>', true, 10]);
  });

  test('a value may start with a dash, as with optparse (-a -secret)', () => {
    assert.equal(load({ argv: ['-a', '-secret'] }).config.password, '-secret');
  });

  test('grouped switches and a trailing value (-lF profiles)', () => {
    const { config } = load({ argv: ['-lF', 'profiles'] });
    assert.equal(config.logging, true);
    assert.equal(config.profiler, profileDir);
  });

  test('the last of repeated flags wins, whatever the spelling', () => {
    const { config } = load({ argv: ['--ssl_certificate', certFile, '--ssl-certificate', keyFile] });
    assert.equal(config.sslCertificate, keyFile);
  });

  test('a switch takes an explicit boolean only inline (--logging=false)', () => {
    assert.equal(load({ argv: ['--logging=false'] }).config.logging, false);
    assertServerError(() => load({ argv: ['--logging=maybe'] }), 'W2N_ERR_CONFIG_BAD_VALUE',
      '--logging "maybe": not a boolean: use true/false, 1/0, yes/no or on/off (from argv)');
  });

  test('an empty value means none for settings that allow none', () => {
    assert.equal(load({ argv: ['-w', ''], env: { W2N_WORKERS: '4' } }).config.workers, null);
  });

  test('actions are flags, not settings', () => {
    const cases: [string[], keyof typeof actionFlags][] = [
      [['-h'], 'help'], [['--help'], 'help'], [['-V'], 'version'], [['--version'], 'version'],
      [['--print-config'], 'printConfig'], [['--check-config'], 'checkConfig'],
    ];
    for (const [argv, action] of cases) {
      const { actions } = load({ argv });
      for (const name of Object.keys(actionFlags) as (keyof typeof actionFlags)[]) {
        assert.equal(actions[name], name === action, `${argv.join(' ')} → ${name}`);
      }
    }
    assertServerError(() => load({ argv: ['--help=yes'] }), 'W2N_ERR_CONFIG_BAD_VALUE', '--help "yes": takes no value (from argv)');
  });

  test('--help and --version read neither the config file nor the env', () => {
    const loaded = load({ argv: ['--help'], env: { W2N_CONFIG: 'missing.json', W2N_PORT: 'bad' } });
    assert.equal(loaded.actions.help, true);
    assert.equal(loaded.config.port, 8000);
    assert.equal(load({ argv: ['-V', '-p', 'bad'] }).actions.version, true);
  });

  test('an unknown flag is an error', () => {
    assertServerError(() => load({ argv: ['--bogus'] }), 'W2N_ERR_CONFIG_UNKNOWN_OPTION', 'unknown option --bogus');
    assertServerError(() => load({ argv: ['-x'] }), 'W2N_ERR_CONFIG_UNKNOWN_OPTION', 'unknown option -x');
    assertServerError(() => load({ argv: ['--port_number=1'] }), 'W2N_ERR_CONFIG_UNKNOWN_OPTION', 'unknown option --port_number');
  });

  test('a positional argument is an error, also after --', () => {
    assertServerError(() => load({ argv: ['8000'] }), 'W2N_ERR_CONFIG_UNKNOWN_OPTION', 'unknown option 8000');
    assertServerError(() => load({ argv: ['-p', '1', '--', 'x'] }), 'W2N_ERR_CONFIG_UNKNOWN_OPTION', 'unknown option x');
  });

  test('a flag missing its value is an error', () => {
    assertServerError(() => load({ argv: ['--port'] }), 'W2N_ERR_CONFIG_BAD_VALUE', '--port (none): needs a value (from argv)');
  });

  test('-p 80a: the message names the flag as typed, the value and where it came from', () => {
    assertServerError(() => load({ argv: ['-p', '80a'] }), 'W2N_ERR_CONFIG_BAD_VALUE', '-p "80a": not an integer (from argv)');
    assertServerError(() => load({ env: { W2N_PORT: '80a' } }), 'W2N_ERR_CONFIG_BAD_VALUE', '--port "80a": not an integer (from W2N_PORT)');
    const file = writeJson('bad-port.json', { port: 70000 });
    assertServerError(() => load({ argv: ['--config', file] }), 'W2N_ERR_CONFIG_BAD_VALUE',
      `--port 70000: must be at most 65535 (from config file ${file})`);
  });

  test('the bad value is kept as the error details and cause', () => {
    try {
      load({ argv: ['--threads', '0'] });
      assert.fail('should throw');
    } catch (error: unknown) {
      assert.ok(error instanceof ServerError);
      assert.deepEqual(error.details, { option: '--threads', value: '"0"', reason: 'must be at least 1 (from argv)' });
      assert.ok(error.cause instanceof InvalidValueError);
    }
  });
});

describe('defaults, precedence and sources', () => {
  test('defaults', () => {
    const { config, sources } = load();
    assert.deepEqual({ ...config, processes: 0 }, {
      ip: '127.0.0.1', port: 8000, interfaces: null, unixSocket: null, unixSocketMode: 0o660, http2: 'on', acceptBatch: 16, password: '<recycle>', sslCertificate: null, sslPrivateKey: null,
      workers: null, logging: false, profiler: null, folder: scratch, app: null, staticOffload: 'auto', chunkedInput: 'spool', staticCacheSizeBytes: 32 * 1024 * 1024, staticCacheFileSizeBytes: 1024 * 1024, reload: false, python: 'python3',
      processes: 0, threads: 8, greenlets: 1000, workerClass: 'auto', fronts: 1, queueSize: 1024, queueTimeoutMs: 30_000, queueTargetMs: 0, timeoutMs: 300_000, timeoutGraceMs: 10_000, maxRequests: 0, maxRequestsJitter: 0, maxRssBytes: 0, maxLifetimeMs: 0, gracefulTimeoutMs: 30_000,
      maxRequestLineBytes: 8190, maxHeaderSizeBytes: 16384, maxHeaders: 100, headersTimeoutMs: 10_000, requestTimeoutMs: 300_000, http2MaxStreams: 100, keepAliveTimeoutMs: 75_000, maxConnections: 10000,
      serverHeader: 'web2py-on-node',
      maxBodyBytes: 1024 ** 3, bodyBufferSizeBytes: 1024 ** 2, spoolDir: tmpdir(),
      trustedProxies: [], proxyHeaders: ['x-forwarded-for', 'x-forwarded-proto'],
      realtimeKey: null, realtimeKeyFile: null, realtimePrefix: '/_ws/', realtimePort: null, realtimeTokens: false, realtimeTokenTtlMs: 300_000,
      realtimePresence: 'on', realtimeRedis: null, realtimeMaxMessageBytes: 64 * 1024, realtimeMaxConnections: null, realtimeSendBufferBytes: 1024 * 1024,
      realtimePingIntervalMs: 30_000, realtimeOrigins: null, realtimeCompression: 'off',
      logLevel: 'info', logFormat: 'text', accessLog: null, accessLogFormat: 'web2py', statusToken: null, statsIntervalMs: 60_000, metricsAddress: null,
      scheduler: [], schedulerWorkers: 1, schedulerStopTimeoutMs: 10_000, config: null,
    });
    assert.ok(config.processes >= 1 && config.processes <= 256);
    assert.ok(settingKeys.every((key) => sources[key] === 'default'));
  });

  test('the result is frozen', () => {
    const loaded = load();
    assert.ok(Object.isFrozen(loaded) && Object.isFrozen(loaded.config) && Object.isFrozen(loaded.sources));
    assert.throws(() => { (loaded.config as { port: number }).port = 1; }, TypeError);
  });

  test('file < env < argv, each value with its source', () => {
    const file = writeJson('layers.json', { port: 1001, threads: 2, queueSize: 3, logging: true });
    const { config, sources } = load({
      argv: ['--config', file, '--queue-size', '300'],
      env: { W2N_THREADS: '20', W2N_QUEUE_SIZE: '30' },
    });
    assert.deepEqual([config.port, config.threads, config.queueSize, config.logging, config.ip], [1001, 20, 300, true, '127.0.0.1']);
    assert.deepEqual([sources.port, sources.threads, sources.queueSize, sources.logging, sources.ip], ['file', 'env', 'argv', 'file', 'default']);
    assert.equal(config.config, file);
    assert.equal(sources.config, 'argv');
  });

  test('W2N_CONFIG names the file; --config wins over it', () => {
    const fromEnv = writeJson('env.json', { port: 2001 });
    const fromArgv = writeJson('argv.json', { port: 2002 });
    assert.equal(load({ env: { W2N_CONFIG: 'env.json' } }).config.port, 2001);
    assert.equal(load({ env: { W2N_CONFIG: fromEnv }, argv: ['--config', fromArgv] }).config.port, 2002);
  });

  test('config file values may be JSON numbers, booleans, null or text', () => {
    const file = writeJson('types.json', { port: '8081', logging: 'yes', workers: null, gracefulTimeout: 1.5, maxHeaderSize: '1m' });
    const { config } = load({ argv: ['--config', file], env: { W2N_WORKERS: '' } });
    assert.deepEqual([config.port, config.logging, config.workers, config.gracefulTimeoutMs, config.maxHeaderSizeBytes],
      [8081, true, null, 1500, 1024 * 1024]);
  });

  test('an unknown W2N_* variable is a warning, not an error', () => {
    assert.deepEqual(load({ env: { W2N_PROT: '1', HOME: '/root' } }).warnings,
      ['unknown environment variable W2N_PROT (ignored); see docs/settings.md']);
  });
});

describe('config file errors', () => {
  const cases: [string, string | null, RegExp][] = [
    ['missing', null, /: no such file$/],
    ['not JSON', '{"port": 80,}', /: not valid JSON: /],
    ['an array', '[1, 2]', /: must hold one JSON object of settings$/],
    ['an unknown key', '{"prot": 80}', /: unknown setting "prot"$/],
    ['a snake_case key', '{"ssl_certificate": "x"}', /: unknown setting "ssl_certificate" \(did you mean "sslCertificate"\?\)$/],
    ['a config key', '{"config": "other.json"}', /: "config" cannot be set inside a config file$/],
  ];
  for (const [what, text, message] of cases) {
    test(what, () => {
      const file = text === null ? join(scratch, 'absent.json') : writeJson(`${what.replace(/\W/g, '-')}.json`, text);
      assertServerError(() => load({ argv: ['--config', file] }), 'W2N_ERR_CONFIG_FILE', message);
      assertServerError(() => load({ argv: ['--config', file] }), 'W2N_ERR_CONFIG_FILE', new RegExp(`^config file ${file}: `));
    });
  }
});

describe('formatConfig', () => {
  test('each setting with value and source; secrets masked', () => {
    const file = writeJson('print.json', { threads: 4 });
    const text = formatConfig(load({ argv: ['-a', 'hunter2', '--config', file], env: { W2N_PORT: '9000' } }));
    assert.ok(!text.includes('hunter2'));
    assert.match(text, /^password +=\s\*\*\* \(argv\)$/m);
    assert.match(text, /^port +=\s9000 \(env W2N_PORT\)$/m);
    assert.match(text, new RegExp(`^threads +=\\s4 \\(file ${file}\\)$`, 'm'));
    assert.match(text, /^ip +=\s"127.0.0.1" \(default\)$/m);
    assert.equal(text.trimEnd().split('\n').length, settingKeys.length);
  });

  test('values with a unit are shown as the user writes them: seconds and MB, not the ms and bytes kept', () => {
    const text = formatConfig(load({ argv: ['--timeout', '2.5', '--max-rss', '512'] }));
    assert.match(text, /^timeout +=\s2\.5 \(argv\)$/m);
    assert.match(text, /^maxRss +=\s512 \(argv\)$/m);
    assert.match(text, /^keepAliveTimeout +=\s75 \(default\)$/m);
    assert.match(text, /^maxHeaderSize +=\s16384 \(default\)$/m);
  });
});

describe('env var names', () => {
  test('W2N_ + SCREAMING_SNAKE of the key', () => {
    assert.equal(envVarName('port'), 'W2N_PORT');
    assert.equal(envVarName('sslPrivateKey'), 'W2N_SSL_PRIVATE_KEY');
    assert.equal(envVarName('maxHeaderSize'), 'W2N_MAX_HEADER_SIZE');
    assert.equal(envVarName('keepAliveTimeout'), 'W2N_KEEP_ALIVE_TIMEOUT');
  });

  for (const key of settingKeys) {
    test(`${envVarOf(key) ?? '(none)'} sets ${key}`, () => {
      const { raw, value } = samples[key];
      if (key === 'config') return;   // an empty W2N_CONFIG is "no file", covered above
      const loaded = load({ env: { [envVarName(key)]: raw ?? 'true' } });
      assert.deepEqual(settingValue(loaded.config, key), value);
      assert.equal(loaded.sources[key], 'env');
    });
  }
});

describe('registry', () => {
  test('no flag belongs to two settings or actions', () => {
    const all = [...settingKeys.flatMap((key) => specOf(key).cli), ...Object.values(actionFlags).flatMap((a) => a.cli)];
    assert.deepEqual(all.filter((flag, index) => all.indexOf(flag) !== index), []);
    assert.ok(all.every((flag) => /^(-[A-Za-z]|--[a-z][a-z0-9_-]+)$/.test(flag)), 'flag shapes');
  });

  test('every underscore spelling has its dashed twin', () => {
    for (const flag of settingKeys.flatMap((key) => specOf(key).cli).filter((f) => f.includes('_'))) {
      assert.ok(settingKeys.some((key) => specOf(key).cli.includes(flag.replace(/_/g, '-'))), flag);
    }
  });

  test('the Config type is inferred from the registry', () => {
    type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
    const inferred: [
      Equal<Config['port'], number>, Equal<Config['workers'], number | null>, Equal<Config['logging'], boolean>,
      Equal<Config['workerClass'], 'auto' | 'thread' | 'sync' | 'gevent'>, Equal<Config['sslCertificate'], string | null>,
      Equal<Config['timeoutMs'], number>, Equal<Config['maxRssBytes'], number>, Equal<Config['maxBodyBytes'], number>,
    ] = [true, true, true, true, true, true, true, true];
    assert.ok(inferred.every(Boolean));
  });

  test('a value with a unit is named with it in Config; its key stays the users\' name', () => {
    assert.deepEqual(['timeout', 'maxRss', 'maxBody', 'port'].map((key) => configKeyOf(key as SettingKey)),
      ['timeoutMs', 'maxRssBytes', 'maxBodyBytes', 'port']);
    const loaded = load({ env: { W2N_TIMEOUT: '1.5' } });
    assert.equal(loaded.config.timeoutMs, 1500);
    assert.equal(loaded.sources.timeout, 'env');
    assert.equal('timeout' in loaded.config, false);
  });

  test('the seed flags are all there', () => {
    const seed = settingKeys.filter((key) => specOf(key).seed === true);
    assert.deepEqual(seed.flatMap((key) => specOf(key).cli.filter((flag) => /^-[^-]$/.test(flag))).sort(),
      ['-F', '-a', '-c', '-i', '-k', '-l', '-p', '-w'].sort());
  });
});

describe('validators', () => {
  const context = { cwd: scratch };
  function rejects<T>(validator: Validator<T>, raw: unknown, reason: string): void {
    assert.throws(() => validator.parse(raw, context), (error: unknown) =>
      error instanceof InvalidValueError && error.reason === reason, `${JSON.stringify(raw)} → ${reason}`);
  }

  test('int', () => {
    const port = int({ min: 0, max: 65535 });
    for (const raw of ['80a', '1.5', '', ' 80', '0x10', 1.5, true, null]) rejects(port, raw, 'not an integer');
    rejects(port, '70000', 'must be at most 65535');
    rejects(port, -1, 'must be at least 0');
    assert.equal(port.parse('+80', context), 80);
    assert.equal(port.parse(80, context), 80);
  });

  test('durationMs: seconds as written, kept in ms, shown in seconds again', () => {
    const timeout = durationMs({ min: 0.1, max: 60 });
    for (const raw of ['abc', '', 'Infinity', 'NaN', '1s', false]) rejects(timeout, raw, 'not a number of seconds');
    rejects(timeout, '0', 'must be at least 0.1');
    rejects(timeout, 61, 'must be at most 60');
    assert.equal(timeout.parse('0.5', context), 500);
    assert.equal(timeout.parse('.5', context), 500);
    assert.equal(timeout.parse('1e1', context), 10_000);
    rejects(durationMs(), '1e10', 'must be at most 2147483');
    assert.ok(durationMs().parse('0.0000001', context) > 0, 'a tiny duration is not rounded to 0 (which means off)');
    assert.equal(timeout.description, 'seconds from 0.1 to 60');
    for (const written of ['0.005', '1.1', '2.5', '30', '0.000001', '1e-7']) {
      const ms = durationMs().parse(written, context);
      assert.equal(durationMs().format(ms), written);
      assert.equal(durationMs().toUser?.(ms), Number(written));
    }
  });

  test('listenAddress: IP:PORT, IPv6 in brackets, no TLS fields', () => {
    const address = listenAddress();
    assert.deepEqual(address.parse('0.0.0.0:9100', context), { ip: '0.0.0.0', port: 9100 });
    assert.deepEqual(address.parse(' [::1]:0 ', context), { ip: '::1', port: 0 });
    assert.deepEqual(address.parse('localhost:9100', context), { ip: 'localhost', port: 9100 });
    assert.equal(address.format({ ip: '::', port: 9100 }), '[::]:9100');
    for (const raw of ['9100', ':9100', '0.0.0.0', '0.0.0.0:', '::1:9100', '0.0.0.0:9100:key.pem:cert.pem', '0.0.0.0:abc', '[::1:9100']) {
      rejects(address, raw, 'expected IP:PORT (an IPv6 address in brackets: [::]:9100)');
    }
    rejects(address, 'example.com:9100', '"example.com" is not an IP address');
    rejects(address, '300.1.1.1:9100', '"300.1.1.1" is not an IP address');
    rejects(address, '[zz]:9100', '"zz" is not an IP address');
    rejects(address, '0.0.0.0:70000', 'port 70000 is not from 0 to 65535');
    rejects(address, 9100, 'not text: give IP:PORT');
  });

  test('megabytes: whole MB, kept in bytes', () => {
    const rss = megabytes({ min: 0 });
    assert.equal(rss.parse('512', context), 512 * 1024 * 1024);
    rejects(rss, '1.5', 'not an integer');
    rejects(rss, '-1', 'must be at least 0');
    assert.equal(rss.format(512 * 1024 * 1024), '512');
    assert.equal(rss.toUser?.(512 * 1024 * 1024), 512);
  });

  test('bool', () => {
    const flag = bool();
    for (const raw of ['maybe', '', 2, null]) rejects(flag, raw, 'not a boolean: use true/false, 1/0, yes/no or on/off');
    for (const raw of [true, 'true', '1', 'YES', 'On']) assert.equal(flag.parse(raw, context), true);
    for (const raw of [false, 'false', '0', 'no', 'OFF']) assert.equal(flag.parse(raw, context), false);
    assert.equal(flag.kind, 'boolean');
  });

  test('str', () => {
    rejects(str({ minLength: 1 }), '', 'must not be empty');
    rejects(str(), 42, 'not a string');
    const app = specOf('app').type;
    for (const raw of ['app', 'mod:', ':app', 'a b:c', 'mod:app()']) rejects(app, raw, 'expected module:callable');
    assert.equal(app.parse('pkg.mod:obj.app', context), 'pkg.mod:obj.app');
  });

  test('enumOf', () => {
    rejects(enumOf(['a', 'b']), 'c', 'must be one of a, b');
    rejects(enumOf(['a', 'b']), 1, 'must be one of a, b');
    assert.equal(enumOf(['a', 'b']).metavar, 'a|b');
  });

  test('path', () => {
    const file = path({ mustExist: true, readable: true });
    rejects(file, 'absent.pem', 'no such file');
    rejects(file, '', 'must not be empty');
    rejects(file, 7, 'not a path');
    rejects(file, 'web2py', 'is a folder, not a file');
    rejects(path({ dir: true }), 'cert.pem', 'not a folder');
    rejects(path({ dir: true, mustExist: true }), 'absent', 'no such folder');
    assert.equal(path({ dir: true }).parse('not/yet', context), join(scratch, 'not/yet'));
    assert.equal(file.parse('cert.pem', context), certFile);
  });

  test('path: unreadable', { skip: process.getuid?.() === 0 ? 'root reads every file' : false }, () => {
    const secret = join(scratch, 'unreadable.pem');
    writeFileSync(secret, 'x');
    chmodSync(secret, 0o000);
    rejects(path({ readable: true }), secret, 'not readable by this user');
  });

  test('bytes', () => {
    const size = bytes({ min: 1024 });
    for (const [raw, value] of [['16k', 16384], ['1m', 1048576], ['1G', 1073741824], ['2048', 2048], ['4kb', 4096], ['8KiB', 8192], [4096, 4096]] as const) {
      assert.equal(size.parse(raw, context), value);
    }
    for (const raw of ['1.5k', 'k', '10x', '', '-1', 1.5]) rejects(size, raw, 'not a size (an integer, or with k, m or g)');
    rejects(size, '512', 'must be at least 1024');
    rejects(size, -1, 'must be at least 1024');
    assert.deepEqual([16384, 1048576, 1000].map((value) => size.format(value)), ['16k', '1m', '1000']);
  });

  test('cidrList (--trusted-proxies): addresses and CIDRs, IPv4 and IPv6, normalized; a bad one names itself', () => {
    const cidrs = cidrList();
    assert.deepEqual(cidrs.parse(' 10.0.0.0/8 ,192.0.2.7,2001:DB8::/32, ::ffff:10.0.0.0/104 ', context),
      ['10.0.0.0/8', '192.0.2.7/32', '2001:db8::/32', '::ffff:10.0.0.0/104']);
    assert.deepEqual(cidrs.parse(['loopback', '127.0.0.0/8', '10.1.2.3'], context), ['127.0.0.0/8', '::1/128', '10.1.2.3/32']);
    assert.deepEqual(cidrs.parse('UNIX, 10.0.0.0/8', context), ['unix', '10.0.0.0/8']);
    assert.deepEqual(cidrs.parse('', context), []);
    assert.deepEqual(cidrs.parse([], context), []);
    for (const raw of ['10.0.0.300', '10.0.0', 'example.com', 'fe80::1%eth0', '010.0.0.1', '/8']) {
      rejects(cidrs, raw, `"${raw}" is not an IPv4 or IPv6 address or CIDR`);
    }
    rejects(cidrs, '10.0.0.0/33', '"10.0.0.0/33": the prefix length must be 0 to 32');
    rejects(cidrs, '::/129', '"::/129": the prefix length must be 0 to 128');
    for (const raw of ['10.0.0.0/x', '10.0.0.0/', '10.0.0.0/8/8']) rejects(cidrs, raw, `"${raw}": the prefix length must be 0 to 32`);
    rejects(cidrs, '0.0.0.0/0', '"0.0.0.0/0" trusts every address, so any client could choose its own address; list the proxies\' addresses');
    rejects(cidrs, '::/0', '"::/0" trusts every address, so any client could choose its own address; list the proxies\' addresses');
    rejects(cidrs, 42, 'not a list: give comma-separated text, or a JSON array of strings in the config file');
    rejects(cidrs, ['10.0.0.1', 7], 'not a list: give comma-separated text, or a JSON array of strings in the config file');
    assert.equal(cidrs.format([]), 'none');
  });

  test('wordList (--proxy-headers): known names, case-insensitive, forwarded alone', () => {
    const headers = specOf('proxyHeaders').type;
    assert.deepEqual(headers.parse('X-Forwarded-For, x-forwarded-host,x-forwarded-for', context), ['x-forwarded-for', 'x-forwarded-host']);
    assert.deepEqual(headers.parse(['forwarded'], context), ['forwarded']);
    assert.deepEqual(headers.parse('', context), []);
    rejects(headers, 'x-real-ip', '"x-real-ip" is not one of x-forwarded-for, x-forwarded-proto, x-forwarded-host, x-forwarded-port, x-forwarded-by, forwarded');
    rejects(headers, 'forwarded,x-forwarded-proto', '"forwarded" excludes the x-forwarded-* headers (they say the same things; trust one kind)');
    rejects(wordList(['a', 'b']), 'c', '"c" is not one of a, b');
  });

  test('a bad --trusted-proxies stops the load with the flag, the value and why', () => {
    assertServerError(() => load({ argv: ['--trusted-proxies', '127.0.0.1,10.0.0.0/33'] }), 'W2N_ERR_CONFIG_BAD_VALUE',
      '--trusted-proxies "127.0.0.1,10.0.0.0/33": "10.0.0.0/33": the prefix length must be 0 to 32 (from argv)');
    const file = writeJson('proxies.json', { trustedProxies: ['10.0.0.0/8', 'nope'] });
    assertServerError(() => load({ argv: ['--config', file] }), 'W2N_ERR_CONFIG_BAD_VALUE', /"nope" is not an IPv4 or IPv6 address or CIDR \(from config file /);
    assert.deepEqual(load({ env: { W2N_TRUSTED_PROXIES: 'loopback' } }).config.trustedProxies, ['127.0.0.0/8', '::1/128']);
  });

  test('nullable', () => {
    const workers = nullable(int({ min: 1 }));
    assert.equal(workers.parse(null, context), null);
    assert.equal(workers.parse('', context), null);
    assert.equal(workers.parse('3', context), 3);
    rejects(workers, '0', 'must be at least 1');
    assert.equal(workers.format(null), 'none');
  });
});

describe('--help', () => {
  const help = renderHelp();
  test('lists every setting: every spelling, its env var and its doc', () => {
    for (const key of settingKeys) {
      for (const flag of specOf(key).cli) assert.match(help, new RegExp(`(^|[ ,])${flag}([ ,]|$)`, 'm'), flag);
      assert.ok(help.includes(`Env: ${envVarName(key)}.`), envVarName(key));
      assert.ok(help.includes(`Config key: ${key}.`), key);
    }
    for (const { cli } of Object.values(actionFlags)) for (const flag of cli) assert.ok(help.includes(flag), flag);
    assert.match(help, /^Usage: web2py-on-node \[options\]$/m);
  });

  test('is wrapped to 100 columns', () => {
    assert.deepEqual(help.split('\n').filter((line) => line.length > 100), []);
  });
});
