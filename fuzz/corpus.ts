/** The regression corpus: fuzz/corpus/*.json, every input that once broke the server, replayed on every run. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromSaved, type Case, type SavedCase } from './case.js';

export const corpusDir = join(import.meta.dirname, 'corpus');

export function loadCase(file: string): Case {
  return fromSaved(JSON.parse(readFileSync(file, 'utf8')) as SavedCase);
}

export function loadCorpus(dir = corpusDir): { file: string; c: Case }[] {
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => ({ file: join(dir, f), c: loadCase(join(dir, f)) }));
}
