/**
 * @module The log catalogue (src/observability/events*.ts): each event written with its declared
 * level, message and fields; levels of error lines taken from the error table; every event used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { errorTable } from '../../src/errors/index.js';
import { levelOf } from '../../src/observability/event-spec.js';
import { LogEvents, eventCatalogue } from '../../src/observability/events.js';
import { createLogger, type Logger } from '../../src/observability/log.js';

const levelNames: Record<number, string> = { 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** A debug-level JSON logger whose lines are kept. */
function capture(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const written: string[] = [];
  const log = createLogger({ level: 'debug', format: 'json', destination: { write: (line: string) => written.push(line) } });
  return { log, lines: () => written.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

test('event names are dotted and lower case; an event whose level is the code\'s has a code field', () => {
  for (const [name, spec] of Object.entries(eventCatalogue)) {
    assert.match(name, /^[a-z0-9]+\.[a-z0-9_]+$/, name);
    if (spec.level === 'code') assert.ok(spec.fields.includes('code'), `${name} takes its level from its code`);
    if (typeof spec.message !== 'string') assert.ok(spec.fields.includes(spec.message.field), `${name}: its message field is declared`);
  }
});

test('lines carry the declared level, message and fields, nothing else', () => {
  const { log, lines } = capture();
  LogEvents.workerReady(log, { workerId: 3, pid: 42, python: '3.11', workerClass: 'thread', capacity: 8, startupMs: 120 });
  LogEvents.reloadStarted(log, { signal: 'SIGHUP', workers: 2 });
  LogEvents.workerOutput(log, { workerId: 3, pid: 42, stream: 'stderr', line: 'Traceback (most recent call last):' });
  const [ready, reload, output] = lines();
  assert.equal(levelNames[ready!.level as number], 'info');
  assert.equal(ready!.msg, eventCatalogue['worker.ready']!.message);
  const fields = (record: Record<string, unknown>): string[] => Object.keys(record).filter((key) => !['level', 'time', 'pid', 'msg', 'event'].includes(key)).sort();
  assert.deepEqual(fields(ready!), ['capacity', 'python', 'startupMs', 'workerClass', 'workerId']);
  assert.deepEqual(fields(reload!), ['signal', 'workers'], 'an undeclared value is absent, not null');
  assert.equal(output!.msg, 'Traceback (most recent call last):', 'a relayed line is the message');
  assert.equal(output!.line, undefined);
});

test('lines that report an error take its level from the error table', () => {
  const { log, lines } = capture();
  LogEvents.clientError(log, { code: 'W2N_ERR_CLIENT_BAD_REQUEST', remoteAddr: '127.0.0.1', reason: 'x' });
  LogEvents.clientFlood(log, { code: 'W2N_ERR_CLIENT_FLOOD', remoteAddr: '127.0.0.1', reason: 'x' });
  LogEvents.requestTimedOut(log, { reqId: 1, requestId: 'r', workerId: 1, method: 'GET', path: '/', code: 'W2N_ERR_WORKER_TIMEOUT', message: 'm', headersSent: false });
  LogEvents.workerProtocolError(log, { workerId: 1, pid: 2, code: 'W2N_ERR_PROTO_BAD_PAYLOAD', message: 'm' });
  const got = lines().map((line) => [line.code, levelNames[line.level as number]]);
  assert.deepEqual(got, [
    ['W2N_ERR_CLIENT_BAD_REQUEST', errorTable.W2N_ERR_CLIENT_BAD_REQUEST.logLevel],
    ['W2N_ERR_CLIENT_FLOOD', errorTable.W2N_ERR_CLIENT_FLOOD.logLevel],
    ['W2N_ERR_WORKER_TIMEOUT', errorTable.W2N_ERR_WORKER_TIMEOUT.logLevel],
    ['W2N_ERR_PROTO_BAD_PAYLOAD', errorTable.W2N_ERR_PROTO_BAD_PAYLOAD.logLevel],
  ]);
  assert.equal(errorTable.W2N_ERR_CLIENT_BAD_REQUEST.logLevel, 'debug', 'bad client input is per request: debug');
  assert.equal(levelOf(eventCatalogue['client.error']!, { code: 'NOT_A_CODE' }), 'error');
});

test('a worker that cannot start is news (error) only when it replaces one', () => {
  const { log, lines } = capture();
  for (const isNews of [false, true]) {
    LogEvents.workerStartFailed(log, { workerId: 1, code: 'W2N_ERR_APP_IMPORT', message: 'No module named x', traceback: 't', isNews });
  }
  assert.deepEqual(lines().map((line) => [line.event, levelNames[line.level as number], line.isNews]), [
    ['worker.start_failed', 'debug', undefined], ['worker.start_failed', 'error', undefined],
  ]);
});

test('every event of the catalogue is written somewhere in src/', () => {
  const folder = join(import.meta.dirname, '..', '..', 'src', 'observability');
  const source = readdirSync(folder).filter((name) => /^events-.*\.ts$/.test(name)).map((name) => readFileSync(join(folder, name), 'utf8')).join('\n');
  for (const name of Object.keys(eventCatalogue)) {
    const uses = source.split(`'${name}'`).length - 1;
    assert.ok(uses >= 2, `${name} is declared and emitted (found ${uses} mentions)`);
  }
  const callers = sourceOutsideObservability();
  for (const method of Object.keys(LogEvents)) assert.ok(callers.includes(`LogEvents.${method}(`), `LogEvents.${method} is called in src/`);
});

function sourceOutsideObservability(): string {
  const root = join(import.meta.dirname, '..', '..', 'src');
  const texts: string[] = [];
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !path.includes(`${join('src', 'observability')}`)) texts.push(readFileSync(path, 'utf8'));
    }
  };
  walk(root);
  return texts.join('\n');
}

test('text lines: a value cannot forge a field or a line (issue 14: the header a response was refused for)', () => {
  const written: string[] = [];
  const log = createLogger({ level: 'debug', format: 'text', destination: { write: (line: string) => written.push(line) } });
  const message = "the application broke the WSGI rules: header 'X-Evil': value 'x\" code=W2N_ERR_FORGED reqId=9\\n\u202e' is not a latin-1 string";
  LogEvents.appException(log, { reqId: 1, requestId: 'r-1', workerId: 2, method: 'GET', path: '/a b', code: 'W2N_ERR_APP_BAD_RESPONSE', message, traceback: '', headersSent: false });
  LogEvents.staticRefused(log, { status: 400, reason: 'x', path: '/\u001b[2J\u2028', requestId: 'r-1' });
  const [failed, refused] = written;
  assert.equal(failed!.trimEnd().split('\n').length, 1, 'one line');
  assert.match(failed!, / request\.failed the application failed this request\b/);
  const unquoted = failed!.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  assert.deepEqual(unquoted.match(/ [a-zA-Z]+=/g), [' reqId=', ' requestId=', ' workerId=', ' method=', ' path=', ' code=', ' message=', ' headersSent='], 'the fields, none forged');
  assert.match(failed!, / code=W2N_ERR_APP_BAD_RESPONSE /);
  assert.match(failed!, / message="the application broke the WSGI rules: header 'X-Evil': value 'x\\" code=W2N_ERR_FORGED reqId=9\\\\n\\u202e' is not/);
  assert.match(failed!, / path="\/a b"/);
  assert.match(refused!, / path="\/\\u001b\[2J\\u2028"/);
});
