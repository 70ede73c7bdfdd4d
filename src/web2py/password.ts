/** @module web2py's admin password file `parameters_<port>.py`, byte for byte as gluon.main.save_password writes it. */

import { pbkdf2Sync, randomInt, randomUUID } from 'node:crypto';
import {
  chmodSync, closeSync, existsSync, fsyncSync, openSync, renameSync, statSync, unlinkSync, writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { ServerError } from '../errors/index.js';

/**
 * What `savePassword` did:
 * - `kept`: `<recycle>` and the file exists; it is left as it is.
 * - `written`: a CRYPT hash was written (a given password or `<random>`).
 * - `disabled`: the admin app will accept no password: `password=None` was written (empty
 *   password), or `<recycle>` found no file and wrote nothing (see `savePassword`).
 * - `pam`: `password="pam_user:NAME"` was written; admin authenticates NAME through PAM.
 */
export type PasswordAction = 'kept' | 'written' | 'disabled' | 'pam';

export interface SavePasswordResult {
  file: string;
  action: PasswordAction;
  /** Only for `<random>`: the password made up, for the caller to print once (never log it). */
  generatedPassword?: string;
}

/** pydal/validators.py CRYPT.__init__: `digest_alg="pbkdf2(1000,20,sha512)"` (web2py's default). */
const CRYPT_DIGEST_ALG = 'pbkdf2(1000,20,sha512)';
const PBKDF2_ITERATIONS = 1000;
const PBKDF2_KEY_BYTES = 20;
const PBKDF2_DIGEST = 'sha512';

/** gluon/main.py save_password: `chars = string.ascii_letters + string.digits`, `range(8)`. */
const RANDOM_PASSWORD_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const RANDOM_PASSWORD_LENGTH = 8;

const PAM_PREFIX = '<pam_user:';

/** The file's name, as gluon/main.py save_password: `abspath("parameters_%i.py" % port)`. */
export function passwordFileName(port: number): string {
  return `parameters_${port}.py`;
}

/**
 * The three lines gluon/main.py save_password prints for `<random>`, without the final newline:
 *   print("******************* IMPORTANT!!! ************************")
 *   print('your admin password is "%s"' % password)
 *   print("*********************************************************")
 * The caller writes them to stdout (never to a log).
 */
export function randomPasswordNotice(password: string): string {
  return [
    '******************* IMPORTANT!!! ************************',
    `your admin password is "${password}"`,
    '*********************************************************',
  ].join('\n');
}

/**
 * pydal/validators.py LazyCrypt.__str__ with CRYPT() defaults:
 *   salt = str(uuid.uuid4()).replace("-", "")[-16:]
 *   hashed = simple_hash(self.password, key, salt, digest_alg)   # key = ""
 *   self.crypted = "%s$%s$%s" % (digest_alg, salt, hashed)
 * and simple_hash → pbkdf2_hex: `hashlib.pbkdf2_hmac("sha512", to_bytes(data), to_bytes(salt),
 * 1000, 20)` hexlified. The salt is the 16 hex characters themselves (as UTF-8 bytes), not
 * the bytes they spell; its first character is the uuid4 variant nibble (8, 9, a or b).
 */
export function cryptPassword(password: string, salt: string = makeCryptSalt()): string {
  const digestHex = pbkdf2Sync(Buffer.from(password, 'utf8'), Buffer.from(salt, 'utf8'),
    PBKDF2_ITERATIONS, PBKDF2_KEY_BYTES, PBKDF2_DIGEST).toString('hex');
  return `${CRYPT_DIGEST_ALG}$${salt}$${digestHex}`;
}

function makeCryptSalt(): string {
  return randomUUID().replace(/-/g, '').slice(-16);
}

/** gluon/main.py save_password: `"".join([secrets.choice(chars) for _ in range(8)])`. */
function makeRandomPassword(): string {
  let password = '';
  for (let i = 0; i < RANDOM_PASSWORD_LENGTH; i += 1) {
    password += RANDOM_PASSWORD_CHARS.charAt(randomInt(RANDOM_PASSWORD_CHARS.length));
  }
  return password;
}

/**
 * Writes `<folder>/parameters_<port>.py` as gluon/main.py save_password(password, port) does:
 * - `<random>`: 8 letters/digits, stored as CRYPT; returned as `generatedPassword`.
 * - `<recycle>`: an existing file is kept untouched (only tightened to 0600). With no file,
 *   save_password itself would write `password=None`, but handlers/web2py_on_gevent.py — the
 *   handler this server replaces — never calls it for `<recycle>`:
 *     `if options.password != '<recycle>': gluon.main.save_password(...)`
 *   so nothing is written and admin answers "admin disabled because unable to access password
 *   file". Action `disabled`.
 * - `<pam_user:NAME>`: `cpassword = password[1:-1]` → `password="pam_user:NAME"`.
 * - `""`: `fp.write("password=None\n")`.
 * - anything else: `fp.write('password="%s"\n' % cpassword)` with cpassword = CRYPT()(password).
 * Better than web2py: the write is atomic (temp file + rename) and the file is 0600.
 * Errors are W2N_ERR_PASSWORD_FILE and never carry the password.
 */
export function savePassword(opts: { folder: string; port: number; password: string }): SavePasswordResult {
  const file = join(opts.folder, passwordFileName(opts.port));
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw passwordFileError(file, 'the port must be an integer from 0 to 65535');
  }
  const { password } = opts;
  if (password === '<recycle>') return recyclePasswordFile(file);
  if (password === '<random>') {
    const generatedPassword = makeRandomPassword();
    writePasswordFile(file, `password="${cryptPassword(generatedPassword)}"\n`);
    return { file, action: 'written', generatedPassword };
  }
  if (password.startsWith(PAM_PREFIX)) {
    writePasswordFile(file, `password="${pamEntry(file, password)}"\n`);
    return { file, action: 'pam' };
  }
  if (password === '') {
    writePasswordFile(file, 'password=None\n');
    return { file, action: 'disabled' };
  }
  writePasswordFile(file, `password="${cryptPassword(password)}"\n`);
  return { file, action: 'written' };
}

function recyclePasswordFile(file: string): SavePasswordResult {
  if (!existsSync(file)) return { file, action: 'disabled' };
  tightenModeBestEffort(file);
  return { file, action: 'kept' };
}

/**
 * A file left by web2py is 0644 (plain `open(password_file, "w")`); make it 0600 without
 * touching its bytes or mtime. Best effort: a file owned by another user stays as it is, and
 * admin still reads it.
 */
function tightenModeBestEffort(file: string): void {
  try {
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  } catch {
    // keeping the file readable matters more than its mode
  }
}

/**
 * `<pam_user:NAME>` → `pam_user:NAME` (web2py: `password[1:-1]`). Stricter than web2py, which
 * would write a Python file that admin cannot exec (or that means another name): the closing
 * `>` is required and the name may not hold `"`, `\` or line breaks.
 */
function pamEntry(file: string, spec: string): string {
  const name = spec.slice(PAM_PREFIX.length, -1);
  if (!spec.endsWith('>') || name === '' || /["\\\r\n]/.test(name)) {
    throw passwordFileError(file,
      'the -a value must be <pam_user:NAME> with a NAME free of quotes, backslashes and line breaks');
  }
  return spec.slice(1, -1);
}

/** Temp file in the same folder (same filesystem), 0600, fsync, rename over the target. */
function writePasswordFile(file: string, content: string): void {
  const tempFile = join(dirname(file), `.${basename(file)}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`);
  let isTempCreated = false;
  try {
    const fd = openSync(tempFile, 'wx', 0o600);
    isTempCreated = true;
    try {
      writeSync(fd, content, null, 'utf8');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tempFile, 0o600); // the umask may only narrow 0600, but be explicit
    renameSync(tempFile, file);
  } catch (err: unknown) {
    if (isTempCreated) removeQuietly(tempFile);
    throw passwordFileError(file, describeFsError(err), err);
  }
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

/** Node's fs messages name the syscall and path only, never the content written. */
function describeFsError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function passwordFileError(file: string, reason: string, cause?: unknown): ServerError {
  return new ServerError('W2N_ERR_PASSWORD_FILE', { file, reason }, cause === undefined ? undefined : { cause });
}
