/** @module The access-log line against web2py's own format code, and the buffered writer. */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { isServerError } from '../../src/errors/index.js';
import { AccessLog, accessLogTarget, ATOMIC_PIPE_WRITE_BYTES, batchesOf } from '../../src/observability/access-log.js';
import { formatAccessLine, formatPercentF, type AccessEntry } from '../../src/observability/access-formats.js';

/**
 * gluon/main.py appfactory.app_with_logging's line, fed the same inputs (datetime.today() is
 * fromtimestamp(time.time()), so fromtimestamp(t) gives the same local time), then written
 * the way write_file(logfilename, line, "a") does: open(filename, "a", encoding="utf8").
 */
const WEB2PY_FORMAT = String.raw`
import datetime, json, sys
entries = json.loads(sys.stdin.read())
with open(sys.argv[1], "a", encoding="utf8") as f:
    for e in entries:
        environ = {"REMOTE_ADDR": e["remoteAddr"], "REQUEST_METHOD": e["method"],
                   "PATH_INFO": e["pathInfo"], "SERVER_PROTOCOL": e["protocol"]}
        status_headers = [str(e["status"]) + " Whatever", []]
        line = "%s, %s, %s, %s, %s, %s, %f\n" % (
            environ["REMOTE_ADDR"],
            datetime.datetime.fromtimestamp(e["timeMs"] / 1000).strftime("%Y-%m-%d %H:%M:%S"),
            environ["REQUEST_METHOD"],
            environ["PATH_INFO"].replace(",", "%2C"),
            environ["SERVER_PROTOCOL"],
            (status_headers[0])[:3],
            e["seconds"],
        )
        f.write(line)
`;

const ENTRIES: AccessEntry[] = [
  { remoteAddr: '127.0.0.1', time: new Date(1718028187123), method: 'GET', pathInfo: '/welcome/default/index',
    protocol: 'HTTP/1.1', status: 200, seconds: 0.0123456789 },
  { remoteAddr: '::1', time: new Date(946684799999), method: 'POST', pathInfo: '/app/a,b,,c/x,y',
    protocol: 'HTTP/1.0', status: 303, seconds: 12.5 },
  // PEP 3333 PATH_INFO: UTF-8 "café" decoded as latin-1, and a raw latin-1 "ÿ" byte
  { remoteAddr: '10.0.0.7', time: new Date(1700000000000), method: 'GET', pathInfo: '/app/caf\u00c3\u00a9/\u00ff',
    protocol: 'HTTP/1.1', status: 404, seconds: 0 },
  // exact binary ties at the 7th decimal: Python rounds half to even
  { remoteAddr: '1.2.3.4', time: new Date(1709251199000), method: 'HEAD', pathInfo: '/', protocol: 'HTTP/1.1',
    status: 500, seconds: 0.0078125 },
  { remoteAddr: '1.2.3.4', time: new Date(1709251200500), method: 'GET', pathInfo: '/', protocol: 'HTTP/1.1',
    status: 200, seconds: 0.0234375 },
  { remoteAddr: '1.2.3.4', time: new Date(1e12), method: 'GET', pathInfo: '/', protocol: 'HTTP/1.1',
    status: 200, seconds: 1234.56789049999 },
];

function web2pyBytes(entries: AccessEntry[], file: string): Buffer {
  const input = JSON.stringify(entries.map((e) => ({ ...e, timeMs: e.time.getTime() })));
  execFileSync('python3', ['-c', WEB2PY_FORMAT, file], { input, env: process.env });
  return readFileSync(file);
}

let root: string;
let fileCount = 0;
function freshFile(): string {
  fileCount += 1;
  return join(root, `f${fileCount}.log`);
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'w2n-access-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

function withTimeZone(tz: string, run: () => void): void {
  const saved = process.env['TZ'];
  process.env['TZ'] = tz; // Node re-reads TZ on assignment; the Python child inherits it
  try {
    run();
  } finally {
    if (saved === undefined) delete process.env['TZ'];
    else process.env['TZ'] = saved;
  }
}

describe('formatAccessLine', () => {
  for (const tz of ['UTC', 'Asia/Kolkata', 'America/St_Johns']) {
    it(`is byte-identical to web2py's line in local time (TZ=${tz})`, () => {
      withTimeZone(tz, () => {
        const ours = Buffer.from(ENTRIES.map(formatAccessLine).join(''), 'utf8');
        assert.equal(ours.toString('utf8'), web2pyBytes(ENTRIES, freshFile()).toString('utf8'));
        assert.ok(ours.equals(web2pyBytes(ENTRIES, freshFile())));
      });
    });
  }

  it('replaces commas in the path only', () => {
    withTimeZone('UTC', () => {
      assert.equal(formatAccessLine({ remoteAddr: '127.0.0.1', time: new Date(Date.UTC(2024, 5, 10, 14, 3, 7)),
        method: 'GET', pathInfo: '/a,b', protocol: 'HTTP/1.1', status: 200, seconds: 0.25 }),
      '127.0.0.1, 2024-06-10 14:03:07, GET, /a%2Cb, HTTP/1.1, 200, 0.250000\n');
    });
  });
});

describe('formatPercentF', () => {
  it('matches Python "%f" on ties, rounding, tiny, negative and non-finite values', () => {
    const values = [0, -0, 0.0078125, 0.0234375, 0.5, 1.0000005, 2.5e-7, 5e-7, 1e-7, 0.1234565, 123456.9999996,
      3.14159265358979, -1.25, 1e-300, 86400.123, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    const script = 'import json,sys\nfor v in json.loads(sys.stdin.read()): print("%f" % float(v))';
    const asJson = JSON.stringify(values.map((v) => (Number.isFinite(v) ? (Object.is(v, -0) ? '-0.0' : v) : String(v).replace('Infinity', 'inf'))));
    const expected = execFileSync('python3', ['-c', script], { input: asJson, encoding: 'utf8' }).trimEnd().split('\n');
    assert.deepEqual(values.map(formatPercentF), expected);
  });
});

describe('AccessLog', () => {
  it('writes the same bytes as web2py\'s write_file(..., "a")', async () => {
    const ours = freshFile();
    const log = AccessLog.open(ours);
    for (const e of ENTRIES) log.write(formatAccessLine(e));
    await log.close();
    assert.ok(readFileSync(ours).equals(web2pyBytes(ENTRIES, freshFile())));
  });

  it('appends to an existing file', async () => {
    const file = freshFile();
    writeFileSync(file, 'old line\n');
    const log = AccessLog.open(file);
    log.write('new line\n');
    await log.close();
    assert.equal(readFileSync(file, 'utf8'), 'old line\nnew line\n');
  });

  it('loses nothing on close: 10,000 lines, in order', async () => {
    const file = freshFile();
    const log = AccessLog.open(file);
    for (let i = 0; i < 10_000; i += 1) log.write(`line ${i}\n`);
    await log.close();
    const lines = readFileSync(file, 'utf8').split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, 10_000);
    assert.ok(lines.every((line, i) => line === `line ${i}`));
    assert.equal(log.droppedLineCount, 0);
  });

  it('flushes on its own within the interval', async () => {
    const file = freshFile();
    const log = AccessLog.open(file, { flushIntervalMs: 10 });
    log.write('soon\n');
    assert.equal(readFileSync(file, 'utf8'), '', 'buffered, not written per line');
    await new Promise((done) => setTimeout(done, 100));
    assert.equal(readFileSync(file, 'utf8'), 'soon\n');
    await log.close();
  });

  it('reopens after a logrotate-style rename', async () => {
    const file = freshFile();
    const log = AccessLog.open(file);
    log.write('before\n');
    renameSync(file, `${file}.1`);
    log.write('still old\n'); // written before the reopen: belongs to the old file
    await log.reopen();
    log.write('after\n');
    await log.close();
    assert.equal(readFileSync(`${file}.1`, 'utf8'), 'before\nstill old\n');
    assert.equal(readFileSync(file, 'utf8'), 'after\n');
  });

  it('drops (and counts) lines beyond maxBufferedBytes and after close', async () => {
    const file = freshFile();
    const log = AccessLog.open(file, { maxBufferedBytes: 10, flushThresholdBytes: 1000 });
    log.write('12345\n');
    log.write('12345\n'); // 12 bytes > 10: dropped
    await log.close();
    log.write('late\n');
    assert.equal(readFileSync(file, 'utf8'), '12345\n');
    assert.equal(log.droppedLineCount, 2);
    await log.close(); // idempotent
  });

  it('reports W2N_ERR_LOG_FILE for an unwritable path', () => {
    const regularFile = freshFile();
    writeFileSync(regularFile, '');
    for (const bad of [join(regularFile, 'httpserver.log'), root]) {
      assert.throws(() => AccessLog.open(bad), (err: unknown) => {
        assert.ok(isServerError(err));
        assert.equal(err.code, 'W2N_ERR_LOG_FILE');
        assert.equal(err.details['file'], bad);
        return true;
      });
    }
  });

  it('rejects reopen() with W2N_ERR_LOG_FILE when the path became unusable, then recovers', async (t) => {
    if (process.getuid?.() === 0) {
      t.skip('root ignores file modes');
      return;
    }
    const file = freshFile();
    const log = AccessLog.open(file);
    chmodSync(file, 0o400);
    await assert.rejects(log.reopen(), (err: unknown) => isServerError(err) && err.code === 'W2N_ERR_LOG_FILE');
    chmodSync(file, 0o600);
    await log.reopen();
    log.write('ok\n');
    await log.close();
    assert.equal(readFileSync(file, 'utf8'), 'ok\n');
  });
});

describe('AccessLog to a pipe or stdout', () => {
  it('cuts a batch into writes of at most PIPE_BUF bytes of whole lines; a longer line alone', () => {
    const lines = ['a'.repeat(1000) + '\n', 'b'.repeat(3000) + '\n', 'c'.repeat(100) + '\n', 'd'.repeat(5000) + '\n', 'é\n'];
    const batches = batchesOf(lines, ATOMIC_PIPE_WRITE_BYTES);
    assert.deepEqual(batches.map((b) => b.lineCount), [2, 1, 1, 1]);
    assert.ok(batches.every((b) => b.data.length <= ATOMIC_PIPE_WRITE_BYTES || b.lineCount === 1));
    assert.ok(batches.every((b) => b.data.at(-1) === 0x0a), 'each write ends a line');
    assert.equal(Buffer.concat(batches.map((b) => b.data)).toString('utf8'), lines.join(''));
    assert.equal(batchesOf(lines, Infinity).length, 1, 'a regular file takes the batch in one write');
  });

  it('writes to a descriptor it does not own, and leaves it open on close', async () => {
    const file = freshFile();
    const fd = openSync(file, 'a');
    const log = AccessLog.toDescriptor(fd, 'stdout');
    assert.equal(log.file, 'stdout');
    log.write('one\n');
    await log.reopen(); // nothing to reopen: flushes
    log.write('two\n');
    await log.close();
    writeSync(fd, 'still open\n');
    closeSync(fd);
    assert.equal(readFileSync(file, 'utf8'), 'one\ntwo\nstill open\n');
  });

  it('--access-log: `-` is stdout, a relative path is in the web2py folder; -l alone is httpserver.log', () => {
    const folder = '/srv/web2py';
    assert.equal(accessLogTarget({ logging: false, accessLog: null, folder }), null);
    assert.equal(accessLogTarget({ logging: true, accessLog: null, folder }), '/srv/web2py/httpserver.log');
    assert.equal(accessLogTarget({ logging: false, accessLog: '-', folder }), '-');
    assert.equal(accessLogTarget({ logging: true, accessLog: 'logs/access.log', folder }), '/srv/web2py/logs/access.log');
    assert.equal(accessLogTarget({ logging: false, accessLog: '/var/log/w2n.log', folder }), '/var/log/w2n.log');
  });
});

