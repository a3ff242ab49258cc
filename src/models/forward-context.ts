import { Rng } from '../tensor/index.js';
import type { RoutingRecord } from '../routers/router.js';

export type { RoutingRecord };

/**
 * State shared by every module in one forward pass: training mode (dropout, router noise), the
 * random stream, and the routing records the MoE layers append.
 */
export class ForwardContext {
  readonly routing: RoutingRecord[] = [];
  /**
   * Activation checkpointing: each decoder layer keeps only its output for the backward, which
   * recomputes the layer (layer-checkpoint.ts). Off by default; the trainer sets it from
   * train.gradient_checkpointing.
   */
  checkpointLayers = false;

  constructor(
    readonly training: boolean,
    readonly rng: Rng = new Rng(0),
    /** Optimizer step (for routers or losses that change over training). */
    readonly step = 0,
  ) {}

  static eval(): ForwardContext {
    return new ForwardContext(false);
  }
}
