/**
 * @module Generates docs/settings.md (from src/config/settings.ts), docs/errors.md (from
 * src/errors/index.ts) and docs/log-events.md (from the catalogue, src/observability/events.ts).
 * `npm run docs` writes them; test/unit/docs-current.test.ts calls the render functions and
 * fails when the files on disk are stale.
 */

import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

import {
  actionFlags, defaultText, envVarOf, sections, settingKeys, specOf, type SettingKey,
} from '../src/config/settings.js';
import { errorTable, type ErrorSpec } from '../src/errors/index.js';
import { eventCatalogue, type EventSpec } from '../src/observability/events.js';

export const settingsDocUrl = new URL('../docs/settings.md', import.meta.url);
export const errorsDocUrl = new URL('../docs/errors.md', import.meta.url);
export const logEventsDocUrl = new URL('../docs/log-events.md', import.meta.url);

/** A `|` would end the table cell, even inside a code span (GFM). */
function cell(markdown: string): string {
  return markdown.replace(/\|/g, '\\|');
}

/** Text that is not Markdown (error table prose): `<` would start an HTML tag. */
function plainCell(text: string): string {
  return cell(text.replace(/</g, '&lt;'));
}

function code(text: string): string {
  return `\`${text}\``;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ];
}

function defaultCell(key: SettingKey): string {
  const spec = specOf(key);
  if (spec.defaultDoc !== undefined || spec.default === null) return cell(defaultText(key));
  return cell(code(defaultText(key)));
}

function settingRow(key: SettingKey): string[] {
  const spec = specOf(key);
  const envVar = envVarOf(key);
  const notes = [`Accepts: ${spec.type.description}.`];
  if (spec.secret === true) notes.push('Secret: `--print-config` shows `***`.');
  return [
    code(key),
    spec.cli.map(code).join(', '),
    envVar === null ? '—' : code(envVar),
    defaultCell(key),
    cell(`${spec.doc} *${notes.join(' ')}*`),
  ];
}

const SETTINGS_INTRO = `Every setting can be given four ways. Later ones win:

1. the default below;
2. the **config file**, a JSON file named by \`--config FILE\` or \`W2N_CONFIG\`: one object whose keys are
   the setting names of the first column, e.g. \`{"port": 8080, "processes": 4, "sslCertificate": "cert.pem"}\`.
   An unknown key is an error, and so is \`config\` itself;
3. the **environment**: \`W2N_\` followed by the setting name in SCREAMING_SNAKE_CASE (\`W2N_QUEUE_SIZE=2048\`);
   an unknown \`W2N_*\` variable is reported as a warning;
4. the **command line**: any spelling of the flag (\`-p 8000\`, \`-p8000\`, \`--port 8000\`, \`--port=8000\`).
   The seed's underscore spellings (\`--ssl_certificate\`) work as well as the dashed ones.

Every value is checked before anything listens; a bad one stops the server with one line that says where it came
from, e.g. \`web2py-on-node: error: --port "80a": not an integer (from W2N_PORT) [W2N_ERR_CONFIG_BAD_VALUE]\`, and exit status 2. \`--print-config\` shows
each value and its source; \`--check-config\` only checks.

Values: numbers and booleans may be JSON numbers/booleans in the config file, or text anywhere. Booleans accept
\`true/false\`, \`1/0\`, \`yes/no\`, \`on/off\`, and a bare flag (\`-l\`) means true. Sizes accept \`16k\`, \`1m\`, \`1g\`
(powers of 1024). Durations are in seconds, decimals allowed. Settings whose default is "none" also accept
\`null\` in the config file and an empty string in the environment or on the command line. Relative paths are
resolved against the current folder, wherever they are given.`;

/** The full text of docs/settings.md. */
export function renderSettingsDoc(): string {
  const out: string[] = [
    '<!-- Generated — edit src/config/settings.ts, then run npm run docs. -->',
    '# Settings',
    '',
    '> Generated — edit src/config/settings.ts, then run `npm run docs`.',
    '',
    SETTINGS_INTRO,
  ];
  for (const section of sections) {
    out.push('', `## ${section}`, '');
    const keys = settingKeys.filter((key) => specOf(key).section === section);
    out.push(...table(['Setting', 'CLI flags', 'Env var', 'Default', 'Description'], keys.map(settingRow)));
  }
  out.push('', '## Actions', '', 'These flags are not settings: they ask for something other than serving.', '');
  out.push(...table(['CLI flags', 'Description'],
    Object.values(actionFlags).map(({ cli, doc }) => [cli.map(code).join(', '), cell(doc)])));
  return `${out.join('\n')}\n`;
}

function errorRow(name: string, spec: ErrorSpec): string[] {
  return [
    code(name),
    spec.httpStatus === undefined ? '—' : String(spec.httpStatus),
    spec.exitCode === undefined ? '—' : String(spec.exitCode),
    spec.logLevel,
    cell(code(spec.message)),
    plainCell(spec.remedy),
  ];
}

const ERRORS_INTRO = `Every error the server reports has a stable \`code\` (it appears in the log's \`code\` field and never changes
meaning; a retired code is never reused). Errors at start print one line, \`error: <message>\`, and exit with the
exit code below, before anything listens. Errors during a request answer with the HTTP status below. Words in
braces in a message are filled in from the error's details. The log level is that of the server-log line that
reports the error ([log-events.md](log-events.md)), where one does.`;

/** The full text of docs/errors.md. */
export function renderErrorsDoc(): string {
  const rows = Object.entries(errorTable).map(([name, spec]) => errorRow(name, spec));
  const out: string[] = [
    '<!-- Generated — edit src/errors/index.ts, then run npm run docs. -->',
    '# Errors',
    '',
    '> Generated — edit src/errors/index.ts, then run `npm run docs`.',
    '',
    ERRORS_INTRO,
    '',
    ...table(['Code', 'HTTP status', 'Exit code', 'Log level', 'Message', 'Remedy'], rows),
  ];
  return `${out.join('\n')}\n`;
}

function logEventRow(name: string, spec: EventSpec): string[] {
  const level = spec.level === 'code' ? 'the error\'s (`code`: docs/errors.md)' : spec.level;
  const message = typeof spec.message === 'string' ? code(spec.message) : `the \`${spec.message.field}\` text`;
  return [
    code(name),
    level,
    cell(message),
    spec.fields.length === 0 ? '—' : spec.fields.map(code).join(', '),
    spec.doc === undefined ? '' : plainCell(spec.doc),
  ];
}

const LOG_EVENTS_INTRO = `Every line of the server log (stderr; \`--log-format json\` or \`text\`) is one of these events. The
\`event\` field names it and never changes meaning; match on it, not on the message. Each line also carries
\`pid\`, most a \`component\` (\`primary\`, \`front\` or \`pool\`), and those of a front process \`front\` (its index);
\`err\` is a serialised exception with its stack. A field
may be absent when it has no value (a worker's \`pid\` before it started). Text that comes from the application
(a worker's output, an exception's message and traceback) is written with its control characters escaped.
The access log is a separate stream in web2py's format (\`httpserver.log\`).`;

/** The full text of docs/log-events.md. */
export function renderLogEventsDoc(): string {
  const rows = Object.entries(eventCatalogue).sort(([a], [b]) => a.localeCompare(b)).map(([name, spec]) => logEventRow(name, spec));
  const out: string[] = [
    '<!-- Generated — edit src/observability/events*.ts, then run npm run docs. -->',
    '# Log events',
    '',
    '> Generated — edit src/observability/events*.ts, then run `npm run docs`.',
    '',
    LOG_EVENTS_INTRO,
    '',
    ...table(['Event', 'Level', 'Message', 'Fields', 'When'], rows),
  ];
  return `${out.join('\n')}\n`;
}

/** Writes the three documents; run as `npm run docs`. */
export function writeDocs(): void {
  writeFileSync(settingsDocUrl, renderSettingsDoc());
  writeFileSync(errorsDocUrl, renderErrorsDoc());
  writeFileSync(logEventsDocUrl, renderLogEventsDoc());
}

// Only when run as a script: the docs test imports this module and must not write anything.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeDocs();
  process.stdout.write('wrote docs/settings.md, docs/errors.md and docs/log-events.md\n');
}
