import { kernelsFor } from '../backends/registry.js';
import { shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat } from './shape-utils.js';

export interface TopKRouteOptions {
  /** Columns [0, trueColumns) are FLOP-costing experts; the others (AdaMoE null experts) make no pairs. */
  trueColumns: number;
  /** Columns each row chooses (clamped to the number of columns). */
  k: number;
  /**
   * Divide each pair's probability by the sum of its row's chosen true probabilities (1 when the
   * row chose none); false: the gates are the probabilities.
   */
  normalize: boolean;
  /** Also return each row's summed probability of its chosen non-true columns. */
  nullSums?: boolean;
}

/** The result of routeTopK; the tensors carry gradients back to the logits. */
export interface TopKRoute {
  /** softmax(logits) [T, R]. */
  probs: Tensor;
  /** Columns chosen per row (k clamped to R). */
  k: number;
  /** Chosen columns [T * k], each row's in descending probability (ties: lower column). */
  slotRows: Int32Array;
  /** Column of largest probability of each row [T] (ties: lower column). */
  top1: Int32Array;
  /** [T * R], 1 where a column is among its row's chosen. */
  selected: Uint8Array;
  /** The (row, true column) pairs grouped by column: column e owns [offsets[e], offsets[e + 1]). */
  offsets: Int32Array;
  /** Row of each pair [P], ascending within a column. */
  tokens: Int32Array;
  /** Gate of each pair [P]. */
  gates: Tensor;
  /** Per row, the summed probability of its chosen non-true columns [T], when asked for. */
  nullSums: Tensor | null;
}

/**
 * The router step of a top-k MoE layer as one op (one kernel forward, one backward): softmax over
 * the router rows of each token, its k largest probabilities, and the (token, true expert) pairs
 * grouped by expert with their gates (Mixtral's top-k with or without renormalisation; AdaMoE
 * null experts, paper 004 §3.3-3.4: top-k over N true + m null rows, gates renormalised over the
 * chosen true rows only). The same numbers as softmax + topkRows + takeAlongRows + the masked
 * sum and division + a counting sort by expert, in one pass.
 */
export function routeTopK(logits: Tensor, opts: TopKRouteOptions): TopKRoute {
  assertFloat('routeTopK', logits);
  if (logits.rank !== 2) throw new Error(`routeTopK: logits have shape ${shapeStr(logits.shape)}, expected [tokens, rows]`);
  const [T, R] = logits.shape as [number, number];
  const N = opts.trueColumns;
  if (!Number.isInteger(N) || N < 0 || N > R) throw new Error(`routeTopK: trueColumns ${N} must be an integer in [0, ${R}] for logits ${shapeStr(logits.shape)}`);
  if (!Number.isInteger(opts.k) || opts.k < 1) throw new Error(`routeTopK: k must be a positive integer, got ${opts.k}`);
  if (R < 1) throw new Error(`routeTopK: logits ${shapeStr(logits.shape)} have no rows to choose from`);
  const k = Math.min(opts.k, R);
  const be = kernelsFor(logits);
  const probs = Tensor.empty([T, R], logits.dtype);
  const slotRows = new Int32Array(T * k);
  const slotPair = new Int32Array(T * k);
  const top1 = new Int32Array(T);
  const selected = new Uint8Array(T * R);
  const offsets = new Int32Array(N + 1);
  const tokensRoom = new Int32Array(T * k);
  const gatesRoom = logits.dtype === 'float64' ? new Float64Array(T * k) : new Float32Array(T * k);
  const nullSums = opts.nullSums ? Tensor.empty([T], logits.dtype) : null;
  const P = be.routeTopK(logits.f, T, R, N, k, opts.normalize, probs.f, slotRows, slotPair, top1, selected, offsets,
    tokensRoom, gatesRoom, nullSums ? nullSums.f : null);
  const gates = Tensor.empty([P], logits.dtype);
  gates.f.set(gatesRoom.subarray(0, P));
  const outputs = nullSums ? [probs, gates, nullSums] : [probs, gates];
  record('routeTopK', [logits], outputs, ([dprobs, dgates, dnull], ctx) => {
    if (!dprobs && !dgates && !dnull) return;
    ctx.write(0, (out) => be.routeTopKBackward(probs.f, slotRows, slotPair, gates.f, T, R, N, k, opts.normalize,
      dprobs ? dprobs.f : null, dgates ? dgates.f : null, dnull ? dnull.f : null, out));
  });
  return { probs, k, slotRows, top1, selected, offsets, tokens: tokensRoom.subarray(0, P), gates, nullSums };
}
