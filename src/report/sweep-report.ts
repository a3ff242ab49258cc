/**
 * Writes a router sweep's outputs into a directory: sweep.csv and sweep.json (the table),
 * sweep.svg (the trade-off plot: NLL or accuracy against activated experts per token) and
 * sweep.html (a self-contained page with the plot, load against each swept key, and the table).
 * Each file is written to a temp name and renamed.
 */
import * as path from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../io/index.js';
import type { SweepPoint, SweepResult } from '../eval/router-sweep.js';
import { htmlPage, htmlTable } from './html-page.js';
import { linePlot, type Series } from './line-plot.js';
import { formatValue } from './scale.js';

export interface SweepMeta {
  model: string;
  data: string;
  backend: string;
  createdAt: string;
}

export interface SweepFiles {
  csv: string;
  json: string;
  svg: string;
  html: string;
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function sweepCsv(result: SweepResult): string {
  const rows = [result.baseline, ...result.points];
  const layers = Math.max(0, ...rows.map((r) => r.layerLoad.length));
  const header = ['series', 'router', 'value', 'load', 'flops_ratio_moe', 'flops_ratio_model', 'nll', 'ppl', 'accuracy', 'acc_norm',
    'drop_rate', 'bypass_rate', 'tokens', 'seconds', ...Array.from({ length: layers }, (_, i) => `load_layer_${i}`)];
  const lines = [header.join(',')];
  for (const r of rows) {
    lines.push([r.series, r.router, r.value, r.load, r.flops?.moe, r.flops?.model, r.nll, r.ppl, r.accuracy, r.accNorm,
      r.dropRate, r.bypassRate, r.tokens, Number(r.seconds.toFixed(3)), ...r.layerLoad].map(csvCell).join(','));
  }
  return `${lines.join('\n')}\n`;
}

function metricOf(r: SweepPoint, metric: SweepResult['metric']): number {
  return (metric === 'nll' ? r.nll : r.accuracy) ?? Number.NaN;
}

export function sweepPlot(result: SweepResult, title = 'Router sweep'): string {
  const metric = result.metric;
  const series: Series[] = [];
  const bySeries = new Map<string, SweepPoint[]>();
  for (const p of result.points) {
    const list = bySeries.get(p.series);
    if (list) list.push(p);
    else bySeries.set(p.series, [p]);
  }
  for (const [name, pts] of bySeries) {
    series.push({
      name,
      points: pts.map((p) => [p.load, metricOf(p, metric)] as const),
      markers: true,
      pointLabels: pts.map((p) => (p.value === null ? '' : String(p.value))),
    });
  }
  series.push({ name: `default (${result.baseline.router})`, points: [[result.baseline.load, metricOf(result.baseline, metric)]], markers: true, color: '#000000' });
  return linePlot({
    title,
    xLabel: 'activated experts per token (load)',
    yLabel: metric === 'nll' ? 'NLL (nats / token)' : 'accuracy',
    series,
  });
}

function loadPlots(result: SweepResult): string[] {
  const out: string[] = [];
  for (const s of result.series) {
    if (!s.key) continue;
    const pts = result.points.filter((p) => p.series === s.source && typeof p.value === 'number');
    if (pts.length < 2) continue;
    out.push(linePlot({
      title: `Load against ${s.key} (${s.name})`,
      xLabel: s.key,
      yLabel: 'experts per token',
      series: [{ name: s.source, points: pts.map((p) => [p.value as number, p.load] as const), markers: true }],
      refLines: [{ y: result.baseline.load, label: `default ${formatValue(result.baseline.load)}` }],
      width: 420,
      height: 280,
    }));
  }
  return out;
}

export function sweepHtml(result: SweepResult, meta: SweepMeta): string {
  const rows = [result.baseline, ...result.points];
  const metricName = result.metric === 'nll' ? 'NLL' : 'accuracy';
  const table = htmlTable(
    ['router', 'load', 'FLOPs (MoE)', 'FLOPs (model)', result.metric === 'nll' ? 'NLL' : 'acc', result.metric === 'nll' ? 'PPL' : 'acc_norm', 'drop rate'],
    rows.map((r) => [
      r.series === 'default' ? `${r.router} (default)` : r.router,
      formatValue(r.load),
      r.flops ? formatValue(r.flops.moe) : '',
      r.flops ? formatValue(r.flops.model) : '',
      formatValue(metricOf(r, result.metric), 6),
      formatValue((result.metric === 'nll' ? r.ppl : r.accNorm) ?? Number.NaN, 6),
      formatValue(r.dropRate),
    ]),
  );
  return htmlPage(`moe-tune router sweep: ${path.basename(meta.model)}`, `model ${meta.model} · data ${meta.data} · backend ${meta.backend} · ${meta.createdAt}`, [
    {
      title: `${metricName} against activated experts per token`,
      note: 'Each point evaluates the same checkpoint under one router (no retraining); labels give the swept value. FLOPs ratios are against the checkpoint\'s nominal top-k.',
      body: sweepPlot(result, `${metricName} vs load`),
    },
    ...loadPlots(result).map((svg) => ({ title: 'Load against the swept value', body: svg })),
    { title: 'Table', body: table },
  ]);
}

/** Writes sweep.{csv,json,svg,html} into `dir` (created when missing). */
export function writeSweepOutputs(result: SweepResult, dir: string, meta: SweepMeta): SweepFiles {
  const files: SweepFiles = {
    csv: path.join(dir, 'sweep.csv'),
    json: path.join(dir, 'sweep.json'),
    svg: path.join(dir, 'sweep.svg'),
    html: path.join(dir, 'sweep.html'),
  };
  writeFileAtomic(files.csv, sweepCsv(result));
  writeJsonAtomic(files.json, { ...meta, ...result });
  writeFileAtomic(files.svg, `<?xml version="1.0" encoding="UTF-8"?>\n${sweepPlot(result)}\n`);
  writeFileAtomic(files.html, sweepHtml(result, meta));
  return files;
}
