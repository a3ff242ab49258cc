/**
 * Rendering an HTML page in headless Chromium (Debian's `chromium`, which .ci/run installs) and
 * reading back what the browser drew: page errors, and per plot (`svg.plot`) the data marks with a
 * non-empty box, plus the boxes of point labels. An instrumented copy of the page carries a script
 * that measures after load and writes JSON into the DOM; `--dump-dom` returns it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface PlotCheck {
  /** The plot's <title> (or aria-label). */
  title: string;
  kind: string;
  width: number;
  height: number;
  /** Data marks (polylines, markers, heatmap cells) with a non-empty rendered box. */
  drawnMarks: number;
  /** Point labels' rendered boxes [x, y, w, h]. */
  labels: [number, number, number, number][];
}

export interface PageCheck {
  errors: string[];
  plots: PlotCheck[];
  singleValues: number;
}

export function findChromium(): string | null {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return null;
}

const PROBE = `<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push('error: ' + (e.message || String(e))); });
(function () { var ce = console.error; console.error = function () { window.__errors.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); ce.apply(console, arguments); }; })();
window.addEventListener('load', function () {
  var plots = Array.prototype.map.call(document.querySelectorAll('svg.plot'), function (svg) {
    var r = svg.getBoundingClientRect();
    var marks = svg.querySelectorAll('polyline.series, circle.marker, rect.cell');
    var drawn = 0;
    Array.prototype.forEach.call(marks, function (m) { var b = m.getBBox(); if (b.width > 0 || b.height > 0) drawn++; });
    var labels = Array.prototype.map.call(svg.querySelectorAll('.point-labels text'), function (t) { var b = t.getBBox(); return [b.x, b.y, b.width, b.height]; });
    var t = svg.querySelector('title');
    return { title: t ? t.textContent : (svg.getAttribute('aria-label') || ''), kind: svg.getAttribute('class'), width: r.width, height: r.height, drawnMarks: drawn, labels: labels };
  });
  var out = document.createElement('pre');
  out.id = '__page_check';
  out.textContent = JSON.stringify({ errors: window.__errors, plots: plots, singleValues: document.querySelectorAll('.single-value').length });
  document.body.appendChild(out);
});
</script>`;

/** Loads `htmlFile` in headless Chromium and returns what it drew (see the file comment). */
export function checkPageInChromium(chromium: string, htmlFile: string, workDir: string): PageCheck {
  const html = fs.readFileSync(htmlFile, 'utf8');
  const probe = path.join(workDir, `probe-${path.basename(htmlFile)}`);
  fs.writeFileSync(probe, html.replace(/<head>/i, `<head>${PROBE}`));
  const r = spawnSync(chromium, [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions',
    `--user-data-dir=${path.join(workDir, 'chromium-profile')}`, '--virtual-time-budget=10000', '--dump-dom', `file://${probe}`,
  ], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  const m = /<pre id="__page_check">([\s\S]*?)<\/pre>/.exec(r.stdout);
  if (!m) throw new Error(`chromium did not render ${htmlFile} (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  const text = m[1]!.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  return JSON.parse(text) as PageCheck;
}

/** Pairs of boxes [x, y, w, h] that overlap by more than `tolerance` px in both directions. */
export function overlappingBoxes(boxes: readonly [number, number, number, number][], tolerance = 0.5): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]!, b = boxes[j]!;
      const ox = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
      const oy = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
      if (ox > tolerance && oy > tolerance) out.push([i, j]);
    }
  }
  return out;
}
