/**
 * `moe-tune report RUN_DIR`: one self-contained HTML page (inline SVG, no network) from a run
 * directory's metrics.jsonl, plus what else the run left there:
 *   - loss and lm_loss; each auxiliary loss; learning rate, throughput and other numeric fields;
 *   - activated experts per token (load) over training, with the nominal top-k as a reference,
 *     and the load of each MoE layer;
 *   - a per-layer expert-load heatmap from the last N logged steps (tokens per expert relative
 *     to a uniform share: 1 = balanced);
 *   - the FLOPs ratio against plain top-k: MoE-layer (load / k) and, with the run's config.json,
 *     whole-model (src/routers/stats.ts, from the logged per-layer load); a logged `flops_ratio` wins;
 *   - eval*.json results, sweep.json (the trade-off plot), and the resolved recipe, when present.
 * k comes from --top-k, else from the newest config.json in the run directory (or one level of
 * subdirectories below it).
 *
 * A directory without metrics.jsonl whose subdirectories are runs (the demo's pretrain/ and
 * finetune/, a multi-seed run's seed-S/) gets one page with a part per run, oldest first, each
 * section titled "RUN: ...". A series with a single logged value is printed as that number, not
 * plotted as one dot; a run's recipe is shown once (recipe.yaml, else recipe.json).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonObject } from '../io/index.js';
import { configFromJson } from '../models/create.js';
import { flopsForLoad } from '../eval/flop-dims.js';
import type { ModelConfig } from '../models/config.js';
import type { SweepResult } from '../eval/router-sweep.js';
import { heatmap } from './heatmap.js';
import { htmlPage, htmlTable, type PageSection } from './html-page.js';
import { linePlot } from './line-plot.js';
import {
  auxLossFields, otherNumericFields, perLayerLoadSeries, readRunMetrics, recentTokensPerExpert, scalarSeries, type MetricRow,
} from './run-metrics.js';
import { formatValue } from './scale.js';
import { esc } from './svg.js';
import { sweepPlot } from './sweep-report.js';

export interface RunReportOptions {
  /** Logged steps the heatmap sums over (default 20). */
  lastN?: number;
  /** Nominal top-k for the FLOPs ratio (default: from the run's config.json). */
  topK?: number;
  /** Clock for the page footer (tests pin it). */
  now?: Date;
}

export interface RunReport {
  html: string;
  sections: string[];
  /** What the page could not show and why. */
  notes: string[];
  rows: number;
}

interface ModelFacts {
  topK: number;
  /** The run's MoE config (null with --top-k and no config). */
  config: ModelConfig | null;
  source: string;
}

function listConfigs(runDir: string): string[] {
  const found: string[] = [];
  const visit = (dir: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isFile() && e.name === 'config.json') found.push(p);
      else if (e.isDirectory() && depth < 2 && !e.name.startsWith('.')) visit(p, depth + 1);
    }
  };
  visit(runDir, 0);
  return found.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
}

function modelFacts(runDir: string, topK: number | undefined, notes: string[]): ModelFacts | null {
  for (const file of listConfigs(runDir)) {
    let config: ModelConfig;
    try {
      config = configFromJson(readJsonObject(file), file);
    } catch {
      continue;
    }
    if (!config.moe) continue;
    const k = Math.min(config.moe.topK, config.moe.numExperts);
    if (topK !== undefined && topK !== k) return { topK, config: null, source: '--top-k' };
    return { topK: k, config, source: file };
  }
  if (topK !== undefined) return { topK, config: null, source: '--top-k' };
  notes.push('FLOPs ratio: no MoE config.json in the run directory; pass --top-k K');
  return null;
}

/** Per-step counters that grow linearly or stay fixed by construction: not plotted. */
const BOOKKEEPING_FIELDS = new Set(['epoch', 'tokens', 'targets', 'elapsed_s']);

function plot(title: string, yLabel: string, series: { name: string; points: [number, number][]; dashed?: boolean }[], extra: Partial<Parameters<typeof linePlot>[0]> = {}): string {
  const drawn = series.filter((x) => x.points.length > 0);
  if (drawn.length > 0 && drawn.every((x) => x.points.length === 1)) return singleValues(drawn);
  return linePlot({ title, xLabel: 'step', yLabel, series, ...extra });
}

/** Series logged once: their values as numbers (a one-dot plot says nothing). */
function singleValues(series: { name: string; points: [number, number][] }[]): string {
  return `<p class="single-value">${series.map((x) => `${esc(x.name)} = <b>${esc(formatValue(x.points[0]![1], 6))}</b> at step ${x.points[0]![0]}`).join('<br>')} (logged once)</p>`;
}

function findFiles(runDir: string, test: (name: string) => boolean): string[] {
  try {
    return fs.readdirSync(runDir).filter(test).sort().map((n) => path.join(runDir, n)).filter((p) => fs.statSync(p).isFile());
  } catch {
    return [];
  }
}

function scalarTable(obj: Record<string, unknown>): string {
  const rows: [string, string][] = [];
  const walk = (o: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === 'number') rows.push([prefix + k, formatValue(v, 6)]);
      else if (typeof v === 'string' || typeof v === 'boolean') rows.push([prefix + k, String(v)]);
      else if (v && typeof v === 'object' && !Array.isArray(v) && prefix.split('.').length < 3) walk(v as Record<string, unknown>, `${prefix}${k}.`);
    }
  };
  walk(obj, '');
  return htmlTable(['field', 'value'], rows.slice(0, 200));
}

/** A row's load per MoE decoder layer: load_per_layer (array: i-th MoE layer; object: by layer index), else the overall load. */
function layerLoads(row: MetricRow, config: ModelConfig, overall: number): Map<number, number> {
  const layers = config.moe!.layers;
  const out = new Map<number, number>(layers.map((l) => [l, overall]));
  const v = row['load_per_layer'];
  if (Array.isArray(v) && v.length === layers.length) v.forEach((x, i) => typeof x === 'number' && out.set(layers[i]!, x));
  else if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) if (typeof x === 'number' && out.has(Number(k))) out.set(Number(k), x);
  }
  return out;
}

/**
 * The runs a report covers: the directory itself when it holds metrics.jsonl, else its
 * subdirectories (two levels down) that do, oldest metrics.jsonl first.
 */
export function findRunDirs(dir: string): string[] {
  if (fs.existsSync(path.join(dir, 'metrics.jsonl'))) return [dir];
  const found: string[] = [];
  const visit = (d: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory() || e.name.startsWith('.') || e.name === 'checkpoints') continue;
      const sub = path.join(d, e.name);
      if (fs.existsSync(path.join(sub, 'metrics.jsonl'))) found.push(sub);
      else if (depth < 2) visit(sub, depth + 1);
    }
  };
  visit(dir, 1);
  return found.sort((a, b) => fs.statSync(path.join(a, 'metrics.jsonl')).mtimeMs - fs.statSync(path.join(b, 'metrics.jsonl')).mtimeMs || a.localeCompare(b));
}

export function buildRunReport(runDir: string, opts: RunReportOptions = {}): RunReport {
  const stat = fs.existsSync(runDir) ? fs.statSync(runDir) : null;
  if (!stat) throw new Error(`${runDir}: run directory not found`);
  if (!stat.isDirectory()) throw new Error(`${runDir}: not a directory (expected a run directory with metrics.jsonl)`);
  const runs = findRunDirs(runDir);
  if (runs.length === 0) throw new Error(`${path.join(runDir, 'metrics.jsonl')}: not found, and no run directory below ${runDir} has one (expected a run directory)`);
  const sections: PageSection[] = [];
  const notes: string[] = [];
  let rows = 0;
  const spans: string[] = [];
  for (const dir of runs) {
    const part = runSections(dir, opts);
    const name = runs.length > 1 ? path.relative(runDir, dir) : null;
    for (const sec of part.sections) sections.push(name ? { ...sec, title: `${name}: ${sec.title}` } : sec);
    for (const n of part.notes) notes.push(name ? `${name}: ${n}` : n);
    rows += part.rows;
    spans.push(`${name ? `${name} ` : ''}${part.rows} logged steps (${part.steps})`);
  }
  if (notes.length > 0) sections.push({ title: 'Notes', body: `<ul>${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` });
  const html = htmlPage(`moe-tune run report: ${path.basename(path.resolve(runDir))}`,
    `${path.resolve(runDir)} · ${spans.join(' · ')} · generated ${(opts.now ?? new Date()).toISOString()}`, sections);
  return { html, sections: sections.map((s) => s.title), notes, rows };
}

/** The sections of one run directory (metrics.jsonl and what the run left beside it). */
function runSections(runDir: string, opts: RunReportOptions): { sections: PageSection[]; notes: string[]; rows: number; steps: string } {
  const metricsFile = path.join(runDir, 'metrics.jsonl');
  const rows: MetricRow[] = readRunMetrics(metricsFile);
  const lastN = opts.lastN ?? 20;
  const notes: string[] = [];
  const sections: PageSection[] = [];

  // losses
  const loss = scalarSeries(rows, 'loss');
  const lm = scalarSeries(rows, 'lm_loss');
  if (loss.length || lm.length) {
    sections.push({
      title: 'Loss',
      note: 'loss: the training objective (LM loss plus weighted auxiliary losses); lm_loss: next-token cross-entropy alone.',
      body: plot('Training loss', 'nats / token', [
        ...(loss.length ? [{ name: 'loss', points: loss }] : []),
        ...(lm.length ? [{ name: 'lm_loss', points: lm, dashed: true }] : []),
      ]),
    });
  } else notes.push('no loss / lm_loss fields');
  for (const key of auxLossFields(rows)) {
    sections.push({ title: `Auxiliary loss: ${key}`, body: plot(key, 'value', [{ name: key, points: scalarSeries(rows, key) }]) });
  }

  // load
  const facts = modelFacts(runDir, opts.topK, notes);
  const load = scalarSeries(rows, 'load');
  if (load.length) {
    sections.push({
      title: 'Activated experts per token',
      note: 'Load: FLOP-costing experts per token, mean over MoE layers (null, zero and dropped selections cost nothing).',
      body: plot('Activated experts per token (load)', 'experts / token', [{ name: 'load', points: load }], {
        refLines: facts ? [{ y: facts.topK, label: `top-${facts.topK}` }] : [],
      }),
    });
  } else notes.push('no load field (a dense run, or a trainer that does not log load)');
  const moeLayers = facts?.config?.moe?.layers;
  const perLayer = perLayerLoadSeries(rows, moeLayers);
  if (perLayer.size > 0) {
    sections.push({
      title: 'Load per MoE layer',
      body: plot('Load per layer', 'experts / token', [...perLayer].map(([layer, pts]) => ({ name: `layer ${layer}`, points: pts }))),
    });
  }

  // heatmap
  const recent = recentTokensPerExpert(rows, lastN, moeLayers);
  if (recent) {
    const values = recent.counts.map((c) => {
      const sum = c.reduce((a, b) => a + b, 0);
      return c.map((v) => (sum === 0 ? 0 : (v * c.length) / sum));
    });
    const experts = Math.max(...recent.counts.map((c) => c.length));
    sections.push({
      title: 'Expert load per layer',
      note: `Tokens routed to each expert over the last ${recent.rows} logged step(s) (steps ${recent.steps[0]}-${recent.steps[1]}), divided by a uniform share: 1 is perfectly balanced.`,
      body: heatmap({
        title: 'Tokens per expert / uniform share',
        rowLabels: recent.layers.map((l) => `layer ${l}`),
        colLabels: Array.from({ length: experts }, (_, e) => String(e)),
        values,
        xLabel: 'expert',
        valueLabel: 'x uniform',
      }),
    });
  } else notes.push('no tokens_per_expert field: no expert-load heatmap');

  // FLOPs ratio
  const logged = scalarSeries(rows, 'flops_ratio');
  if (logged.length) {
    sections.push({ title: 'FLOPs ratio vs plain top-k', body: plot('FLOPs ratio (logged)', 'ratio', [{ name: 'flops_ratio', points: logged }], { refLines: [{ y: 1, label: 'top-k' }] }) });
  } else if (load.length && facts) {
    const series = [{ name: 'MoE layers (load / k)', points: load.map(([s, l]) => [s, l / facts.topK] as [number, number]) }];
    const config = facts.config;
    if (config) {
      const byStep = new Map(rows.map((r) => [r.step, r]));
      series.push({
        name: 'whole model',
        points: load.map(([step, l]) => [step, flopsForLoad(config, layerLoads(byStep.get(step)!, config, l))!.model.ratio] as [number, number]),
      });
    }
    sections.push({
      title: 'FLOPs ratio vs plain top-k',
      note: `Against top-${facts.topK} (from ${facts.source}).${config ? ' Whole model: forward FLOPs per token (attention, routers, experts at the logged load, LM head), as the router statistics count them.' : ''}`,
      body: plot('FLOPs ratio vs top-k', 'ratio', series, { refLines: [{ y: 1, label: `top-${facts.topK}` }] }),
    });
  }

  // other metrics: bookkeeping counters (epoch, tokens, elapsed time) and series that never change
  // are not worth a plot; the constant ones are listed in one line instead
  const constant: string[] = [];
  for (const key of ['lr', 'tokens_per_s', ...otherNumericFields(rows)]) {
    if (BOOKKEEPING_FIELDS.has(key)) continue;
    const pts = scalarSeries(rows, key);
    if (pts.length === 0) continue;
    if (pts.length > 1 && pts.every((p) => p[1] === pts[0]![1])) {
      constant.push(`${key} = ${pts[0]![1]}`);
      continue;
    }
    sections.push({ title: key === 'lr' ? 'Learning rate' : key === 'tokens_per_s' ? 'Throughput' : key, body: plot(key, key === 'tokens_per_s' ? 'tokens / s' : key, [{ name: key, points: pts }], { width: 420, height: 260 }) });
  }
  if (constant.length > 0) notes.push(`constant over the run: ${constant.join(', ')}`);

  // results and recipe left in the run directory
  for (const file of findFiles(runDir, (n) => /^eval.*\.json$/i.test(n))) {
    try {
      sections.push({ title: `Evaluation: ${path.basename(file)}`, body: scalarTable(readJsonObject(file)) });
    } catch (err) {
      notes.push((err as Error).message);
    }
  }
  for (const file of [path.join(runDir, 'sweep.json'), path.join(runDir, 'sweep', 'sweep.json')]) {
    if (!fs.existsSync(file)) continue;
    try {
      const sweep = readJsonObject(file) as unknown as SweepResult;
      if (sweep.baseline && Array.isArray(sweep.points)) sections.push({ title: 'Router sweep', body: sweepPlot(sweep) });
    } catch (err) {
      notes.push((err as Error).message);
    }
  }
  // the recipe once: recipe.yaml and recipe.json hold the same resolved recipe; prefer the YAML
  const recipes = findFiles(runDir, (n) => /recipe/i.test(n) && /\.(ya?ml|json)$/i.test(n));
  const stems = new Set(recipes.filter((f) => /\.ya?ml$/i.test(f)).map((f) => f.replace(/\.ya?ml$/i, '')));
  for (const file of recipes.filter((f) => !(/\.json$/i.test(f) && stems.has(f.replace(/\.json$/i, ''))))) {
    sections.push({ title: `Recipe: ${path.basename(file)}`, body: `<pre>${esc(fs.readFileSync(file, 'utf8'))}</pre>` });
  }
  return { sections, notes, rows: rows.length, steps: `${rows[0]!.step}-${rows[rows.length - 1]!.step}` };
}
