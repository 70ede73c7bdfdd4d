/** @module savePassword writes parameters_<port>.py that web2py's own CRYPT (hashlib, pydal) accepts. */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { isServerError } from '../../src/errors/index.js';
import { cryptPassword, randomPasswordNotice, savePassword } from '../../src/web2py/password.js';

const PORT = 8000;
const FILE_RE = /^password="(pbkdf2\(1000,20,sha512\)\$[89ab][0-9a-f]{15}\$[0-9a-f]{40})"\n$/;

/**
 * pydal/validators.py LazyCrypt.__eq__ for a salted entry, with hashlib only:
 *   (digest_alg, salt, hash) = stored_password.split("$")
 *   h = simple_hash(self.password, key, salt, digest_alg)   # → pbkdf2_hmac(...).hex()
 */
const HASHLIB_VERIFY = String.raw`
import hashlib, json, sys
data = json.loads(sys.stdin.read())
alg, salt, digest = data["stored"].split("$")
iterations, keylen, name = alg[7:-1].split(",")
assert alg.startswith("pbkdf2(")
h = hashlib.pbkdf2_hmac(name, data["password"].encode("utf8"), salt.encode("utf8"), int(iterations), int(keylen)).hex()
print("ok" if h == digest else "mismatch")
`;

/** The same check with pydal's own CRYPT, as admin's verify_password: `_config['password'] == CRYPT()(password)[0]`. */
const PYDAL_VERIFY = String.raw`
import json, sys
sys.path.insert(0, sys.argv[1])
from pydal.validators import CRYPT
data = json.loads(sys.stdin.read())
print("ok" if CRYPT()(data["password"])[0] == data["stored"] else "mismatch")
`;

function verifyWithPython(script: string, password: string, stored: string, args: string[] = []): string {
  return execFileSync('python3', ['-c', script, ...args], {
    input: JSON.stringify({ password, stored }), encoding: 'utf8',
  }).trim();
}

function storedHash(file: string): string {
  const match = FILE_RE.exec(readFileSync(file, 'utf8'));
  assert.ok(match, `unexpected content: ${readFileSync(file, 'utf8')}`);
  return match[1] as string;
}

let root: string;
let dirCount = 0;
function freshDir(): string {
  dirCount += 1;
  const dir = join(root, `d${dirCount}`);
  mkdirSync(dir);
  return dir;
}

/** pydal from the local mirror of web2py/pydal, when this machine has one. */
function extractPydal(): string | null {
  const gitDir = '/work/.mirror/web2py+pydal/repo';
  if (!existsSync(gitDir)) return null;
  const dest = join(root, 'pydal-src');
  mkdirSync(dest);
  try {
    const tar = execFileSync('git', ['--git-dir', gitDir, 'archive', 'HEAD', 'pydal'], { maxBuffer: 64 * 1024 * 1024 });
    execFileSync('tar', ['-x', '-C', dest], { input: tar });
    return dest;
  } catch {
    return null;
  }
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'w2n-password-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('savePassword', () => {
  it('writes web2py CRYPT pbkdf2(1000,20,sha512) that hashlib verifies, mode 0600', () => {
    const folder = freshDir();
    const password = 'sécret pass "1"';
    const result = savePassword({ folder, port: PORT, password });
    assert.deepEqual(result, { file: join(folder, 'parameters_8000.py'), action: 'written' });
    const stored = storedHash(result.file);
    assert.equal(verifyWithPython(HASHLIB_VERIFY, password, stored), 'ok');
    assert.equal(verifyWithPython(HASHLIB_VERIFY, 'wrong', stored), 'mismatch');
    assert.equal(statSync(result.file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(folder), ['parameters_8000.py'], 'no temp file is left');
  });

  it('matches pydal CRYPT itself (optional: needs the pydal mirror)', (t) => {
    const pydalPath = extractPydal();
    if (pydalPath === null) {
      t.skip('no pydal mirror on this machine');
      return;
    }
    const folder = freshDir();
    const { file } = savePassword({ folder, port: PORT, password: 'admin-Ω' });
    assert.equal(verifyWithPython(PYDAL_VERIFY, 'admin-Ω', storedHash(file), [pydalPath]), 'ok');
    assert.equal(verifyWithPython(PYDAL_VERIFY, 'admin-O', storedHash(file), [pydalPath]), 'mismatch');
  });

  it('computes the digest over the salt text, as simple_hash does', () => {
    const expected = execFileSync('python3', ['-c',
      'import hashlib;print(hashlib.pbkdf2_hmac("sha512", b"pw", b"0123456789abcdef", 1000, 20).hex())'],
    { encoding: 'utf8' }).trim();
    assert.equal(cryptPassword('pw', '0123456789abcdef'), `pbkdf2(1000,20,sha512)$0123456789abcdef$${expected}`);
  });

  it('uses a fresh salt each time', () => {
    const folder = freshDir();
    const first = storedHash(savePassword({ folder, port: PORT, password: 'x' }).file);
    const second = storedHash(savePassword({ folder, port: PORT, password: 'x' }).file);
    assert.notEqual(first, second);
  });

  it('replaces an existing file and tightens its mode', () => {
    const folder = freshDir();
    const file = join(folder, 'parameters_8000.py');
    writeFileSync(file, 'password=None\n', { mode: 0o644 });
    savePassword({ folder, port: PORT, password: 'new' });
    assert.equal(verifyWithPython(HASHLIB_VERIFY, 'new', storedHash(file)), 'ok');
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  it('<recycle> keeps an existing file: same bytes, same mtime', () => {
    const folder = freshDir();
    const file = join(folder, 'parameters_8123.py');
    const content = 'password="pbkdf2(1000,20,sha512)$a1b2c3d4e5f60718$0000000000000000000000000000000000000000"';
    writeFileSync(file, content, { mode: 0o600 });
    const past = new Date('2020-01-02T03:04:05Z');
    utimesSync(file, past, past);
    const result = savePassword({ folder, port: 8123, password: '<recycle>' });
    assert.deepEqual(result, { file, action: 'kept' });
    assert.equal(readFileSync(file, 'utf8'), content);
    assert.equal(statSync(file).mtimeMs, past.getTime());
  });

  it('<recycle> without a file writes nothing (web2py_on_gevent.py skips save_password)', () => {
    const folder = freshDir();
    const result = savePassword({ folder, port: PORT, password: '<recycle>' });
    assert.deepEqual(result, { file: join(folder, 'parameters_8000.py'), action: 'disabled' });
    assert.equal(existsSync(result.file), false);
  });

  it('an empty password writes password=None', () => {
    const folder = freshDir();
    const result = savePassword({ folder, port: PORT, password: '' });
    assert.equal(result.action, 'disabled');
    assert.equal(readFileSync(result.file, 'utf8'), 'password=None\n');
    assert.equal(statSync(result.file).mode & 0o777, 0o600);
  });

  it('<random> makes an 8-character password that verifies', () => {
    const folder = freshDir();
    const result = savePassword({ folder, port: PORT, password: '<random>' });
    assert.equal(result.action, 'written');
    const generated = result.generatedPassword ?? '';
    assert.match(generated, /^[A-Za-z0-9]{8}$/);
    assert.equal(verifyWithPython(HASHLIB_VERIFY, generated, storedHash(result.file)), 'ok');
    assert.equal(randomPasswordNotice(generated), [
      '******************* IMPORTANT!!! ************************',
      `your admin password is "${generated}"`,
      '*********************************************************',
    ].join('\n'));
  });

  it('<pam_user:NAME> writes password="pam_user:NAME"', () => {
    const folder = freshDir();
    const result = savePassword({ folder, port: PORT, password: '<pam_user:alice>' });
    assert.equal(result.action, 'pam');
    assert.equal(readFileSync(result.file, 'utf8'), 'password="pam_user:alice"\n');
  });

  it('rejects a pam user name that would break the Python file', () => {
    const folder = freshDir();
    for (const bad of ['<pam_user:a"b>', '<pam_user:bob', '<pam_user:>']) {
      assert.throws(() => savePassword({ folder, port: PORT, password: bad }),
        (err: unknown) => isServerError(err) && err.code === 'W2N_ERR_PASSWORD_FILE');
    }
    assert.deepEqual(readdirSync(folder), []);
  });

  it('fails with W2N_ERR_PASSWORD_FILE, without the password, when the folder is unusable', () => {
    const notAFolder = join(freshDir(), 'regular-file');
    writeFileSync(notAFolder, '');
    const password = 'TopSecret-9f8e7d';
    assert.throws(() => savePassword({ folder: notAFolder, port: PORT, password }), (err: unknown) => {
      assert.ok(isServerError(err));
      assert.equal(err.code, 'W2N_ERR_PASSWORD_FILE');
      assert.equal(err.details['file'], join(notAFolder, 'parameters_8000.py'));
      const everything = [err.message, JSON.stringify(err.details), String(err.cause), err.stack ?? ''].join('\n');
      assert.ok(!everything.includes(password), 'the password leaked into the error');
      return true;
    });
  });

  it('fails with W2N_ERR_PASSWORD_FILE on a read-only folder (skipped as root, who writes anyway)', (t) => {
    if (process.getuid?.() === 0) {
      t.skip('root ignores directory modes');
      return;
    }
    const folder = freshDir();
    chmodSync(folder, 0o500);
    try {
      assert.throws(() => savePassword({ folder, port: PORT, password: 'pw' }),
        (err: unknown) => isServerError(err) && err.code === 'W2N_ERR_PASSWORD_FILE' && !err.message.includes('pw"'));
    } finally {
      chmodSync(folder, 0o700);
    }
  });
});
