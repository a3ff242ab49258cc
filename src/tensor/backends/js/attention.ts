import type { FloatArray } from '../../backend.js';

/** Number of keys query t may see (causal: s <= t + (S - T)). */
function visibleKeys(t: number, T: number, S: number, causal: boolean): number {
  return causal ? Math.min(S, t + (S - T) + 1) : S;
}

/**
 * Reference attention, one query row at a time: scores for one row (length <= S) are the only
 * temporary, so no T x S matrix is ever stored.
 */
export function attentionForward(q: FloatArray, k: FloatArray, v: FloatArray, B: number, T: number, S: number,
  H: number, Hkv: number, Dh: number, scale: number, causal: boolean, out: FloatArray, lse: FloatArray): void {
  const group = H / Hkv;
  const scores = new Float64Array(S);
  const acc = new Float64Array(Dh);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * H + h) * Dh;
        const n = visibleKeys(t, T, S, causal);
        let mx = -Infinity;
        for (let s = 0; s < n; s++) {
          const ko = ((b * S + s) * Hkv + kh) * Dh;
          let dot = 0;
          for (let d = 0; d < Dh; d++) dot += q[qo + d]! * k[ko + d]!;
          dot *= scale;
          scores[s] = dot;
          if (dot > mx) mx = dot;
        }
        let sum = 0;
        acc.fill(0);
        for (let s = 0; s < n; s++) {
          const p = Math.exp(scores[s]! - mx);
          sum += p;
          const vo = ((b * S + s) * Hkv + kh) * Dh;
          for (let d = 0; d < Dh; d++) acc[d]! += p * v[vo + d]!;
        }
        for (let d = 0; d < Dh; d++) out[qo + d] = acc[d]! / sum;
        lse[(b * H + h) * T + t] = mx + Math.log(sum);
      }
    }
  }
}

/**
 * Reference attention backward (probabilities recomputed from lse):
 *   P = exp(scale q.k - lse), dP = dout.v, dS = P * (dP - rowsum(dout * out)),
 *   dq = scale dS k, dk = scale dS^T q, dv = P^T dout.
 */
export function attentionBackward(q: FloatArray, k: FloatArray, v: FloatArray, out: FloatArray, lse: FloatArray,
  dout: FloatArray, B: number, T: number, S: number, H: number, Hkv: number, Dh: number, scale: number,
  causal: boolean, dq: FloatArray, dk: FloatArray, dv: FloatArray): void {
  const group = H / Hkv;
  dk.fill(0, 0, B * S * Hkv * Dh);
  dv.fill(0, 0, B * S * Hkv * Dh);
  const dqAcc = new Float64Array(Dh);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * H + h) * Dh;
        const n = visibleKeys(t, T, S, causal);
        const l = lse[(b * H + h) * T + t]!;
        let D = 0;
        for (let d = 0; d < Dh; d++) D += dout[qo + d]! * out[qo + d]!;
        dqAcc.fill(0);
        for (let s = 0; s < n; s++) {
          const ko = ((b * S + s) * Hkv + kh) * Dh;
          let dot = 0;
          let dp = 0;
          for (let d = 0; d < Dh; d++) {
            dot += q[qo + d]! * k[ko + d]!;
            dp += dout[qo + d]! * v[ko + d]!;
          }
          const p = Math.exp(dot * scale - l);
          const ds = p * (dp - D) * scale;
          for (let d = 0; d < Dh; d++) {
            dqAcc[d]! += ds * k[ko + d]!;
            dk[ko + d] = dk[ko + d]! + ds * q[qo + d]!;
            dv[ko + d] = dv[ko + d]! + p * dout[qo + d]!;
          }
        }
        for (let d = 0; d < Dh; d++) dq[qo + d] = dqAcc[d]!;
      }
    }
  }
}
