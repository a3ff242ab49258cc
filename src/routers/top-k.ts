/**
 * Top-k routing (Mixtral; paper 000 eq. 2): p = softmax(logits) in float32, keep the k largest,
 * renormalise the kept values to sum to 1 (transformers' norm_topk_prob), or keep them as they are
 * (renormalize false: Qwen2-MoE, OLMoE and Qwen3-MoE with norm_topk_prob false). Ties go to the
 * lower expert index; a k larger than the number of experts selects them all (our choice: no
 * family's config asks for it).
 */
import type { Tensor } from '../tensor/index.js';
import { topKRouting } from './top-k-routing.js';
import type { RouteContext, Router, RouterLayout, Routing, RouterSpec } from './router.js';

export function plainLayout(numExperts: number): RouterLayout {
  return { rows: numExperts, numExperts, nullExperts: 0, ternaryZeroExperts: 0 };
}

export class TopKRouter implements Router {
  readonly causal = true;
  readonly spec: RouterSpec;

  constructor(readonly k: number, readonly normalize = true) {
    if (!Number.isInteger(k) || k < 1) throw new Error(`router top-k: k must be a positive integer, got ${k}`);
    if (typeof normalize !== 'boolean') throw new Error(`router top-k: renormalize must be true or false, got '${String(normalize)}'`);
    this.spec = normalize ? { name: 'top-k', k } : { name: 'top-k', k, renormalize: false };
  }

  layoutFor(numExperts: number): RouterLayout {
    return plainLayout(numExperts);
  }

  route(logits: Tensor, numExperts: number, _ctx: RouteContext): Routing {
    return topKRouting(logits, this.layoutFor(numExperts), { k: this.k, normalize: this.normalize });
  }
}
