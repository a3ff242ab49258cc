/**
 * Shared pieces of the auxiliary losses: constant tensors in the routing's dtype, selection counts
 * read from a Routing, and the mean of per-layer loss terms.
 */
import { ops, Tensor } from '../tensor/index.js';
import type { Routing, RoutingRecord } from '../routers/router.js';

/** A per-sequence loss's `sequenceLength` (tokens per sequence of the batch): absent, or a positive integer. */
export function checkSequenceLength(loss: string, sequenceLength: number | undefined): void {
  if (sequenceLength !== undefined && (!Number.isInteger(sequenceLength) || sequenceLength < 1)) {
    throw new Error(`aux loss '${loss}': sequenceLength must be a positive integer, got ${sequenceLength}`);
  }
}

/** A constant (no-grad) tensor with the float dtype of `like`. */
export function constant(values: ArrayLike<number>, shape: readonly number[], like: Tensor): Tensor {
  const data = like.dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
  return new Tensor(data, shape);
}

/** How many tokens selected each router row [R] (selections before any dropping). */
export function rowSelectionCounts(routing: Routing): Float64Array {
  const R = routing.layout.rows;
  const T = routing.numTokens;
  const counts = new Float64Array(R);
  const sel = routing.selected;
  for (let t = 0; t < T; t++) for (let r = 0; r < R; r++) counts[r]! += sel[t * R + r]!;
  return counts;
}

/**
 * All layers' routings pooled into one batch (the `mixtral-all` form of the balance losses, as in
 * Hugging Face Mixtral's load_balancing_loss_func): selection counts per row, the pooled token
 * count and the probabilities summed over every token [R] (differentiable).
 */
export function pooledRows(loss: string, records: readonly RoutingRecord[]): { R: number; counts: Float64Array; total: number; psum: Tensor } {
  const R = commonRows(loss, records);
  const counts = new Float64Array(R);
  let total = 0;
  let psum: Tensor | null = null;
  for (const { routing } of records) {
    const c = rowSelectionCounts(routing);
    for (let r = 0; r < R; r++) counts[r]! += c[r]!;
    total += routing.numTokens;
    const s = ops.sum(routing.probs, 0);
    psum = psum ? ops.add(psum, s) : s;
  }
  return { R, counts, total, psum: psum! };
}

/** sum_r w_r * psum_r for summed probabilities psum [R] and constant per-row weights w. */
export function weightedSum(psum: Tensor, w: ArrayLike<number>): Tensor {
  return ops.sum(ops.mul(psum, constant(w, psum.shape, psum)));
}

/** Mean of per-layer scalars (null when there are none). */
export function meanOf(terms: Tensor[]): Tensor | null {
  if (terms.length === 0) return null;
  let acc = terms[0]!;
  for (let i = 1; i < terms.length; i++) acc = ops.add(acc, terms[i]!);
  return terms.length === 1 ? acc : ops.scale(acc, 1 / terms.length);
}

/** Records with at least one token (an empty batch contributes nothing). */
export function nonEmpty(records: readonly RoutingRecord[]): RoutingRecord[] {
  return records.filter((r) => r.routing.numTokens > 0);
}

/** The router rows shared by all records, or a one-line error naming the loss. */
export function commonRows(loss: string, records: readonly RoutingRecord[]): number {
  const R = records[0]!.routing.layout.rows;
  for (const rec of records) {
    if (rec.routing.layout.rows !== R) {
      throw new Error(`aux loss '${loss}': layer ${rec.layer} (${rec.module}) has ${rec.routing.layout.rows} router rows, layer ${records[0]!.layer} has ${R}; the all-layers form needs equal rows (use form=per-layer)`);
    }
  }
  return R;
}
