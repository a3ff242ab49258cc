import type { FloatArray } from '../../backend.js';

/** Fused log-softmax + NLL per row; ignored rows get loss 0 (their lse is still written). */
export function crossEntropyForward(logits: FloatArray, targets: Int32Array, rows: number, V: number,
  ignoreIndex: number, losses: FloatArray, lse: FloatArray): void {
  for (let r = 0; r < rows; r++) {
    const base = r * V;
    let mx = -Infinity;
    for (let c = 0; c < V; c++) if (logits[base + c]! > mx) mx = logits[base + c]!;
    let sum = 0;
    for (let c = 0; c < V; c++) sum += Math.exp(logits[base + c]! - mx);
    const l = mx + Math.log(sum);
    lse[r] = l;
    const t = targets[r]!;
    if (t === ignoreIndex) {
      losses[r] = 0;
      continue;
    }
    if (t < 0 || t >= V) throw new Error(`cross-entropy: target ${t} at row ${r} is outside the vocabulary [0, ${V})`);
    losses[r] = l - logits[base + t]!;
  }
}

export function crossEntropyBackward(logits: FloatArray, targets: Int32Array, lse: FloatArray, dlosses: FloatArray,
  rows: number, V: number, ignoreIndex: number, dlogits: FloatArray): void {
  for (let r = 0; r < rows; r++) {
    const base = r * V;
    const t = targets[r]!;
    if (t === ignoreIndex) {
      for (let c = 0; c < V; c++) dlogits[base + c] = 0;
      continue;
    }
    const g = dlosses[r]!;
    const l = lse[r]!;
    for (let c = 0; c < V; c++) dlogits[base + c] = g * Math.exp(logits[base + c]! - l);
    dlogits[base + t] = dlogits[base + t]! - g;
  }
}
