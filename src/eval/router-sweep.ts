/**
 * A post-hoc router sweep (paper 003's Table 7 trade-off, for any checkpoint): evaluate one model
 * under a range of routers and record the quality (NLL, or multiple-choice accuracy) against the
 * activated experts per token.
 *
 * Ranges: `NAME:key=a..b:step,other=v` expands key over a, a + step, ..., up to b (inclusive, with
 * a tolerance of 1e-9 steps; step defaults to 1); at most one key per spec may be a range, and a
 * spec without a range is one point.
 */
import { createRouter, parseRouterSpec, routerDefaults } from '../routers/registry.js';
import type { Router, RouterSpec } from '../routers/router.js';
import type { RouterStatsSummary } from '../routers/stats.js';
import { formatRouterSpec } from './router-choice.js';

export const MAX_SWEEP_POINTS = 1000;

export interface RouterSeries {
  /** The spec as the user wrote it (e.g. top-p:p=0.1..0.9:0.1). */
  source: string;
  name: string;
  /** The swept key, or null for a single spec. */
  key: string | null;
  specs: RouterSpec[];
}

function parseNumber(s: string, what: string, source: string): number {
  const v = Number(s);
  if (s.trim() === '' || !Number.isFinite(v)) throw new Error(`router range '${source}': ${what} '${s}' is not a number`);
  return v;
}

/** Expands `a..b[:step]` into its values. */
export function expandRange(text: string, source: string): number[] {
  const m = /^(.+?)\.\.(.+?)(?::(.+))?$/.exec(text.trim());
  if (!m) throw new Error(`router range '${source}': expected a..b or a..b:step, got '${text}'`);
  const a = parseNumber(m[1]!, 'start', source);
  const b = parseNumber(m[2]!, 'end', source);
  const step = m[3] === undefined ? 1 : parseNumber(m[3], 'step', source);
  if (!(step > 0)) throw new Error(`router range '${source}': step must be > 0, got ${step}`);
  if (b < a) throw new Error(`router range '${source}': end ${b} is below start ${a}`);
  const n = Math.floor((b - a) / step + 1e-9) + 1;
  if (n > MAX_SWEEP_POINTS) throw new Error(`router range '${source}': ${n} points (at most ${MAX_SWEEP_POINTS})`);
  return Array.from({ length: n }, (_, i) => Number((a + i * step).toPrecision(12)));
}

/** Parses one --router value of the sweep command; every expanded spec is validated by the registry. */
export function parseRouterSeries(text: string): RouterSeries {
  const colon = text.indexOf(':');
  const name = (colon < 0 ? text : text.slice(0, colon)).trim();
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  const fixed: [string, string][] = [];
  let range: { key: string; values: number[] } | null = null;
  if (rest.trim() !== '') {
    for (const part of rest.split(',')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new Error(`router spec '${text}': expected key=value, got '${part}'`);
      const key = part.slice(0, eq).trim();
      const value = part.slice(eq + 1).trim();
      if (value.includes('..')) {
        if (range) throw new Error(`router spec '${text}': only one key may be a range (${range.key} and ${key} are)`);
        range = { key, values: expandRange(value, text) };
      } else fixed.push([key, value]);
    }
  }
  const specText = (extra: [string, string] | null): string => {
    const kv = extra ? [...fixed, extra] : fixed;
    return kv.length === 0 ? name : `${name}:${kv.map(([k, v]) => `${k}=${v}`).join(',')}`;
  };
  const specs = range ? range.values.map((v) => parseRouterSpec(specText([range!.key, String(v)]))) : [parseRouterSpec(specText(null))];
  // the label says every value in force, defaults included (threshold:t=0.5..0.9 runs at capacity=1)
  const given = new Set([...fixed.map(([k]) => k), ...(range ? [range.key] : [])]);
  const implied = numericDefaults(name).filter(([k]) => !given.has(k)).map(([k, v]) => `${k}=${String(v)}`);
  const source = implied.length === 0 ? text : `${text}${colon < 0 || rest.trim() === '' ? ':' : ','}${implied.join(',')}`;
  return { source, name, key: range?.key ?? null, specs };
}

/**
 * A swept router as text: the keys as given, then the numeric defaults in force
 * (threshold:t=0.5,capacity=1; expert-choice:capacity=2). Mode switches left at their default
 * (renormalize=true, mapping=zero) are not repeated on every label.
 */
export function numericDefaults(name: string): [string, number][] {
  return Object.entries(routerDefaults(name)).filter((e): e is [string, number] => typeof e[1] === 'number');
}

export function routerLabel(spec: RouterSpec): string {
  const implied = numericDefaults(spec.name).filter(([k]) => spec[k] === undefined);
  return formatRouterSpec({ ...spec, ...Object.fromEntries(implied) } as RouterSpec);
}

/** What one evaluation under one router measured. */
export interface SweepMeasurement {
  nll?: number;
  ppl?: number;
  tokens?: number;
  accuracy?: number;
  accNorm?: number;
  routerStats: RouterStatsSummary | null;
}

export interface SweepPoint {
  /** The series (the --router value) this point belongs to; "default" for the model's own router. */
  series: string;
  router: string;
  spec: RouterSpec | null;
  /** Value of the swept key, when the series has one. */
  value: number | string | boolean | null;
  /** Activated (FLOP-costing) experts per token. */
  load: number;
  /** FLOPs against the checkpoint's plain top-k: MoE layers and whole model (ratios). */
  flops: { moe: number; model: number } | null;
  dropRate: number;
  bypassRate: number;
  nll: number | null;
  ppl: number | null;
  tokens: number | null;
  accuracy: number | null;
  accNorm: number | null;
  seconds: number;
  /** Per-layer load. */
  layerLoad: number[];
}

export interface SweepResult {
  task: 'ppl' | 'mc';
  /** The metric plotted against load: nll (lower is better) or accuracy (higher is better). */
  metric: 'nll' | 'accuracy';
  /** The model under its own router. */
  baseline: SweepPoint;
  points: SweepPoint[];
  series: { name: string; source: string; key: string | null }[];
}

export interface SweepOptions {
  task: 'ppl' | 'mc';
  /** Evaluates the model under a router (undefined: its own). */
  evaluate: (router: Router | undefined) => SweepMeasurement;
  /** The model's own router, as text. */
  defaultRouter: string;
  onPoint?: (p: SweepPoint, index: number, total: number) => void;
}

function toPoint(series: string, router: string, spec: RouterSpec | null, key: string | null, m: SweepMeasurement,
  seconds: number): SweepPoint {
  const stats = m.routerStats;
  const load = stats?.load ?? 0;
  return {
    series,
    router,
    spec,
    value: spec && key ? (spec[key] ?? null) : null,
    load,
    flops: stats?.flops ? { moe: stats.flops.moeLayer.ratio, model: stats.flops.model.ratio } : null,
    dropRate: stats?.droppedRate ?? 0,
    bypassRate: stats?.bypassRate ?? 0,
    nll: m.nll ?? null,
    ppl: m.ppl ?? null,
    tokens: m.tokens ?? null,
    accuracy: m.accuracy ?? null,
    accNorm: m.accNorm ?? null,
    seconds,
    layerLoad: stats?.layers.map((l) => l.load) ?? [],
  };
}

export function runSweep(series: readonly RouterSeries[], opts: SweepOptions): SweepResult {
  const total = 1 + series.reduce((n, s) => n + s.specs.length, 0);
  const timed = (router: Router | undefined): [SweepMeasurement, number] => {
    const t0 = performance.now();
    const m = opts.evaluate(router);
    return [m, (performance.now() - t0) / 1000];
  };
  const [bm, bs] = timed(undefined);
  const baseline = toPoint('default', opts.defaultRouter, null, null, bm, bs);
  opts.onPoint?.(baseline, 0, total);
  const points: SweepPoint[] = [];
  for (const s of series) {
    for (const spec of s.specs) {
      const [m, sec] = timed(createRouter(spec));
      const p = toPoint(s.source, routerLabel(spec), spec, s.key, m, sec);
      points.push(p);
      opts.onPoint?.(p, points.length, total);
    }
  }
  return {
    task: opts.task,
    metric: opts.task === 'mc' ? 'accuracy' : 'nll',
    baseline,
    points,
    series: series.map((s) => ({ name: s.name, source: s.source, key: s.key })),
  };
}
