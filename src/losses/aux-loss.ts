/**
 * Auxiliary losses over the routing records of one forward pass (all MoE layers), each with a
 * weight that follows a schedule. The trainer adds sum_i weight_i(step) * loss_i to the LM loss.
 */
import type { Tensor } from '../tensor/index.js';
import type { RoutingRecord } from '../routers/router.js';
import type { Schedule } from './schedule.js';

export interface AuxLoss {
  /** Metrics key (e.g. 'balance', 'reward', 'entropy', 'z'). */
  readonly name: string;
  /** The unweighted scalar loss, or null when no record applies (e.g. a dense model). */
  compute(records: readonly RoutingRecord[]): Tensor | null;
}

export interface WeightedAuxLoss {
  loss: AuxLoss;
  weight: Schedule;
}
