/**
 * The SVG plotting module: polyline points are the data mapped through the axis domains onto the
 * plot area (computed here from the attributes the SVG carries), gaps split lines, ticks are nice,
 * text is escaped; heatmap cells carry their values and the scale's end colours.
 */
import { describe, expect, it } from 'vitest';
import { heatmap, sequentialColor } from '../src/report/heatmap.js';
import { linePlot } from '../src/report/line-plot.js';
import { formatTick, niceDomain, niceTicks } from '../src/report/scale.js';

function attr(svg: string, re: RegExp): string {
  const m = re.exec(svg);
  if (!m) throw new Error(`no match for ${re}`);
  return m[1]!;
}

function polylines(svg: string): { series: string; points: [number, number][] }[] {
  return [...svg.matchAll(/<polyline class="series" data-series="([^"]*)"[^>]* points="([^"]*)"/g)].map((m) => ({
    series: m[1]!,
    points: m[2]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]),
  }));
}

describe('line plot', () => {
  const data: [number, number][] = [[0, 3.2], [10, 2.9], [20, 2.5], [35, 2.41], [50, 2.2]];
  const svg = linePlot({ title: 'Loss <train> & "eval"', xLabel: 'step', yLabel: 'nats', series: [
    { name: 'loss', points: data },
    { name: 'gappy', points: [[0, 1], [10, 1.5], [20, Number.NaN], [30, 2], [40, 2.5]] },
  ] });

  it('polyline points match the data scaled onto the plot area', () => {
    const [x0, x1] = attr(svg, /data-x-domain="([^"]*)"/).split(' ').map(Number) as [number, number];
    const [y0, y1] = attr(svg, /data-y-domain="([^"]*)"/).split(' ').map(Number) as [number, number];
    const area = /<rect class="plot-area" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/.exec(svg)!;
    const [left, top, w, h] = area.slice(1, 5).map(Number) as [number, number, number, number];
    expect(x0).toBeLessThanOrEqual(0);
    expect(x1).toBeGreaterThanOrEqual(50);
    expect(y0).toBeLessThanOrEqual(1);
    expect(y1).toBeGreaterThanOrEqual(3.2);
    const lines = polylines(svg);
    const loss = lines.find((l) => l.series === 'loss')!;
    expect(loss.points).toHaveLength(data.length);
    loss.points.forEach(([px, py], i) => {
      const [x, y] = data[i]!;
      expect(px).toBeCloseTo(left + ((x - x0) / (x1 - x0)) * w, 1);
      expect(py).toBeCloseTo(top + h - ((y - y0) / (y1 - y0)) * h, 1);
    });
    // larger y is higher on screen
    expect(loss.points[0]![1]).toBeLessThan(loss.points[4]![1]);
  });

  it('a missing value splits the line; the legend lists every series; text is escaped', () => {
    const gappy = polylines(svg).filter((l) => l.series === 'gappy');
    expect(gappy.map((g) => g.points.length)).toEqual([2, 2]);
    expect(svg).toContain('Loss &lt;train&gt; &amp; &quot;eval&quot;');
    expect((svg.match(/class="legend-item"/g) ?? []).length).toBe(2);
    expect(svg).not.toMatch(/NaN/);
  });

  it('a one-point series is drawn as a marker', () => {
    const one = linePlot({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'p', points: [[2, 5]] }] });
    expect(one).toMatch(/<circle class="marker" data-series="p"/);
    expect(polylines(one)).toHaveLength(0);
  });
});

describe('scales', () => {
  it('nice ticks and domains', () => {
    expect(niceTicks(0, 1, 5).ticks).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 1000, 5).ticks).toEqual([0, 200, 400, 600, 800, 1000]);
    expect(niceDomain([2.2, 3.2])).toEqual([2.2, 3.2]);
    expect(niceDomain([0.13, 0.97])).toEqual([0, 1]);
    expect(niceDomain([5, 5])).toEqual([4.4, 5.6]);
    expect(formatTick(0.2, 0.2)).toBe('0.2');
    expect(formatTick(25000, 5000)).toBe('25k');
  });
});

describe('heatmap', () => {
  it('one rect per cell with its value; the ends of the scale get the end colours', () => {
    const values = [[0.5, 1, 1.5], [2, 1, 0]];
    const svg = heatmap({ title: 'load', rowLabels: ['layer 0', 'layer 1'], colLabels: ['0', '1', '2'], values });
    const cells = [...svg.matchAll(/<rect class="cell"[^>]* fill="(#[0-9a-f]{6})" data-value="([^"]*)"/g)];
    expect(cells).toHaveLength(6);
    expect(cells.map((c) => Number(c[2]))).toEqual(values.flat());
    const fillOf = (v: number): string => cells.find((c) => Number(c[2]) === v)![1]!;
    expect(fillOf(0)).toBe(sequentialColor(0));
    expect(fillOf(2)).toBe(sequentialColor(1));
    expect(sequentialColor(0)).toBe('#23175f');
    expect(sequentialColor(1)).toBe('#fae63c');
    expect(svg).toMatch(/class="colour-bar"/);
  });
});
