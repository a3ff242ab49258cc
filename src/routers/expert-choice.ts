/**
 * Expert-choice routing (paper 002): p = softmax over the experts for each token; each expert then
 * takes the C tokens of the batch with the highest p for it, so a token may be processed by 0..N
 * experts. Gates are the probabilities p (not renormalised).
 *
 * Paper 002 gives no capacity formula: moe-tune uses C = capacity * T / N (rounding in
 * capacity.ts) with capacity 2 by default (two experts per token on average, as paper 003 §7
 * describes expert choice). Our choices where the paper is silent: equal scores at an expert go to
 * the lower token index; a token's slots are ordered by p descending (ties: lower expert).
 *
 * Not causal: an expert's choice depends on every token of the batch, future positions included
 * (paper 004 §3.3), so this router suits pretraining and encoders, not generation.
 */
import { ops, Tensor } from '../tensor/index.js';
import { buildRouting, padSlots } from './build-routing.js';
import { expertCapacity } from './capacity.js';
import type { RouteContext, Router, RouterLayout, Routing, RouterSpec } from './router.js';
import { plainLayout } from './top-k.js';

export class ExpertChoiceRouter implements Router {
  readonly causal = false;
  readonly spec: RouterSpec;

  constructor(readonly capacityFactor = 2) {
    if (typeof capacityFactor !== 'number' || !(capacityFactor > 0) || !Number.isFinite(capacityFactor)) {
      throw new Error(`router expert-choice: capacity must be a positive number, got ${capacityFactor}`);
    }
    this.spec = { name: 'expert-choice', capacity: capacityFactor };
  }

  layoutFor(numExperts: number): RouterLayout {
    return plainLayout(numExperts);
  }

  route(logits: Tensor, numExperts: number, _ctx: RouteContext): Routing {
    const layout = this.layoutFor(numExperts);
    const T = logits.shape[0]!;
    const N = numExperts;
    const probs = ops.softmax(logits);
    const pf = probs.f;
    const C = expertCapacity(this.capacityFactor, T, N);
    const lists: number[][] = Array.from({ length: T }, () => []);
    const order = Array.from({ length: T }, (_, t) => t);
    for (let e = 0; e < N; e++) {
      order.sort((a, b) => pf[b * N + e]! - pf[a * N + e]! || a - b);
      for (let i = 0; i < C; i++) lists[order[i]!]!.push(e);
    }
    for (let t = 0; t < T; t++) lists[t]!.sort((a, b) => pf[t * N + b]! - pf[t * N + a]! || a - b);
    const { kmax, slotRows, index } = padSlots(lists);
    const slotGates = ops.takeAlongRows(probs, new Tensor(index, [T, kmax]));
    return buildRouting({ logits, probs, layout, kmax, slotRows, slotGates, capacity: C });
  }
}
