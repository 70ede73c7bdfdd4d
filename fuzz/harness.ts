/**
 * The fuzz loop: generate cases (seeded), run them in small concurrent batches against the real
 * server, and after each batch check that it still answers (plain HTTP/1.1, HTTP/1.1 and HTTP/2
 * over TLS), that its workers live, and that the node processes' descriptors and RSS stay bounded.
 * A batch that breaks the server is replayed case by case to find the culprit, which is saved,
 * minimised (delta debugging) and saved again; then the server is restarted and the run goes on.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from './prng.js';
import { caseBytes, toSaved, type Case } from './case.js';
import { execute, http1Statuses, type Outcome } from './execute.js';
import { generateH1 } from './gen-h1.js';
import { generateH2 } from './gen-h2.js';
import { generateTls } from './gen-tls.js';
import { Target, type TargetKind, type Usage } from './target.js';

export const CLASSES = ['h1', 'h1tls', 'h2', 'tls'] as const;
export type ClassName = (typeof CLASSES)[number];

export function generate(klass: ClassName, seed: number, index: number, paths: readonly string[]): Case {
  const rng = Rng.forCase(seed, klass, index);
  switch (klass) {
    case 'h1': return generateH1(rng, klass, 'plain', paths);
    case 'h1tls': return generateH1(rng, klass, 'tls-h1', paths);
    case 'h2': return generateH2(rng, klass);
    case 'tls': return generateTls(rng, klass);
  }
}

export type FailureKind = 'exit' | 'no-answer' | 'worker-exit' | 'bad-status' | 'fd-leak' | 'rss' | 'close-wait';

export interface Failure {
  kind: FailureKind;
  detail: string;
  /** The case that did it (the first of the batch when no single case did). */
  case: Case;
  /** Every case of the batch, when no single one reproduced it alone. */
  batch?: Case[];
  seed?: number;
  index?: number;
  minimal?: Case;
  files: string[];
  stderrTail: string;
}

export interface FuzzOptions {
  target: TargetKind;
  seed: number;
  /** Cases per class. */
  cases: Partial<Record<ClassName, number>>;
  /** Only this case index (with one class): reproduce one generated case. */
  only?: number;
  out: string | null;
  concurrency: number;
  minimise: boolean;
  /** Most replays one minimisation may use. */
  minimiseTests: number;
  stopOnFailure: boolean;
  quietMs: number;
  capMs: number;
  /** Allowed growth of the node processes' RSS over the baseline. */
  rssMarginMiB: number;
  /** Allowed descriptors over the baseline once every connection is closed. */
  fdSlack: number;
  /** A server socket the client closed that the server still holds after this long is a failure. */
  closeWaitMs: number;
  /** Most time one minimisation may take. */
  minimiseMs: number;
  log: (line: string) => void;
  /** Extra server arguments. */
  serverArgs?: string[];
}

export const DEFAULTS: Omit<FuzzOptions, 'target' | 'seed' | 'cases' | 'out' | 'log'> = {
  concurrency: 16, minimise: true, minimiseTests: 80, stopOnFailure: false, quietMs: 100, capMs: 2_000, rssMarginMiB: 256, fdSlack: 24, closeWaitMs: 3_000, minimiseMs: 120_000,
};

export interface RunReport {
  cases: number;
  byClass: Record<string, number>;
  failures: Failure[];
  ms: number;
  baseline: { fds: number; rssKiB: number };
  peak: { fds: number; rssKiB: number };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const BAD_STATUSES = new Set([500, 502, 504]);

/** A harness around one target server: runs cases and judges them. */
export class Fuzzer {
  readonly target: Target;
  private baseline = { fds: 0, rssKiB: 0 };
  peak = { fds: 0, rssKiB: 0 };
  private workers = new Set<number>();
  failures: Failure[] = [];
  /** Client port -> the case that used it (recent ones), to trace a held socket back. */
  private ports = new Map<number, { c: Case; seed?: number; index?: number; at: number }>();
  /** CLOSE_WAIT sockets seen: inode -> first seen; reported ones are remembered. */
  private closeWaitSince = new Map<string, number>();
  private closeWaitReported = new Set<string>();
  /** CLOSE_WAIT failures past the first few (same kind, not saved again). */
  closeWaitMore = 0;
  /** Crashes by their error line and top frame: the first is isolated, saved and minimised, repeats only counted. */
  crashes = new Map<string, number>();

  constructor(readonly options: Pick<FuzzOptions, 'target' | 'out' | 'concurrency' | 'minimise' | 'minimiseTests' | 'quietMs' | 'capMs' | 'rssMarginMiB' | 'fdSlack' | 'closeWaitMs' | 'minimiseMs' | 'log' | 'serverArgs'>) {
    this.target = new Target(options.target, options.serverArgs ?? []);
  }

  async start(): Promise<void> {
    await this.target.start();
    await this.rebaseline();
  }

  async stop(): Promise<void> {
    await this.target.stop();
    this.target.dispose();
  }

  private async rebaseline(): Promise<void> {
    const problem = await this.target.health();
    if (problem !== null) throw new Error(`fresh server does not answer: ${problem}\n${this.target.stderrTail()}`);
    await sleep(100);
    const usage = this.target.usage();
    this.baseline = { fds: usage.fds, rssKiB: usage.rssKiB };
    this.workers = new Set(usage.workers);
  }

  private async restart(): Promise<void> {
    await this.target.restart();
    await this.rebaseline();
  }

  private async exec(c: Case, duringStall?: () => Promise<void>): Promise<Outcome> {
    const t0 = Date.now();
    const outcome = await execute(c, this.target.ports, { quietMs: this.options.quietMs, capMs: Math.max(this.options.capMs, (c.stallMs ?? 0) + 1_000), ...(duringStall ? { duringStall } : {}) });
    if (process.env.FUZZ_DEBUG !== undefined && Date.now() - t0 > 400) this.options.log(`  slow case ${Date.now() - t0} ms: ${c.klass} ${c.name} (${outcome.received.length} bytes back)`);
    return outcome;
  }

  /** A per-case verdict from its own answer: a 5xx the application never sends. */
  private judgeOutcome(c: Case, outcome: Outcome): string | null {
    if (c.transport !== 'plain' && c.transport !== 'tls-h1') return null;
    const bad = http1Statuses(outcome.received).filter((s) => BAD_STATUSES.has(s));
    return bad.length === 0 ? null : `answered ${bad.join(', ')}: ${JSON.stringify(outcome.received.toString('latin1').slice(0, 300))}`;
  }

  /** The server's state after cases ran: null if fine, else the failure's kind and detail. */
  private async judgeServer(): Promise<{ kind: FailureKind; detail: string } | null> {
    if (this.target.exited) return { kind: 'exit', detail: `server exited (${this.target.child?.exitCode ?? this.target.child?.signalCode})` };
    const problem = await this.target.health();
    if (problem !== null && !this.target.exited) await sleep(300); // an exit is seen a moment after the refused connects
    if (this.target.exited) return { kind: 'exit', detail: `server exited (${this.target.child?.exitCode ?? this.target.child?.signalCode})` };
    const usage = this.target.usage();
    const gone = [...this.workers].filter((pid) => !usage.workers.includes(pid));
    if (gone.length > 0) {
      this.workers = new Set(usage.workers);
      return { kind: 'worker-exit', detail: `worker process(es) ${gone.join(', ')} exited; now ${usage.workers.join(', ') || 'none'}${problem === null ? '' : `; ${problem}`}` };
    }
    if (problem !== null) return { kind: 'no-answer', detail: problem };
    return null;
  }

  /** Descriptors back near the baseline (waiting up to 6 s: a lingering close takes up to 5), RSS under baseline + margin. */
  private async judgeResources(): Promise<{ kind: FailureKind; detail: string } | null> {
    // Sockets in CLOSE_WAIT are judged apart (judgeCloseWaits), by their age.
    const open = (): { usage: Usage; fds: number } => { const usage = this.target.usage(); return { usage, fds: usage.fds - this.target.closeWaits().size }; };
    let { usage, fds } = open();
    const deadline = Date.now() + 6_000;
    while (fds > this.baseline.fds + this.options.fdSlack && Date.now() < deadline) {
      await sleep(fds > this.baseline.fds + this.options.fdSlack * 4 ? 200 : 50);
      ({ usage, fds } = open());
    }
    this.peak = { fds: Math.max(this.peak.fds, usage.fds), rssKiB: Math.max(this.peak.rssKiB, usage.rssKiB) };
    const per = usage.nodes.map((n) => `${n.comm}[${n.pid}] fds=${n.fds} rss=${Math.round(n.rssKiB / 1024)}MiB`).join(', ');
    if (fds > this.baseline.fds + this.options.fdSlack) {
      const detail = `${fds} descriptors (not counting CLOSE_WAIT sockets) 6 s after the connections closed, baseline ${this.baseline.fds} (${per})`;
      this.baseline.fds = fds;
      return { kind: 'fd-leak', detail };
    }
    if (usage.rssKiB > this.baseline.rssKiB + this.options.rssMarginMiB * 1024) {
      const detail = `RSS ${Math.round(usage.rssKiB / 1024)} MiB, baseline ${Math.round(this.baseline.rssKiB / 1024)} MiB (${per})`;
      this.baseline.rssKiB = usage.rssKiB;
      return { kind: 'rss', detail };
    }
    return null;
  }

  /** Server sockets whose client closed more than closeWaitMs ago and that the server still holds: traced to their cases. */
  private judgeCloseWaits(): Failure[] {
    const now = Date.now();
    for (const [port, entry] of this.ports) if (now - entry.at > 120_000) this.ports.delete(port);
    const waits = this.target.closeWaits();
    for (const inode of this.closeWaitSince.keys()) if (!waits.has(inode)) this.closeWaitSince.delete(inode);
    const found: Failure[] = [];
    for (const [inode, port] of waits) {
      const since = this.closeWaitSince.get(inode);
      if (since === undefined) { this.closeWaitSince.set(inode, now); continue; }
      if (now - since < this.options.closeWaitMs || this.closeWaitReported.has(inode)) continue;
      this.closeWaitReported.add(inode);
      const owner = this.ports.get(port);
      if (owner === undefined) continue; // not a fuzz connection (a health check's would not linger)
      if (this.failures.filter((f) => f.kind === 'close-wait').length + found.length >= 3) { this.closeWaitMore++; continue; }
      found.push(this.failure('close-wait', `the server still holds the connection (CLOSE_WAIT) more than ${now - since} ms after the client closed it`, owner.c, owner.seed, owner.index));
    }
    return found;
  }

  /** Runs `c` alone on a healthy server; the failure it causes, if any. */
  async runAlone(c: Case): Promise<{ kind: FailureKind; detail: string } | null> {
    if (this.target.exited || (await this.target.health(3_000)) !== null) await this.restart();
    let stallProblem: string | null = null;
    const outcome = await this.exec(c, async () => { stallProblem = await this.target.health(); });
    const server = await this.judgeServer();
    if (server !== null) return server;
    if (stallProblem !== null) return { kind: 'no-answer', detail: `while a connection stalled: ${stallProblem}` };
    const status = this.judgeOutcome(c, outcome);
    if (status !== null) return { kind: 'bad-status', detail: status };
    if (outcome.localPort !== undefined) {
      const deadline = Date.now() + this.options.closeWaitMs;
      const held = (): boolean => [...this.target.closeWaits().values()].includes(outcome.localPort!);
      while (held()) {
        if (Date.now() > deadline) return { kind: 'close-wait', detail: `the server still holds the connection (CLOSE_WAIT) ${this.options.closeWaitMs} ms after the client closed it` };
        await sleep(100);
      }
    }
    return null;
  }

  /** Runs a batch; returns the failures found (and, for a broken server, restarts it). */
  async runBatch(batch: { c: Case; seed?: number; index?: number }[]): Promise<Failure[]> {
    const found: Failure[] = [];
    const { outcomes, stallProblem } = await this.runTogether(batch.map(({ c }) => c));
    batch.forEach((entry, i) => { const port = outcomes[i]!.localPort; if (port !== undefined) this.ports.set(port, { ...entry, at: Date.now() }); });
    const server = await this.judgeServer();
    if (server === null && stallProblem === null) {
      batch.forEach(({ c, seed, index }, i) => {
        const detail = this.judgeOutcome(c, outcomes[i]!);
        if (detail !== null) found.push(this.failure('bad-status', detail, c, seed, index));
      });
      for (const held of this.judgeCloseWaits()) {
        // Confirmed alone, so a loaded machine's slow turn is never blamed on a case.
        const alone = await this.runAlone(held.case);
        if (alone?.kind === 'close-wait') found.push(held);
        else this.options.log(`  a connection held in CLOSE_WAIT [${held.case.klass} #${held.index}] not reproduced alone: ${alone?.kind ?? 'no failure'}`);
      }
      const resources = await this.judgeResources();
      if (resources !== null) {
        found.push({ ...this.failure(resources.kind, resources.detail, batch[0]!.c, batch[0]!.seed, batch[0]!.index), ...(batch.length > 1 ? { batch: batch.map(({ c }) => c) } : {}) });
      }
    } else {
      const seen = server ?? { kind: 'no-answer' as const, detail: `while a connection stalled: ${stallProblem ?? ''}` };
      const stderrTail = this.target.stderrTail();
      const signature = seen.kind === 'exit' ? crashSignature(stderrTail) : null;
      if (signature !== null && this.crashes.has(signature)) {
        this.crashes.set(signature, this.crashes.get(signature)! + 1);
        this.options.log(`  the same crash again (${signature.split('\n')[0]}): counted, not saved`);
        await this.restart();
        return [];
      }
      if (signature !== null) this.crashes.set(signature, 1);
      this.options.log(`  server broken after a batch of ${batch.length}: ${seen.kind}: ${seen.detail}`);
      // Which case? Replay each alone on a fresh server.
      let culprit: Failure | null = null;
      if (batch.length > 1) {
        await this.restart();
        for (const { c, seed, index } of batch) {
          const alone = await this.runAlone(c);
          const down = (k: FailureKind): boolean => k === 'exit' || k === 'no-answer' || k === 'worker-exit';
          if (alone !== null && down(alone.kind)) { culprit = this.failure(alone.kind, alone.detail, c, seed, index); break; }
        }
      } else {
        culprit = { ...this.failure(seen.kind, seen.detail, batch[0]!.c, batch[0]!.seed, batch[0]!.index), stderrTail };
      }
      if (culprit === null && seen.kind === 'worker-exit') this.options.log(`  ${this.target.stderrTail(1500)}`);
      if (culprit === null) {
        // No case does it alone: the batch together, once more on a fresh server, or it was the machine.
        if (!this.target.exited && (await this.target.health(3_000)) === null) await this.restart();
        const again = await this.runTogether(batch.map(({ c }) => c));
        const twice = (await this.judgeServer()) ?? (again.stallProblem !== null ? { kind: 'no-answer' as const, detail: again.stallProblem } : null);
        if (twice !== null) {
          culprit = { ...this.failure(twice.kind, `${twice.detail} (twice; no single case of the batch of ${batch.length} does it alone)`, batch[0]!.c, batch[0]!.seed, batch[0]!.index), batch: batch.map(({ c }) => c), stderrTail };
        } else {
          this.options.log(`  not reproduced: neither any case alone nor the batch again (a loaded machine?)`);
        }
      }
      if (culprit !== null) found.push(culprit);
      if (this.target.exited || (await this.target.health(3_000)) !== null) await this.restart();
    }
    for (const failure of found) {
      this.save(failure);
      if (this.options.minimise && failure.batch === undefined && failure.kind !== 'fd-leak' && failure.kind !== 'rss') {
        this.options.log(`  minimising ${failure.kind} [${failure.case.klass} #${failure.index}]`);
        failure.minimal = await this.minimise(failure.case, failure.kind);
        this.save(failure, true);
        if (this.target.exited || (await this.target.health(3_000)) !== null) await this.restart();
      }
      this.failures.push(failure);
    }
    return found;
  }

  /** Runs cases at once; a stalling one has the server's health checked while it stalls. */
  private async runTogether(cases: Case[]): Promise<{ outcomes: Outcome[]; stallProblem: string | null }> {
    let stallProblem: string | null = null;
    const outcomes = await Promise.all(cases.map((c) => this.exec(c, async () => {
      const problem = await this.target.health();
      stallProblem ??= problem;
    })));
    return { outcomes, stallProblem };
  }

  private failure(kind: FailureKind, detail: string, c: Case, seed?: number, index?: number): Failure {
    return { kind, detail, case: c, ...(seed !== undefined ? { seed } : {}), ...(index !== undefined ? { index } : {}), files: [], stderrTail: this.target.stderrTail() };
  }

  /** Writes the failing input (raw bytes and a JSON description with hex) to the out folder. */
  private save(failure: Failure, minimal = false): void {
    if (this.options.out === null) return;
    mkdirSync(this.options.out, { recursive: true });
    const c = minimal ? failure.minimal! : failure.case;
    const stem = `${failure.kind}-${this.options.target}-${c.klass}` + (failure.seed !== undefined ? `-s${failure.seed}-i${failure.index}` : `-${Date.now()}`) + (minimal ? '-min' : '');
    const json = join(this.options.out, `${stem}.json`);
    const bin = join(this.options.out, `${stem}.bin`);
    writeFileSync(bin, caseBytes(c));
    const saved = {
      ...toSaved(c, {
        failure: { kind: failure.kind, detail: failure.detail },
        ...(failure.seed !== undefined ? { seed: failure.seed, index: failure.index! } : {}),
        note: `target ${this.options.target}; replay: npm run fuzz -- --target ${this.options.target} --replay ${json}`,
      }),
      hex: caseBytes(c).toString('hex').slice(0, 20_000),
      ...(failure.batch !== undefined && !minimal ? { batch: failure.batch.map((b) => toSaved(b)) } : {}),
      stderrTail: failure.stderrTail.slice(-3000),
    };
    writeFileSync(json, JSON.stringify(saved, null, 2) + '\n');
    failure.files.push(json, bin);
    this.options.log(`  saved ${json}`);
  }

  /** Delta debugging: fewer writes, then one write, then fewer bytes, while the same kind of failure still happens. */
  async minimise(c: Case, kind: FailureKind): Promise<Case> {
    let tests = 0;
    const until = Date.now() + this.options.minimiseMs;
    const same = async (candidate: Case): Promise<boolean> => {
      if (tests >= this.options.minimiseTests || Date.now() > until) return false;
      tests++;
      const got = await this.runAlone(candidate);
      const down = (k: FailureKind): boolean => k === 'exit' || k === 'no-answer';
      return got !== null && (got.kind === kind || (down(got.kind) && down(kind)));
    };
    let best = c;
    if (best.end === true) { const cand = { ...best, end: false }; if (await same(cand)) best = cand; }
    if (best.stallMs !== undefined) { const rest = { ...best }; delete rest.stallMs; if (await same(rest)) best = rest; }
    if (best.writes.length > 1) {
      const writes = await ddmin(best.writes, async (ws) => same({ ...best, writes: ws }));
      best = { ...best, writes };
      const joined = { ...best, writes: [Buffer.concat(best.writes)] };
      if (best.writes.length > 1 && await same(joined)) best = joined;
    }
    if (best.writes.length === 1 && (best.transport === 'plain' || best.transport === 'tls-h1')) {
      // Whole lines first (an HTTP/1 head is lines), then bytes.
      const text = best.writes[0]!;
      const lines: Buffer[] = [];
      for (let at = 0; at < text.length;) {
        const eol = text.indexOf(0x0a, at);
        const end = eol < 0 ? text.length : eol + 1;
        lines.push(text.subarray(at, end));
        at = end;
      }
      if (lines.length > 1) {
        const fewer = await ddmin(lines, async (ls) => same({ ...best, writes: [Buffer.concat(ls)] }));
        best = { ...best, writes: [Buffer.concat(fewer)] };
      }
    }
    if (best.writes.length === 1) {
      const bytes = [...best.writes[0]!];
      const fewer = await ddmin(bytes, async (bs) => same({ ...best, writes: [Buffer.from(bs)] }));
      best = { ...best, writes: [Buffer.from(fewer)] };
    }
    this.options.log(`  minimised in ${tests} replays: ${caseBytes(c).length} -> ${caseBytes(best).length} bytes`);
    return { ...best, name: `${c.name} (minimised)` };
  }
}

/** The error line and the top stack frame of the last uncaught error in a log, or null. */
export function crashSignature(log: string): string | null {
  const lines = log.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/^\w*(Error|Exception)\b.*:/.test(lines[i]!)) {
      const frame = lines.slice(i + 1).find((l) => /^\s+at /.test(l));
      return `${lines[i]!.trim()}\n${(frame ?? '').trim()}`;
    }
  }
  return null;
}

/** Zeller's ddmin over `items`: the smallest subsequence it finds for which `fails` holds (`fails` bounds the effort). */
export async function ddmin<T>(items: T[], fails: (subset: T[]) => Promise<boolean>): Promise<T[]> {
  let current = items;
  let n = 2;
  while (current.length >= 2) {
    const size = Math.ceil(current.length / n);
    const parts: T[][] = [];
    for (let i = 0; i < current.length; i += size) parts.push(current.slice(i, i + size));
    let reduced = false;
    for (const part of parts) {
      if (part.length < current.length && await fails(part)) { current = part; n = 2; reduced = true; break; }
    }
    if (!reduced) {
      for (let i = 0; i < parts.length; i++) {
        const complement = parts.filter((_, j) => j !== i).flat();
        if (complement.length > 0 && await fails(complement)) { current = complement; n = Math.max(n - 1, 2); reduced = true; break; }
      }
    }
    if (!reduced) {
      if (n >= current.length) break;
      n = Math.min(current.length, n * 2);
    }
  }
  return current;
}

/** A whole run: every class's cases, interleaved, in batches. */
export async function runFuzz(options: FuzzOptions): Promise<RunReport> {
  const fuzzer = new Fuzzer(options);
  const started = Date.now();
  await fuzzer.start();
  if (process.env.FUZZ_DEBUG !== undefined) options.log(`  server up in ${Date.now() - started} ms`);
  const baseline = fuzzer.target.usage();
  const queue: { klass: ClassName; index: number }[] = [];
  const classes = CLASSES.filter((k) => (options.cases[k] ?? 0) > 0);
  if (options.only !== undefined) {
    for (const klass of classes) queue.push({ klass, index: options.only });
  } else {
    const max = Math.max(0, ...classes.map((k) => options.cases[k]!));
    for (let i = 0; i < max; i++) for (const klass of classes) if (i < options.cases[klass]!) queue.push({ klass, index: i });
  }
  const byClass: Record<string, number> = {};
  let done = 0;
  let lastLog = Date.now();
  try {
    for (let at = 0; at < queue.length; at += options.concurrency) {
      const batch = queue.slice(at, at + options.concurrency).map(({ klass, index }) => ({ c: generate(klass, options.seed, index, fuzzer.target.paths), seed: options.seed, index }));
      const failures = await fuzzer.runBatch(batch);
      for (const { c } of batch) byClass[c.klass] = (byClass[c.klass] ?? 0) + 1;
      done += batch.length;
      for (const f of failures) options.log(`FAIL ${f.kind} [${f.case.klass} #${f.index}] ${f.case.name}: ${f.detail.slice(0, 300)}`);
      if (failures.length > 0 && options.stopOnFailure) break;
      if (Date.now() - lastLog > 5_000) {
        const u = fuzzer.target.usage();
        options.log(`${done}/${queue.length} cases, ${fuzzer.failures.length} failures, ${Math.round((Date.now() - started) / 1000)} s, fds ${u.fds}, rss ${Math.round(u.rssKiB / 1024)} MiB`);
        lastLog = Date.now();
      }
    }
    for (const [signature, count] of fuzzer.crashes) if (count > 1) options.log(`crash seen ${count} times: ${signature.replace('\n', ' ')}`);
    if (fuzzer.closeWaitMore > 0) options.log(`${fuzzer.closeWaitMore} more connection(s) held in CLOSE_WAIT (not saved)`);
  } finally {
    const stopping = Date.now();
    await fuzzer.stop();
    if (process.env.FUZZ_DEBUG !== undefined) options.log(`  cases in ${stopping - started} ms, server stopped in ${Date.now() - stopping} ms`);
  }
  return {
    cases: done, byClass, failures: fuzzer.failures, ms: Date.now() - started,
    baseline: { fds: baseline.fds, rssKiB: baseline.rssKiB }, peak: fuzzer.peak,
  };
}

/** Replays saved cases one by one (each alone on a healthy server): the failure of each, or null. */
export async function replay(cases: Case[], options: Pick<FuzzOptions, 'target' | 'quietMs' | 'capMs' | 'rssMarginMiB' | 'fdSlack' | 'closeWaitMs' | 'minimiseMs' | 'log' | 'serverArgs'>): Promise<({ kind: FailureKind; detail: string; stderrTail: string } | null)[]> {
  const fuzzer = new Fuzzer({ ...options, out: null, concurrency: 1, minimise: false, minimiseTests: 0 });
  await fuzzer.start();
  const results: ({ kind: FailureKind; detail: string; stderrTail: string } | null)[] = [];
  try {
    for (const c of cases) {
      const got = await fuzzer.runAlone(c);
      results.push(got === null ? null : { ...got, stderrTail: fuzzer.target.stderrTail(3000) });
    }
  } finally {
    await fuzzer.stop();
  }
  return results;
}
