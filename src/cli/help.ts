/**
 * @module The text of `--help`, rendered from the settings registry (never written by hand).
 */

import {
  actionFlags, defaultText, envVarOf, metavarOf, sections, settingKeys, specOf,
} from '../config/settings.js';

/** Lines are wrapped to this many columns. */
const WIDTH_COLUMNS = 100;
const FLAG_INDENT = '  ';
const TEXT_INDENT = '      ';

/** Greedy word wrap; a word longer than the line stays whole rather than being cut. */
function wrap(text: string, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((part) => part !== '')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > WIDTH_COLUMNS) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

/** The registry's docs are Markdown; a terminal shows the backticks as noise. */
function plain(markdown: string): string {
  return markdown.replace(/`/g, '');
}

function flagLine(cli: readonly string[], metavar: string): string {
  return `${FLAG_INDENT}${cli.join(', ')}${metavar === '' ? '' : ` ${metavar}`}`;
}

/**
 * Renders the full `--help` text: usage, then each section's flags (every spelling), metavar,
 * description, default, env var, config-file key and accepted values, then the action flags.
 */
export function renderHelp(): string {
  const out: string[] = [
    'Usage: web2py-on-node [options]',
    '',
    ...wrap('Serves web2py (or any Python WSGI app) from a Node.js front and a pool of Python worker '
      + 'processes. Takes the flags of web2py\'s handlers/web2py_on_gevent.py, and more. Every setting can '
      + 'also be given as an environment variable or in a JSON --config file; the command line wins over '
      + 'the environment, which wins over the config file, which wins over the defaults.', ''),
  ];
  for (const section of sections) {
    out.push('', `${section}:`);
    for (const key of settingKeys.filter((name) => specOf(name).section === section)) {
      const spec = specOf(key);
      const envVar = envVarOf(key);
      const facts = [
        `Default: ${plain(defaultText(key))}.`,
        envVar === null ? '' : `Env: ${envVar}.`,
        `Config key: ${key}.`,
        `Accepts: ${spec.type.description}.`,
      ].filter((fact) => fact !== '');
      out.push(flagLine(spec.cli, metavarOf(key)), ...wrap(plain(spec.doc), TEXT_INDENT), ...wrap(facts.join(' '), TEXT_INDENT));
    }
  }
  out.push('', 'Actions:');
  for (const { cli, doc } of Object.values(actionFlags)) {
    out.push(flagLine(cli, ''), ...wrap(doc, TEXT_INDENT));
  }
  return `${out.join('\n')}\n`;
}
