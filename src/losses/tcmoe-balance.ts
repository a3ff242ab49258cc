/**
 * TC-MoE load balancing over ternary pairs (paper 000, §3.3 eq. 6-9), per MoE layer:
 *
 *   f_i = (1 / (K T)) * #tokens that select E_i^1 or E_i^-1 (a token selecting both counts once)
 *   f̄   = (1/N) sum_i f_i
 *   P_i = (1/T) sum_j [ p(E_i^1 | h_j) + p(E_i^-1 | h_j) ]
 *   L   = sum_i (f_i - f̄) * P_i                              (no N prefactor)
 *
 * E^0 is not balanced (it costs nothing). T is the number of tokens the loss sees (the paper says
 * "sequence length"; our records are per batch). K is the router's top-K, read as the number of
 * rows each token selected (exact for a top-K router). Layers are averaged (our choice: the paper
 * states one layer).
 */
import { ops, type Tensor } from '../tensor/index.js';
import type { RoutingRecord } from '../routers/router.js';
import type { AuxLoss } from './aux-loss.js';
import { meanOf, nonEmpty, weightedSum } from './routing-terms.js';

export class TcMoeBalanceLoss implements AuxLoss {
  readonly name = 'tcmoe-balance';

  compute(records: readonly RoutingRecord[]): Tensor | null {
    const recs = nonEmpty(records);
    if (recs.length === 0) return null;
    return meanOf(recs.map(({ routing, module, layer }) => {
      const { rows: R, numExperts: N, ternaryZeroExperts } = routing.layout;
      if (ternaryZeroExperts <= 0) throw new Error(`aux loss 'tcmoe-balance': layer ${layer} (${module}) has no ternary router rows (use 'balance')`);
      const T = routing.numTokens;
      const sel = routing.selected;
      let selections = 0;
      const tokensOf = new Float64Array(N);
      for (let t = 0; t < T; t++) {
        for (let r = 0; r < R; r++) selections += sel[t * R + r]!;
        for (let i = 0; i < N; i++) if (sel[t * R + i] || sel[t * R + N + i]) tokensOf[i]! += 1;
      }
      const K = selections / T;
      const f = Array.from(tokensOf, (c) => c / (K * T));
      const fbar = f.reduce((a, b) => a + b, 0) / N;
      const w = new Float64Array(R);
      for (let i = 0; i < N; i++) {
        w[i] = (f[i]! - fbar) / T;
        w[N + i] = (f[i]! - fbar) / T;
      }
      return weightedSum(ops.sum(routing.probs, 0), w);
    }));
  }
}
