/**
 * A training run's metrics.jsonl (one JSON object per logged step, written by src/train): read
 * into rows, and series pulled out of them. Fields may be missing on some rows (eval metrics,
 * optional losses); a series keeps the rows where its field is a finite number. An unterminated
 * last line (a run still writing) is ignored; any other bad line is "FILE:LINE: reason".
 *
 * Fields the report knows: step, loss, lm_loss, load, lr, tokens_per_s, load_per_layer (an array
 * by MoE layer, or an object keyed by layer), tokens_per_expert (per layer: an array of arrays, or
 * an object of arrays), flops_ratio (optional). Other numeric fields whose name contains "loss"
 * are auxiliary losses; the remaining numeric fields are shown as other metrics.
 */
import * as fs from 'node:fs';
import { describeJson, isJsonObject, lineError, readJsonlRecords } from '../eval/jsonl-lines.js';

export type MetricRow = Record<string, unknown> & { step: number };

export const KNOWN_FIELDS = new Set(['step', 'loss', 'lm_loss', 'load', 'lr', 'tokens_per_s', 'load_per_layer', 'tokens_per_expert', 'flops_ratio']);

export function readRunMetrics(file: string): MetricRow[] {
  if (!fs.existsSync(file)) throw new Error(`${file}: not found (a run directory holds metrics.jsonl, written by moe-tune train)`);
  const rows: MetricRow[] = [];
  for (const { line, value } of readJsonlRecords(file, { allowPartialLastLine: true })) {
    if (!isJsonObject(value)) throw lineError(file, line, `expected a JSON object, got ${describeJson(value)}`);
    const step = value['step'];
    if (typeof step !== 'number' || !Number.isFinite(step)) throw lineError(file, line, `"step" must be a number, got ${describeJson(step)}`);
    rows.push(value as MetricRow);
  }
  if (rows.length === 0) throw new Error(`${file}: no metric rows`);
  return rows;
}

/** (step, value) for the rows where `key` is a finite number. */
export function scalarSeries(rows: readonly MetricRow[], key: string): [number, number][] {
  const out: [number, number][] = [];
  for (const r of rows) {
    const v = r[key];
    if (typeof v === 'number' && Number.isFinite(v)) out.push([r.step, v]);
  }
  return out;
}

/** Numeric fields present in any row, in first-seen order. */
export function numericFields(rows: readonly MetricRow[]): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const [k, v] of Object.entries(r)) if (typeof v === 'number') seen.add(k);
  return [...seen];
}

/**
 * Auxiliary losses: numeric fields naming a loss (other than loss, lm_loss and eval_*), and the
 * fields the trainer logs with a `<name>_weight` companion (its aux losses, e.g. adamoe-balance).
 */
export function auxLossFields(rows: readonly MetricRow[]): string[] {
  const fields = numericFields(rows);
  const present = new Set(fields);
  return fields.filter((k) => !KNOWN_FIELDS.has(k) && !k.startsWith('eval_') && (/loss/i.test(k) || present.has(`${k}_weight`)));
}

/** Other numeric fields (grad norm, eval metrics, aux-loss weights, ...). */
export function otherNumericFields(rows: readonly MetricRow[]): string[] {
  const aux = new Set(auxLossFields(rows));
  return numericFields(rows).filter((k) => !KNOWN_FIELDS.has(k) && !aux.has(k));
}

/**
 * A per-layer value as [layer label, value] pairs from an array (entry i: the i-th MoE layer,
 * labelled by its decoder index when `moeLayers` is known) or an object keyed by layer.
 */
function perLayer<T>(v: unknown, item: (x: unknown) => T | null, moeLayers?: readonly number[]): [string, T][] | null {
  if (Array.isArray(v)) {
    const out: [string, T][] = [];
    v.forEach((x, i) => {
      const t = item(x);
      if (t !== null) out.push([String(moeLayers && v.length === moeLayers.length ? moeLayers[i] : i), t]);
    });
    return out;
  }
  if (isJsonObject(v)) {
    const out: [string, T][] = [];
    for (const [k, x] of Object.entries(v)) {
      const t = item(x);
      if (t !== null) out.push([k, t]);
    }
    return out;
  }
  return null;
}

const asNumber = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const asNumbers = (x: unknown): number[] | null => (Array.isArray(x) && x.every((y) => typeof y === 'number') ? (x as number[]) : null);

/** load_per_layer over training: layer label -> (step, load) points. */
export function perLayerLoadSeries(rows: readonly MetricRow[], moeLayers?: readonly number[]): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  for (const r of rows) {
    for (const [layer, v] of perLayer(r['load_per_layer'], asNumber, moeLayers) ?? []) {
      const list = out.get(layer);
      if (list) list.push([r.step, v]);
      else out.set(layer, [[r.step, v]]);
    }
  }
  return out;
}

/** tokens_per_expert summed over the last `lastN` rows that have it. */
export function recentTokensPerExpert(rows: readonly MetricRow[], lastN: number, moeLayers?: readonly number[]): { layers: string[]; counts: number[][]; steps: [number, number]; rows: number } | null {
  const withField = rows.filter((r) => perLayer(r['tokens_per_expert'], asNumbers) !== null);
  if (withField.length === 0) return null;
  const recent = withField.slice(-Math.max(1, lastN));
  const sums = new Map<string, number[]>();
  for (const r of recent) {
    for (const [layer, counts] of perLayer(r['tokens_per_expert'], asNumbers, moeLayers)!) {
      const acc = sums.get(layer) ?? [];
      counts.forEach((c, e) => {
        acc[e] = (acc[e] ?? 0) + c;
      });
      sums.set(layer, acc);
    }
  }
  return {
    layers: [...sums.keys()],
    counts: [...sums.values()],
    steps: [recent[0]!.step, recent[recent.length - 1]!.step],
    rows: recent.length,
  };
}
