/**
 * The load-balance loss of top-p routing (paper 003, §2.3 eq. 6-8), per sequence of M tokens:
 *
 *   f_i = (1/M) sum_j 1{e_i in S^j}     (S^j: token j's dynamic set, as selected)
 *   Q_i = (1/M) sum_j P_i^j
 *   Loss_b = N * sum_i f_i Q_i
 *
 * Records hold one batch of T = B*M tokens (B sequences of M, row-major), so the trainer passes M
 * as `sequenceLength` (default: the whole batch is one sequence). Sequences, then layers, are
 * averaged (our choice: the paper states one sequence). N is the number of router rows.
 */
import { ops, type Tensor } from '../tensor/index.js';
import type { RoutingRecord } from '../routers/router.js';
import type { AuxLoss } from './aux-loss.js';
import { checkSequenceLength, meanOf, nonEmpty, weightedSum } from './routing-terms.js';

export class TopPBalanceLoss implements AuxLoss {
  readonly name = 'topp-balance';

  constructor(readonly sequenceLength?: number) {
    checkSequenceLength(this.name, sequenceLength);
  }

  compute(records: readonly RoutingRecord[]): Tensor | null {
    const recs = nonEmpty(records);
    if (recs.length === 0) return null;
    return meanOf(recs.map(({ routing, module, layer }) => {
      const T = routing.numTokens;
      const R = routing.layout.rows;
      const M = this.sequenceLength ?? T;
      if (T % M !== 0) throw new Error(`aux loss 'topp-balance': layer ${layer} (${module}) routed ${T} tokens, not a multiple of sequenceLength ${M}`);
      const B = T / M;
      const w = new Float64Array(B * R);
      const sel = routing.selected;
      // loss = (1/B) sum_b N * sum_i (count_bi / M) * (psum_bi / M)
      for (let t = 0; t < T; t++) {
        const b = Math.floor(t / M);
        for (let r = 0; r < R; r++) if (sel[t * R + r]) w[b * R + r]! += R / (B * M * M);
      }
      const psum = ops.sum(ops.reshape(routing.probs, [B, M, R]), 1);
      return weightedSum(psum, w);
    }));
  }
}
