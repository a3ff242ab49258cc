/**
 * A heatmap as standalone SVG: one rect per cell coloured on a sequential scale (dark blue ->
 * teal -> yellow), row and column labels, and a colour bar with its own ticks. Each cell carries
 * its value in `data-value` and a tooltip.
 */
import { formatTick, formatValue, linearScale, niceTicks } from './scale.js';
import { el, esc, px, text } from './svg.js';

export interface HeatmapOptions {
  title: string;
  rowLabels: readonly string[];
  colLabels: readonly string[];
  /** values[row][col]; non-finite cells are drawn grey. */
  values: readonly (readonly number[])[];
  xLabel?: string;
  yLabel?: string;
  /** Label of the colour bar. */
  valueLabel?: string;
  /** Colour scale domain (default: the values' min and max). */
  domain?: [number, number];
  width?: number;
}

/** Colour stops of the sequential scale (ours, picked to stay readable in grey print). */
const STOPS: [number, number, number][] = [
  [35, 23, 95], [38, 84, 140], [32, 146, 140], [94, 201, 98], [250, 230, 60],
];

/** Colour of t in [0, 1] on the sequential scale. */
export function sequentialColor(t: number): string {
  const c = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(c));
  const f = c - i;
  const a = STOPS[i]!;
  const b = STOPS[i + 1]!;
  const mix = (k: number): string => Math.round(a[k]! + (b[k]! - a[k]!) * f).toString(16).padStart(2, '0');
  return `#${mix(0)}${mix(1)}${mix(2)}`;
}

export function heatmap(opts: HeatmapOptions): string {
  const rows = opts.rowLabels.length;
  const cols = opts.colLabels.length;
  const width = opts.width ?? 640;
  const left = 86;
  const barW = 70;
  const top = 44;
  const bottom = 44;
  const cell = Math.max(6, Math.min(56, (width - left - barW - 16) / Math.max(1, cols)));
  const cellH = Math.max(10, Math.min(32, cell));
  const height = top + rows * cellH + bottom;
  const flat = opts.values.flat().filter(Number.isFinite);
  let [lo, hi] = opts.domain ?? [flat.length ? Math.min(...flat) : 0, flat.length ? Math.max(...flat) : 1];
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const t = (v: number): number => (v - lo) / (hi - lo);

  const parts: string[] = [el('title', {}, esc(opts.title))];
  parts.push(el('rect', { x: 0, y: 0, width, height, fill: '#ffffff' }));
  parts.push(text(opts.title, { x: width / 2, y: 18, 'text-anchor': 'middle', 'font-size': 14, 'font-weight': 'bold', class: 'title' }));
  const cells: string[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = opts.values[r]?.[c] ?? Number.NaN;
      cells.push(el('rect', {
        class: 'cell', x: left + c * cell, y: top + r * cellH, width: cell, height: cellH,
        fill: Number.isFinite(v) ? sequentialColor(t(v)) : '#cccccc', 'data-value': Number.isFinite(v) ? String(v) : 'NaN',
      }, el('title', {}, esc(`${opts.rowLabels[r]}, ${opts.colLabels[c]}: ${formatValue(v)}`))));
    }
  }
  parts.push(el('g', { class: 'marks' }, cells));
  const labels: string[] = [];
  opts.rowLabels.forEach((l, r) => labels.push(text(l, { x: left - 6, y: top + r * cellH + cellH / 2 + 4, 'text-anchor': 'end' })));
  const every = Math.max(1, Math.ceil(cols / Math.max(1, Math.floor((cols * cell) / 28))));
  opts.colLabels.forEach((l, c) => {
    if (c % every === 0) labels.push(text(l, { x: left + c * cell + cell / 2, y: top + rows * cellH + 14, 'text-anchor': 'middle' }));
  });
  parts.push(el('g', { class: 'axes', 'font-size': 11, fill: '#333' }, labels));
  if (opts.xLabel) parts.push(text(opts.xLabel, { x: left + (cols * cell) / 2, y: height - 8, 'text-anchor': 'middle', 'font-size': 12 }));
  if (opts.yLabel) {
    const yMid = top + (rows * cellH) / 2;
    parts.push(text(opts.yLabel, { x: 14, y: yMid, 'text-anchor': 'middle', 'font-size': 12, transform: `rotate(-90 14 ${px(yMid)})` }));
  }

  // colour bar: 24 steps from lo (bottom) to hi (top), with ticks
  const bx = left + cols * cell + 18;
  const bh = Math.max(60, rows * cellH);
  const steps = 24;
  const bar: string[] = [];
  for (let i = 0; i < steps; i++) {
    bar.push(el('rect', { x: bx, y: top + bh - ((i + 1) * bh) / steps, width: 12, height: bh / steps + 0.5, fill: sequentialColor((i + 0.5) / steps) }));
  }
  const scale = linearScale([lo, hi], [top + bh, top]);
  const ticks = niceTicks(lo, hi, 4);
  for (const v of ticks.ticks) bar.push(text(formatTick(v, ticks.step), { x: bx + 16, y: scale(v) + 4, 'font-size': 10 }));
  if (opts.valueLabel) bar.push(text(opts.valueLabel, { x: bx, y: top - 12, 'font-size': 10 }));
  parts.push(el('g', { class: 'colour-bar' }, bar));

  const totalW = Math.max(width, bx + barW);
  return el('svg', {
    xmlns: 'http://www.w3.org/2000/svg', class: 'plot heatmap', width: totalW, height: Math.max(height, top + bh + bottom),
    viewBox: `0 0 ${totalW} ${Math.max(height, top + bh + bottom)}`, role: 'img', 'aria-label': opts.title, 'font-family': 'sans-serif',
  }, parts);
}
