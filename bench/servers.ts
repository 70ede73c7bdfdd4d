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

/** What a command template gets. */
export interface Fields {
  port: number;
  /** Folder holding the scenario's apps (hello.py, node_hello.mjs). */
  apps: string;
}

/** Installed (with a version string) or not (with why). */
export type Detected = { ok: true; version: string } | { ok: false; why: string };

export interface ServerDef {
  name: string;
  /** One line for --list and the report. */
  about: string;
  command(f: Fields): string[];
  /** Working directory (the module `hello` must be importable from it). */
  cwd(f: Fields): string;
  /** Extra environment. */
  env?: Record<string, string>;
  /** Path polled until it answers 200. */
  readyPath: string;
  detect(): Promise<Detected>;
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

const OURS_BIN = join(REPO_ROOT, 'bin', 'web2py-on-node');

function gunicorn(worker: 'sync' | 'gevent'): string[] {
  return [PY, '-m', 'gunicorn', '-b', '127.0.0.1:{port}', '-w', '2', '-k', worker, 'hello:app'];
}

/** Replace "{port}" in an argv template. */
const fill = (argv: string[], f: Fields): string[] => argv.map((w) => w.replaceAll('{port}', String(f.port)));

/**
 * Ours, run with the same interpreter as the Python peers (/usr/bin/python3, which has Debian's
 * gevent), so the comparison is of servers, not of Python builds.
 */
function ours(name: string, about: string, extraArgs: string[]): ServerDef {
  return {
    name,
    about,
    command: (f) => fill(['node', OURS_BIN, '--app', 'hello:app', '-i', '127.0.0.1', '-p', '{port}', '--processes', '2',
      '--python', PY, ...extraArgs], f),
    cwd: (f) => f.apps,
    readyPath: '/health', // 200 only once its workers are ready
    async detect() {
      if (!existsSync(OURS_BIN)) return { ok: false, why: `${OURS_BIN} does not exist yet` };
      // the bin imports the compiled front; building is the lead's step, not the bench's
      if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) return { ok: false, why: 'not built: run `npm run build`' };
      const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version?: string };
      return { ok: true, version: `web2py-on-node ${pkg.version ?? '?'}` };
    },
  };
}

export const SERVERS: ServerDef[] = [
  ours('ours', 'web2py-on-node, 2 Python workers, default worker class (gevent when importable, as the seed)', []),
  ours('ours-thread', 'web2py-on-node, 2 Python workers, --worker-class thread (8 threads each)', ['--worker-class', 'thread']),
  {
    name: 'gevent',
    about: "the seed's gevent pywsgi (monkey-patched)",
    command: (f) => fill([PY, GEVENT_SERVE, join(f.apps, 'hello.py'), '{port}'], f),
    cwd: (f) => f.apps,
    readyPath: '/',
    detect: () =>
      existsSync(GEVENT_SERVE) ? pyModule('gevent') : Promise.resolve({ ok: false, why: `${GEVENT_SERVE} missing` }),
  },
  {
    name: 'gunicorn',
    about: 'gunicorn, 2 sync workers',
    command: (f) => fill(gunicorn('sync'), f),
    cwd: (f) => f.apps,
    readyPath: '/',
    detect: () => pyModule('gunicorn'),
  },
  {
    name: 'gunicorn-gevent',
    about: 'gunicorn, 2 gevent workers',
    command: (f) => fill(gunicorn('gevent'), f),
    cwd: (f) => f.apps,
    readyPath: '/',
    detect: () => allOf(pyModule('gunicorn'), pyModule('gevent')),
  },
  {
    name: 'uwsgi',
    about: 'uWSGI, 2 processes, --http-socket (no keep-alive)',
    // --die-on-term: in uWSGI 2.0 SIGTERM means "reload" without it.
    command: (f) =>
      fill(
        ['uwsgi', '--plugin', 'python3', '--chdir', f.apps, '--wsgi-file', join(f.apps, 'hello.py'), '--master',
          '--processes', '2', '--disable-logging', '--die-on-term', '--http-socket', '127.0.0.1:{port}'],
        f,
      ),
    cwd: (f) => f.apps,
    readyPath: '/',
    async detect() {
      // Loading the plugin proves both uwsgi-core and uwsgi-plugin-python3 are there.
      const v = await firstLine('uwsgi', ['--plugin', 'python3', '--version']);
      return v ? { ok: true, version: `uwsgi ${v}` } : { ok: false, why: 'uwsgi or its python3 plugin missing' };
    },
  },
  {
    name: 'node',
    about: 'raw Node.js http hello: the front-end limit',
    command: (f) => fill(['node', join(f.apps, 'node_hello.mjs'), '{port}'], f),
    cwd: (f) => f.apps,
    readyPath: '/',
    detect: async () => ({ ok: true, version: `node ${process.version}` }),
  },
];

export function serverByName(name: string): ServerDef | undefined {
  return SERVERS.find((s) => s.name === name);
}
