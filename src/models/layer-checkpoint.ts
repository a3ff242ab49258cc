/**
 * One decoder layer under activation checkpointing (src/tensor/checkpoint.ts): the layer's forward keeps
 * only its output (and its routing tensors, which the auxiliary losses read); the backward runs the layer
 * again and backpropagates through that. What must be equal on both passes is made so here:
 *  - random draws: the forward context's stream (LoRA dropout, router noise) is replayed from its state
 *    before the layer, and routers with their own streams (random drop) are set back to theirs for the
 *    recomputation, then forward again to where the rest of the step left them;
 *  - routing records: the recomputation's go to a throwaway context; the records of the forward keep
 *    their place in ctx.routing, with their tensors (gates, logits, probabilities, identity and zero-expert
 *    weights) replaced by the checkpoint's outputs, so the aux losses' gradients reach the router through the
 *    recomputation as without checkpointing.
 * The result, losses and gradients, equals the layer without checkpointing (test/train-gradient-checkpointing).
 */
import { checkpoint, Rng, type Tensor } from '../tensor/index.js';
import type { Routing } from '../routers/router.js';
import type { DecoderLayer } from './decoder-layer.js';
import { ForwardContext } from './forward-context.js';
import { statefulRouters } from './stateful-routers.js';

/** The differentiable tensors of a routing, in a fixed order (null fields skipped). */
const ROUTING_TENSORS = ['gates', 'logits', 'probs', 'identityWeights', 'zeroExpertGates'] as const;

function routingTensors(r: Routing): Tensor[] {
  return ROUTING_TENSORS.map((k) => r[k]).filter((t): t is Tensor => t !== null);
}

/** Puts the checkpoint's outputs from `at` back into the routing's fields; returns the next index. */
function restoreRoutingTensors(r: Routing, outs: readonly Tensor[], at: number): number {
  let i = at;
  for (const k of ROUTING_TENSORS) {
    if (r[k] === null) continue;
    (r as unknown as Record<string, unknown>)[k] = outs[i++]!;
  }
  return i;
}

export function checkpointedLayer(layer: DecoderLayer, x: Tensor, ctx: ForwardContext, path: string): Tensor {
  const params = layer.namedParameters().map(([, p]) => p).filter((p) => p.requiresGrad);
  const rngBefore = ctx.rng.state();
  const routers = statefulRouters(layer);
  const routersBefore = routers.map((r) => r.randomState());
  const first = ctx.routing.length;
  const outs = checkpoint(([input], pass) => {
    if (pass === 'forward') {
      const y = layer.forward(input!, ctx, undefined, path);
      return [y, ...ctx.routing.slice(first).flatMap((rec) => routingTensors(rec.routing))];
    }
    const routersNow = routers.map((r) => r.randomState());
    routers.forEach((r, i) => r.restoreRandomState(routersBefore[i]));
    try {
      const replay = new ForwardContext(ctx.training, Rng.fromState(rngBefore), ctx.step);
      const y = layer.forward(input!, replay, undefined, path);
      return [y, ...replay.routing.flatMap((rec) => routingTensors(rec.routing))];
    } finally {
      routers.forEach((r, i) => r.restoreRandomState(routersNow[i]));
    }
  }, [x], params);
  let at = 1;
  for (const rec of ctx.routing.slice(first)) at = restoreRoutingTensors(rec.routing, outs, at);
  return outs[0]!;
}
