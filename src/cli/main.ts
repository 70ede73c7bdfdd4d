/**
 * @module The command line: argv → config → start → signals. The ONLY place that exits.
 *
 * Exit statuses: 0 after a graceful stop (or --help/--version/--print-config/--check-config),
 * 2 for any configuration or start-up error (one line on stderr, nothing left listening),
 * 1 for an unexpected internal failure, 130 when a second SIGINT stops the server at once.
 */
import { readFileSync } from 'node:fs';
import { isServerError } from '../errors/index.js';
import { formatConfig, loadConfig } from '../config/load.js';
import { renderHelp } from './help.js';
import { createLogger } from '../observability/log.js';
import { LogEvents } from '../observability/events.js';
import { startServer, type RunningServer } from '../server.js';

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function fail(error: unknown): never {
  if (isServerError(error)) {
    process.stderr.write(`web2py-on-node: error: ${error.message} [${error.code}]\n`);
    process.exit(error.exitCode ?? 1);
  }
  process.stderr.write(`web2py-on-node: internal error: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const loaded = loadConfig({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() });
  if (loaded.actions.help) {
    process.stdout.write(renderHelp());
    return;
  }
  if (loaded.actions.version) {
    process.stdout.write(`web2py-on-node ${packageJson.version}\n`);
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
  for (const warning of loaded.warnings) log.warn({ event: 'config.warning' }, warning);

  let server: RunningServer | null = null;
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
    server?.reload('SIGHUP').catch((error: unknown) => {
      log.error({ event: 'reload.failed', err: error }, 'reload failed');
    });
  });
  // logrotate: after it renames httpserver.log, SIGUSR1 makes new lines go to a new file.
  process.on('SIGUSR1', () => {
    server?.reopenLogs().catch((error: unknown) => {
      log.error({ event: 'log.reopen_failed', err: error }, 'cannot reopen the access log; lines are dropped until it can');
    });
  });

  server = await startServer({ config, sources: loaded.sources, log, say: (line) => process.stdout.write(`${line}\n`) });
}

main().catch(fail);
