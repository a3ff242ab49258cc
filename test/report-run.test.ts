/**
 * `moe-tune report RUN_DIR`: a self-contained HTML page from a run's metrics.jsonl (plus its
 * config, eval results and recipe). Checks the sections, the heatmap values against the test's own
 * sums, that nothing is fetched from outside, and, when /usr/bin/chromium exists (Debian package
 * `chromium`), that every plot renders with drawn marks of non-zero size in headless Chromium.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectOneErrorLine, runCli, runCliJson } from './helpers/cli.js';
import { tinyMixtralConfig, writeTinyCheckpoint } from './helpers/tiny-model.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = fs.existsSync(CHROMIUM);
if (!HAS_CHROMIUM) console.warn(`report-run: ${CHROMIUM} not found; skipping the headless render check (apt-get install chromium to run it)`);

const STEPS = 30;
const LAST = 5;

function metricRows(): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (let i = 0; i < STEPS; i++) {
    const step = (i + 1) * 10;
    const load = 2 - i / 40;
    const row: Record<string, unknown> = {
      step, loss: 3.2 - i * 0.03 + 0.02 * Math.sin(i), lm_loss: 3.15 - i * 0.03, balance_loss: 0.02 + 0.01 * Math.cos(i / 3), z_loss: 0.001 * (i + 1),
      load, lr: 1e-3 * Math.min(1, (i + 1) / 5), tokens_per_s: 1200 + 10 * i,
      load_per_layer: [load + 0.05, load - 0.05],
      tokens_per_expert: [[100 + i, 80, 60 + 2 * i, 20], [50, 50 + i, 70, 90 - i]],
    };
    if (i % 10 === 9) row['eval_nll'] = 3.3 - i * 0.02;
    rows.push(row);
  }
  return rows;
}

describe('moe-tune report', () => {
  const root = makeTmpDir('report-run');
  const run = path.join(root, 'run');
  const rows = metricRows();
  let htmlFile = '';

  beforeAll(async () => {
    fs.mkdirSync(run, { recursive: true });
    await writeTinyCheckpoint(path.join(run, 'checkpoint-final'), tinyMixtralConfig());
    fs.writeFileSync(path.join(run, 'metrics.jsonl'), `${rows.map((r) => JSON.stringify(r)).join('\n')}\n{"step": 31`);
    fs.writeFileSync(path.join(run, 'eval.json'), JSON.stringify({ nll: 3.01, ppl: 20.3, load: 1.4, flops_ratio: { moe_layers: 0.7 } }));
    fs.writeFileSync(path.join(run, 'recipe.resolved.yaml'), 'model: tiny\nrouter: {name: top-p, p: 0.4}  # <ours>\n');
    htmlFile = path.join(root, 'report.html');
  });

  it('writes every section from metrics.jsonl, config, eval results and recipe', () => {
    const out = runCliJson<{ out: string; sections: string[]; notes: string[]; rows: number }>(['report', run, '--out', htmlFile, '--last', String(LAST), '--json']);
    expect(out.out).toBe(htmlFile);
    expect(out.rows).toBe(STEPS); // the unterminated last line is ignored
    expect(out.notes).toEqual([]);
    expect(out.sections).toEqual([
      'Loss', 'Auxiliary loss: balance_loss', 'Auxiliary loss: z_loss', 'Activated experts per token', 'Load per MoE layer',
      'Expert load per layer', 'FLOPs ratio vs plain top-k', 'Learning rate', 'Throughput', 'eval_nll', 'Evaluation: eval.json',
      'Recipe: recipe.resolved.yaml',
    ]);
    const html = fs.readFileSync(htmlFile, 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('&lt;ours&gt;');
    // self-contained: no scripts, no links, no fetches
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\ssrc=|\shref=|url\(|@import/i);
    expect(html.replace(/http:\/\/www\.w3\.org\/2000\/svg/g, '')).not.toMatch(/https?:\/\//);
  });

  it('heatmap cells are tokens per expert over the last N steps divided by a uniform share', () => {
    runCli(['report', run, '--out', htmlFile, '--last', String(LAST)]);
    const html = fs.readFileSync(htmlFile, 'utf8');
    const values = [...html.matchAll(/<rect class="cell"[^>]* data-value="([^"]*)"/g)].map((m) => Number(m[1]));
    const recent = rows.slice(-LAST).map((r) => r['tokens_per_expert'] as number[][]);
    const expected: number[] = [];
    for (let l = 0; l < 2; l++) {
      const sums = [0, 1, 2, 3].map((e) => recent.reduce((s, r) => s + r[l]![e]!, 0));
      const total = sums.reduce((a, b) => a + b, 0);
      expected.push(...sums.map((s) => (s * 4) / total));
    }
    expect(values).toHaveLength(8);
    values.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 10));
  });

  it('the FLOPs ratio of the MoE layers is load / k with k from the run\'s config', () => {
    runCli(['report', run, '--out', htmlFile]);
    const html = fs.readFileSync(htmlFile, 'utf8');
    const section = html.slice(html.indexOf('FLOPs ratio vs plain top-k'));
    const svg = section.slice(0, section.indexOf('</svg>'));
    expect(svg).toContain('data-series="MoE layers (load / k)"');
    expect(svg).toContain('data-series="whole model"');
    const [y0, y1] = /data-y-domain="([^"]*)"/.exec(svg)![1]!.split(' ').map(Number) as [number, number];
    const area = /<rect class="plot-area" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"/.exec(svg)!;
    const top = Number(area[1]);
    const h = Number(area[2]);
    const pts = /data-series="MoE layers \(load \/ k\)"[^>]* points="([^"]*)"/.exec(svg)![1]!.split(' ').map((p) => Number(p.split(',')[1]));
    rows.forEach((r, i) => expect(pts[i]!).toBeCloseTo(top + h - (((r['load'] as number) / 2 - y0) / (y1 - y0)) * h, 1));
  });

  it.skipIf(!HAS_CHROMIUM)('renders in headless Chromium: every plot has drawn marks with a non-zero bounding box', () => {
    runCli(['report', run, '--out', htmlFile]);
    const probe = path.join(root, 'probe.html');
    const measure = `<script>
      const plots = [...document.querySelectorAll('svg.plot')].map((svg) => {
        const marks = svg.querySelector('g.marks');
        const drawn = marks ? [...marks.querySelectorAll('polyline, path, rect, circle')] : [];
        const boxes = drawn.map((m) => m.getBBox()).filter((b) => b.width > 0 || b.height > 0);
        const mb = marks ? marks.getBBox() : { width: 0, height: 0 };
        const r = svg.getBoundingClientRect();
        return { title: svg.getAttribute('aria-label'), drawn: drawn.length, sized: boxes.length, w: mb.width, h: mb.height, sw: r.width, sh: r.height };
      });
      const pre = document.createElement('pre'); pre.id = 'measure'; pre.textContent = JSON.stringify(plots); document.body.appendChild(pre);
    </script>`;
    fs.writeFileSync(probe, fs.readFileSync(htmlFile, 'utf8').replace('</body>', `${measure}</body>`));
    const r = spawnSync(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--dump-dom', `file://${probe}`], { encoding: 'utf8', timeout: 90_000 });
    const m = /<pre id="measure">([^<]*)<\/pre>/.exec(r.stdout);
    if (!m) throw new Error(`chromium gave no measurement (exit ${r.status}): ${r.stderr.slice(-500)}`);
    const plots = JSON.parse(m[1]!.replace(/&quot;/g, '"').replace(/&amp;/g, '&')) as { title: string; drawn: number; sized: number; w: number; h: number; sw: number; sh: number }[];
    expect(plots.length).toBe(10);
    for (const p of plots) {
      expect(p.drawn, p.title).toBeGreaterThan(0);
      expect(p.sized, p.title).toBe(p.drawn);
      expect(p.w, p.title).toBeGreaterThan(0);
      expect(p.h, p.title).toBeGreaterThan(0);
      expect(p.sw, p.title).toBeGreaterThan(100);
      expect(p.sh, p.title).toBeGreaterThan(100);
    }
    expect(plots.map((p) => p.title)).toContain('Tokens per expert / uniform share');
  });

  it('bad input: missing run dir, missing metrics.jsonl, corrupt line names FILE:LINE', () => {
    expect(expectOneErrorLine(runCli(['report', path.join(root, 'none')]))).toMatch(/none: run directory not found/);
    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    expect(expectOneErrorLine(runCli(['report', empty]))).toContain(`${path.join(empty, 'metrics.jsonl')}: not found`);
    const bad = path.join(root, 'bad');
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, 'metrics.jsonl'), '{"step": 1, "loss": 2}\n{"step": 2, "loss": \n{"step": 3, "loss": 1}\n');
    expect(expectOneErrorLine(runCli(['report', bad]))).toContain(`${path.join(bad, 'metrics.jsonl')}:2: invalid JSON`);
    expect(fs.existsSync(path.join(bad, 'report.html'))).toBe(false);
    fs.writeFileSync(path.join(bad, 'metrics.jsonl'), '{"loss": 2}\n');
    expect(expectOneErrorLine(runCli(['report', bad]))).toContain(':1: "step" must be a number, got nothing (the field is missing)');
  });
});
