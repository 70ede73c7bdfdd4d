/**
 * @module The bench's rounds (bench/rounds.ts, issue 15): the order servers run in each round,
 * the median round and spread each row of the report shows, and the ratios taken from those
 * medians. Pure arithmetic on made-up results: nothing is measured or timed here.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { comparisons, scenarioReport, summaryReport } from '../../bench/report.js';
import type { LoadResult, ServerRun } from '../../bench/results.js';
import { medianIndex, medianLoad, mergeRounds, roundOrder, serverRunsOf, spreadText } from '../../bench/rounds.js';
import type { Scenario } from '../../bench/scenarios.js';
import type { WrkFigures } from '../../bench/wrk.js';

const SCENARIO: Scenario = {
  name: 'hello', about: 'hello world', app: 'hello', path: '/', defaultServers: ['ours', 'uwsgi', 'node'],
  loads: [{ kind: 'wrk', conns: 50, timeoutS: 2 }, { kind: 'wrk', conns: 1000, timeoutS: 2 }],
};

/** A wrk load's result with `rps` req/s and a CPU figure that tells which round it came from. */
function wrkLoad(load: string, rps: number, cpuUs: number): LoadResult {
  const wrk = { rps, requests: rps * 8, p50Ms: 1, p99Ms: cpuUs / 10, errors: {}, busyConns: 1, closesEveryConnection: false } as unknown as WrkFigures;
  const cpu = { total: { usPerRequest: cpuUs, cpuMs: 1 }, requests: rps * 8, seconds: 8 } as unknown as LoadResult['cpu'];
  return { load, kind: 'wrk', conns: 50, wrk, cpu, serverAlive: true };
}

function run(server: string, round: number, loads: LoadResult[], extra: Partial<ServerRun> = {}): ServerRun {
  return { scenario: 'hello', server, about: server, status: 'ok', round, loads, ...extra };
}

test('rounds alternate the order: forward, reverse, forward', () => {
  const servers = ['ours', 'ours-thread', 'uwsgi', 'node'];
  assert.deepEqual(roundOrder(servers, 1), ['ours', 'ours-thread', 'uwsgi', 'node']);
  assert.deepEqual(roundOrder(servers, 2), ['node', 'uwsgi', 'ours-thread', 'ours']);
  assert.deepEqual(roundOrder(servers, 3), servers);
  assert.deepEqual(roundOrder(servers, 4), roundOrder(servers, 2));
  // the caller's list is not reversed in place
  assert.deepEqual(servers, ['ours', 'ours-thread', 'uwsgi', 'node']);
});

test('no server follows the same neighbour in two consecutive rounds', () => {
  const servers = ['a', 'b', 'c', 'd', 'e'];
  const before = (order: string[], name: string): string | undefined => order[order.indexOf(name) - 1];
  for (let round = 1; round < 6; round++) {
    const [x, y] = [roundOrder(servers, round), roundOrder(servers, round + 1)];
    for (const name of servers) if (before(x, name) !== undefined) assert.notEqual(before(x, name), before(y, name), `${name}, rounds ${round} and ${round + 1}`);
  }
});

test('servers measured once run in round 1 only, in their place', () => {
  const servers = ['ours', 'gevent', 'gunicorn', 'uwsgi', 'node'];
  const once = new Set(['gevent', 'gunicorn']);
  assert.deepEqual(roundOrder(servers, 1, once), servers);
  assert.deepEqual(roundOrder(servers, 2, once), ['node', 'uwsgi', 'ours']);
  assert.deepEqual(roundOrder(servers, 3, once), ['ours', 'uwsgi', 'node']);
  assert.equal(serverRunsOf(servers, 3, once), 5 + 3 + 3);
  assert.equal(serverRunsOf(servers, 1, once), 5);
  assert.equal(serverRunsOf(servers, 3), 15);
});

test('the median: the middle value, the lower middle of an even count, the earlier of ties', () => {
  assert.equal(medianIndex([]), -1);
  assert.equal(medianIndex([7]), 0);
  assert.equal(medianIndex([300, 100, 200]), 2);
  assert.equal(medianIndex([100, 300, 200]), 2);
  assert.equal(medianIndex([400, 100, 300, 200]), 3); // 200: the lower of 200 and 300
  assert.equal(medianIndex([5, 5, 5]), 1);
  assert.equal(medianIndex([9, 1, 9, 1, 5]), 4);
});

test('a row is the median round, whole, with the spread over the rounds', () => {
  const row = medianLoad([
    { round: 1, load: wrkLoad('wrk -c50', 15_000, 70) },
    { round: 2, load: wrkLoad('wrk -c50', 21_000, 50) },
    { round: 3, load: wrkLoad('wrk -c50', 19_000, 55) },
  ])!;
  assert.equal(row.wrk?.rps, 19_000);
  assert.equal(row.cpu?.total.usPerRequest, 55, "the CPU figure is the median round's own");
  assert.equal(row.wrk?.p99Ms, 5.5);
  assert.deepEqual(row.spread, {
    rounds: 3, measured: 3, medianRound: 3, median: 19_000, min: 15_000, max: 21_000, unit: 'req/s',
    byRound: [{ round: 1, rate: 15_000 }, { round: 2, rate: 21_000 }, { round: 3, rate: 19_000 }],
  });
  assert.equal(spreadText(row.wrk?.rps, row.spread, String), '19000 (15000–21000)');
  assert.equal(spreadText(row.wrk?.rps, undefined, String), '19000');
  assert.equal(spreadText(undefined, row.spread, String), '-');
});

test('a round that measured nothing is left out of the median, and counted', () => {
  const failed: LoadResult = { load: 'wrk -c50', kind: 'wrk', conns: 50, error: 'wrk failed', serverAlive: true };
  const row = medianLoad([
    { round: 1, load: wrkLoad('wrk -c50', 15_000, 70) },
    { round: 2, load: failed },
    { round: 3, load: wrkLoad('wrk -c50', 19_000, 55) },
  ])!;
  assert.equal(row.wrk?.rps, 15_000, 'of two, the lower');
  assert.equal(row.spread?.measured, 2);
  assert.equal(row.spread?.rounds, 3);
  assert.deepEqual(row.spread?.byRound.map((r) => r.rate), [15_000, null, 19_000]);
  // nothing measured at all: the first round's result as it is
  assert.equal(medianLoad([{ round: 1, load: failed }, { round: 2, load: failed }]), failed);
  assert.equal(medianLoad([]), undefined);
});

test('merging: one run per server, each load its own median round, every round kept apart', () => {
  const runs = [
    run('ours', 1, [wrkLoad('wrk -c50', 15_000, 77), wrkLoad('wrk -c1000', 13_000, 96)], { machineBusyBefore: 0.1 }),
    run('uwsgi', 1, [wrkLoad('wrk -c50', 14_000, 39), wrkLoad('wrk -c1000', 9_000, 51)]),
    run('uwsgi', 2, [wrkLoad('wrk -c50', 12_000, 41), wrkLoad('wrk -c1000', 10_000, 50)]),
    run('ours', 2, [wrkLoad('wrk -c50', 21_000, 55), wrkLoad('wrk -c1000', 12_000, 99)], { machineBusyBefore: 0.6 }),
    run('ours', 3, [wrkLoad('wrk -c50', 20_000, 57), wrkLoad('wrk -c1000', 16_000, 80)]),
    run('uwsgi', 3, [wrkLoad('wrk -c50', 13_000, 40), wrkLoad('wrk -c1000', 11_000, 49)]),
    { scenario: 'hello', server: 'gevent', about: 'gevent', status: 'skipped', reason: 'not installed', loads: [] } satisfies ServerRun,
  ];
  const merged = mergeRounds(runs);
  assert.deepEqual(merged.map((r) => r.server), ['ours', 'uwsgi', 'gevent']);
  const ours = merged[0]!;
  assert.deepEqual(ours.loads.map((l) => [l.wrk?.rps, l.cpu?.total.usPerRequest, l.spread?.medianRound]), [
    [20_000, 57, 3],
    [13_000, 96, 1],
  ]);
  assert.deepEqual(ours.rounds, { total: 3, failed: [] });
  assert.equal(ours.machineBusyBefore, 0.6, 'the busiest start of its rounds');
  assert.equal(merged[2], runs[6], 'a server that ran once is kept as it is');
  assert.deepEqual(mergeRounds(merged), merged, 'merging twice changes nothing');
  assert.equal(runs.length, 7, 'the rounds themselves are untouched');
});

test('merging: a failed round is named, and only a server failed in every round fails', () => {
  const failed = (round: number): ServerRun => ({ ...run('ours', round, []), status: 'failed', reason: 'no 200' });
  const some = mergeRounds([failed(1), run('ours', 2, [wrkLoad('wrk -c50', 9_000, 60)]), failed(3)]);
  assert.equal(some[0]!.status, 'ok');
  assert.deepEqual(some[0]!.rounds, { total: 3, failed: [1, 3] });
  assert.equal(some[0]!.loads[0]!.wrk?.rps, 9_000);
  const all = mergeRounds([failed(1), failed(2)]);
  assert.equal(all[0]!.status, 'failed');
  assert.deepEqual(all[0]!.rounds, { total: 2, failed: [1, 2] });
});

test('ratios and the summary come from the medians', () => {
  const runs = [
    run('ours', 1, [wrkLoad('wrk -c50', 15_000, 77)]),
    run('uwsgi', 1, [wrkLoad('wrk -c50', 14_000, 39)]),
    run('node', 1, [wrkLoad('wrk -c50', 30_000, 33)]),
    run('node', 2, [wrkLoad('wrk -c50', 26_000, 35)]),
    run('uwsgi', 2, [wrkLoad('wrk -c50', 10_000, 41)]),
    run('ours', 2, [wrkLoad('wrk -c50', 21_000, 55)]),
    run('ours', 3, [wrkLoad('wrk -c50', 20_000, 57)]),
    run('uwsgi', 3, [wrkLoad('wrk -c50', 12_000, 40)]),
    run('node', 3, [wrkLoad('wrk -c50', 28_000, 34)]),
  ];
  const [c] = comparisons([SCENARIO], runs, 'ours');
  assert.equal(c!.baseRate, 20_000);
  assert.equal(c!.baseCpuUs, 57);
  assert.equal(c!.ratios.get('uwsgi'), 20_000 / 12_000);
  assert.equal(c!.ratios.get('node'), 20_000 / 28_000);
  assert.deepEqual(c!.best && [c!.best.server, c!.best.rate], ['uwsgi', 12_000]);
  const summary = summaryReport([SCENARIO], runs, 'ours');
  assert.match(summary, /\| hello \| wrk -c50 \| 20,000 \(15,000–21,000\) \|/);
  assert.match(summary, /uwsgi \(12,000; 10,000–14,000\) \| 1\.67× \| node \(28,000; 26,000–30,000\) \| 0\.71× \|/);
  const table = scenarioReport(SCENARIO, runs, 'ours');
  assert.match(table, /\| uwsgi \| wrk -c50 \| 12,000 \(10,000–14,000\) \| 1\.67× \|/);
  assert.match(table, /each row is the round with the median req\/s/);
  assert.equal(table.match(/\| ours \| wrk -c50 \|/g)?.length, 1, 'one row per server and load');
});

test('one round: the tables are as before, no spread, no rounds note', () => {
  const runs = [run('ours', 1, [wrkLoad('wrk -c50', 15_000, 77)]), run('uwsgi', 1, [wrkLoad('wrk -c50', 14_000, 39)])];
  const table = scenarioReport(SCENARIO, runs, 'ours');
  assert.match(table, /\| ours \| wrk -c50 \| 15,000 \| 1\.00× \|/);
  assert.doesNotMatch(table, /min–max|Rounds:/);
  assert.doesNotMatch(summaryReport([SCENARIO], runs, 'ours'), /median round/);
});

test('servers measured once are named under the table, their row a single round with no spread', () => {
  const runs = [
    run('ours', 1, [wrkLoad('wrk -c50', 15_000, 77)]),
    run('gevent', 1, [wrkLoad('wrk -c50', 1_100, 140)]),
    run('ours', 2, [wrkLoad('wrk -c50', 21_000, 55)]),
    run('ours', 3, [wrkLoad('wrk -c50', 20_000, 57)]),
  ];
  const table = scenarioReport(SCENARIO, runs, 'ours');
  assert.match(table, /\| gevent \| wrk -c50 \| 1,100 \| 18\.18× \|/);
  assert.match(table, /each server but those named at the end ran 3 times/);
  assert.match(table, /Measured once \(in round 1 only\): gevent\./);
});
