/**
 * Black-box: the CLI serving a web2py folder. In CI that is the small web2py-shaped fixture
 * (test/fixtures/web2py); set W2N_TEST_WEB2PY=/path/to/web2py to run the same tests against a
 * real web2py tree (then the admin login test runs too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, existsSync, rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtures, startServer, waitForLog, type StartedServer } from '../helpers/server.js';

const realWeb2py = process.env.W2N_TEST_WEB2PY;
const folder = realWeb2py ?? join(fixtures, 'web2py');
const isReal = realWeb2py !== undefined;

/** Checks `password` against the stored hash exactly as pydal's CRYPT does, with Python's hashlib. */
function verifyWithPython(stored: string, password: string): boolean {
  const script = `
import hashlib, sys
stored, password = sys.stdin.read().split("\\n", 1)
alg, salt, digest = stored.split("$")
assert alg == "pbkdf2(1000,20,sha512)", alg
computed = hashlib.pbkdf2_hmac("sha512", password.encode("utf8"), salt.encode("utf8"), 1000, 20).hex()
print("ok" if computed == digest else "bad")`;
  return execFileSync('python3', ['-c', script], { input: `${stored}\n${password}`, encoding: 'utf8' }).trim() === 'ok';
}

test('serves the web2py app, writes the admin password file as web2py does, never logs it', async () => {
  const password = 'S3cret-Pass-for-test';
  const server = await startServer(['-f', folder, '-a', password]);
  const passwordFile = join(folder, `parameters_${server.port}.py`);
  try {
    const page = await fetch(server.url('/welcome/default/index'));
    assert.equal(page.status, 200);
    assert.match(await page.text(), /welcome/i);
    const content = readFileSync(passwordFile, 'utf8');
    const match = /^password="(pbkdf2\(1000,20,sha512\)\$[0-9a-f]{16}\$[0-9a-f]{40})"\n$/.exec(content);
    assert.ok(match, `file content: ${content}`);
    assert.ok(verifyWithPython(match[1]!, password));
    assert.ok(!verifyWithPython(match[1]!, 'wrong'));
    assert.equal(statSync(passwordFile).mode & 0o777, 0o600);
  } finally {
    await server.stop();
    assert.ok(!server.stdout().includes(password) && !server.stderr().includes(password), 'password never printed');
    rmSync(passwordFile, { force: true });
  }
});

test('loads gluon as web2py\'s handlers do: chdir, sys.path, web2py_runtime_handler before import', { skip: isReal && 'fixture-only introspection' }, async () => {
  const server = await startServer(['-f', folder]);
  try {
    const env = await (await fetch(server.url('/env'))).json() as Record<string, unknown>;
    assert.equal(env.cwd, folder);
    assert.equal(env.sys_path_0, folder);
    assert.equal(env.web2py_runtime_handler, true);
    assert.equal(env.is_local, true);
    assert.match(server.stdout(), new RegExp(`application: web2py in ${folder}`));
  } finally {
    await server.stop();
  }
});

test('<random> makes a password, prints it as web2py does, and the file verifies it', async () => {
  const server = await startServer(['-f', folder, '-a', '<random>']);
  const passwordFile = join(folder, `parameters_${server.port}.py`);
  try {
    const printed = /your admin password is "([A-Za-z0-9]{8})"/.exec(server.stdout());
    assert.ok(printed, server.stdout());
    const stored = /password="([^"]+)"/.exec(readFileSync(passwordFile, 'utf8'))![1]!;
    assert.ok(verifyWithPython(stored, printed[1]!));
  } finally {
    await server.stop();
    rmSync(passwordFile, { force: true });
  }
});

test('admin login with the password set by -a (real web2py)', { skip: !isReal && 'needs W2N_TEST_WEB2PY' }, async () => {
  const password = 'admin-test-password';
  const server = await startServer(['-f', folder, '-a', password]);
  const passwordFile = join(folder, `parameters_${server.port}.py`);
  try {
    const first = await fetch(server.url('/admin/default/index'), { redirect: 'manual' });
    const cookie = (first.headers.get('set-cookie') ?? '').split(';')[0]!;
    assert.match(cookie, /^session_id_admin=/);
    const login = await fetch(server.url('/admin/default/index'), {
      method: 'POST', redirect: 'manual',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: `password=${encodeURIComponent(password)}&send=%2Fadmin%2Fdefault%2Fsite`,
    });
    assert.equal(login.status, 303);
    assert.equal(login.headers.get('location'), '/admin/default/site');
    const site = await fetch(server.url('/admin/default/site'), { headers: { cookie }, redirect: 'manual' });
    assert.equal(site.status, 200);
    assert.match(await site.text(), /Installed applications/);
  } finally {
    await server.stop();
    if (existsSync(passwordFile)) rmSync(passwordFile);
  }
});

test('admin\'s "disabled" pages are web2py\'s own messages, not 500s (issue 14, real web2py)', { skip: !isReal && 'needs W2N_TEST_WEB2PY' }, async () => {
  // Each is raise HTTP(200, T('...')) in applications/admin/models/access.py: a body that iterates as str.
  const page = async (server: StartedServer, headers: Record<string, string> = {}): Promise<[number, string]> => {
    const answer = await fetch(server.url('/admin/default/index'), { headers, redirect: 'manual' });
    return [answer.status, await answer.text()];
  };
  // -a '': parameters_<port>.py says password=None. A client that is not local (a trusted proxy on
  // loopback forwards for 203.0.113.7) over plain HTTP is refused before the password is read.
  const server = await startServer(['-f', folder, '-a', '', '--trusted-proxies', 'loopback']);
  const passwordFile = join(folder, `parameters_${server.port}.py`);
  try {
    assert.deepEqual(await page(server), [200, 'admin disabled because no admin password']);
    assert.deepEqual(await page(server, { 'x-forwarded-for': '203.0.113.7' }), [200, 'Admin is disabled because insecure channel']);
    await waitForLog(server, /WARN .*app\.str_body .*path=\/admin\/default\/index/);
    assert.doesNotMatch(server.stderr(), /request\.failed/);
  } finally {
    await server.stop();
    rmSync(passwordFile, { force: true });
  }
  // No password file at all (-a <recycle>, the default, writes none).
  const bare = await startServer(['-f', folder]);
  try {
    assert.ok(!existsSync(join(folder, `parameters_${bare.port}.py`)));
    assert.deepEqual(await page(bare), [200, 'admin disabled because unable to access password file']);
  } finally {
    await bare.stop();
  }
});

test('a forged X-Forwarded-Proto never makes a plain request https', async () => {
  const server = await startServer(['-f', folder]);
  try {
    const path = isReal ? '/welcome/default/index' : '/env';
    const answer = await fetch(server.url(path), { headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '10.9.8.7' } });
    assert.equal(answer.status, 200);
    if (!isReal) {
      const env = await answer.json() as { environ: Record<string, string>; is_local: boolean };
      assert.equal(env.environ.HTTP_X_FORWARDED_PROTO, undefined);
      assert.equal(env.environ['wsgi.url_scheme'], 'http');
      assert.equal(env.is_local, true);
    }
  } finally {
    await server.stop();
  }
});

test('static files of web2py apps are served by the front when no routes.py is present', { skip: isReal && existsSync(join(folder, 'routes.py')) && 'real tree has routes.py' }, async () => {
  const server = await startServer(['-f', folder]);
  try {
    assert.match(server.stdout(), /^static files: served by the front \(auto: no routes\.py\)$/m);
    const file = join(folder, 'applications', 'welcome', 'static', 'css', 'web2py.css');
    const plain = await fetch(server.url('/welcome/static/css/web2py.css'));
    assert.equal(plain.status, 200);
    assert.ok(Buffer.from(await plain.arrayBuffer()).equals(readFileSync(file)));
    assert.ok(plain.headers.get('etag'), 'the front adds an ETag');
    assert.equal(plain.headers.get('cache-control'), 'private');
    const versioned = await fetch(server.url('/welcome/static/_1.2.3/css/web2py.css?attachment'));
    assert.equal(versioned.status, 200);
    assert.equal(versioned.headers.get('cache-control'), 'max-age=315360000');
    assert.equal(versioned.headers.get('expires'), 'Thu, 31 Dec 2037 23:59:59 GMT');
    assert.equal(versioned.headers.get('content-disposition'), 'attachment');
    // node:http, not fetch: fetch adds Cache-Control: no-cache to conditional requests, which rightly forbids a 304.
    const { get } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      get(server.url('/welcome/static/css/web2py.css'), { headers: { 'if-none-match': plain.headers.get('etag')! } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    assert.equal(status, 304);
    // Raw paths (fetch would resolve %2e%2e client-side and never send the traversal).
    for (const path of ['/welcome/static/%2e%2e/%2e%2e/gluon/main.py', '/welcome/static/../../gluon/main.py', '/welcome/static/%252e%252e/x']) {
      const traversal = await new Promise<number>((resolve, reject) => {
        get({ host: '127.0.0.1', port: server.port, path }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject);
      });
      assert.equal(traversal, 400, path);
    }
  } finally {
    await server.stop();
  }
});

test('--static-offload off leaves static files to web2py', async () => {
  const server = await startServer(['-f', folder, '--static-offload', 'off']);
  try {
    assert.match(server.stdout(), /^static files: served by web2py \(--static-offload off\)$/m);
    const answer = await fetch(server.url('/welcome/static/css/web2py.css'));
    assert.equal(answer.headers.get('etag'), null, 'no front-made ETag: web2py answered');
  } finally {
    await server.stop();
  }
});

for (const [workerClass, python] of [['thread', 'python3'], ['gevent', '/usr/bin/python3']] as const) {
  test(`response.stream: a whole file goes to wsgi.file_wrapper (the front sends it), a range to web2py's own 206 (${workerClass})`, { skip: isReal && 'fixture route' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'w2n-stream-'));
    const file = join(dir, 'download.bin');
    const content = randomBytes(3 * 1024 * 1024 + 17);
    writeFileSync(file, content);
    const server = await startServer(['-f', folder, '--worker-class', workerClass, '--python', python]);
    try {
      const url = server.url(`/stream?path=${encodeURIComponent(file)}`);
      const whole = await fetch(url);
      assert.equal(whole.status, 200);
      // The fixture streams through wsgi.file_wrapper only when web2py_use_wsgi_file_wrapper is set.
      assert.equal(whole.headers.get('x-fixture-streamed'), 'file_wrapper');
      assert.equal(whole.headers.get('content-length'), String(content.length));
      assert.ok(Buffer.from(await whole.arrayBuffer()).equals(content));
      const part = await fetch(url, { headers: { range: 'bytes=1000000-1999999' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('x-fixture-streamed'), 'streamer');
      assert.equal(part.headers.get('content-range'), `bytes 1000000-1999999/${content.length}`);
      assert.ok(Buffer.from(await part.arrayBuffer()).equals(content.subarray(1_000_000, 2_000_000)));
      const tail = await fetch(url, { headers: { range: `bytes=${content.length - 5}-` } });
      assert.equal(tail.status, 206);
      assert.ok(Buffer.from(await tail.arrayBuffer()).equals(content.subarray(content.length - 5)));
      const none = await fetch(url, { headers: { range: `bytes=${content.length + 10}-` } });
      assert.equal(none.status, 416);
      assert.equal(none.headers.get('content-range'), `bytes */${content.length}`);
      await none.arrayBuffer();
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
