/**
 * @module The front's Node.js flags (src/primary/front-process.ts): the primary's own, plus the
 * front's semi-space size unless the operator sized V8's young generation, in the primary's
 * flags or in NODE_OPTIONS.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FRONT_SEMI_SPACE_MB, frontExecArgv } from '../../src/primary/front-process.js';

const OURS = `--max-semi-space-size=${FRONT_SEMI_SPACE_MB}`;

test('the front gets the primary\'s flags and its semi-space size', () => {
  assert.deepEqual(frontExecArgv([], undefined), [OURS]);
  assert.deepEqual(frontExecArgv(['--enable-source-maps', '--max-old-space-size=512'], ''), ['--enable-source-maps', '--max-old-space-size=512', OURS]);
  assert.deepEqual(frontExecArgv([], '--max-old-space-size=512 --enable-source-maps'), [OURS]);
});

test('a young-generation size the operator gave wins, in any spelling V8 takes', () => {
  for (const flag of ['--max-semi-space-size=8', '--max_semi_space_size=8', '--max-semi-space-size', '--min-semi-space-size=4', '--max-heap-size=300', '--max_heap_size=300']) {
    assert.deepEqual(frontExecArgv([flag], undefined), [flag], flag);
    assert.deepEqual(frontExecArgv(['--inspect=0'], `--enable-source-maps ${flag}`), ['--inspect=0'], `NODE_OPTIONS ${flag}`);
  }
});

test('flags that only look alike leave the front its size', () => {
  for (const flag of ['--max-old-space-size=512', '--semi-space-growth-factor=2', '--max-semi-space-sizes=1']) {
    assert.deepEqual(frontExecArgv([flag], undefined), [flag, OURS], flag);
  }
});

test('the front\'s semi-space is larger than Node.js\'s 16 MB default', () => {
  assert.ok(FRONT_SEMI_SPACE_MB > 16);
});
