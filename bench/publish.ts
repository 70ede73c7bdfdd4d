/**
 * @module bench/publish
 * `--update-readme`: the chart goes to docs/bench/latest.svg (a path the lead can commit) and
 * README.md's section between the markers below is rewritten with this run's summary and
 * tables, the exact command, the date and the machine. The markers are the lead's to place:
 * without them (or with them out of order) this fails, before the run starts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeChart } from './chart.js';
import type { BenchOutput } from './results.js';
import { warmupSeconds, type Scenario } from './scenarios.js';
import { REPO_ROOT } from './servers.js';

/**
 * The repo root the README and chart are written under; BENCH_PUBLISH_ROOT overrides it so
 * --update-readme can be tried on a copy (a folder holding a README.md) without touching the real one.
 */
const ROOT = process.env.BENCH_PUBLISH_ROOT ?? REPO_ROOT;
export const README = join(ROOT, 'README.md');
export const START = '<!-- bench:start -->';
export const END = '<!-- bench:end -->';
/** Relative to the repo root, as the README links it. */
export const CHART = 'docs/bench/latest.svg';

/** README.md's text and the offsets of its markers; throws if they are missing or misplaced. */
export function checkReadmeMarkers(): { text: string; start: number; end: number } {
  let text: string;
  try {
    text = readFileSync(README, 'utf8');
  } catch (e) {
    throw new Error(`--update-readme: cannot read ${README}: ${(e as Error).message}`);
  }
  const count = (m: string): number => text.split(m).length - 1;
  if (count(START) !== 1 || count(END) !== 1)
    throw new Error(
      `--update-readme: ${README} must hold exactly one "${START}" and one "${END}" line` +
        ` (found ${count(START)} and ${count(END)}); the section between them is what gets rewritten`,
    );
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (end < start) throw new Error(`--update-readme: "${END}" comes before "${START}" in ${README}`);
  return { text, start, end };
}

/** Scenarios whose loads ran for another time than --duration (their own), e.g. " (sleep: 10 s)". */
function otherDurations(output: BenchOutput): string {
  const other = new Map<string, number>();
  for (const run of output.runs)
    for (const load of run.loads)
      if (load.durationS !== undefined && load.durationS !== output.meta.durationS) other.set(run.scenario, load.durationS);
  return other.size === 0 ? '' : ` (${[...other].map(([scenario, s]) => `${scenario}: ${s} s`).join(', ')})`;
}

/** Scenarios of the run whose own minimum warm-up (Scenario.minWarmupS) is longer than --warmup. */
function otherWarmups(scenarios: Scenario[], output: BenchOutput): string {
  const ran = new Set(output.runs.map((run) => run.scenario));
  const longer = scenarios.filter((s) => ran.has(s.name) && warmupSeconds(s, output.meta.warmupS) > output.meta.warmupS);
  return longer.length === 0 ? '' : ` (${longer.map((s) => `${s.name}: ${warmupSeconds(s, output.meta.warmupS)} s`).join(', ')})`;
}

/**
 * The scenarios measured in rounds, in a sentence: " hello, static: the median of 3 rounds, ..."
 * (bench/rounds.ts), or '' when every scenario ran once.
 */
export function roundsSentence(output: BenchOutput): string {
  const byCount = new Map<number, string[]>();
  const once: string[] = [];
  for (const [scenario, r] of Object.entries(output.meta.rounds ?? {})) {
    if (r.rounds <= 1) continue;
    byCount.set(r.rounds, [...(byCount.get(r.rounds) ?? []), scenario]);
    if (r.once.length > 0) once.push(`${scenario}: ${r.once.join(', ')}`);
  }
  if (byCount.size === 0) return '';
  const groups = [...byCount].map(([n, names]) => `${names.join(', ')}: ${n} rounds`).join('; ');
  return (
    ` Rounds (${groups}): each round starts every server afresh (its own start and warm-up), in alternating order` +
    ' (forward, reverse, forward), and each row is the round with the median req/s (MB/s), every figure of the row' +
    ' from that round, with the min–max over the rounds beside it; every ratio is of those medians, and the JSON keeps every round.' +
    (once.length ? ` Peers that decide no goal ran in round 1 only (${once.join('; ')}).` : '')
  );
}

/** Write the chart to docs/bench/latest.svg and rewrite the README section; returns the chart's path. */
export function publish(scenarios: Scenario[], output: BenchOutput, summary: string, tables: string[]): string {
  const { text, start, end } = checkReadmeMarkers();
  const chart = join(ROOT, CHART);
  writeChart(chart, scenarios, output);
  const m = output.machine;
  const date = output.meta.started.slice(0, 10);
  const tookS = output.meta.finished ? Math.round((Date.parse(output.meta.finished) - Date.parse(output.meta.started)) / 1000) : null;
  const versions = Object.entries(output.versions).map(([n, v]) => `${n}: ${v}`).join('; ');
  const section = [
    START,
    `Measured on ${date} on ${m.cpuModel}, ${m.cores} cores, ${Math.round(m.memTotalMb / 1024)} GB, Linux ${m.kernel}, Node.js ${m.node},` +
      ` ${m.python ?? 'Python ?'} (the load generator shares the CPUs), with:`,
    '',
    `    ${output.meta.command}`,
    '',
    `${output.meta.durationS} s per load${otherDurations(output)} after a ${output.meta.warmupS} s warm-up${otherWarmups(scenarios, output)}` +
      (tookS === null ? '' : `; the whole run took ${Math.floor(tookS / 60)} min ${tookS % 60} s`) +
      '.' + roundsSentence(output) + ' Rerun it the same way; compare ratios, not absolute figures, across runs and machines.' +
      ' Every figure, with the servers\' versions, is in the JSON the run writes under `.bench-out/`.',
    '',
    `![${output.meta.baseline} ÷ peer, req/s, per scenario](${CHART})`,
    '',
    summary.trimEnd(),
    '',
    ...tables.map((t) => t.trimEnd() + '\n'),
    ...output.meta.notes.map((n) => `- ${n}`),
    `Versions: ${versions}.`,
    END,
  ].join('\n');
  writeFileSync(README, text.slice(0, start) + section + text.slice(end + END.length));
  return chart;
}
