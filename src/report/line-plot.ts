/**
 * A line plot as standalone SVG: frame, grid, nice ticks on both axes, one polyline per series
 * (a gap wherever a y value is missing or not finite), optional point markers and labels,
 * horizontal reference lines, a legend. No scripts, no external resources.
 *
 * The SVG carries `data-x-domain` / `data-y-domain` and a `rect.plot-area`, so a reader (or a
 * test) can map data to pixels: x_px = left + (x - x0) / (x1 - x0) * width, and
 * y_px = top + height - (y - y0) / (y1 - y0) * height.
 */
import { formatTick, linearScale, niceDomain, niceTicks, type LinearScale } from './scale.js';
import { el, esc, px, seriesColor, text } from './svg.js';

export interface Series {
  name: string;
  points: ReadonlyArray<readonly [number, number]>;
  color?: string;
  dashed?: boolean;
  /** Draw a circle at every point (always on for a series with one point). */
  markers?: boolean;
  /** A label drawn next to each point (same length as points). */
  pointLabels?: readonly string[];
}

export interface ReferenceLine {
  y: number;
  label: string;
}

export interface LinePlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  width?: number;
  height?: number;
  xDomain?: [number, number];
  yDomain?: [number, number];
  /** Make the y axis include 0. */
  yIncludeZero?: boolean;
  refLines?: readonly ReferenceLine[];
}

export interface PlotFrame {
  width: number;
  height: number;
  /** The plot area inside the margins. */
  left: number;
  top: number;
  innerWidth: number;
  innerHeight: number;
  x: LinearScale;
  y: LinearScale;
}

const MARGIN = { left: 64, right: 16, top: 34, bottom: 46 };
const LEGEND_ROW = 18;

function legendRows(n: number): number {
  return n <= 1 ? 0 : Math.ceil(n / 4);
}

/** The frame (pixel layout and scales) a plot with these options uses. */
export function lineFrame(opts: LinePlotOptions): PlotFrame {
  const width = opts.width ?? 640;
  const height = opts.height ?? 340;
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of opts.series) {
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      xs.push(x);
      ys.push(y);
    }
  }
  for (const r of opts.refLines ?? []) if (Number.isFinite(r.y)) ys.push(r.y);
  const xDomain = opts.xDomain ?? niceDomain(xs, 6);
  const yDomain = opts.yDomain ?? niceDomain(ys, 5, opts.yIncludeZero ?? false);
  const legend = legendRows(opts.series.length) * LEGEND_ROW;
  const left = MARGIN.left;
  const top = MARGIN.top + legend;
  const innerWidth = width - MARGIN.left - MARGIN.right;
  const innerHeight = height - top - MARGIN.bottom;
  return {
    width,
    height,
    left,
    top,
    innerWidth,
    innerHeight,
    x: linearScale(xDomain, [left, left + innerWidth]),
    y: linearScale(yDomain, [top + innerHeight, top]),
  };
}

interface PointLabel {
  text: string;
  /** The point, in pixels. */
  x: number;
  y: number;
  color: string;
}

interface PlacedLabel {
  text: string;
  x: number;
  y: number;
  anchor: 'start' | 'end';
  color: string;
}

const LABEL_FONT = 9;
/** Glyph advance of the 9 px sans-serif digits and punctuation labels use, with a margin (px). */
const LABEL_CHAR_W = 5.6;
const LABEL_H = 10;

type Box = [number, number, number, number];

function overlaps(a: Box, b: Box): boolean {
  return a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
}

/**
 * Point labels that never overlap each other or a point marker: each label tries four places around
 * its point (above right, below right, above left, below left) and takes the first that is inside the
 * plot area and free; a label with no free place is left out (thinned), since a dense sweep has more
 * labels than room. Widths are estimated from the character count (LABEL_CHAR_W errs wide).
 */
export function placeLabels(labels: readonly PointLabel[], f: PlotFrame): PlacedLabel[] {
  const taken: Box[] = labels.map((l) => [l.x - 3.5, l.y - 3.5, l.x + 3.5, l.y + 3.5]);
  const out: PlacedLabel[] = [];
  for (const l of labels) {
    const w = l.text.length * LABEL_CHAR_W;
    const candidates: { box: Box; x: number; y: number; anchor: 'start' | 'end' }[] = [
      { box: [l.x + 5, l.y - 5 - LABEL_H, l.x + 5 + w, l.y - 5], x: l.x + 5, y: l.y - 6, anchor: 'start' },
      { box: [l.x + 5, l.y + 5, l.x + 5 + w, l.y + 5 + LABEL_H], x: l.x + 5, y: l.y + 4 + LABEL_H, anchor: 'start' },
      { box: [l.x - 5 - w, l.y - 5 - LABEL_H, l.x - 5, l.y - 5], x: l.x - 5, y: l.y - 6, anchor: 'end' },
      { box: [l.x - 5 - w, l.y + 5, l.x - 5, l.y + 5 + LABEL_H], x: l.x - 5, y: l.y + 4 + LABEL_H, anchor: 'end' },
    ];
    const inside = (b: Box): boolean => b[0] >= f.left && b[2] <= f.left + f.innerWidth && b[1] >= f.top && b[3] <= f.top + f.innerHeight;
    const c = candidates.find((k) => inside(k.box) && !taken.some((t) => overlaps(k.box, t)));
    if (!c) continue;
    taken.push(c.box);
    out.push({ text: l.text, x: c.x, y: c.y, anchor: c.anchor, color: l.color });
  }
  return out;
}

/** Runs of consecutive finite points (a polyline each). */
function runs(points: ReadonlyArray<readonly [number, number]>): (readonly [number, number])[][] {
  const out: (readonly [number, number])[][] = [];
  let cur: (readonly [number, number])[] = [];
  for (const p of points) {
    if (Number.isFinite(p[0]) && Number.isFinite(p[1])) cur.push(p);
    else if (cur.length) {
      out.push(cur);
      cur = [];
    }
  }
  if (cur.length) out.push(cur);
  return out;
}

export function linePlot(opts: LinePlotOptions): string {
  const f = lineFrame(opts);
  const { x, y } = f;
  const parts: string[] = [];
  parts.push(el('title', {}, esc(opts.title)));
  parts.push(el('rect', { x: 0, y: 0, width: f.width, height: f.height, fill: '#ffffff' }));
  parts.push(text(opts.title, { x: f.width / 2, y: 18, 'text-anchor': 'middle', 'font-size': 14, 'font-weight': 'bold', class: 'title' }));

  // grid and ticks
  const xt = niceTicks(x.domain[0], x.domain[1], 6);
  const yt = niceTicks(y.domain[0], y.domain[1], 5);
  const grid: string[] = [];
  const axes: string[] = [];
  for (const t of xt.ticks) {
    const X = x(t);
    grid.push(el('line', { x1: X, y1: f.top, x2: X, y2: f.top + f.innerHeight }));
    axes.push(el('line', { x1: X, y1: f.top + f.innerHeight, x2: X, y2: f.top + f.innerHeight + 4, stroke: '#333' }));
    axes.push(text(formatTick(t, xt.step), { x: X, y: f.top + f.innerHeight + 16, 'text-anchor': 'middle', class: 'tick' }));
  }
  for (const t of yt.ticks) {
    const Y = y(t);
    grid.push(el('line', { x1: f.left, y1: Y, x2: f.left + f.innerWidth, y2: Y }));
    axes.push(el('line', { x1: f.left - 4, y1: Y, x2: f.left, y2: Y, stroke: '#333' }));
    axes.push(text(formatTick(t, yt.step), { x: f.left - 7, y: Y + 4, 'text-anchor': 'end', class: 'tick' }));
  }
  parts.push(el('g', { class: 'grid', stroke: '#e5e5e5', 'stroke-width': 1 }, grid));
  parts.push(el('rect', { class: 'plot-area', x: f.left, y: f.top, width: f.innerWidth, height: f.innerHeight, fill: 'none', stroke: '#333' }));
  parts.push(el('g', { class: 'axes', 'font-size': 11, fill: '#333' }, axes));
  parts.push(text(opts.xLabel, { x: f.left + f.innerWidth / 2, y: f.height - 8, 'text-anchor': 'middle', 'font-size': 12, class: 'axis-label' }));
  const yMid = f.top + f.innerHeight / 2;
  parts.push(text(opts.yLabel, { x: 14, y: yMid, 'text-anchor': 'middle', 'font-size': 12, transform: `rotate(-90 14 ${px(yMid)})`, class: 'axis-label' }));

  // reference lines
  const refs: string[] = [];
  for (const r of opts.refLines ?? []) {
    if (!Number.isFinite(r.y)) continue;
    const Y = y(r.y);
    refs.push(el('line', { x1: f.left, y1: Y, x2: f.left + f.innerWidth, y2: Y, stroke: '#555', 'stroke-dasharray': '2 3' }));
    refs.push(text(r.label, { x: f.left + f.innerWidth - 4, y: Y - 4, 'text-anchor': 'end', 'font-size': 10, fill: '#555' }));
  }
  if (refs.length) parts.push(el('g', { class: 'ref-lines' }, refs));

  // data
  const marks: string[] = [];
  const labels: PointLabel[] = [];
  opts.series.forEach((s, i) => {
    const color = s.color ?? seriesColor(i);
    for (const run of runs(s.points)) {
      if (run.length >= 2) {
        marks.push(el('polyline', {
          class: 'series', 'data-series': s.name, fill: 'none', stroke: color, 'stroke-width': 1.8,
          'stroke-dasharray': s.dashed ? '6 4' : undefined, 'stroke-linejoin': 'round',
          points: run.map(([a, b]) => `${px(x(a))},${px(y(b))}`).join(' '),
        }));
      }
    }
    const withMarkers = s.markers || s.points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b)).length === 1;
    s.points.forEach(([a, b], j) => {
      if (!Number.isFinite(a) || !Number.isFinite(b)) return;
      if (withMarkers) marks.push(el('circle', { class: 'marker', 'data-series': s.name, cx: x(a), cy: y(b), r: 3.2, fill: color }));
      const label = s.pointLabels?.[j];
      if (label) labels.push({ text: label, x: x(a), y: y(b), color });
    });
  });
  parts.push(el('g', { class: 'marks' }, marks));
  const placed = placeLabels(labels, f);
  if (placed.length) parts.push(el('g', { class: 'point-labels', 'font-size': LABEL_FONT }, placed.map((l) => text(l.text, { x: l.x, y: l.y, 'text-anchor': l.anchor, fill: l.color, class: 'point-label' }))));

  // legend
  if (opts.series.length > 1) {
    const colW = (f.width - MARGIN.left - MARGIN.right) / 4;
    const items = opts.series.map((s, i) => {
      const lx = MARGIN.left + (i % 4) * colW;
      const ly = 30 + Math.floor(i / 4) * LEGEND_ROW;
      const color = s.color ?? seriesColor(i);
      return el('g', { class: 'legend-item' }, [
        el('line', { x1: lx, y1: ly, x2: lx + 18, y2: ly, stroke: color, 'stroke-width': 2.5, 'stroke-dasharray': s.dashed ? '6 4' : undefined }),
        text(s.name, { x: lx + 23, y: ly + 4, 'font-size': 11 }),
      ]);
    });
    parts.push(el('g', { class: 'legend' }, items));
  }

  return el('svg', {
    xmlns: 'http://www.w3.org/2000/svg', class: 'plot line-plot', width: f.width, height: f.height,
    viewBox: `0 0 ${f.width} ${f.height}`, role: 'img', 'aria-label': opts.title, 'font-family': 'sans-serif',
    'data-x-domain': `${x.domain[0]} ${x.domain[1]}`, 'data-y-domain': `${y.domain[0]} ${y.domain[1]}`,
  }, parts);
}
