/**
 * Turns per-token slot selections (router rows and their gate values) into a Routing: the
 * FLOP-costing (token, true expert) pairs grouped by expert, with gate tensors that keep the
 * gradient path to the router. Every router ends here, so the MoE layer sees one shape of input.
 */
import { ops, Tensor } from '../tensor/index.js';
import type { Routing, RouterLayout } from './router.js';

export interface SlotSelection {
  /** Router logits [T, R] and probabilities [T, R]. */
  logits: Tensor;
  probs: Tensor;
  layout: RouterLayout;
  /** kmax slots per token. */
  kmax: number;
  /** Router row chosen in each slot [T * kmax], -1 for an empty slot. */
  slotRows: Int32Array;
  /**
   * Gate value of each slot [T, kmax] (a tensor with gradient to the router). Values in empty
   * slots are never read.
   */
  slotGates: Tensor;
  /**
   * Whether each slot survives capacity limits / random drop [T * kmax] (default: all). Dropped slots
   * count in `selected` and in droppedAssignments, and cost nothing.
   */
  kept?: Uint8Array;
  /** Slots of identity-mapped null experts add gate * x to the output (AdaMoE option). */
  identityNulls?: boolean;
  /** TC-MoE: summed E^0 gate per token [T]. */
  zeroExpertGates?: Tensor | null;
  /** Expert capacity when the router has one. */
  capacity?: number | null;
}

/** Expert index and sign of a router row (-1: no FLOPs: a null or zero expert). */
export function rowToExpert(row: number, layout: RouterLayout): { expert: number; sign: number } {
  const N = layout.numExperts;
  if (row < N) return { expert: row, sign: 1 };
  if (layout.ternaryZeroExperts > 0 && row < 2 * N) return { expert: row - N, sign: -1 };
  return { expert: -1, sign: 0 };
}

/** Index of the largest value of each row of [T, R] (ties: lower index). */
export function argmaxRows(values: ArrayLike<number>, T: number, R: number): Int32Array {
  const out = new Int32Array(T).fill(-1);
  for (let t = 0; t < T; t++) {
    let best = -Infinity;
    for (let r = 0; r < R; r++) {
      const v = values[t * R + r]!;
      if (v > best || out[t] === -1) {
        best = v;
        out[t] = r;
      }
    }
  }
  return out;
}

/**
 * Slot tensors for variable-length per-token row lists: rows [T * kmax] padded with -1, and an
 * index [T, kmax] into the router rows (padding points at row 0; its value is never read).
 */
export function padSlots(lists: readonly (readonly number[])[], minSlots = 1): { kmax: number; slotRows: Int32Array; index: Int32Array } {
  let kmax = minSlots;
  for (const l of lists) kmax = Math.max(kmax, l.length);
  const T = lists.length;
  const slotRows = new Int32Array(T * kmax).fill(-1);
  const index = new Int32Array(T * kmax);
  for (let t = 0; t < T; t++) {
    const l = lists[t]!;
    for (let j = 0; j < l.length; j++) {
      slotRows[t * kmax + j] = l[j]!;
      index[t * kmax + j] = l[j]!;
    }
  }
  return { kmax, slotRows, index };
}

export function buildRouting(sel: SlotSelection): Routing {
  const { logits, probs, layout, kmax, slotRows } = sel;
  const T = logits.shape[0]!;
  const R = layout.rows;
  const N = layout.numExperts;
  if (logits.rank !== 2 || logits.shape[1] !== R) {
    throw new Error(`router: logits [${logits.shape.join(', ')}] do not have the ${R} router rows the layout needs`);
  }
  if (slotRows.length !== T * kmax) throw new Error(`router: ${slotRows.length} slot rows for ${T} tokens x ${kmax} slots`);
  const selected = new Uint8Array(T * R);
  const top1 = argmaxRows(probs.f, T, R);
  // pair state of each (token, expert): 0 none, 1 selected but every slot dropped, 2 kept.
  // E_i^1 and E_i^-1 of one token share one FLOP-costing pair.
  const pairState = new Uint8Array(T * N);
  const slotExpert = new Int32Array(T * kmax).fill(-1);
  const slotSign = new Float64Array(T * kmax);
  const counts = new Int32Array(N);
  let identitySlots = 0;
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < kmax; j++) {
      const s = t * kmax + j;
      const row = slotRows[s]!;
      if (row < 0) continue;
      if (row >= R) throw new Error(`router selected row ${row} of ${R}`);
      selected[t * R + row] = 1;
      const { expert, sign } = rowToExpert(row, layout);
      if (expert < 0) {
        if (sel.identityNulls && row >= N && row < N + layout.nullExperts) identitySlots++;
        continue;
      }
      const key = t * N + expert;
      if (sel.kept && sel.kept[s] === 0) {
        if (pairState[key] === 0) pairState[key] = 1;
        continue;
      }
      slotExpert[s] = expert;
      slotSign[s] = sign;
      if (pairState[key] !== 2) {
        pairState[key] = 2;
        counts[expert]!++;
      }
    }
  }
  let selectedPairs = 0;
  for (let i = 0; i < T * N; i++) if (pairState[i] !== 0) selectedPairs++;
  // offsets by expert, then pair index for every (token, expert) in token order within an expert
  const offsets = new Int32Array(N + 1);
  for (let e = 0; e < N; e++) offsets[e + 1] = offsets[e]! + counts[e]!;
  const P = offsets[N]!;
  const fill = offsets.slice(0, N);
  const tokens = new Int32Array(P);
  const pairIndex = new Int32Array(T * N).fill(-1);
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < N; e++) {
      const key = t * N + e;
      if (pairState[key] !== 2) continue;
      const p = fill[e]!++;
      pairIndex[key] = p;
      tokens[p] = t;
    }
  }
  // gate of each pair: sum over its slots of sign * gate (a gather and a weighted scatter-add)
  const keptSlots: number[] = [];
  for (let s = 0; s < T * kmax; s++) if (slotExpert[s]! >= 0) keptSlots.push(s);
  const slotIdx = Int32Array.from(keptSlots);
  const pairOf = new Int32Array(slotIdx.length);
  const signs = new Float64Array(slotIdx.length);
  let allPositiveUnique = slotIdx.length === P;
  for (let i = 0; i < slotIdx.length; i++) {
    const s = slotIdx[i]!;
    const t = Math.floor(s / kmax);
    pairOf[i] = pairIndex[t * N + slotExpert[s]!]!;
    signs[i] = slotSign[s]!;
    if (signs[i] !== 1) allPositiveUnique = false;
  }
  let gates: Tensor;
  if (P === 0) {
    gates = Tensor.zeros([0], probs.dtype);
  } else {
    const flatGates = ops.reshape(sel.slotGates, [T * kmax, 1]);
    const picked = ops.gatherRows(flatGates, slotIdx);
    if (allPositiveUnique) {
      // one slot per pair: reorder by pair index
      const inv = new Int32Array(P);
      for (let i = 0; i < pairOf.length; i++) inv[pairOf[i]!] = i;
      gates = ops.reshape(ops.gatherRows(picked, inv), [P]);
    } else {
      const signT = new Tensor(probs.dtype === 'float64' ? signs : Float32Array.from(signs), [signs.length]);
      gates = ops.reshape(ops.scatterAddRows(picked, pairOf, P, signT), [P]);
    }
  }

  let identityWeights: Tensor | null = null;
  if (sel.identityNulls && identitySlots > 0) {
    const mask = new (probs.dtype === 'float64' ? Float64Array : Float32Array)(T * kmax);
    for (let s = 0; s < T * kmax; s++) {
      const row = slotRows[s]!;
      if (row >= N && row < N + layout.nullExperts) mask[s] = 1;
    }
    identityWeights = ops.sum(ops.mul(sel.slotGates, new Tensor(mask, [T, kmax])), 1);
  }

  let bypassed = 0;
  const hasPair = new Uint8Array(T);
  for (let p = 0; p < P; p++) hasPair[tokens[p]!] = 1;
  for (let t = 0; t < T; t++) if (!hasPair[t]) bypassed++;

  return {
    numTokens: T,
    numExperts: N,
    tokens,
    expertOffsets: offsets,
    gates,
    identityWeights,
    zeroExpertGates: sel.zeroExpertGates ?? null,
    logits,
    probs,
    selected,
    top1,
    layout,
    stats: {
      tokens: T,
      tokensPerExpert: counts,
      trueExpertsPerToken: T === 0 ? 0 : P / T,
      droppedAssignments: selectedPairs - P,
      selectedAssignments: selectedPairs,
      bypassedTokens: bypassed,
      capacity: sel.capacity ?? null,
    },
  };
}
