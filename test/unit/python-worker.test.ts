/**
 * Runs the Python worker's own unittest suite (test/python) under every available interpreter,
 * so its codec, WSGI and worker tests count in this runner's summary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const interpreters = ['python3', '/usr/bin/python3'].filter((python, index) => index === 0 || existsSync(python));

for (const python of interpreters) {
  test(`Python worker unittest suite passes under ${python}`, () => {
    const result = spawnSync(python, ['-m', 'unittest', 'discover', '-s', 'test/python'], {
      cwd: root, encoding: 'utf8', timeout: 240_000,
    });
    const summary = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-25).join('\n');
    assert.equal(result.status, 0, `unittest failed under ${python}:\n${summary}`);
    assert.match(result.stderr, /Ran [1-9]\d* tests?/, 'some tests ran');
  });
}
