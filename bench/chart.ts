/**
 * @module bench/chart
 * A hand-written SVG bar chart of "ours ÷ peer" req/s ratios (MB/s for the bulk loads), one group of bars per scenario
 * and load, on a log scale (ratios run from 0.5 against raw Node.js to 30 against the seed):
 * right of the 1× line, ours is faster. No dependency; plain text a README can show.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { BUSY_WARNING } from './machine.js';
import { comparisons, LIMITS, SEED } from './report.js';
import type { BenchOutput } from './results.js';
import type { Scenario } from './scenarios.js';

const esc = (t: string): string => t.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

export function chartSvg(scenarios: Scenario[], output: BenchOutput): string {
  const baseline = output.meta.baseline;
  const groups = comparisons(scenarios, output.runs, baseline).filter((c) => c.ratios.size > 0);
  const all = groups.flatMap((g) => [...g.ratios.values()]);
  const lo = Math.min(0.1, 10 ** Math.floor(Math.log10(Math.min(...all, 1))));
  const hi = Math.max(10, 10 ** Math.ceil(Math.log10(Math.max(...all, 1))));
  const W = 880;
  const labelW = 190;
  const x0 = labelW + 10;
  const x1 = W - 70;
  const rowH = 17;
  const headH = 24;
  const top = 66;
  const x = (v: number): number => x0 + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (x1 - x0);
  const body: string[] = [];
  let y = top;
  for (const g of groups) {
    const busyMark = (name: string): string => (g.busy.has(name) ? ' ⚠' : '');
    body.push(`<text x="8" y="${y + 16}" class="group">${esc(`${g.scenario} · ${g.load}`)} — ${esc(baseline)} ${Math.round(g.baseRate).toLocaleString('en-US')} ${g.unit}${busyMark(baseline)}</text>`);
    y += headH;
    for (const [server, ratio] of [...g.ratios.entries()].sort((a, b) => b[1] - a[1])) {
      const v = Math.min(Math.max(ratio, lo), hi);
      const xa = x(1);
      const xb = x(v);
      const cls = LIMITS.includes(server) ? 'limit' : server.startsWith('ours') ? 'ours' : ratio >= 1 ? 'win' : 'lose';
      const label = server + (server === SEED ? ' (seed)' : LIMITS.includes(server) ? ' (limit)' : '') + busyMark(server);
      body.push(
        `<text x="${labelW}" y="${y + 12}" class="label" text-anchor="end">${esc(label)}</text>`,
        `<rect x="${Math.min(xa, xb).toFixed(1)}" y="${y + 2}" width="${Math.max(1, Math.abs(xb - xa)).toFixed(1)}" height="${rowH - 4}" class="${cls}"/>`,
        `<text x="${(Math.max(xa, xb) + 4).toFixed(1)}" y="${y + 12}" class="value">${ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(2)}×</text>`,
      );
      y += rowH;
    }
  }
  const height = y + 30;
  const ticks: string[] = [];
  for (let e = Math.log10(lo); e <= Math.log10(hi) + 1e-9; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v < lo - 1e-9 || v > hi + 1e-9) continue;
      const xv = x(v).toFixed(1);
      ticks.push(
        `<line x1="${xv}" y1="${top - 4}" x2="${xv}" y2="${y}" class="${v === 1 ? 'one' : 'grid'}"/>`,
        `<text x="${xv}" y="${y + 16}" class="tick" text-anchor="middle">${v >= 1 ? v : v.toFixed(e < -1 ? 2 : 1)}×</text>`,
      );
    }
  }
  const m = output.machine;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="12">
<style>
  .title { font-size: 15px; font-weight: bold; } .sub { fill: #555; font-size: 11px; }
  .group { font-weight: bold; } .label { fill: #222; } .value { fill: #222; font-size: 11px; } .tick { fill: #555; font-size: 11px; }
  .grid { stroke: #ddd; } .one { stroke: #000; stroke-width: 1.5; }
  .win { fill: #2e8b57; } .lose { fill: #d2691e; } .limit { fill: #999; } .ours { fill: #6a8fd0; }
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="8" y="20" class="title">${esc(baseline)} ÷ peer, req/s (bulk: MB/s) at the same load (log scale; right of 1×: ${esc(baseline)} is faster)</text>
<text x="8" y="36" class="sub">${esc(`${output.meta.started.slice(0, 10)} · ${m.cpuModel}, ${m.cores} cores, Linux ${m.kernel} · ${output.meta.command}`)}</text>
<text x="8" y="50" class="sub">${esc(`green: ${baseline} faster · orange: the peer faster · grey: a limit (raw Node.js, nginx, web2py with no HTTP) · blue: ${baseline} with another worker class · ⚠ the machine was over ${Math.round(BUSY_WARNING * 100)}% busy before that server started`)}</text>
${ticks.join('\n')}
${body.join('\n')}
</svg>
`;
}

/** Write the chart to `file` (its folder is created). */
export function writeChart(file: string, scenarios: Scenario[], output: BenchOutput): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, chartSvg(scenarios, output));
}
