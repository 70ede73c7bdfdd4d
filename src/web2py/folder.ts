/** @module Start-up checks on the web2py folder and the -F profiler folder. */

import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, realpathSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import { ServerError } from '../errors/index.js';

export interface Web2pyFolder {
  /** The folder's real path (symlinks resolved): web2py's applications_parent. */
  folder: string;
  /** `<folder>/routes.py` exists, so URL rewriting may move static URLs (no static offload then). */
  hasRoutes: boolean;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** gluon/rewrite.py load: `path = abspath(routes)` then `if not exists(path): return`. */
function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A web2py folder is one that holds `gluon/` (the handlers put that folder first on sys.path). */
export function isWeb2pyFolder(folder: string): boolean {
  return isDirectory(join(folder, 'gluon'));
}

/** Throws W2N_ERR_FOLDER_NOT_WEB2PY unless `<folder>/gluon` is a directory. */
export function checkWeb2pyFolder(folder: string): Web2pyFolder {
  if (!isWeb2pyFolder(folder)) {
    throw new ServerError('W2N_ERR_FOLDER_NOT_WEB2PY', { folder: resolve(folder) });
  }
  const realFolder = realpathSync(folder);
  return { folder: realFolder, hasRoutes: exists(join(realFolder, 'routes.py')) };
}

/**
 * Makes the -F folder ready, as gluon/main.py appfactory does before serving:
 *   profiler_dir = abspath(profiler_dir)          # relative to applications_parent
 *   if not os.path.isdir(profiler_dir): os.makedirs(profiler_dir)
 *   filepath = pjoin(profiler_dir, "wtest") ... open(filepath, "w"); os.unlink(filepath)
 * `baseFolder` plays applications_parent for a relative `dir` (the web2py folder; the seed
 * handler chdirs there, so it defaults to the current folder). The probe has a unique name
 * rather than "wtest", so two servers sharing the folder cannot trip each other.
 * Returns the absolute path; errors are W2N_ERR_PROFILER_DIR.
 */
export function prepareProfilerDir(dir: string, baseFolder: string = process.cwd()): string {
  const absoluteDir = resolve(baseFolder, dir);
  try {
    makeDirs(absoluteDir);
  } catch (err: unknown) {
    throw profilerDirError(absoluteDir, 'cannot create it', err);
  }
  if (!isDirectory(absoluteDir)) throw profilerDirError(absoluteDir, 'it is not a directory');
  probeWritable(absoluteDir);
  return absoluteDir;
}

/**
 * `mkdir -p`, one segment at a time. Not `mkdirSync(dir, { recursive: true })`: under a pseudo
 * file system such as /proc, Node 20's recursive mkdir spins forever instead of failing.
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let current = dir; !existsSync(current); current = dirname(current)) {
    missing.unshift(current);
    if (dirname(current) === current) break;
  }
  for (const folder of missing) mkdirSync(folder);
}

function probeWritable(dir: string): void {
  const probeFile = join(dir, `.w2n-probe-${process.pid}-${randomUUID().slice(0, 8)}`);
  try {
    writeFileSync(probeFile, '', { flag: 'wx' });
    unlinkSync(probeFile);
  } catch (err: unknown) {
    throw profilerDirError(dir, 'cannot write in it', err);
  }
}

function profilerDirError(folder: string, what: string, cause?: unknown): ServerError {
  const detail = cause instanceof Error ? ` (${cause.message})` : '';
  return new ServerError('W2N_ERR_PROFILER_DIR', { folder, reason: `${what}${detail}` },
    cause === undefined ? undefined : { cause });
}

/**
 * `-K` entries name applications of the web2py folder, and web2py.py must be there to run them
 * (W2N_ERR_SCHEDULER_APP otherwise). web2py.py itself only warns about a bad name and skips it;
 * here it stops the start, since a scheduler that silently never runs loses every task.
 */
export function checkSchedulerApps(folder: string | null, entries: readonly string[]): void {
  for (const entry of entries) {
    const app = entry.split(':')[0] ?? entry;
    if (folder === null) throw new ServerError('W2N_ERR_SCHEDULER_APP', { entry, reason: 'the scheduler is web2py\'s: it needs a web2py folder (-f), not --app' });
    if (!exists(join(folder, 'web2py.py'))) throw new ServerError('W2N_ERR_SCHEDULER_APP', { entry, reason: `no web2py.py in ${folder}` });
    if (!isDirectory(join(folder, 'applications', app))) throw new ServerError('W2N_ERR_SCHEDULER_APP', { entry, reason: `no application ${app} in ${join(folder, 'applications')}` });
  }
}
