/**
 * TC-MoE reward loss (paper 000, §3.4 eq. 12): L_rwd = -(1/T) sum_j sum_{i in E^0} g_{E_i^0}(h_j),
 * the negative mean summed zero-expert gate. Its gradient pushes gate mass onto the zero experts,
 * trading FLOPs for quality (weight a2 in {0, 1e-5, 2e-5} in the paper). With eq. 16 every E^0 has
 * a gate on every token. T is the number of tokens the loss sees; layers are averaged (our choice).
 */
import { ops, type Tensor } from '../tensor/index.js';
import type { RoutingRecord } from '../routers/router.js';
import type { AuxLoss } from './aux-loss.js';
import { meanOf, nonEmpty } from './routing-terms.js';

export class TcMoeRewardLoss implements AuxLoss {
  readonly name = 'tcmoe-reward';

  compute(records: readonly RoutingRecord[]): Tensor | null {
    const recs = nonEmpty(records);
    if (recs.length === 0) return null;
    return meanOf(recs.map(({ routing, module, layer }) => {
      if (!routing.zeroExpertGates) throw new Error(`aux loss 'tcmoe-reward': layer ${layer} (${module}) has no zero experts (its router is not ternary)`);
      return ops.neg(ops.mean(routing.zeroExpertGates));
    }));
  }
}
