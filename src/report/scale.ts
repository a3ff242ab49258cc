/**
 * Linear scales and "nice" axis ticks: steps of 1, 2 or 5 times a power of ten, so labels read
 * 0, 0.2, 0.4 ... rather than 0.1873 ... .
 */

export interface LinearScale {
  domain: readonly [number, number];
  range: readonly [number, number];
  (v: number): number;
}

export function linearScale(domain: readonly [number, number], range: readonly [number, number]): LinearScale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0;
  const f = ((v: number) => (span === 0 ? (r0 + r1) / 2 : r0 + ((v - d0) / span) * (r1 - r0))) as LinearScale;
  Object.assign(f, { domain, range });
  return f;
}

/** A tick step near span / count from {1, 2, 5} x 10^n. */
export function niceStep(span: number, count: number): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const r = raw / mag;
  return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

/** Ticks inside [lo, hi] at a nice step (about `count` of them). */
export function niceTicks(lo: number, hi: number, count = 5): { ticks: number[]; step: number } {
  const step = niceStep(hi - lo, count);
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last && ticks.length < 100; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { ticks, step };
}

/**
 * An axis domain covering the values: widened to the nice step around them (so the end ticks sit
 * on the frame), with a degenerate range opened up around its one value.
 */
export function niceDomain(values: readonly number[], count = 5, includeZero = false): [number, number] {
  const finite = values.filter(Number.isFinite);
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (includeZero) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  if (lo === hi) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const step = niceStep(hi - lo, count);
  return [Number((Math.floor(lo / step + 1e-9) * step).toPrecision(12)), Number((Math.ceil(hi / step - 1e-9) * step).toPrecision(12))];
}

/** A tick label with as many decimals as the step needs; k / M / G for large values. */
export function formatTick(v: number, step: number): string {
  const a = Math.abs(v);
  if (a >= 1e9 && step >= 1e8) return `${trim((v / 1e9).toFixed(decimals(step / 1e9)))}G`;
  if (a >= 1e6 && step >= 1e5) return `${trim((v / 1e6).toFixed(decimals(step / 1e6)))}M`;
  if (a >= 1e4 && step >= 1e3) return `${trim((v / 1e3).toFixed(decimals(step / 1e3)))}k`;
  if (a !== 0 && (a < 1e-4 || step < 1e-4)) return v.toExponential(1);
  return v.toFixed(decimals(step));
}

function decimals(step: number): number {
  return Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9)));
}

function trim(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** A value for a table cell or label: up to `digits` significant digits, no exponent for ordinary sizes. */
export function formatValue(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) return v.toExponential(digits - 1);
  return String(Number(v.toPrecision(digits)));
}
