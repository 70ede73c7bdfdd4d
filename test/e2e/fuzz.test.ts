/**
 * The fuzzer in CI (fuzz/README.md): every input of the regression corpus (fuzz/corpus/*.json)
 * replayed alone, then a fixed seed set of generated cases across all classes, against the real
 * CLI: no case may stop the server answering, kill a worker, leak descriptors or memory, or leave
 * a closed connection held. Failing inputs are saved under a temporary folder named in the message.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { DEFAULTS, replay, runFuzz, type FuzzOptions, type RunReport } from '../../fuzz/harness.js';
import { loadCorpus } from '../../fuzz/corpus.js';
import { caseBytes } from '../../fuzz/case.js';

/** The CI seed set: fixed, so a red run is reproduced by `npm run fuzz -- --seed 20261206 --cases N --class K`. */
export const CI_SEED = 20261206;
const CI_SETS: { target: FuzzOptions['target']; cases: FuzzOptions['cases'] }[] = [
  { target: 'app', cases: { h1: 1400, h1tls: 400, h2: 400, tls: 300 } },
  { target: 'web2py', cases: { h1: 400, h2: 100 } },
];

const quiet = (): void => {};
const out = mkdtempSync(join(tmpdir(), 'w2n-fuzz-ci-'));

function describeFailures(report: RunReport): string {
  return report.failures.map((f) => `${f.kind} [${f.case.klass} #${f.index}] ${f.case.name}: ${f.detail.slice(0, 300)}\n  bytes: ${caseBytes(f.case).toString('hex').slice(0, 400)}\n  saved: ${f.files.join(', ')}`).join('\n');
}

describe('fuzz corpus: every input that once broke the server', () => {
  const corpus = loadCorpus();
  let results: Awaited<ReturnType<typeof replay>> = [];
  before(async () => {
    results = await replay(corpus.map(({ c }) => c), { ...DEFAULTS, target: 'app', log: quiet });
  });
  corpus.forEach(({ file }, i) => {
    test(basename(file), () => {
      const result = results[i];
      assert.equal(result, null, result ? `${result.kind}: ${result.detail}\n${result.stderrTail.slice(-1500)}` : '');
    });
  });
});

describe('fuzz: the fixed CI seed set', () => {
  for (const { target, cases } of CI_SETS) {
    test(`${target} target: ${Object.entries(cases).map(([k, n]) => `${n} ${k}`).join(', ')} (seed ${CI_SEED})`, { timeout: 300_000 }, async () => {
      const report = await runFuzz({ ...DEFAULTS, target, seed: CI_SEED, cases, out, log: quiet, minimise: false });
      assert.equal(report.failures.length, 0, `${report.failures.length} failure(s) in ${report.ms} ms:\n${describeFailures(report)}`);
    });
  }
});
