/**
 * `moe-tune sweep`: range expansion, a top-p sweep of the tiny-mixtral fixture whose load rises
 * monotonically with p, its CSV / JSON / SVG / HTML outputs, a multiple-choice sweep, and errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandRange, parseRouterSeries } from '../src/eval/router-sweep.js';
import { expectOneErrorLine, runCli, runCliJson } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const MODEL = path.join(FIXTURES, 'tiny-mixtral');
const IDS = path.join(FIXTURES, 'ids.jsonl');

interface Point { series: string; router: string; value: number | null; load: number; nll: number | null; accuracy: number | null; flops: { moe: number; model: number } | null }
interface SweepJson { out: string; files: Record<string, string>; baseline: Point; points: Point[]; metric: string }

describe('router ranges', () => {
  it('a..b:step expands inclusively without float noise', () => {
    expect(expandRange('0.1..0.9:0.1', 's')).toEqual([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
    expect(expandRange('0.5..1:0.1', 's')).toEqual([0.5, 0.6, 0.7, 0.8, 0.9, 1]);
    expect(expandRange('1..4', 's')).toEqual([1, 2, 3, 4]);
    expect(expandRange('2..2', 's')).toEqual([2]);
  });

  it('a spec expands into validated router specs; fixed keys stay', () => {
    const s = parseRouterSeries('threshold:t=0.5..0.7:0.1,capacity=2');
    expect(s.key).toBe('t');
    expect(s.specs).toEqual([{ name: 'threshold', capacity: 2, t: 0.5 }, { name: 'threshold', capacity: 2, t: 0.6 }, { name: 'threshold', capacity: 2, t: 0.7 }]);
    expect(parseRouterSeries('top-k:k=3').specs).toEqual([{ name: 'top-k', k: 3 }]);
  });

  it('bad ranges are one-line errors', () => {
    expect(() => parseRouterSeries('top-p:p=0.1..0.9:0')).toThrow(/step must be > 0/);
    expect(() => parseRouterSeries('top-p:p=0.9..0.1:0.1')).toThrow(/end 0.1 is below start 0.9/);
    expect(() => parseRouterSeries('threshold:t=0.1..0.9:0.1,capacity=1..2')).toThrow(/only one key may be a range/);
    expect(() => parseRouterSeries('top-p:p=a..b')).toThrow(/start 'a' is not a number/);
    expect(() => parseRouterSeries('top-q:p=0.1..0.2:0.1')).toThrow(/unknown router 'top-q'/);
    expect(() => parseRouterSeries('top-p:q=0.1..0.2:0.1')).toThrow(/unknown key 'q'/);
  });
});

describe('sweep on the tiny-mixtral fixture', () => {
  const root = makeTmpDir('cli-sweep');

  it('top-p p = 0.1..0.9: load rises monotonically with p; outputs written', () => {
    const out = path.join(root, 'top-p');
    const r = runCliJson<SweepJson>(['sweep', '--model', MODEL, '--data', IDS, '--router', 'top-p:p=0.1..0.9:0.1', '--out', out, '--json']);
    expect(r.baseline.router).toBe('top-k:k=2');
    expect(r.baseline.load).toBe(2);
    expect(r.points.map((p) => p.value)).toEqual([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
    const loads = r.points.map((p) => p.load);
    for (let i = 1; i < loads.length; i++) expect(loads[i]!).toBeGreaterThanOrEqual(loads[i - 1]!);
    expect(loads[0]!).toBeGreaterThanOrEqual(1);
    expect(loads[loads.length - 1]!).toBeGreaterThan(loads[0]!);
    for (const p of r.points) {
      expect(Number.isFinite(p.nll)).toBe(true);
      expect(p.flops!.moe).toBeCloseTo(p.load / 2, 12);
    }
    // a point equals a plain eval under the same router
    const single = runCliJson<{ nll: number; load: number }>(['eval', '--model', MODEL, '--data', IDS, '--router', 'top-p:p=0.5', '--json']);
    const p5 = r.points.find((p) => p.value === 0.5)!;
    expect(p5.nll).toBeCloseTo(single.nll, 10);
    expect(p5.load).toBeCloseTo(single.load, 12);

    const csv = fs.readFileSync(path.join(out, 'sweep.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(1 + 1 + 9);
    expect(csv[0]!.split(',').slice(0, 4)).toEqual(['series', 'router', 'value', 'load']);
    expect(csv[1]!.startsWith('default,top-k:k=2,,2,')).toBe(true);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'sweep.json'), 'utf8')) as SweepJson;
    expect(json.points.map((p) => p.load)).toEqual(loads);
    const svg = fs.readFileSync(path.join(out, 'sweep.svg'), 'utf8');
    expect(svg).toMatch(/<polyline class="series" data-series="top-p:p=0.1..0.9:0.1"/);
    const html = fs.readFileSync(path.join(out, 'sweep.html'), 'utf8');
    expect(html).toMatch(/<svg /);
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it('two router families and a multiple-choice task (accuracy vs load)', () => {
    const mc = path.join(root, 'mc.jsonl');
    fs.writeFileSync(mc, [
      { context_ids: [1, 20, 30], choice_ids: [[40, 41], [50]], label: 0 },
      { context_ids: [1, 21, 31, 41], choice_ids: [[60], [70], [80, 81]], label: 2 },
      { context_ids: [1, 22], choice_ids: [[90], [100]], label: 1 },
    ].map((x) => JSON.stringify(x)).join('\n'));
    const out = path.join(root, 'mc');
    const r = runCliJson<SweepJson>(['sweep', '--model', MODEL, '--data', mc, '--task', 'mc', '--router', 'top-k:k=1..4', '--router', 'top-p:p=0.5', '--out', out, '--json']);
    expect(r.metric).toBe('accuracy');
    expect(r.points.map((p) => p.router)).toEqual(['top-k:k=1', 'top-k:k=2', 'top-k:k=3', 'top-k:k=4', 'top-p:p=0.5']);
    expect(r.points.slice(0, 4).map((p) => p.load)).toEqual([1, 2, 3, 4]);
    for (const p of r.points) expect([0, 1 / 3, 2 / 3, 1]).toContain(p.accuracy);
    expect(r.points[1]!.accuracy).toBe(r.baseline.accuracy);
    expect(fs.readFileSync(path.join(out, 'sweep.svg'), 'utf8')).toContain('>accuracy</text>');
  });

  it('bad input: dense model, bad range, missing --router', () => {
    expect(expectOneErrorLine(runCli(['sweep', '--model', path.join(FIXTURES, 'tiny-llama'), '--data', IDS, '--router', 'top-k:k=1..2', '--out', path.join(root, 'x')]))).toMatch(/dense model/);
    expect(fs.existsSync(path.join(root, 'x'))).toBe(false);
    expect(expectOneErrorLine(runCli(['sweep', '--model', MODEL, '--data', IDS, '--router', 'top-p:p=0.1..0.9:-1']))).toMatch(/--router 'top-p:p=0.1..0.9:-1': .*step must be > 0/);
    expect(expectOneErrorLine(runCli(['sweep', '--model', MODEL, '--data', IDS]))).toMatch(/required option '--router <spec>' not specified/);
  });
});
