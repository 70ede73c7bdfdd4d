/**
 * @module The generated docs are current: docs/settings.md, docs/errors.md and docs/log-events.md
 * equal what scripts/gen-docs.ts renders now, docs/errors.md lists exactly the codes of the error
 * table, and every log event the README or docs/ name is in the catalogue, at the level they say.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { readdirSync } from 'node:fs';
import { errorsDocUrl, logEventsDocUrl, renderErrorsDoc, renderLogEventsDoc, renderSettingsDoc, settingsDocUrl } from '../../scripts/gen-docs.js';
import { settingKeys } from '../../src/config/settings.js';
import { errorTable } from '../../src/errors/index.js';
import { eventCatalogue } from '../../src/observability/events.js';

const STALE = 'is stale: run npm run docs';

test('docs/settings.md is current', () => {
  assert.equal(readFileSync(settingsDocUrl, 'utf8'), renderSettingsDoc(), `docs/settings.md ${STALE}`);
});

test('docs/errors.md is current', () => {
  assert.equal(readFileSync(errorsDocUrl, 'utf8'), renderErrorsDoc(), `docs/errors.md ${STALE}`);
});

test('docs/errors.md has a row for every error code, and no other', () => {
  const documented = [...readFileSync(errorsDocUrl, 'utf8').matchAll(/^\| `(W2N_ERR_\w+)` \|/gm)].map((match) => match[1]);
  assert.deepEqual([...documented].sort(), Object.keys(errorTable).sort());
  assert.equal(new Set(documented).size, documented.length, 'a code is listed twice');
});

test('docs/settings.md has a row for every setting', () => {
  const documented = [...readFileSync(settingsDocUrl, 'utf8').matchAll(/^\| `(\w+)` \| `-/gm)].map((match) => match[1]);
  assert.deepEqual(documented, settingKeys);
});

test('docs/log-events.md is current', () => {
  assert.equal(readFileSync(logEventsDocUrl, 'utf8'), renderLogEventsDoc(), `docs/log-events.md ${STALE}`);
});

test('every log event the README and docs/ name is in the catalogue, at the level they say', () => {
  const areas = new Set(Object.keys(eventCatalogue).map((name) => name.split('.')[0]));
  /** Dotted names in those areas that are not log events (web2py's request.client). */
  const notEvents = new Set(['request.client']);
  const docs = [new URL('../../README.md', import.meta.url), ...readdirSync(new URL('../../docs/', import.meta.url))
    .filter((name) => name.endsWith('.md')).map((name) => new URL(`../../docs/${name}`, import.meta.url))];
  let named = 0;
  for (const url of docs) {
    const text = readFileSync(url, 'utf8');
    for (const match of text.matchAll(/(?:`|event=)([a-z0-9]+\.[a-z0-9_]+)`?(?:, (debug|info|warn|error|fatal) level)?/g)) {
      const [, name, level] = match as unknown as [string, string, string | undefined];
      if (!areas.has(name.split('.')[0]!) || notEvents.has(name)) continue;
      named += 1;
      const spec = eventCatalogue[name];
      assert.ok(spec !== undefined, `${url.pathname.split('/').pop()} names ${name}, which is not a log event (src/observability/events.ts)`);
      if (level === undefined) continue;
      const levels = spec.level === 'code'
        ? new Set(Object.values(errorTable).map((error) => error.logLevel as string))
        : new Set([spec.level]);
      assert.ok(levels.has(level), `${name} is said to log at ${level}`);
    }
  }
  assert.ok(named >= 10, `the README and docs name log events (found ${named})`);
});
