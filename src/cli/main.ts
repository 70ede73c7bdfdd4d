/**
 * @module The command line: argv → config → the primary → signals. The primary process's only exit.
 *
 * This process is the primary (src/primary/): it binds the sockets and supervises the front
 * processes, which parse the clients' bytes (src/cli/front.ts is their entry). Signals come
 * here and are passed on: SIGTERM/SIGINT stop every front gracefully, a second one at once;
 * SIGHUP replaces the fronts one at a time; SIGUSR1 makes them reopen the access log.
 *
 * Exit statuses: 0 after a graceful stop (or --help/--version/--print-config/--check-config),
 * 2 for any configuration or start-up error (one line on stderr, nothing left listening),
 * 1 for an unexpected internal failure or fronts that keep dying, 130 when a second SIGINT stops the server at once.
 */
import { serverVersion } from '../version.js';
import { formatConfig, loadConfig } from '../config/load.js';
import { renderHelp } from './help.js';
import { createLogger } from '../observability/log.js';
import { LogEvents } from '../observability/events.js';
import { startPrimary, type RunningPrimary } from '../primary/primary.js';
import { describeFatal } from './fatal.js';


function fail(error: unknown): never {
  const { line, exitCode } = describeFatal(error);
  process.stderr.write(`${line}\n`);
  process.exit(exitCode);
}

async function main(): Promise<void> {
  const loaded = loadConfig({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() });
  if (loaded.actions.help) {
    process.stdout.write(renderHelp());
    return;
  }
  if (loaded.actions.version) {
    process.stdout.write(`web2py-on-node ${serverVersion}\n`);
    return;
  }
  if (loaded.actions.printConfig) {
    process.stdout.write(formatConfig(loaded));
    return;
  }
  if (loaded.actions.checkConfig) {
    process.stdout.write('configuration is valid\n');
    return;
  }
  const { config } = loaded;
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  for (const warning of loaded.warnings) LogEvents.configWarning(log, { warning });

  let server: RunningPrimary | null = null;
  let signalsSeen = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signalsSeen += 1;
    if (server === null) process.exit(signal === 'SIGINT' ? 130 : 143);
    if (signalsSeen > 1) {
      LogEvents.serverForcedStop(log, { signal });
      server.kill();
      process.exit(130);
    }
    server.stop(signal).then(() => process.exit(0), fail);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Zero-downtime reload: fresh workers (new code), then the old ones finish and leave.
  process.on('SIGHUP', () => {
    server?.reload().catch((error: unknown) => {
      LogEvents.reloadFailed(log, { error });
    });
  });
  // logrotate: after it renames httpserver.log, SIGUSR1 makes new lines go to a new file.
  process.on('SIGUSR1', () => server?.reopenLogs());

  server = await startPrimary({
    config, sources: loaded.sources, log,
    say: (line) => process.stdout.write(`${line}\n`),
    onGiveUp: (error) => {
      server?.kill();
      fail(error);
    },
  });
}

main().catch(fail);
