/**
 * @module Loads the configuration: defaults < config file < env (W2N_*) < argv, in one function.
 *
 * This is the only module that sees the command line and the environment, and even it gets them
 * as parameters (never `process.*`), so every precedence rule is testable with plain values.
 * Every value is validated before anything listens; the first bad one stops the load with a
 * one-line `ServerError` that says the option, the value, why, and where it came from.
 */

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { ServerError } from '../errors/index.js';
import {
  actionFlags, configKeyOf, defaultOf, envVarOf, primaryFlag, settingKeys, settings, settingValue, specOf,
  type ActionKey, type Config, type SettingKey,
} from './settings.js';
import { InvalidValueError, type ValidationContext } from './validators.js';

/** Where a setting's value came from. */
export type Source = 'default' | 'file' | 'env' | 'argv';

export type Actions = { readonly [K in ActionKey]: boolean };

export interface LoadOptions {
  /** Command-line arguments without node and the script (`process.argv.slice(2)`). */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Relative paths (flags, env, config file) are resolved against this folder. */
  readonly cwd: string;
}

export interface LoadedConfig {
  readonly config: Readonly<Config>;
  readonly sources: Readonly<Record<SettingKey, Source>>;
  readonly actions: Actions;
  /** Things worth a log line that do not stop the server (an unknown W2N_* variable). */
  readonly warnings: readonly string[];
}

/** One candidate value for a setting, with what a message needs to say where it came from. */
interface RawValue {
  readonly raw: unknown;
  readonly source: Source;
  /** The option as the user spelled it (`-p`), or the canonical flag for env/file values. */
  readonly option: string;
  /** `argv`, the env var name, or `config file /path.json`. */
  readonly origin: string;
}

interface CommandLine {
  readonly values: ReadonlyMap<SettingKey, RawValue>;
  readonly actions: Actions;
}

type FlagTarget = { readonly setting: SettingKey } | { readonly action: ActionKey };

/**
 * util.parseArgs names options by their long name; short flags hang off the first long one.
 * Built once: the registry does not change at run time.
 */
function buildParserOptions(): { options: Record<string, { type: 'boolean' | 'string'; short?: string }>; targets: Map<string, FlagTarget> } {
  const options: Record<string, { type: 'boolean' | 'string'; short?: string }> = {};
  const targets = new Map<string, FlagTarget>();
  const add = (cli: readonly string[], type: 'boolean' | 'string', target: FlagTarget): void => {
    const longNames = cli.filter((flag) => flag.startsWith('--')).map((flag) => flag.slice(2));
    const shorts = cli.filter((flag) => /^-[^-]$/.test(flag)).map((flag) => flag.slice(1));
    for (const [index, name] of longNames.entries()) {
      const short = index === 0 ? shorts[0] : undefined;
      options[name] = short === undefined ? { type } : { type, short };
      targets.set(name, target);
    }
  };
  for (const key of settingKeys) add(specOf(key).cli, specOf(key).type.kind, { setting: key });
  for (const [key, { cli }] of Object.entries(actionFlags)) add(cli, 'boolean', { action: key as ActionKey });
  return { options, targets };
}

const parser = buildParserOptions();

/**
 * Reads argv with util.parseArgs in non-strict mode and does the strict checks itself, so that
 * the errors are ours (code + option) rather than parseArgs' prose, and so that a value starting
 * with `-` is taken as a value (`-a -secret`), as the seed's optparse does.
 */
function parseCommandLine(argv: readonly string[]): CommandLine {
  const { tokens } = parseArgs({
    args: [...argv], options: parser.options, strict: false, allowPositionals: true, tokens: true,
  });
  const values = new Map<SettingKey, RawValue>();
  const actions: Record<ActionKey, boolean> = { help: false, version: false, printConfig: false, checkConfig: false };
  // Lone `-` values taken by a switch before them (`-l -`): their index in `tokens`.
  const takenDashes = new Set<number>();
  for (const [index, token] of tokens.entries()) {
    if (token.kind === 'option-terminator' || takenDashes.has(index)) continue;
    if (token.kind === 'positional') throw new ServerError('W2N_ERR_CONFIG_UNKNOWN_OPTION', { option: token.value });
    const target = parser.targets.get(token.name);
    if (target === undefined) throw new ServerError('W2N_ERR_CONFIG_UNKNOWN_OPTION', { option: token.rawName });
    const option = token.rawName;
    if ('action' in target) {
      if (token.value !== undefined) throw badValue({ raw: token.value, source: 'argv', option, origin: 'argv' }, 'takes no value');
      actions[target.action] = true;
      continue;
    }
    const kind = specOf(target.setting).type.kind;
    if (kind === 'string' && token.value === undefined) {
      throw new ServerError('W2N_ERR_CONFIG_BAD_VALUE', { option, value: '(none)', reason: 'needs a value (from argv)' });
    }
    // A bare switch means true; `--logging=false` is parsed by the setting's validator.
    const raw = kind === 'boolean' && token.value === undefined ? true : token.value;
    const dashSets = specOf(target.setting).dashSets;
    const next = tokens[index + 1];
    if (dashSets !== undefined && raw === true && next?.kind === 'positional' && next.value === '-') {
      takenDashes.add(index + 1);   // `-l -`: on, and written to stdout
      values.set(dashSets as SettingKey, { raw: '-', source: 'argv', option: `${option} -`, origin: 'argv' });
    }
    const earlier = values.get(target.setting);
    if (specOf(target.setting).repeatable === true && earlier !== undefined && typeof earlier.raw === 'string' && typeof raw === 'string') {
      values.set(target.setting, { ...earlier, raw: `${earlier.raw},${raw}` });   // -K a -K b = -K a,b
      continue;
    }
    values.set(target.setting, { raw, source: 'argv', option, origin: 'argv' });   // the last one wins
  }
  return { values, actions };
}

/** A secret's value is never repeated, not even in the message that rejects it. */
function badValue(value: RawValue, reason: string, options: { isSecret?: boolean; cause?: unknown } = {}): ServerError {
  return new ServerError('W2N_ERR_CONFIG_BAD_VALUE', {
    option: value.option,
    value: options.isSecret === true ? '***' : JSON.stringify(value.raw),
    reason: `${reason} (from ${value.origin})`,
  }, { cause: options.cause });
}

function validate(key: SettingKey, value: RawValue, context: ValidationContext): unknown {
  try {
    return specOf(key).type.parse(value.raw, context);
  } catch (error: unknown) {
    if (error instanceof InvalidValueError) {
      throw badValue(value, error.reason, { isSecret: specOf(key).secret === true, cause: error });
    }
    throw error;
  }
}

/** Setting names with `_`/`-` and case removed, to suggest `sslCertificate` for `ssl_certificate`. */
function suggestKey(name: string): SettingKey | undefined {
  const squash = (text: string): string => text.replace(/[-_]/g, '').toLowerCase();
  return settingKeys.find((key) => squash(key) === squash(name));
}

/** Reads the JSON config file into raw values; its errors are W2N_ERR_CONFIG_FILE. */
function readConfigFile(file: string): Map<SettingKey, RawValue> {
  const fail = (reason: string, cause?: unknown): ServerError =>
    new ServerError('W2N_ERR_CONFIG_FILE', { file, reason }, { cause });
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error: unknown) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file'
      : code === 'EACCES' ? 'not readable by this user'
        : code === 'EISDIR' ? 'is a folder, not a file' : `cannot read it (${code ?? String(error)})`;
    throw fail(reason, error);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error: unknown) {
    throw fail(`not valid JSON: ${(error as Error).message}`, error);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw fail('must hold one JSON object of settings');
  const values = new Map<SettingKey, RawValue>();
  for (const [name, raw] of Object.entries(data)) {
    if (!Object.hasOwn(settings, name)) {
      const suggestion = suggestKey(name);
      throw fail(`unknown setting "${name}"${suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`}`);
    }
    if (name === 'config') throw fail('"config" cannot be set inside a config file');
    const key = name as SettingKey;
    values.set(key, { raw, source: 'file', option: primaryFlag(key), origin: `config file ${file}` });
  }
  return values;
}

function readEnv(env: LoadOptions['env']): { values: Map<SettingKey, RawValue>; warnings: string[] } {
  const values = new Map<SettingKey, RawValue>();
  const known = new Set<string>();
  for (const key of settingKeys) {
    const name = envVarOf(key);
    if (name === null) continue;
    known.add(name);
    const raw = env[name];
    if (raw !== undefined) values.set(key, { raw, source: 'env', option: primaryFlag(key), origin: name });
  }
  // A typo such as W2N_PROT would otherwise be silently ignored.
  const warnings = Object.keys(env)
    .filter((name) => name.startsWith('W2N_') && !known.has(name))
    .sort()
    .map((name) => `unknown environment variable ${name} (ignored); see docs/settings.md`);
  return { values, warnings };
}

function freezeDefaults(context: ValidationContext): { config: Config; sources: Record<SettingKey, Source> } {
  const config: Record<string, unknown> = {};
  const sources: Record<string, Source> = {};
  for (const key of settingKeys) {
    config[configKeyOf(key)] = defaultOf(key, context);
    sources[key] = 'default';
  }
  return { config: config as Config, sources: sources as Record<SettingKey, Source> };
}

/**
 * Builds the configuration from defaults, the config file (`--config` or `W2N_CONFIG`), the
 * environment and the command line, later ones winning, and validates every value.
 *
 * With `--help` or `--version` nothing but the flags is read (a broken config file must not hide
 * the help); the returned config then holds the defaults.
 *
 * @throws ServerError W2N_ERR_CONFIG_UNKNOWN_OPTION, W2N_ERR_CONFIG_BAD_VALUE or W2N_ERR_CONFIG_FILE.
 * @example
 * const { config, sources } = loadConfig({ argv: ['-p', '8080'], env: {}, cwd: '/srv/web2py' });
 * config.port; // 8080, sources.port === 'argv'
 */
export function loadConfig({ argv, env, cwd }: LoadOptions): LoadedConfig {
  const context: ValidationContext = { cwd };
  const commandLine = parseCommandLine(argv);
  const { actions } = commandLine;
  if (actions.help || actions.version) {
    const { config, sources } = freezeDefaults(context);
    return Object.freeze({
      config: Object.freeze(config), sources: Object.freeze(sources), actions: Object.freeze(actions), warnings: [],
    });
  }

  const fromEnv = readEnv(env);
  // The file's own location can only come from argv or env, so it is settled first.
  const configRaw = commandLine.values.get('config') ?? fromEnv.values.get('config');
  const configFile = configRaw === undefined ? null : validate('config', configRaw, context) as Config['config'];
  const fromFile = configFile === null ? new Map<SettingKey, RawValue>() : readConfigFile(configFile);

  const config: Record<string, unknown> = {};
  const sources: Record<string, Source> = {};
  for (const key of settingKeys) {
    const chosen = commandLine.values.get(key) ?? fromEnv.values.get(key) ?? fromFile.get(key);
    config[configKeyOf(key)] = chosen === undefined ? defaultOf(key, context) : validate(key, chosen, context);
    sources[key] = chosen === undefined ? 'default' : chosen.source;
  }
  return Object.freeze({
    config: Object.freeze(config as Config),
    sources: Object.freeze(sources as Record<SettingKey, Source>),
    actions: Object.freeze(actions),
    warnings: Object.freeze(fromEnv.warnings),
  });
}

/**
 * The text of `--print-config`: one line per setting, `key = value (source)`, with secrets as `***`.
 * Values are JSON as the config file would give them (seconds, not the ms they are kept in), so
 * strings are quoted and "none" is `null`.
 */
export function formatConfig(loaded: LoadedConfig): string {
  const width = Math.max(...settingKeys.map((key) => key.length));
  const lines = settingKeys.map((key) => {
    const { type, secret } = specOf(key);
    const value = settingValue(loaded.config, key);
    const shown = secret === true ? '***' : JSON.stringify(type.toUser === undefined ? value : type.toUser(value));
    const source = loaded.sources[key];
    const where = source === 'env' ? `env ${envVarOf(key) ?? ''}`
      : source === 'file' ? `file ${loaded.config.config ?? ''}` : source;
    return `${key.padEnd(width)} = ${shown} (${where})`;
  });
  return `${lines.join('\n')}\n`;
}
