/**
 * Reference kernels of the fused top-k router step (Backend.routeTopK / routeTopKBackward; the
 * native ones are native/src/routing.cc). Readable loops with the same order of operations: the
 * probabilities are the js softmax's, a token's gate denominator is its chosen true probabilities
 * summed in double and rounded to the data's float type, the division is that type's.
 */
import type { FloatArray } from '../../backend.js';
import { softmaxForward } from './softmax.js';
import { topkRows } from './top-k.js';

function roundingOf(a: FloatArray): (x: number) => number {
  return a instanceof Float32Array ? Math.fround : (x: number): number => x;
}

/** Sum of the token's chosen true probabilities (rounded), or 1 when it chose none. */
function denominator(p: FloatArray, base: number, rows: Int32Array, s0: number, k: number, N: number,
  round: (x: number) => number): number {
  let s = 0;
  let any = false;
  for (let j = 0; j < k; j++) {
    const r = rows[s0 + j]!;
    if (r < N) {
      s += p[base + r]!;
      any = true;
    }
  }
  return any ? round(s) : 1;
}

export function routeTopK(logits: FloatArray, T: number, R: number, N: number, k: number, normalize: boolean,
  probs: FloatArray, slotRows: Int32Array, slotPair: Int32Array, top1: Int32Array, selected: Uint8Array,
  offsets: Int32Array, tokens: Int32Array, gates: FloatArray, nullSums: FloatArray | null): number {
  offsets.fill(0, 0, N + 1);
  softmaxForward(logits, T, R, probs);
  slotRows.set(topkRows(probs, T, R, k).indices);
  selected.fill(0, 0, T * R);
  for (let t = 0; t < T; t++) {
    let a = -1;
    for (let c = 0; c < R; c++) if (a < 0 || probs[t * R + c]! > probs[t * R + a]!) a = c;
    top1[t] = a;
    let ns = 0;
    for (let j = 0; j < k; j++) {
      const r = slotRows[t * k + j]!;
      selected[t * R + r] = 1;
      if (r < N) offsets[r + 1]!++;
      else ns += probs[t * R + r]!;
    }
    if (nullSums) nullSums[t] = ns;
  }
  for (let e = 0; e < N; e++) offsets[e + 1]! += offsets[e]!;
  const next = offsets.slice(0, N);
  const round = roundingOf(probs);
  for (let t = 0; t < T; t++) {
    const denom = normalize ? denominator(probs, t * R, slotRows, t * k, k, N, round) : 1;
    for (let j = 0; j < k; j++) {
      const r = slotRows[t * k + j]!;
      if (r >= N) {
        slotPair[t * k + j] = -1;
        continue;
      }
      const q = next[r]!++;
      tokens[q] = t;
      gates[q] = normalize ? probs[t * R + r]! / denom : probs[t * R + r]!;
      slotPair[t * k + j] = q;
    }
  }
  return offsets[N]!;
}

export function routeTopKBackward(probs: FloatArray, slotRows: Int32Array, slotPair: Int32Array, gates: FloatArray,
  T: number, R: number, N: number, k: number, normalize: boolean, dprobs: FloatArray | null, dgates: FloatArray | null,
  dnull: FloatArray | null, dlogits: FloatArray): void {
  const round = roundingOf(probs);
  const d = new Float64Array(R);
  for (let t = 0; t < T; t++) {
    const base = t * R;
    for (let c = 0; c < R; c++) d[c] = dprobs ? dprobs[base + c]! : 0;
    if (dgates) {
      // normalised: g_j = p_j / s over the chosen true rows, so dp_j = (dg_j - sum_i dg_i g_i) / s
      let dot = 0;
      let any = false;
      for (let j = 0; j < k; j++) {
        const q = slotPair[t * k + j]!;
        if (q < 0) continue;
        dot += dgates[q]! * gates[q]!;
        any = true;
      }
      const s = normalize && any ? denominator(probs, base, slotRows, t * k, k, N, round) : 1;
      for (let j = 0; j < k; j++) {
        const q = slotPair[t * k + j]!;
        if (q < 0) continue;
        d[slotRows[t * k + j]!] += normalize ? (dgates[q]! - dot) / s : dgates[q]!;
      }
    }
    if (dnull) {
      for (let j = 0; j < k; j++) {
        const r = slotRows[t * k + j]!;
        if (r >= N) d[r] += dnull[t]!;
      }
    }
    let dot = 0;
    for (let c = 0; c < R; c++) dot += d[c]! * probs[base + c]!;
    for (let c = 0; c < R; c++) dlogits[base + c] = probs[base + c]! * (d[c]! - dot);
  }
}
