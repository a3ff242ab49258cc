/**
 * Router z-loss (ST-MoE, Zoph et al. 2022): the mean over tokens of logsumexp(router logits)^2,
 * which keeps router logits small. Layers are averaged. An extra option: none of the five papers
 * uses it.
 */
import { ops, type Tensor } from '../tensor/index.js';
import type { RoutingRecord } from '../routers/router.js';
import type { AuxLoss } from './aux-loss.js';
import { meanOf, nonEmpty } from './routing-terms.js';

/** logsumexp over the last axis of [T, R] -> [T] (the max is a constant shift: no gradient needed). */
export function logSumExpRows(logits: Tensor): Tensor {
  const T = logits.shape[0]!;
  const mx = ops.maxAlong(logits, 1, true);
  const lse = ops.log(ops.sum(ops.exp(ops.sub(logits, mx)), 1));
  return ops.add(lse, ops.reshape(mx, [T]));
}

export class ZLoss implements AuxLoss {
  readonly name = 'z-loss';

  compute(records: readonly RoutingRecord[]): Tensor | null {
    const recs = nonEmpty(records);
    if (recs.length === 0) return null;
    return meanOf(recs.map(({ routing }) => ops.mean(ops.square(logSumExpRows(routing.logits)))));
  }
}
