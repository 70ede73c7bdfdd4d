/**
 * A tour of web2py through the server, as a person trying it would take: the welcome page and a
 * 404, a ticket for an exception and the ticket read in admin, admin login (local, and refused to
 * a remote client with web2py's message), an application created and a controller edited through
 * admin and served without a restart, appadmin insert and select, register/login/logout with their
 * flash, a SQLFORM upload of 20 MB (Content-Length, then chunked) and its download with Range, 10
 * concurrent requests of one session, a `@service.json` call, HEAD, HTTP/1.0, a raw UTF-8 query
 * (the environ the seed handler gives), `-l` log lines and `-F` profiles. Under each worker class:
 * thread (pyenv `python3`) and gevent (`/usr/bin/python3`, which has gevent).
 *
 * With W2N_TEST_WEB2PY=/path/to/web2py the whole tour runs against that tree; without it, the
 * part that needs no real web2py runs against the fixture (test/fixtures/web2py). Either way the
 * tree is never written to: each run serves a temporary copy (welcome and admin copied, `gluon`
 * a symlink), with the tour's controller and model added, and removes it afterwards.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtures, startServer, type StartedServer } from '../helpers/server.js';
import { rawRequest } from '../helpers/raw-http.js';
import { waitUntil } from '../helpers/waits.js';

const realWeb2py = process.env.W2N_TEST_WEB2PY;
const isReal = realWeb2py !== undefined;
const PASSWORD = 'tour-admin-password';
const CLASSES = [['thread', 'python3'], ['gevent', '/usr/bin/python3']] as const;
const REMOTE_CLIENT = '203.0.113.9';

/** The tour's own controller and model, added to the copy of welcome (real web2py only). */
const TOUR_CONTROLLER = `# web2py-on-node's tour (test/e2e/web2py-tour.test.ts)
import json

from gluon.tools import Service

service = Service()


def boom():
    return 1 / 0


def counter():
    session.count = (session.count or 0) + 1
    return str(session.count)


def echo():
    return json.dumps({'q': request.vars.q, 'query_string': request.env.query_string,
                       'path_info': request.env.path_info, 'request_uri': request.env.request_uri})


def upload():
    form = SQLFORM(db.tour_doc)
    if form.process(session=None).accepted:
        return 'stored %s' % form.vars.body
    return 'refused %s' % json.dumps(form.errors.as_dict())


def download():
    return response.download(request, db)


@service.json
def add(a, b):
    return int(a) + int(b)


def call():
    session.forget()
    return service()
`;
const TOUR_MODEL = `db.define_table('tour_doc', Field('title'), Field('body', 'upload'))\n`;

/** Temporary folders of this run: removed by the suites' `after`, and at exit whatever ran (a name filter can skip `after`). */
const temporary: string[] = [];
process.on('exit', () => { for (const dir of temporary) rmSync(dir, { recursive: true, force: true }); });

function temporaryDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

/** A temporary web2py folder: the fixture copied, or the real tree's welcome and admin with gluon linked. */
function makeTree(): string {
  const root = temporaryDir('w2n-tour-');
  if (!isReal) {
    cpSync(join(fixtures, 'web2py'), root, { recursive: true });
    return root;
  }
  symlinkSync(join(realWeb2py, 'gluon'), join(root, 'gluon'));
  mkdirSync(join(root, 'applications'));
  for (const name of ['__init__.py', 'welcome', 'admin']) {
    cpSync(join(realWeb2py, 'applications', name), join(root, 'applications', name), { recursive: true });
  }
  // What a run of the original tree left behind is not part of the tour.
  for (const app of ['welcome', 'admin']) {
    for (const kept of ['errors', 'sessions', 'databases', 'uploads', 'cache']) {
      rmSync(join(root, 'applications', app, kept), { recursive: true, force: true });
    }
  }
  writeFileSync(join(root, 'applications', 'welcome', 'controllers', 'tour.py'), TOUR_CONTROLLER);
  writeFileSync(join(root, 'applications', 'welcome', 'models', 'tour.py'), TOUR_MODEL);
  return root;
}

/** Cookies, form keys and redirects, as a browser keeps them (one per person in the tour). */
class Browser {
  private readonly cookies = new Map<string, string>();
  constructor(private readonly server: StartedServer, private readonly headers: Record<string, string> = {}) {}

  /** One request; redirects (303/302) are followed with GET. Returns the last answer and its text. */
  async go(path: string, init: { method?: string; form?: Record<string, string> | FormData; headers?: Record<string, string> } = {}): Promise<{ status: number; text: string; url: string; headers: Headers }> {
    let url = path;
    let method = init.method ?? (init.form === undefined ? 'GET' : 'POST');
    let body: string | FormData | undefined = init.form instanceof FormData ? init.form : init.form === undefined ? undefined : new URLSearchParams(init.form).toString();
    for (let hop = 0; hop < 6; hop += 1) {
      const headers: Record<string, string> = { ...this.headers, ...init.headers, cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
      if (typeof body === 'string') headers['content-type'] = 'application/x-www-form-urlencoded';
      const answer = await fetch(this.server.url(url), { method, body, headers, redirect: 'manual' });
      for (const line of answer.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const eq = pair!.indexOf('=');
        this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
      }
      const location = answer.headers.get('location');
      if ((answer.status === 303 || answer.status === 302) && location !== null) {
        await answer.arrayBuffer();
        url = location.replace(/^https?:\/\/[^/]+/, '');
        method = 'GET';
        body = undefined;
        continue;
      }
      return { status: answer.status, text: await answer.text(), url, headers: answer.headers };
    }
    throw new Error(`too many redirects from ${path}`);
  }

  /** The hidden `_formkey` of the form named `formname` in `html`. */
  static formKey(html: string, formname: string): string {
    const forms = html.split(/<form\b/i);
    const form = forms.find((f) => f.includes(`value="${formname}"`));
    assert.ok(form, `no form ${formname} in the page`);
    const key = /name="_formkey"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="_formkey"/.exec(form);
    assert.ok(key, `no _formkey in form ${formname}`);
    return key[1] ?? key[2]!;
  }
}

/** The text of welcome's flash box. */
function flashOf(html: string): string {
  return /class="w2p_flash[^"]*"[^>]*>([^<]*)</.exec(html)?.[1] ?? '';
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A multipart body for SQLFORM: its fields, then the file. */
function multipart(fields: Record<string, string>, fileField: string, fileName: string, content: Buffer): { boundary: string; body: Buffer } {
  const boundary = `----w2ntour${randomBytes(8).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${fileField}"; filename="${fileName}"\r\nContent-Type: application/octet-stream\r\n\r\n`));
  parts.push(content, Buffer.from(`\r\n--${boundary}--\r\n`));
  return { boundary, body: Buffer.concat(parts) };
}

/** POSTs `body` with Transfer-Encoding: chunked, in 1 MiB chunks; the answer's status and text. */
function postChunked(port: number, path: string, contentType: string, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': contentType, 'transfer-encoding': 'chunked' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    for (let offset = 0; offset < body.length; offset += 1024 * 1024) req.write(body.subarray(offset, offset + 1024 * 1024));
    req.end();
  });
}

function head(port: number, path: string): Promise<{ status: number; bytes: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'HEAD' }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => { bytes += c.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

for (const [workerClass, python] of CLASSES) {
  describe(`web2py tour, ${workerClass} worker class${isReal ? '' : ' (fixture subset: set W2N_TEST_WEB2PY for the whole tour)'}`, { timeout: 300_000 }, () => {
    let tree: string;
    let profiles: string;
    let server: StartedServer;
    const index = '/welcome/default/index';

    before(async () => {
      tree = makeTree();
      profiles = temporaryDir('w2n-tour-prof-');
      // -l writes httpserver.log into the folder; a trusted proxy on loopback lets the tour be a remote client.
      server = await startServer(['-f', tree, '-a', PASSWORD, '-l', '-F', profiles, '--worker-class', workerClass, '--python', python,
        '--trusted-proxies', '127.0.0.1'], { timeoutMs: 60_000 });
    });
    after(async () => {
      await server?.stop();
      rmSync(tree, { recursive: true, force: true });
      rmSync(profiles, { recursive: true, force: true });
    });

    test('the welcome page, and a 404 for what is not there', async () => {
      const page = await fetch(server.url(index));
      assert.equal(page.status, 200);
      assert.match(await page.text(), /welcome/i);
      const missing = await fetch(server.url('/welcome/default/no_such_function'));
      assert.equal(missing.status, 404);
      assert.match(await missing.text(), /invalid (function|request)/);
    });

    test('HEAD: the head of the page, no body', async () => {
      const answer = await head(server.port, index);
      assert.equal(answer.status, 200);
      assert.equal(answer.bytes, 0);
    });

    test('HTTP/1.0: answered, then closed', async () => {
      const { response, closedByServer } = await rawRequest(server.port, `GET ${index} HTTP/1.0\r\n\r\n`);
      assert.match(response, /^HTTP\/1\.1 200 /);
      assert.match(response, /welcome/i);
      assert.ok(closedByServer);
    });

    test('a raw UTF-8 query and path: the environ the seed handler gives (latin-1 code points)', async () => {
      // The fixture's web2py-shaped URL check refuses a non-word path segment (real web2py maps it to `_`).
      const path = isReal ? '/welcome/tour/echo' : '/env';
      const segment = isReal ? '/été' : '';
      const bytes = Buffer.concat([Buffer.from(`GET ${path}`), Buffer.from(`${segment}?q=ü`, 'utf8'), Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]);
      const { response } = await rawRequest(server.port, bytes);
      assert.match(response, /^HTTP\/1\.1 200 /);
      const body = JSON.parse(Buffer.from(response.split('\r\n\r\n').slice(1).join('\r\n\r\n'), 'latin1').toString('utf8')) as Record<string, unknown>;
      const environ = (isReal ? body : body.environ) as Record<string, string>;
      assert.equal(environ[isReal ? 'query_string' : 'QUERY_STRING'], 'q=\u00c3\u00bc');
      assert.equal(environ[isReal ? 'path_info' : 'PATH_INFO'], isReal ? `${path}/\u00c3\u00a9t\u00c3\u00a9` : path);
      // web2py parses that query as gevent's pywsgi and Rocket make it do: the same code points.
      if (isReal) assert.equal(body.q, '\u00c3\u00bc');
    });

    test('an exception gets a ticket, and admin shows it', { skip: !isReal && 'needs W2N_TEST_WEB2PY' }, async () => {
      const crash = await fetch(server.url('/welcome/tour/boom'));
      assert.equal(crash.status, 500);
      const ticket = /\/admin\/default\/ticket\/(welcome\/[^"<\s]+)/.exec(await crash.text());
      assert.ok(ticket, 'the 500 page links its ticket');
      const admin = new Browser(server);
      await adminLogin(admin);
      const shown = await admin.go(`/admin/default/ticket/${ticket[1]}`);
      assert.equal(shown.status, 200);
      assert.match(shown.text, /ZeroDivisionError/);
    });

    test('admin: a local login with the -a password', { skip: !isReal && 'needs W2N_TEST_WEB2PY' }, async () => {
      const admin = new Browser(server);
      await adminLogin(admin);
    });

    // web2py answers HTTP(200, T('...')): a str body chunk, which the worker encodes (wsgi.py).
    test('admin: refused to a remote client, with web2py\'s message', { skip: !isReal && 'needs W2N_TEST_WEB2PY' }, async () => {
      const remote = await fetch(server.url('/admin/default/index'), { headers: { 'X-Forwarded-For': REMOTE_CLIENT } });
      const text = await remote.text();
      assert.equal(remote.status, 200, text.slice(0, 300));
      assert.match(text, /Admin is disabled because insecure channel/);
    });

    test('admin: create an application, edit its controller, served at once without a restart', { skip: !isReal && 'needs W2N_TEST_WEB2PY' }, async () => {
      const admin = new Browser(server);
      await adminLogin(admin);
      const site = await admin.go('/admin/default/site');
      const created = await admin.go('/admin/default/site', {
        form: { name: 'tourapp', _formname: 'appcreate/create', _formkey: Browser.formKey(site.text, 'appcreate/create') },
      });
      assert.equal(created.status, 200);
      assert.match(created.url, /\/admin\/default\/design\/tourapp/);
      const first = await fetch(server.url('/tourapp/default/index'));
      assert.equal(first.status, 200);
      await first.arrayBuffer();
      // As admin's editor saves: an ajax POST, answered in JSON.
      const edited = await admin.go('/admin/default/edit/tourapp/controllers/default.py', {
        form: { data: "def index():\n    return 'edited through admin by the tour'\n", from_ajax: 'true' },
        headers: { 'X-Requested-With': 'XMLHttpRequest' },
      });
      assert.equal(edited.status, 200);
      assert.equal((JSON.parse(edited.text) as { error?: string }).error, undefined, edited.text.slice(0, 300));
      const served = await fetch(server.url('/tourapp/default/index'));
      assert.equal(await served.text(), 'edited through admin by the tour');
    });

    test('appadmin: insert a record, then select it', { skip: !isReal && 'needs W2N_TEST_WEB2PY' }, async () => {
      const admin = new Browser(server);
      await adminLogin(admin);
      const form = await admin.go('/welcome/appadmin/insert/db/auth_group');
      assert.equal(form.status, 200);
      const role = `tour-role-${workerClass}`;
      await admin.go('/welcome/appadmin/insert/db/auth_group', {
        form: { role, description: 'made by the tour', _formname: 'auth_group/create', _formkey: Browser.formKey(form.text, 'auth_group/create') },
      });
      const selected = await admin.go(`/welcome/appadmin/select/db?query=${encodeURIComponent(`db.auth_group.role=="${role}"`)}`);
      assert.equal(selected.status, 200);
      assert.match(selected.text, new RegExp(role));
    });

    test('register, log out, log in: each with its flash', { skip: !isReal && 'needs W2N_TEST_WEB2PY' }, async () => {
      const person = new Browser(server);
      const email = `tour-${workerClass}@example.com`;
      const password = 'Tour-Password-1';
      // `_next` pages that show the flash as it is (welcome's index sets a flash of its own).
      const profile = encodeURIComponent('/welcome/default/user/profile');
      const register = await person.go('/welcome/default/user/register');
      const registered = await person.go(`/welcome/default/user/register?_next=${profile}`, {
        form: {
          first_name: 'Tour', last_name: workerClass, email, password, password_two: password,
          _formname: 'register', _formkey: Browser.formKey(register.text, 'register'),
        },
      });
      assert.equal(registered.status, 200);
      assert.match(registered.url, /\/user\/profile/);
      assert.match(flashOf(registered.text), /Registration successful|Logged in/);
      const out = await person.go(`/welcome/default/user/logout?_next=${encodeURIComponent('/welcome/default/user/login')}`);
      assert.match(flashOf(out.text), /Logged out/);
      const login = out;
      const logged = await person.go(`/welcome/default/user/login?_next=${profile}`, {
        form: { email, password, _formname: 'login', _formkey: Browser.formKey(login.text, 'login') },
      });
      assert.match(logged.url, /\/user\/profile/);
      assert.match(flashOf(logged.text), /Logged in/);
    });

    test('a 20 MB SQLFORM upload, plain and chunked, and its download with Range', { skip: !isReal && 'needs W2N_TEST_WEB2PY' }, async () => {
      const content = randomBytes(20 * 1024 * 1024);
      const stored: string[] = [];
      const plain = multipart({ title: 'plain', _formname: 'tour_doc/create' }, 'body', 'plain.bin', content);
      const answer = await fetch(server.url('/welcome/tour/upload'), {
        method: 'POST', body: new Uint8Array(plain.body), headers: { 'content-type': `multipart/form-data; boundary=${plain.boundary}` },
      });
      const text = await answer.text();
      assert.equal(answer.status, 200);
      stored.push(/^stored (\S+)$/.exec(text)?.[1] ?? assert.fail(text));
      const chunked = multipart({ title: 'chunked', _formname: 'tour_doc/create' }, 'body', 'chunked.bin', content);
      const viaChunks = await postChunked(server.port, '/welcome/tour/upload', `multipart/form-data; boundary=${chunked.boundary}`, chunked.body);
      assert.equal(viaChunks.status, 200);
      stored.push(/^stored (\S+)$/.exec(viaChunks.text)?.[1] ?? assert.fail(viaChunks.text));
      for (const name of stored) {
        const whole = await fetch(server.url(`/welcome/tour/download/${name}`));
        assert.equal(whole.status, 200);
        assert.equal(sha256(Buffer.from(await whole.arrayBuffer())), sha256(content));
        const part = await fetch(server.url(`/welcome/tour/download/${name}`), { headers: { range: 'bytes=1000000-1999999' } });
        assert.equal(part.status, 206);
        assert.equal(part.headers.get('content-range'), `bytes 1000000-1999999/${content.length}`);
        assert.ok(Buffer.from(await part.arrayBuffer()).equals(content.subarray(1_000_000, 2_000_000)));
      }
    });

    test('10 concurrent requests of one session: each served, the session counts all of them', { skip: !isReal && 'needs W2N_TEST_WEB2PY' }, async () => {
      const person = new Browser(server);
      assert.equal((await person.go('/welcome/tour/counter')).text, '1');
      const answers = await Promise.all(Array.from({ length: 10 }, () => person.go('/welcome/tour/counter')));
      assert.deepEqual(answers.map((a) => a.status), Array(10).fill(200));
      assert.deepEqual(answers.map((a) => Number(a.text)).sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i + 2));
      assert.equal((await person.go('/welcome/tour/counter')).text, '12');
    });

    test('a @service.json call', { skip: !isReal && 'needs W2N_TEST_WEB2PY' }, async () => {
      const answer = await fetch(server.url('/welcome/tour/call/json/add?a=2&b=40'));
      assert.equal(answer.status, 200);
      assert.match(answer.headers.get('content-type') ?? '', /json/);
      assert.equal(await answer.json(), 42);
    });

    test('-l: web2py\'s access log lines in httpserver.log', async () => {
      await (await fetch(server.url(index))).arrayBuffer();
      const log = join(tree, 'httpserver.log');
      // The line is written when the response closes: wait for it.
      const line = new RegExp(`^127\\.0\\.0\\.1, \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d, GET, ${index.replace(/\//g, '\\/')}, HTTP/1\\.1, 200, \\d+\\.\\d+$`, 'm');
      await waitUntil(`an access line in ${log}`, () => existsSync(log) && line.test(readFileSync(log, 'utf8')));
    });

    test('-F: a cProfile dump per request, web2py-named, readable with pstats', async () => {
      const files = readdirSync(profiles);
      assert.ok(files.length > 0, 'profiles written');
      for (const file of files) assert.match(file, /^req_[0-9a-f-]{32,36}\.prof$/);
      const calls = execFileSync(python, ['-c', 'import pstats, sys; print(pstats.Stats(sys.argv[1]).total_calls)', join(profiles, files[0]!)], { encoding: 'utf8' });
      assert.ok(Number(calls) > 0);
    });

    /** Logs `browser` into admin from 127.0.0.1 with the -a password. */
    async function adminLogin(browser: Browser): Promise<void> {
      await browser.go('/admin/default/index');
      const site = await browser.go('/admin/default/index', { form: { password: PASSWORD, send: '/admin/default/site' } });
      assert.equal(site.status, 200);
      assert.match(site.url, /\/admin\/default\/site/);
      assert.match(site.text, /Installed applications/);
    }
  });
}
