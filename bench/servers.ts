/**
 * @module bench/servers
 * The servers the bench can run: ours and its peers. Each definition says how to build its
 * command line for a port, where to run it, which URL means "ready", and how to tell whether
 * it is installed here (a server that is not is skipped with a note, never a failure).
 *
 * To add a server: append a {@link ServerDef} to {@link SERVERS}. Commands are argv arrays (no
 * shell parses them); the runner wraps them to raise `ulimit -n`.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** bench/ itself, and the repo root, from this file's location (never a hard-coded path). */
export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = dirname(BENCH_DIR);
export const APPS_DIR = join(BENCH_DIR, 'apps');

/** The Python that has gevent, gunicorn and the uWSGI plugin's ABI on the project machine. */
export const PY = '/usr/bin/python3';
/** The seed's gevent pywsgi runner, a project-shared tool. */
export const GEVENT_SERVE = '/work/shared/tools/peerbench/gevent_serve.py';

/**
 * What a server is asked to serve: a WSGI app file of bench/apps (`hello`, `sleep`, `bulk`),
 * web2py's welcome page, or web2py's static files (the same web2py tree; nginx can only do this one).
 */
export type AppKind = 'hello' | 'sleep' | 'bulk' | 'web2py' | 'static';

/** What a command template gets. */
export interface Fields {
  port: number;
  /** Folder holding the scenario's apps (hello.py, sleep.py, bulk.py, node_hello.mjs, node_bulk.mjs). */
  apps: string;
  kind: AppKind;
  /** The scenario's name (the overload scenario gives ours admission limits). */
  scenario: string;
  /** For web2py and static: a fresh copy of the web2py tree made for this server run. */
  tree: string;
  /** A scratch folder of this server run (nginx's config, pid and temp files). */
  run: string;
  /** TLS scenarios: a self-signed certificate and key made for this run. */
  tls: { cert: string; key: string } | null;
}

/** Installed (with a version string) or not (with why). */
export type Detected = { ok: true; version: string } | { ok: false; why: string };

export interface ServerDef {
  name: string;
  /** One line for --list and the report. */
  about: string;
  /** What it can serve; a scenario of another kind skips it (not even listed as skipped). */
  serves: AppKind[];
  command(f: Fields): string[];
  /** Working directory (the app module must be importable from it). */
  cwd(f: Fields): string;
  /** Extra environment. */
  env?: Record<string, string>;
  /** Path polled until it answers 200 (default: the scenario's path). */
  readyPath?: string;
  /** Files to write before starting (name relative to Fields.run -> content). */
  files?(f: Fields): Record<string, string>;
  detect(): Promise<Detected>;
  /** Can serve the TLS scenarios (HTTPS, HTTP/2) with `Fields.tls`. */
  servesTls?: boolean;
  /**
   * The PID started is a primary that serves nothing itself: its children are fronts (HTTP),
   * their descendants workers (ours). CPU per request is then reported per role.
   */
  hasRoles?: boolean;
  /**
   * Not a server: `command` runs the application in-process with no HTTP (the web2py ceiling,
   * bench/ceiling.ts) and reports each load's figures itself.
   */
  noHttp?: boolean;
}

/**
 * Run a command, first line of its output (stdout, else stderr), or null if it cannot run,
 * times out, or (unless `anyExit`) exits non-zero. `anyExit` is for tools like `wrk -v` that
 * print their version and exit 1.
 */
export function firstLine(cmd: string, args: string[], anyExit = false, timeoutMs = 10_000): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const line = `${stdout}${stderr}`.trim().split('\n')[0]?.trim() ?? '';
      const ran = !err || (anyExit && typeof err.code === 'number');
      resolve(ran && line ? line : null);
    });
  });
}

async function pyModule(mod: string): Promise<Detected> {
  const v = await firstLine(PY, ['-c', `import importlib.metadata as m; print(m.version('${mod}'))`]);
  return v ? { ok: true, version: `${mod} ${v}` } : { ok: false, why: `${PY} has no ${mod}` };
}

async function allOf(...checks: Promise<Detected>[]): Promise<Detected> {
  const results = await Promise.all(checks);
  const missing = results.find((r): r is { ok: false; why: string } => !r.ok);
  if (missing) return missing;
  return { ok: true, version: results.map((r) => (r.ok ? r.version : '')).join(', ') };
}

/**
 * A second built checkout for A/B runs in one bench run (`ours-base`, `ours-base-thread`,
 * `ours-base-thread-210`): set W2N_BENCH_BASE to its root (e.g. a `git worktree` of the commit
 * before, built with `npm run build`).
 */
const BASE_ROOT = process.env.W2N_BENCH_BASE ?? '';

const isWeb2py = (f: Fields): boolean => f.kind === 'web2py' || f.kind === 'static';
/** Folder the WSGI app is imported from: bench/apps, or the web2py copy (wsgihandler.py at its root). */
const appDir = (f: Fields): string => (isWeb2py(f) ? f.tree : f.apps);
/** module:callable of the app, importable from {@link appDir}. */
const appModule = (f: Fields): string => (isWeb2py(f) ? 'wsgihandler:application' : `${f.kind}:app`);
const appFile = (f: Fields): string => (isWeb2py(f) ? join(f.tree, 'wsgihandler.py') : join(f.apps, `${f.kind}.py`));

const WSGI: AppKind[] = ['hello', 'sleep', 'bulk', 'web2py', 'static'];

function gunicorn(worker: 'sync' | 'gthread' | 'gevent', f: Fields): string[] {
  const threads = worker === 'gthread' ? ['--threads', '32'] : []; // as peerbench
  return [PY, '-m', 'gunicorn', '-b', `127.0.0.1:${f.port}`, '--chdir', appDir(f), '-w', '2', '-k', worker, ...threads, appModule(f)];
}

function uwsgi(f: Fields, gevent: boolean): string[] {
  // --die-on-term: in uWSGI 2.0 SIGTERM means "reload" without it.
  const argv = ['uwsgi', '--plugin', 'python3', '--chdir', appDir(f), '--wsgi-file', appFile(f), '--master',
    '--processes', '2', '--disable-logging', '--die-on-term', '--http-socket', `127.0.0.1:${f.port}`];
  return gevent ? [...argv, '--plugin', 'gevent_python3', '--gevent', '1000', '--gevent-monkey-patch'] : argv;
}

async function uwsgiDetect(plugins: string[]): Promise<Detected> {
  // uwsgi prints its version even when a plugin fails to load (the error goes to stderr), so each
  // plugin's file is looked for too (Debian's layout: uwsgi-plugin-<name> packages).
  const missing = plugins.filter((p) => !existsSync(`/usr/lib/uwsgi/plugins/${p}_plugin.so`));
  if (missing.length > 0) return { ok: false, why: `uwsgi plugin ${missing.join(', ')} missing (/usr/lib/uwsgi/plugins)` };
  const v = await firstLine('uwsgi', [...plugins.flatMap((p) => ['--plugin', p]), '--version']);
  return v ? { ok: true, version: `uwsgi ${v}` } : { ok: false, why: `uwsgi or its ${plugins.join('/')} plugin missing` };
}

/**
 * Ours' Python: in the web2py scenario, the same interpreter through bench/app-cpu-python, which
 * times web2py's own calls in the workers (bench/app_cpu.py: about 1 µs a page) so the table
 * can split the workers' CPU against the ceiling's; elsewhere the interpreter itself.
 */
const oursPython = (f: Fields): string => (f.scenario === 'web2py' ? join(BENCH_DIR, 'app-cpu-python') : PY);

/**
 * Ours, run with the same interpreter as the Python peers (/usr/bin/python3, which has Debian's
 * gevent), so the comparison is of servers, not of Python builds. `extraArgs` may depend on the
 * scenario (the overload scenario's admission limits).
 */
function ours(name: string, about: string, extraArgs: (f: Fields) => string[], processes = 2, root = REPO_ROOT): ServerDef {
  const bin = join(root, 'bin', 'web2py-on-node');
  return {
    name,
    about,
    serves: WSGI,
    hasRoles: true,
    command: (f) => [
      'node', bin,
      ...(isWeb2py(f) ? ['-f', f.tree, '-a', 'secret'] : ['--app', `${f.kind}:app`]),
      '-i', '127.0.0.1', '-p', String(f.port), '--processes', String(processes), '--python', oursPython(f), '--log-level', 'warn',
      ...(f.tls === null ? [] : ['-c', f.tls.cert, '-k', f.tls.key]),
      ...extraArgs(f),
    ],
    servesTls: true,
    cwd: appDir,
    readyPath: '/health', // 200 only once its workers are ready
    async detect() {
      if (root === '') return { ok: false, why: 'W2N_BENCH_BASE is not set (the root of a built checkout to compare with)' };
      if (!existsSync(bin)) return { ok: false, why: `${bin} does not exist yet` };
      // the bin imports the compiled front; building is the lead's step, not the bench's
      if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) return { ok: false, why: `${root} is not built: run \`npm run build\`` };
      const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string };
      return { ok: true, version: `web2py-on-node ${pkg.version ?? '?'}` };
    },
  };
}

/** nginx serving web2py's static folder straight from the tree, as peerbench does. */
const NGINX_CONF = (f: Fields): string => `daemon off;
worker_processes 2;
pid ${f.run}/nginx.pid;
error_log stderr;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    client_body_temp_path ${f.run}/body; proxy_temp_path ${f.run}/proxy; fastcgi_temp_path ${f.run}/fcgi;
    uwsgi_temp_path ${f.run}/uwsgi; scgi_temp_path ${f.run}/scgi;
    server {
        listen 127.0.0.1:${f.port};
        location /welcome/static/ { alias ${f.tree}/applications/welcome/static/; }
    }
}
`;

/**
 * The admission limits of the overload scenario: at most OVERLOAD_WORKERS requests in the app
 * at once, OVERLOAD_QUEUE waiting; beyond that, 503. With the 100 ms app, capacity is
 * OVERLOAD_WORKERS / 0.1 s. OVERLOAD_TARGET_S is --queue-target: while the queue stands (it
 * does at 2× capacity), a request that waited longer gets 503, so those let in keep their p99.
 */
export const OVERLOAD_WORKERS = 50;
export const OVERLOAD_QUEUE = 50;
export const OVERLOAD_TARGET_S = 0.005;
const overloadArgs = (f: Fields): string[] =>
  f.scenario === 'overload'
    ? ['-w', String(OVERLOAD_WORKERS), '--queue-size', String(OVERLOAD_QUEUE), '--queue-target', String(OVERLOAD_TARGET_S)]
    : [];

/**
 * The fronts scenario runs ours with --fronts given (1 for `ours`, so a change of the default
 * does not change the scenario); --processes is the total over all fronts.
 */
const frontsArgs = (f: Fields): string[] => (f.scenario === 'fronts' ? ['--fronts', '1'] : []);

export const SERVERS: ServerDef[] = [
  ours('ours', 'web2py-on-node, 2 Python workers, default worker class (gevent when importable, as the seed)', (f) => [...overloadArgs(f), ...frontsArgs(f)]),
  ours('ours-thread', 'web2py-on-node, 2 Python workers, --worker-class thread (8 threads each)', (f) => ['--worker-class', 'thread', ...overloadArgs(f)]),
  // Issue 4 asks which thread count reaches 4,000 req/s in the sleep scenario: 210 per process
  // did on the project machine (200 gave 3,895, 250 gave 4,549).
  ours('ours-thread-210', 'web2py-on-node, 2 Python workers, --worker-class thread --threads 210', (f) => ['--worker-class', 'thread', '--threads', '210', ...overloadArgs(f)]),
  ours('ours-fronts2', 'web2py-on-node, --fronts 2 --processes 2 (one Python worker per front)', (f) => ['--fronts', '2', ...overloadArgs(f)]),
  ours('ours-base', 'A/B: the checkout at W2N_BENCH_BASE, as `ours`', (f) => [...overloadArgs(f), ...frontsArgs(f)], 2, BASE_ROOT),
  ours('ours-base-thread', 'A/B: the checkout at W2N_BENCH_BASE, as `ours-thread`', (f) => ['--worker-class', 'thread', ...overloadArgs(f)], 2, BASE_ROOT),
  ours('ours-base-thread-210', 'A/B: the checkout at W2N_BENCH_BASE, as `ours-thread-210`', (f) => ['--worker-class', 'thread', '--threads', '210', ...overloadArgs(f)], 2, BASE_ROOT),
  ours('ours-fronts4', 'web2py-on-node, --fronts 4 --processes 4 (one Python worker per front)', (f) => ['--fronts', '4', ...overloadArgs(f)], 4),
  {
    name: 'gevent',
    about: "the seed's gevent pywsgi (monkey-patched); web2py: the seed handler web2py_on_gevent.py",
    serves: WSGI,
    command: (f) =>
      isWeb2py(f)
        ? [PY, 'web2py_on_gevent.py', '-i', '127.0.0.1', '-p', String(f.port), '-a', 'secret']
        : [PY, GEVENT_SERVE, appFile(f), String(f.port)],
    cwd: appDir,
    detect: () =>
      existsSync(GEVENT_SERVE) ? pyModule('gevent') : Promise.resolve({ ok: false, why: `${GEVENT_SERVE} missing` }),
  },
  {
    name: 'rocket',
    about: "web2py's own server (Rocket, web2py.py)",
    serves: ['web2py', 'static'],
    command: (f) => [PY, 'web2py.py', '-i', '127.0.0.1', '-p', String(f.port), '-a', 'secret', '--no_gui', '-Q'],
    cwd: appDir,
    // the --web2py tree's own: its version is the tree's (JSON meta.web2py)
    detect: async () => ({ ok: true, version: 'Rocket of the --web2py tree' }),
  },
  {
    name: 'gunicorn',
    about: 'gunicorn, 2 sync workers',
    serves: WSGI,
    command: (f) => gunicorn('sync', f),
    cwd: appDir,
    detect: () => pyModule('gunicorn'),
  },
  {
    name: 'gunicorn-gthread',
    about: 'gunicorn, 2 gthread workers, 32 threads each',
    serves: WSGI,
    command: (f) => gunicorn('gthread', f),
    cwd: appDir,
    detect: () => pyModule('gunicorn'),
  },
  {
    name: 'gunicorn-gevent',
    about: 'gunicorn, 2 gevent workers',
    serves: WSGI,
    command: (f) => gunicorn('gevent', f),
    cwd: appDir,
    detect: () => allOf(pyModule('gunicorn'), pyModule('gevent')),
  },
  {
    name: 'uwsgi',
    about: 'uWSGI, 2 processes, --http-socket (no keep-alive)',
    serves: WSGI,
    command: (f) => uwsgi(f, false),
    cwd: appDir,
    detect: () => uwsgiDetect(['python3']),
  },
  {
    name: 'uwsgi-gevent',
    about: 'uWSGI, 2 processes, --gevent 1000 (monkey-patched), --http-socket',
    serves: WSGI,
    command: (f) => uwsgi(f, true),
    cwd: appDir,
    detect: () => uwsgiDetect(['python3', 'gevent_python3']),
  },
  {
    name: 'waitress',
    about: 'waitress (4 threads, its default)',
    serves: WSGI,
    command: (f) => [PY, '-m', 'waitress', `--listen=127.0.0.1:${f.port}`, appModule(f)],
    cwd: appDir,
    detect: () => pyModule('waitress'),
  },
  {
    name: 'nginx',
    about: 'nginx, 2 workers, sendfile: the static-file limit',
    serves: ['static'],
    command: (f) => ['nginx', '-p', f.run, '-c', join(f.run, 'nginx.conf'), '-e', 'stderr'],
    cwd: (f) => f.run,
    files: (f) => ({ 'nginx.conf': NGINX_CONF(f) }),
    async detect() {
      const v = await firstLine('nginx', ['-v'], true);
      return v ? { ok: true, version: v } : { ok: false, why: 'nginx not installed' };
    },
  },
  {
    // the web2py scenario's limit: the application alone, in as many processes as the servers run
    name: 'ceiling',
    about: 'no HTTP: 2 Python processes calling gluon.main.wsgibase in a loop (bench/web2py_ceiling.py): the limit',
    serves: ['web2py'],
    noHttp: true,
    command: (f) => [PY, join(BENCH_DIR, 'web2py_ceiling.py'), '--folder', f.tree, '--processes', '2', '--port', String(f.port)],
    cwd: (f) => f.tree,
    detect: async () => (existsSync(PY) ? { ok: true, version: `bench/web2py_ceiling.py with ${PY}` } : { ok: false, why: `${PY} missing` }),
  },
  {
    name: 'node',
    about: 'raw Node.js http (hello, the bulk routes, or the static file from memory with the same headers): the front-end limit',
    serves: ['hello', 'bulk', 'static'],
    command: (f) => ['node', ...nodeApp(f), ...(f.tls === null ? [] : [f.tls.cert, f.tls.key])],
    cwd: (f) => f.apps,
    // node_hello.mjs and node_static.mjs serve HTTP/2 and HTTP/1.1 over TLS when given a certificate.
    servesTls: true,
    detect: async () => ({ ok: true, version: `node ${process.version}` }),
  },
  {
    // ours gathers a chunked body before web2py sees it (web2py reads CONTENT_LENGTH bytes);
    // `node` discards it as it comes, so it is no floor for that row: this one writes it to disk
    name: 'node-spool',
    about: 'raw Node.js http writing each chunked upload to a temp file before answering (the rest as `node`): the limit for a server that gathers a chunked body',
    serves: ['bulk'],
    command: (f) => ['node', join(f.apps, 'node_bulk.mjs'), String(f.port), '--spool'],
    cwd: (f) => f.apps,
    detect: async () => ({ ok: true, version: `node ${process.version}` }),
  },
];

/** The raw Node.js app of a scenario and its arguments (the static one answers the scenario's file). */
function nodeApp(f: Fields): string[] {
  if (f.kind === 'bulk') return [join(f.apps, 'node_bulk.mjs'), String(f.port)];
  if (f.kind === 'static') return [join(f.apps, 'node_static.mjs'), String(f.port), join(f.tree, 'applications', 'welcome', 'static', 'css', 'web2py.css')];
  return [join(f.apps, 'node_hello.mjs'), String(f.port)];
}

export function serverByName(name: string): ServerDef | undefined {
  return SERVERS.find((s) => s.name === name);
}
