/**
 * @module bench/rounds
 * Rounds: a scenario measured R times, each server started fresh in each round, in an order
 * that alternates (forward, reverse, forward...), and the report's rows taken from the median
 * round. On the 2-core project machine speed moves 20-30% from one minute to the next, and two
 * processes of the same build keep different speeds for their whole life (V8's code and heap as
 * their warm-up left them), so one instance in one window decides nothing. Pure functions of the
 * results (no I/O, no timing): the runner orders, the report merges, the tests check both.
 */
import type { LoadResult, ServerRun } from './results.js';

/**
 * The servers of round `round` (1-based) in the order they run: the list as given in odd rounds,
 * reversed in even ones, so no server always follows the same neighbour (nor always runs first
 * or last in a window). `once` names servers measured in round 1 only (peers that decide no goal:
 * bench/README.md "Rounds"); they keep their place in round 1 and are left out of the others.
 */
export function roundOrder(servers: readonly string[], round: number, once: ReadonlySet<string> = new Set()): string[] {
  const these = round === 1 ? [...servers] : servers.filter((n) => !once.has(n));
  return round % 2 === 1 ? these : these.reverse();
}

/** How many server runs a scenario makes over its rounds (the estimate's count). */
export function serverRunsOf(servers: readonly string[], rounds: number, once: ReadonlySet<string> = new Set()): number {
  let n = 0;
  for (let round = 1; round <= rounds; round++) n += roundOrder(servers, round, once).length;
  return n;
}

/**
 * The index (into `values`) of the median: the middle value once sorted, the lower of the two
 * middle ones for an even count (the less flattering round, not an average no round measured).
 * Ties keep the earlier index. -1 for no values.
 */
export function medianIndex(values: readonly number[]): number {
  if (values.length === 0) return -1;
  const order = values.map((v, i) => i).sort((a, b) => values[a]! - values[b]! || a - b);
  return order[Math.floor((values.length - 1) / 2)]!;
}

/** What a load's figure counts: requests, or bytes (the bulk loads). */
export type RateUnit = 'req/s' | 'MB/s';

/** The figure compared across servers and rounds: wrk-shaped req/s, or a bulk load's MB/s (null when its counts failed). */
export function rateOf(l: LoadResult | undefined): { rate: number; unit: RateUnit } | null {
  if (l?.wrk?.rps) return { rate: l.wrk.rps, unit: 'req/s' };
  if (l?.bulk?.mbps) return { rate: l.bulk.mbps, unit: 'MB/s' };
  return null;
}

/** One (server, load) over its rounds: which round the row shows, and the spread of the figure. */
export interface RoundSpread {
  /** Rounds in which the server ran this load. */
  rounds: number;
  /** Of those, rounds that measured a figure (the others errored). */
  measured: number;
  /** The round (1-based) whose figures the row shows: the median figure's. */
  medianRound: number;
  median: number;
  min: number;
  max: number;
  unit: RateUnit;
  /** The figure of each round the server ran, in round order (null: no figure that round). */
  byRound: { round: number; rate: number | null }[];
}

const roundOf = (run: ServerRun): number => run.round ?? 1;

/**
 * One load of one server over its rounds: the median round's result, whole (every figure of the
 * row from one round, so a row stays self-consistent: its CPU per request belongs to its req/s),
 * with the spread over the rounds. Loads without a figure (idle, open-loop, all errored): the
 * first round's result.
 */
export function medianLoad(entries: readonly { round: number; load: LoadResult }[]): LoadResult | undefined {
  if (entries.length <= 1) return entries[0]?.load;
  const rated = entries.flatMap((e) => {
    const r = rateOf(e.load);
    return r ? [{ ...e, ...r }] : [];
  });
  if (rated.length === 0) return entries[0]!.load;
  const mid = rated[medianIndex(rated.map((e) => e.rate))]!;
  const rates = rated.map((e) => e.rate);
  const spread: RoundSpread = {
    rounds: entries.length, measured: rated.length, medianRound: mid.round, median: mid.rate,
    min: Math.min(...rates), max: Math.max(...rates), unit: mid.unit,
    byRound: entries.map((e) => ({ round: e.round, rate: rateOf(e.load)?.rate ?? null })),
  };
  return { ...mid.load, spread };
}

/**
 * The runs of every round merged into one per (scenario, server), in the order each first
 * appears: each load the median round's (medianLoad), the run's status ok if any round was.
 * A server that ran once is returned as it is, so merging merged runs changes nothing.
 */
export function mergeRounds(runs: readonly ServerRun[]): ServerRun[] {
  const groups = new Map<string, ServerRun[]>();
  for (const run of runs) {
    const key = `${run.scenario}\u0000${run.server}`;
    const g = groups.get(key);
    if (g) g.push(run);
    else groups.set(key, [run]);
  }
  return [...groups.values()].map((group) => {
    if (group.length === 1) return group[0]!;
    const sorted = [...group].sort((a, b) => roundOf(a) - roundOf(b));
    const ok = sorted.filter((r) => r.status === 'ok');
    const rounds = {
      total: sorted.length,
      failed: sorted.filter((r) => r.status === 'failed').map(roundOf),
    };
    const busy = Math.max(...sorted.map((r) => r.machineBusyBefore ?? 0));
    if (ok.length === 0) return { ...sorted[0]!, rounds };
    const labels = [...new Set(ok.flatMap((r) => r.loads.map((l) => l.load)))];
    const loads = labels.map((label) =>
      medianLoad(ok.flatMap((r) => {
        const load = r.loads.find((l) => l.load === label);
        return load ? [{ round: roundOf(r), load }] : [];
      }))!,
    );
    return { ...ok[0]!, machineBusyBefore: busy, round: undefined, rounds, loads };
  });
}

/** "15,503 (14,210–16,890)": the median and, over more than one measured round, min–max. */
export function spreadText(rate: number | null | undefined, s: RoundSpread | undefined, fmt: (x: number) => string): string {
  if (rate === null || rate === undefined || Number.isNaN(rate)) return '-';
  return s && s.measured > 1 ? `${fmt(rate)} (${fmt(s.min)}–${fmt(s.max)})` : fmt(rate);
}
