/**
 * AdaMoE null experts (paper 004, §3.3-3.4): the router reads N true rows (`gate`) and m null rows
 * (`gate2`), takes p = softmax over all N + m rows and a plain top-k over them (k raised above the
 * model's usual top-k). Null experts cost no FLOPs, so each token runs a variable number of true
 * experts. Gates of the true experts are renormalised over the true experts inside the top-k
 * only (option 2 of §3.4); a token whose top-k are all null bypasses the layer (output 0) and its
 * denominator is guarded (no division by zero, as in the authors' code).
 *
 * Ties in the top-k go to the lower row, and the true rows come first, so a true expert wins a
 * tie with its null copy (the add-null-experts surgery copies gate rows into gate2, so every
 * null logit ties a true one at step 0).
 *
 * mapping 'zero' (default, the paper's): a null expert outputs 0. mapping 'identity' (paper 004
 * names it but does not try it, §3.3 and Limitations): a null expert outputs its input x, still at
 * zero FLOPs. The paper does not say which gate multiplies that x; moe-tune follows the authors'
 * code, where the routing weight of a null slot is its raw softmax probability p (not renormalised):
 * the layer adds (sum of p over the token's selected null experts) * x. The true experts keep
 * their renormalised gates, so an identity null adds to the vanilla-scale mixture, and an
 * all-null token outputs (sum of its null p) * x.
 */
import type { Tensor } from '../tensor/index.js';
import { topKRouting } from './top-k-routing.js';
import type { RouteContext, Router, RouterLayout, Routing, RouterSpec } from './router.js';

export type NullMapping = 'zero' | 'identity';

export class NullExpertsRouter implements Router {
  readonly causal = true;
  readonly spec: RouterSpec;

  constructor(readonly k: number, readonly m: number, readonly mapping: NullMapping = 'zero') {
    if (!Number.isInteger(k) || k < 1) throw new Error(`router null-experts: k must be a positive integer, got ${k}`);
    if (!Number.isInteger(m) || m < 1) throw new Error(`router null-experts: m must be a positive integer, got ${m}`);
    if (mapping !== 'zero' && mapping !== 'identity') throw new Error(`router null-experts: mapping must be 'zero' or 'identity', got '${String(mapping)}'`);
    this.spec = { name: 'null-experts', k, m, mapping };
  }

  layoutFor(numExperts: number): RouterLayout {
    return { rows: numExperts + this.m, numExperts, nullExperts: this.m, ternaryZeroExperts: 0 };
  }

  route(logits: Tensor, numExperts: number, _ctx: RouteContext): Routing {
    // p = softmax over all N + m rows, top-k over them; true gates renormalised over the chosen
    // true rows (a token with none gets denominator 1); identity nulls add their raw p times x
    return topKRouting(logits, this.layoutFor(numExperts), { k: this.k, normalize: true, identityNulls: this.mapping === 'identity' });
  }
}
