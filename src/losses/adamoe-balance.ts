/**
 * AdaMoE load balancing with null experts (paper 004, §3.4 eq. 6). Two variants (`nullGroup`):
 *
 * 'averaged' (default) follows the paper's prose, "by using an average load among the null
 * experts" (our copy of eq. 6 itself is not legible): the Switch loss over all N + m router rows,
 * except that the m null experts count as one averaged group, each null row's f replaced by the
 * mean f over the null rows, so
 *
 *   L = (N + m) * [ sum_{i < N} f_i P_i + (1/m) (sum_null f_j) (sum_null P_j) ]
 *
 * and nulls are not balanced among themselves (averaging f, P or both gives the same value).
 *
 * 'separate' is what the authors' code computes: it means to average the null experts too, but
 * its averaging line indexes the slot dimension of a [top_k, N + m] tensor, selects an empty slice
 * and changes nothing, so its effective loss is the plain Switch loss over N + m experts, each null
 * its own f_j P_j: L = (N + m) * sum_{r < N + m} f_r P_r.
 *
 * Both: the prefactor N + m is the authors' code (their Hugging Face Mixtral loss with num_experts
 * raised by the null count), as are f and P: f_i = (token, slot) selections / tokens (sum f = k)
 * and P_i the mean probability, over all layers concatenated (form `mixtral-all`, default) or per
 * layer and averaged (form `per-layer`).
 */
import { ops, type Tensor } from '../tensor/index.js';
import type { Routing, RoutingRecord } from '../routers/router.js';
import type { AuxLoss } from './aux-loss.js';
import { meanOf, nonEmpty, pooledRows, rowSelectionCounts, weightedSum } from './routing-terms.js';

export type AdaMoeBalanceForm = 'mixtral-all' | 'per-layer';
export const ADAMOE_BALANCE_FORMS: readonly AdaMoeBalanceForm[] = ['mixtral-all', 'per-layer'];

/** 'averaged': the paper's prose (nulls as one averaged group); 'separate': the authors' code's effective loss. */
export type AdaMoeNullGroup = 'averaged' | 'separate';
export const ADAMOE_NULL_GROUPS: readonly AdaMoeNullGroup[] = ['averaged', 'separate'];

/** Per-row weights w with L = sum_r w_r * psum_r: nulls share the mean of their f ('averaged') or keep their own. */
function weights(counts: Float64Array, N: number, m: number, tokens: number, nullGroup: AdaMoeNullGroup): number[] {
  const R = N + m;
  let nullCount = 0;
  for (let r = N; r < R; r++) nullCount += counts[r]!;
  const w: number[] = [];
  for (let r = 0; r < R; r++) w.push((R * (r < N || nullGroup === 'separate' ? counts[r]! : nullCount / m)) / (tokens * tokens));
  return w;
}

function nullLayout(routing: Routing, module: string, layer: number): { N: number; m: number } {
  const { numExperts: N, nullExperts: m } = routing.layout;
  if (m <= 0) throw new Error(`aux loss 'adamoe-balance': layer ${layer} (${module}) has no null experts (its router is not null-experts; use 'balance')`);
  return { N, m };
}

export class AdaMoeBalanceLoss implements AuxLoss {
  readonly name = 'adamoe-balance';

  constructor(readonly form: AdaMoeBalanceForm = 'mixtral-all', readonly nullGroup: AdaMoeNullGroup = 'averaged') {
    if (!ADAMOE_BALANCE_FORMS.includes(form)) throw new Error(`aux loss 'adamoe-balance': form must be one of ${ADAMOE_BALANCE_FORMS.join(', ')}, got '${String(form)}'`);
    if (!ADAMOE_NULL_GROUPS.includes(nullGroup)) throw new Error(`aux loss 'adamoe-balance': null_group must be one of ${ADAMOE_NULL_GROUPS.join(', ')}, got '${String(nullGroup)}'`);
  }

  compute(records: readonly RoutingRecord[]): Tensor | null {
    const recs = nonEmpty(records);
    if (recs.length === 0) return null;
    if (this.form === 'mixtral-all') {
      const { counts, total, psum } = pooledRows(this.name, recs);
      const [{ N, m }] = recs.map(({ routing, module, layer }) => nullLayout(routing, module, layer)) as [{ N: number; m: number }];
      return weightedSum(psum, weights(counts, N, m, total, this.nullGroup));
    }
    return meanOf(recs.map(({ routing, module, layer }) => {
      const { N, m } = nullLayout(routing, module, layer);
      return weightedSum(ops.sum(routing.probs, 0), weights(rowSelectionCounts(routing), N, m, routing.numTokens, this.nullGroup));
    }));
  }
}
