/**
 * npm run fuzz -- [--seed N] [--cases N] [--class h1,h1tls,h2,tls] [--target app|web2py] [--out DIR]
 *                 [--concurrency N] [--only INDEX] [--no-minimise] [--stop-on-failure] [--no-corpus]
 *                 [--replay FILE.json ...]
 * See fuzz/README.md.
 */
import { CLASSES, DEFAULTS, replay, runFuzz, type ClassName } from './harness.js';
import { loadCase, loadCorpus } from './corpus.js';
import { TARGET_KINDS, type TargetKind } from './target.js';
import { caseBytes } from './case.js';

const USAGE = 'usage: npm run fuzz -- [--seed N] [--cases N] [--class h1,h1tls,h2,tls] [--target app|web2py] [--out DIR] '
  + '[--concurrency N] [--only INDEX] [--no-minimise] [--stop-on-failure] [--no-corpus] [--replay FILE.json ...]';

function parse(argv: string[]): Record<string, string | boolean | string[]> {
  const out: Record<string, string | boolean | string[]> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected ${arg}\n${USAGE}`);
    const name = arg.slice(2);
    if (['no-minimise', 'stop-on-failure', 'no-corpus', 'help'].includes(name)) { out[name] = true; continue; }
    if (name === 'replay') {
      const files: string[] = [];
      while (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) files.push(argv[++i]!);
      out.replay = files;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`--${name} needs a value\n${USAGE}`);
    out[name] = value;
  }
  return out;
}

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  if (args.help === true) { console.log(USAGE); return 0; }
  const target = (args.target ?? 'app') as TargetKind;
  if (!TARGET_KINDS.includes(target)) throw new Error(`--target: one of ${TARGET_KINDS.join(', ')}`);
  const log = (line: string): void => console.log(line);
  const tuning = {
    ...DEFAULTS,
    ...(args.concurrency !== undefined ? { concurrency: Number(args.concurrency) } : {}),
    ...(args['no-minimise'] === true ? { minimise: false } : {}),
    ...(args['stop-on-failure'] === true ? { stopOnFailure: true } : {}),
  };
  let bad = 0;
  const replays = args.replay !== undefined ? (args.replay as string[]).map((file) => ({ file, c: loadCase(file) }))
    : args['no-corpus'] === true ? [] : loadCorpus();
  if (replays.length > 0) {
    log(`replaying ${replays.length} saved case(s) against the ${target} target`);
    const results = await replay(replays.map(({ c }) => c), { ...tuning, target, log });
    results.forEach((r, i) => {
      const { file, c } = replays[i]!;
      log(`${r === null ? 'ok  ' : 'FAIL'} ${file} (${caseBytes(c).length} bytes${r === null ? '' : `): ${r.kind}: ${r.detail}`}${r === null ? ')' : ''}`);
      if (r !== null) { bad++; if (args.replay !== undefined) log(r.stderrTail); }
    });
    if (args.replay !== undefined) return bad === 0 ? 0 : 1;
  }
  const seed = args.seed !== undefined ? Number(args.seed) : Math.floor(Math.random() * 2 ** 31);
  const perClass = args.cases !== undefined ? Number(args.cases) : 1000;
  const classes = (args.class !== undefined ? String(args.class).split(',') : [...CLASSES]) as ClassName[];
  for (const klass of classes) if (!CLASSES.includes(klass)) throw new Error(`--class: one of ${CLASSES.join(', ')}`);
  const out = typeof args.out === 'string' ? args.out : 'fuzz-out';
  log(`fuzzing the ${target} target: seed ${seed}, ${perClass} cases each of ${classes.join(', ')}; failures saved to ${out}/`);
  const report = await runFuzz({
    ...tuning, target, seed, out, log,
    cases: Object.fromEntries(classes.map((k) => [k, perClass])),
    ...(args.only !== undefined ? { only: Number(args.only) } : {}),
  });
  log(`done: ${report.cases} cases (${Object.entries(report.byClass).map(([k, n]) => `${k} ${n}`).join(', ')}) in ${(report.ms / 1000).toFixed(1)} s; `
    + `${report.failures.length} failure(s); fds baseline ${report.baseline.fds} peak ${report.peak.fds}, RSS baseline ${Math.round(report.baseline.rssKiB / 1024)} MiB peak ${Math.round(report.peak.rssKiB / 1024)} MiB`);
  for (const f of report.failures) {
    log(`- ${f.kind} [${f.case.klass} #${f.index}] ${f.detail.slice(0, 200)}`);
    if (f.minimal) log(`  minimal (${caseBytes(f.minimal).length} bytes): ${caseBytes(f.minimal).toString('hex').slice(0, 400)}`);
    for (const file of f.files) log(`  ${file}`);
  }
  return bad + report.failures.length === 0 ? 0 : 1;
}

main().then((code) => { process.exitCode = code; }, (error: unknown) => { console.error(error instanceof Error ? error.message : error); process.exitCode = 2; });
