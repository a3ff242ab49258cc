/**
 * TC-MoE load balancing over ternary pairs (paper 000, §3.3 eq. 6-9), per MoE layer and per
 * sequence of T tokens:
 *
 *   f_i = (1 / (K T)) * #tokens that select E_i^1 or E_i^-1 (a token selecting both counts once)
 *   f̄   = (1/N) sum_i f_i
 *   P_i = (1/T) sum_j [ p(E_i^1 | h_j) + p(E_i^-1 | h_j) ]
 *   L   = sum_i (f_i - f̄) * P_i                              (no N prefactor)
 *
 * The paper's T is the sequence length: `sequenceLength` M (a recipe's sequence_length, e.g.
 * train.seq_len) computes L on each run of M consecutive tokens (one sequence of a [B, M] batch)
 * and averages over the sequences, as the paper defines it. Without it (the default, our choice,
 * kept so existing runs keep their numbers) T is every token of the batch, pooled as one
 * "sequence"; the bilinear loss differs between the two (SPEC §3: 0.0043 vs 0.0185 on one input).
 * E^0 is not balanced (it costs nothing). K is the router's top-K, read as the number of rows each
 * token selected (exact for a top-K router). Layers are averaged (our choice: the paper states one
 * layer).
 */
import { ops, type Tensor } from '../tensor/index.js';
import type { RoutingRecord } from '../routers/router.js';
import type { AuxLoss } from './aux-loss.js';
import { checkSequenceLength, meanOf, nonEmpty, weightedSum } from './routing-terms.js';

export class TcMoeBalanceLoss implements AuxLoss {
  readonly name = 'tcmoe-balance';

  constructor(readonly sequenceLength?: number) {
    checkSequenceLength(this.name, sequenceLength);
  }

  compute(records: readonly RoutingRecord[]): Tensor | null {
    const recs = nonEmpty(records);
    if (recs.length === 0) return null;
    return meanOf(recs.map(({ routing, module, layer }) => {
      const { rows: R, numExperts: N, ternaryZeroExperts } = routing.layout;
      if (ternaryZeroExperts <= 0) throw new Error(`aux loss 'tcmoe-balance': layer ${layer} (${module}) has no ternary router rows (use 'balance')`);
      const total = routing.numTokens;
      const T = this.sequenceLength ?? total;
      if (total % T !== 0) throw new Error(`aux loss 'tcmoe-balance': layer ${layer} (${module}) routed ${total} tokens, not a multiple of sequenceLength ${T}`);
      const B = total / T;
      const sel = routing.selected;
      // per sequence b: weights on its summed probabilities, 1/B of the mean over sequences folded in
      const w = new Float64Array(B * R);
      for (let b = 0; b < B; b++) {
        let selections = 0;
        const tokensOf = new Float64Array(N);
        for (let t = b * T; t < (b + 1) * T; t++) {
          for (let r = 0; r < R; r++) selections += sel[t * R + r]!;
          for (let i = 0; i < N; i++) if (sel[t * R + i] || sel[t * R + N + i]) tokensOf[i]! += 1;
        }
        const K = selections / T;
        const f = Array.from(tokensOf, (c) => c / (K * T));
        const fbar = f.reduce((a, c) => a + c, 0) / N;
        for (let i = 0; i < N; i++) {
          w[b * R + i] = (f[i]! - fbar) / (T * B);
          w[b * R + N + i] = (f[i]! - fbar) / (T * B);
        }
      }
      const psum = B === 1 ? ops.sum(routing.probs, 0) : ops.sum(ops.reshape(routing.probs, [B, T, R]), 1);
      return weightedSum(psum, w);
    }));
  }
}
