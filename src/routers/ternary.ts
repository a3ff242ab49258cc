/**
 * TC-MoE ternary routing (paper 000, §3.2, eq. 4-5, appendix A.3 eq. 16). The router has 2N + K
 * rows, each with its own weight row and bias: rows [0, N) are E^1 (E_i^1 = E_i), rows [N, 2N) are
 * E^-1 (E_i^-1 = -E_i, sharing E_i's weights), rows [2N, 2N + K) are the zero experts E^0 (output
 * 0, no FLOPs), with K = `zero` (the paper uses K = the top-K value, our default). p = softmax
 * over all 2N + K rows and the top-K rows are selected; the activated set is the top-K union all
 * of E^0 (eq. 16: every zero expert is always in the normaliser and gets a gate on every token):
 *
 *   g_r = p_r / sum_{j in topK ∪ E^0} p_j      for r in topK ∪ E^0
 *
 * A token may pick both E_i^1 and E_i^-1: that is one pass through E_i with the gate
 * g(E_i^1) - g(E_i^-1) (the signs are folded in buildRouting). The summed E^0 gate of each token
 * is kept for the reward loss (eq. 12). Ties in the top-K go to the lower row (E^1 before E^-1
 * before E^0): our choice, the paper is silent.
 */
import { ops, Tensor, topkRows } from '../tensor/index.js';
import { buildRouting } from './build-routing.js';
import type { RouteContext, Router, RouterLayout, Routing, RouterSpec } from './router.js';

export class TernaryRouter implements Router {
  readonly causal = true;
  readonly spec: RouterSpec;
  readonly zero: number;

  constructor(readonly k: number, zero?: number) {
    if (!Number.isInteger(k) || k < 1) throw new Error(`router ternary: k must be a positive integer, got ${k}`);
    const z = zero ?? k;
    if (!Number.isInteger(z) || z < 1) throw new Error(`router ternary: zero must be a positive integer, got ${z}`);
    this.zero = z;
    this.spec = { name: 'ternary', k, zero: z };
  }

  layoutFor(numExperts: number): RouterLayout {
    return { rows: 2 * numExperts + this.zero, numExperts, nullExperts: 0, ternaryZeroExperts: this.zero };
  }

  route(logits: Tensor, numExperts: number, _ctx: RouteContext): Routing {
    const layout = this.layoutFor(numExperts);
    const T = logits.shape[0]!;
    const R = layout.rows;
    const N2 = 2 * numExperts;
    const probs = ops.softmax(logits);
    const { indices, k } = topkRows(probs.f, T, R, this.k);
    const F = probs.dtype === 'float64' ? Float64Array : Float32Array;
    const zeroRows = new F(R);
    for (let r = N2; r < R; r++) zeroRows[r] = 1;
    const nonZeroSlot = new F(T * k);
    for (let i = 0; i < T * k; i++) if (indices[i]! < N2) nonZeroSlot[i] = 1;
    const picked = ops.takeAlongRows(probs, new Tensor(indices, [T, k]));
    const zeroSum = ops.sum(ops.mul(probs, new Tensor(zeroRows, [1, R])), 1, true);
    const denom = ops.add(ops.sum(ops.mul(picked, new Tensor(nonZeroSlot, [T, k])), 1, true), zeroSum);
    const slotGates = ops.div(picked, denom);
    const zeroExpertGates = ops.reshape(ops.div(zeroSum, denom), [T]);
    return buildRouting({ logits, probs, layout, kmax: k, slotRows: indices, slotGates, zeroExpertGates });
  }
}
