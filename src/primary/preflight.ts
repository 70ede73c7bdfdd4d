/**
 * @module What the primary checks and decides before it binds anything: the application, the
 * interpreter, the folders, the number of fronts and each one's share of the workers.
 *
 * Everything that can be wrong with the configuration is found here, so a bad start is one
 * clear error with nothing listening; the fronts use what was found.
 */
import { availableParallelism } from 'node:os';
import type { Config, SettingKey } from '../config/settings.js';
import type { Source } from '../config/load.js';
import { ServerError } from '../errors/index.js';
import { AccessLog, accessLogTarget, STDOUT } from '../observability/access-log.js';
import { probePython, type PythonFacts, type WorkerHandshake } from '../pool/worker.js';
import { probeSpoolDir } from '../front/body-spool.js';
import { checkSchedulerApps, checkWeb2pyFolder, isWeb2pyFolder, prepareProfilerDir } from '../web2py/folder.js';
import type { FrontAssignment } from './messages.js';

type AppSpec = WorkerHandshake['app'];

/** web2py folder, `--app module:callable`, or the bundled demo when nothing else fits. */
function chooseApp(config: Readonly<Config>, sources: Readonly<Record<SettingKey, Source>>): { app: AppSpec; hasRoutes: boolean; detail: string } {
  if (config.app !== null) return { app: { kind: 'wsgi', spec: config.app, cwd: config.folder }, hasRoutes: false, detail: `WSGI app ${config.app} from ${config.folder}` };
  if (sources.folder === 'default' && !isWeb2pyFolder(config.folder)) {
    return { app: { kind: 'demo' }, hasRoutes: false, detail: `demo app: no gluon/ in ${config.folder} (use -f /path/to/web2py, or --app module:callable)` };
  }
  const folder = checkWeb2pyFolder(config.folder);
  return { app: { kind: 'web2py', folder: folder.folder }, hasRoutes: folder.hasRoutes, detail: `web2py in ${folder.folder}` };
}

/** `--fronts auto`: one front per four CPUs, at least one, never more than there are worker processes. */
export function resolveFronts(config: Readonly<Config>): number {
  const asked = config.fronts === 'auto' ? Math.max(1, Math.floor(availableParallelism() / 4)) : config.fronts;
  return Math.max(1, Math.min(asked, config.processes));
}

/** Front `index` (1-based) of `fronts`: its share of a total, split as evenly as whole numbers allow. */
export function shareOf(total: number, index: number, fronts: number): number {
  return Math.floor(total / fronts) + (index <= total % fronts ? 1 : 0);
}

/**
 * Everything that can be wrong with the configuration, checked by the primary before it binds
 * anything (one clear error, nothing listening). The front uses what it found.
 */
export async function preflight(config: Readonly<Config>, sources: Readonly<Record<SettingKey, Source>>): Promise<{
  app: FrontAssignment['app']; python: PythonFacts;
}> {
  const chosen = chooseApp(config, sources);
  if (config.scheduler.length > 0) checkSchedulerApps(chosen.app.kind === 'web2py' ? chosen.app.folder : null, config.scheduler);
  const python = await probePython(config.python);
  if (config.profiler !== null) prepareProfilerDir(config.profiler, config.folder);
  const accessLog = accessLogTarget({ ...config, folder: chosen.app.kind === 'web2py' ? chosen.app.folder : config.folder });
  if (accessLog !== null && accessLog !== STDOUT) await AccessLog.open(accessLog).close();
  const spoolProblem = config.chunkedInput === 'spool' ? probeSpoolDir(config.spoolDir) : null;
  if (spoolProblem !== null) throw new ServerError('W2N_ERR_SPOOL_DIR', { folder: config.spoolDir, reason: spoolProblem });
  return { app: { spec: chosen.app, hasRoutes: chosen.hasRoutes, detail: chosen.detail }, python };
}
