/**
 * Issue 18, item 4: reports as a reader sees them. A directory of runs (the demo's pretrain/ and
 * finetune/) is one report covering both; a value logged once is a number, not a one-dot plot; a
 * run's recipe appears once (recipe.yaml, not also recipe.json); dense sweep labels are placed or
 * thinned so none overlap; the threshold router's default capacity is in its label and in --help.
 * The pages are rendered in headless Chromium: no page errors, every plot has drawn content, and the
 * label boxes Chromium measured do not overlap. Before the change `report` on the demo directory
 * failed (no metrics.jsonl), recipes appeared twice, every label was drawn at (x+5, y-5) on top of
 * its neighbours, and a sweep of threshold:t=... was labelled without its capacity.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseRouterSeries, routerLabel, type SweepPoint, type SweepResult } from '../src/eval/router-sweep.js';
import { htmlPage } from '../src/report/html-page.js';
import { buildRunReport } from '../src/report/run-report.js';
import { sweepPlot } from '../src/report/sweep-report.js';
import { routerHelp } from '../src/routers/registry.js';
import { checkPageInChromium, findChromium, overlappingBoxes } from './helpers/chromium.js';
import { runCli, runCliJson } from './helpers/cli.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const CHROMIUM = findChromium();
if (!CHROMIUM) console.warn('report-chromium: no chromium on PATH (.ci/run installs Debian\'s chromium); skipping the browser checks');

function writeRun(dir: string, rows: Record<string, unknown>[], extra: Record<string, string> = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
  for (const [name, text] of Object.entries(extra)) fs.writeFileSync(path.join(dir, name), text);
}

function point(i: number, load: number, nll: number): SweepPoint {
  return {
    series: 'threshold:t=0.5..0.9,capacity=1', router: `threshold:t=${i},capacity=1`, spec: { name: 'threshold', t: i, capacity: 1 }, value: Number((0.5 + i * 0.01).toFixed(2)),
    load, flops: null, dropRate: 0, bypassRate: 0, nll, ppl: Math.exp(nll), tokens: 100, accuracy: null, accNorm: null, seconds: 0.1, layerLoad: [],
  };
}

describe('run reports', () => {
  let root: string;
  beforeAll(() => {
    root = makeTmpDir('report-runs');
    const pre = Array.from({ length: 30 }, (_, i) => ({ step: i + 1, loss: 6 - i * 0.1, lm_loss: 5.9 - i * 0.1, lr: 1e-3, load: 2, tokens_per_expert: [[10, 12, 9, 9], [11, 8, 11, 10]] }));
    writeRun(path.join(root, 'demo', 'pretrain'), pre, { 'recipe.yaml': 'name: pre\n', 'recipe.json': '{"name": "pre"}\n' });
    const ft = Array.from({ length: 12 }, (_, i) => ({ step: i + 1, loss: 4 - i * 0.05, lm_loss: 3.9 - i * 0.05, lr: 5e-4 * (1 - i / 12), load: 2 - i * 0.04 }));
    (ft[11] as Record<string, unknown>)['adamoe-balance'] = 1.2345; // logged once
    writeRun(path.join(root, 'demo', 'finetune'), ft, { 'recipe.yaml': 'name: ft\n', 'recipe.json': '{"name": "ft"}\n', 'eval.json': '{"steps": 12, "after": {"loss": 3.35}}' });
    // the pretrain run is the older one
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(path.join(root, 'demo', 'pretrain', 'metrics.jsonl'), old, old);
  });

  it('a directory of runs is one report covering each, recipes once, single values as numbers', () => {
    const r = runCliJson<{ out: string; sections: string[]; rows: number }>(['report', path.join(root, 'demo'), '--json']);
    expect(r.out).toBe(path.join(root, 'demo', 'report.html'));
    expect(r.rows).toBe(42);
    expect(r.sections.indexOf('pretrain: Loss')).toBeGreaterThanOrEqual(0);
    expect(r.sections.indexOf('finetune: Loss')).toBeGreaterThan(r.sections.indexOf('pretrain: Loss'));
    expect(r.sections.filter((s) => s.includes('Recipe:'))).toEqual(['pretrain: Recipe: recipe.yaml', 'finetune: Recipe: recipe.yaml']);
    const html = fs.readFileSync(r.out, 'utf8');
    expect(html).toContain('<p class="single-value">adamoe-balance = <b>1.2345</b> at step 12 (logged once)</p>');
    expect(html).not.toContain('aria-label="adamoe-balance"');
    // a single run directory is reported as before
    expect(buildRunReport(path.join(root, 'demo', 'finetune')).sections[0]).toBe('Loss');
  });

  it.skipIf(!CHROMIUM)('renders in Chromium with no page errors and every plot drawn', () => {
    const rep = path.join(root, 'demo', 'report.html');
    if (!fs.existsSync(rep)) runCli(['report', path.join(root, 'demo')]);
    const check = checkPageInChromium(CHROMIUM!, rep, root);
    expect(check.errors).toEqual([]);
    const svgs = (fs.readFileSync(rep, 'utf8').match(/<svg[^>]* class="plot /g) ?? []).length;
    expect(svgs).toBeGreaterThanOrEqual(6); // losses, load, heatmap, lr of both runs
    expect(check.plots).toHaveLength(svgs);
    for (const p of check.plots) {
      expect(p.width, p.title).toBeGreaterThan(100);
      expect(p.drawnMarks, `${p.title} draws nothing`).toBeGreaterThan(0);
    }
    expect(check.singleValues).toBe(1);
  });
});

describe('sweep labels and the threshold default', () => {
  it('labels a threshold sweep with its capacity and shows defaults in --help', () => {
    expect(parseRouterSeries('threshold:t=0.5..0.9:0.1').source).toBe('threshold:t=0.5..0.9:0.1,capacity=1');
    expect(parseRouterSeries('threshold:t=0.7,capacity=2').source).toBe('threshold:t=0.7,capacity=2');
    expect(parseRouterSeries('threshold').source).toBe('threshold:t=0.9,capacity=1');
    expect(routerHelp()).toContain('threshold:t=0.9,capacity=1 | expert-choice:capacity=2');
    expect(routerLabel({ name: 'threshold', t: 0.5 })).toBe('threshold:t=0.5,capacity=1');
    const help = runCli(['eval', '--help']);
    expect(help.stdout).toContain('threshold:t=0.9,capacity=1');
  });

  it.skipIf(!CHROMIUM)('places or thins dense sweep labels so that none overlap (boxes measured by Chromium)', () => {
    const dir = makeTmpDir('sweep-labels');
    const points = Array.from({ length: 40 }, (_, i) => point(i, 1 + i * 0.02, 3 - i * 0.004));
    const result: SweepResult = { task: 'ppl', metric: 'nll', baseline: { ...point(0, 2, 2.9), series: 'default', router: 'top-k:k=2' }, points, series: [{ name: 'threshold', source: points[0]!.series, key: 't' }] };
    const svg = sweepPlot(result);
    const drawnLabels = (svg.match(/class="point-label"/g) ?? []).length;
    expect(drawnLabels).toBeGreaterThanOrEqual(8); // placed around the points...
    expect(drawnLabels).toBeLessThan(40); // ...and thinned where 40 do not fit
    const file = path.join(dir, 'sweep.html');
    fs.writeFileSync(file, htmlPage('sweep', 'dense', [{ title: 'sweep', body: svg }]));
    const check = checkPageInChromium(CHROMIUM!, file, dir);
    expect(check.errors).toEqual([]);
    expect(check.plots[0]!.labels).toHaveLength(drawnLabels);
    expect(overlappingBoxes(check.plots[0]!.labels)).toEqual([]);
    expect(svg).toContain('threshold:t=0.5..0.9,capacity=1');
  });
});
