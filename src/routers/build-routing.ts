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
  /** Gate value of each slot [T, kmax] (a tensor with gradient to the router). */
  slotGates: Tensor;
  /**
   * Whether each slot survives capacity limits / random drop [T * kmax] (default: all). Dropped slots
   * count in `selected` and in droppedAssignments, and cost nothing.
   */
  kept?: Uint8Array;
  /** Slots of identity-mapped null experts add gate * x to the output (AdaMoE option). */
  identityNulls?: boolean;
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

export function buildRouting(sel: SlotSelection): Routing {
  const { logits, probs, layout, kmax, slotRows } = sel;
  const T = logits.shape[0]!;
  const R = layout.rows;
  const N = layout.numExperts;
  const selected = new Uint8Array(T * R);
  const top1 = new Int32Array(T).fill(-1);
  // pair id for each (token, expert), so E_i^1 and E_i^-1 of one token share one FLOP-costing pair
  const pairKey = new Int32Array(T * N).fill(-1);
  const slotExpert = new Int32Array(T * kmax).fill(-1);
  const slotSign = new Float32Array(T * kmax);
  const counts = new Int32Array(N);
  let selectedTrue = 0;
  let dropped = 0;
  let identitySlots = 0;
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < kmax; j++) {
      const s = t * kmax + j;
      const row = slotRows[s]!;
      if (row < 0) continue;
      if (row >= R) throw new Error(`router selected row ${row} of ${R}`);
      selected[t * R + row] = 1;
      if (top1[t] === -1) top1[t] = row;
      const { expert, sign } = rowToExpert(row, layout);
      if (expert < 0) {
        if (sel.identityNulls && row >= N && row < N + layout.nullExperts) identitySlots++;
        continue;
      }
      selectedTrue++;
      if (sel.kept && sel.kept[s] === 0) {
        dropped++;
        continue;
      }
      slotExpert[s] = expert;
      slotSign[s] = sign;
      const key = t * N + expert;
      if (pairKey[key] === -1) {
        pairKey[key] = 0;
        counts[expert]!++;
      }
    }
  }
  // offsets by expert, then pair index for every (token, expert) in token order within an expert
  const offsets = new Int32Array(N + 1);
  for (let e = 0; e < N; e++) offsets[e + 1] = offsets[e]! + counts[e]!;
  const P = offsets[N]!;
  const fill = offsets.slice(0, N);
  const tokens = new Int32Array(P);
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < N; e++) {
      const key = t * N + e;
      if (pairKey[key] === -1) continue;
      const p = fill[e]!++;
      pairKey[key] = p;
      tokens[p] = t;
    }
  }
  // gate of each pair: sum over its slots of sign * gate (a gather and a weighted scatter-add)
  const keptSlots: number[] = [];
  for (let s = 0; s < T * kmax; s++) if (slotExpert[s]! >= 0) keptSlots.push(s);
  const slotIdx = Int32Array.from(keptSlots);
  const pairOf = new Int32Array(slotIdx.length);
  const signs = new Float32Array(slotIdx.length);
  let allPositiveUnique = slotIdx.length === P;
  for (let i = 0; i < slotIdx.length; i++) {
    const s = slotIdx[i]!;
    const t = Math.floor(s / kmax);
    pairOf[i] = pairKey[t * N + slotExpert[s]!]!;
    signs[i] = slotSign[s]!;
    if (signs[i] !== 1) allPositiveUnique = false;
  }
  const flatGates = ops.reshape(sel.slotGates, [T * kmax, 1]);
  const picked = ops.gatherRows(flatGates, slotIdx);
  let gates: Tensor;
  if (allPositiveUnique) {
    // one slot per pair: reorder by pair index
    const inv = new Int32Array(P);
    for (let i = 0; i < pairOf.length; i++) inv[pairOf[i]!] = i;
    gates = ops.reshape(ops.gatherRows(picked, inv), [P]);
  } else {
    const signT = probs.dtype === 'float64' ? new Tensor(Float64Array.from(signs), [signs.length]) : new Tensor(signs, [signs.length]);
    gates = ops.reshape(ops.scatterAddRows(picked, pairOf, P, signT), [P]);
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
    logits,
    probs,
    selected,
    top1,
    layout,
    stats: {
      tokens: T,
      tokensPerExpert: counts,
      trueExpertsPerToken: T === 0 ? 0 : P / T,
      droppedAssignments: dropped,
      selectedAssignments: selectedTrue,
      bypassedTokens: bypassed,
      capacity: sel.capacity ?? null,
    },
  };
}
