/**
 * @module The generated docs are current: docs/settings.md and docs/errors.md equal what
 * scripts/gen-docs.ts renders now, and docs/errors.md lists exactly the codes of the error table.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { errorsDocUrl, renderErrorsDoc, renderSettingsDoc, settingsDocUrl } from '../../scripts/gen-docs.js';
import { settingKeys } from '../../src/config/settings.js';
import { errorTable } from '../../src/errors/index.js';

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
