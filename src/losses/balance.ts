/**
 * Switch / Mixtral load-balancing loss `R * sum_i f_i * P_i` over the router rows i (R = N for a
 * plain router), where P_i is the mean router probability of row i and f_i the fraction of
 * assignments to row i. Three forms:
 *
 * - `mixtral-all` (Hugging Face Mixtral's load_balancing_loss_func): all layers' router outputs
 *   are concatenated into one batch of L*T tokens; f_i = (number of (token, slot) selections of
 *   row i) / (L*T), so sum f = k for top-k, and P_i = the mean probability over the L*T tokens.
 *   The model multiplies the result by `router_aux_loss_coef`. f counts the router's own
 *   selections (before capacity drops); for top-k this is exactly the top-k that HF recomputes.
 * - `per-layer`: the same per layer, averaged over layers.
 * - `top1` (XMoE, paper 001 §3.3 and A.2 eq. 7): f_i = fraction of tokens whose top choice
 *   (highest probability) is row i, P_i = mean probability of row i (as in the authors' DeepSpeed
 *   top-1 gate); per layer, averaged over layers (our choice: the paper states one layer).
 */
import { ops, type Tensor } from '../tensor/index.js';
import type { RoutingRecord } from '../routers/router.js';
import type { AuxLoss } from './aux-loss.js';
import { meanOf, nonEmpty, pooledRows, rowSelectionCounts, weightedSum } from './routing-terms.js';

export type BalanceForm = 'mixtral-all' | 'per-layer' | 'top1';
export const BALANCE_FORMS: readonly BalanceForm[] = ['mixtral-all', 'per-layer', 'top1'];

export class BalanceLoss implements AuxLoss {
  readonly name = 'balance';

  constructor(readonly form: BalanceForm = 'mixtral-all') {
    if (!BALANCE_FORMS.includes(form)) throw new Error(`aux loss 'balance': form must be one of ${BALANCE_FORMS.join(', ')}, got '${String(form)}'`);
  }

  compute(records: readonly RoutingRecord[]): Tensor | null {
    const recs = nonEmpty(records);
    if (recs.length === 0) return null;
    if (this.form === 'mixtral-all') {
      const { R, counts, total, psum } = pooledRows(this.name, recs);
      // R * sum_i (counts_i / total) * (psum_i / total)
      return weightedSum(psum, Array.from(counts, (c) => (R * c) / (total * total)));
    }
    const terms = recs.map(({ routing }) => {
      const R = routing.layout.rows;
      const T = routing.numTokens;
      let counts: Float64Array;
      if (this.form === 'top1') {
        counts = new Float64Array(R);
        for (let t = 0; t < T; t++) counts[routing.top1[t]!]! += 1;
      } else counts = rowSelectionCounts(routing);
      return weightedSum(ops.sum(routing.probs, 0), Array.from(counts, (c) => (R * c) / (T * T)));
    });
    return meanOf(terms);
  }
}
