/** @module Web2py folder detection and the -F profiler folder check. */

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { isServerError } from '../../src/errors/index.js';
import { checkWeb2pyFolder, isWeb2pyFolder, prepareProfilerDir } from '../../src/web2py/folder.js';

let root: string;
before(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'w2n-folder-')));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

function makeFolder(name: string, opts: { hasGluon: boolean; hasRoutes?: boolean }): string {
  const folder = join(root, name);
  mkdirSync(folder);
  if (opts.hasGluon) mkdirSync(join(folder, 'gluon'));
  if (opts.hasRoutes === true) writeFileSync(join(folder, 'routes.py'), 'routes_in = ()\n');
  return folder;
}

function isCode(code: string): (err: unknown) => boolean {
  return (err: unknown) => isServerError(err) && err.code === code;
}

describe('checkWeb2pyFolder', () => {
  it('accepts a folder with gluon/ and reports routes.py', () => {
    const plain = makeFolder('plain', { hasGluon: true });
    assert.deepEqual(checkWeb2pyFolder(plain), { folder: plain, hasRoutes: false });
    const routed = makeFolder('routed', { hasGluon: true, hasRoutes: true });
    assert.deepEqual(checkWeb2pyFolder(routed), { folder: routed, hasRoutes: true });
  });

  it('returns the real path of a symlinked folder', () => {
    const target = makeFolder('target', { hasGluon: true });
    const link = join(root, 'link');
    symlinkSync(target, link);
    assert.equal(checkWeb2pyFolder(link).folder, target);
  });

  it('rejects a folder without gluon/, a gluon file, and a missing folder', () => {
    const empty = makeFolder('empty', { hasGluon: false });
    const gluonFile = makeFolder('gluon-file', { hasGluon: false });
    writeFileSync(join(gluonFile, 'gluon'), '');
    for (const folder of [empty, gluonFile, join(root, 'missing')]) {
      assert.equal(isWeb2pyFolder(folder), false);
      assert.throws(() => checkWeb2pyFolder(folder), (err: unknown) => {
        assert.ok(isServerError(err));
        assert.equal(err.code, 'W2N_ERR_FOLDER_NOT_WEB2PY');
        assert.equal(err.details['folder'], folder);
        return true;
      });
    }
    assert.equal(isWeb2pyFolder(makeFolder('yes', { hasGluon: true })), true);
  });
});

describe('prepareProfilerDir', () => {
  it('creates nested folders, leaves no probe, returns the absolute path', () => {
    const dir = join(root, 'prof', 'a', 'b');
    assert.equal(prepareProfilerDir(dir), dir);
    assert.ok(statSync(dir).isDirectory());
    assert.deepEqual(readdirSync(dir), []);
  });

  it('resolves a relative folder against the web2py folder, like gluon.fileutils.abspath', () => {
    const base = makeFolder('base', { hasGluon: true });
    assert.equal(prepareProfilerDir('profiles', base), join(base, 'profiles'));
    assert.ok(existsSync(join(base, 'profiles')));
  });

  it('accepts an existing folder', () => {
    const dir = join(root, 'existing');
    mkdirSync(dir);
    assert.equal(prepareProfilerDir(dir), dir);
  });

  it('rejects a regular file and a path under a regular file', () => {
    const file = join(root, 'plain-file');
    writeFileSync(file, '');
    assert.throws(() => prepareProfilerDir(file), isCode('W2N_ERR_PROFILER_DIR'));
    assert.throws(() => prepareProfilerDir(join(file, 'sub')), isCode('W2N_ERR_PROFILER_DIR'));
  });
});
