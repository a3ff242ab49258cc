/**
 * The dynamic loss of top-p routing (paper 003, §2.3 eq. 5): the entropy of each token's router
 * distribution, Loss_d = -sum_i P_i log P_i, minimised so a token concentrates on few experts.
 * The paper does not say how tokens and layers are combined: moe-tune averages over the tokens of
 * each layer, then over layers. P is the softmax over all router rows; log P is taken as a
 * log-softmax of the logits so that P = 0 in float does not give NaN.
 */
import { ops, type Tensor } from '../tensor/index.js';
import type { RoutingRecord } from '../routers/router.js';
import type { AuxLoss } from './aux-loss.js';
import { meanOf, nonEmpty } from './routing-terms.js';

export class EntropyLoss implements AuxLoss {
  readonly name = 'entropy';

  compute(records: readonly RoutingRecord[]): Tensor | null {
    const recs = nonEmpty(records);
    if (recs.length === 0) return null;
    return meanOf(recs.map(({ routing }) => {
      const plogp = ops.mul(routing.probs, ops.logSoftmax(routing.logits));
      return ops.neg(ops.scale(ops.sum(plogp), 1 / routing.numTokens));
    }));
  }
}
