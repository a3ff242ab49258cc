/**
 * Top-p dynamic routing (paper 003, Alg. 1 and eq. 4): sort p descending and add experts one at a
 * time, stopping after the first expert whose addition makes the cumulative sum strictly greater
 * than p. That expert is kept, so every token gets at least one expert; there is no cap (if the
 * sum never exceeds p, e.g. p >= 1, the token gets every expert). Gates are the probabilities
 * themselves, not renormalised.
 *
 * Our choices where the paper is silent: ties in the sort go to the lower expert index; the
 * cumulative sum is accumulated in float64 over the (float32 or float64) probabilities.
 */
import { ops, Tensor } from '../tensor/index.js';
import { buildRouting } from './build-routing.js';
import { routeByCumulativePrefix } from './cumulative-prefix.js';
import type { RouteContext, Router, RouterLayout, Routing, RouterSpec } from './router.js';
import { plainLayout } from './top-k.js';

export class TopPRouter implements Router {
  readonly causal = true;
  readonly spec: RouterSpec;

  constructor(readonly p: number) {
    if (typeof p !== 'number' || !Number.isFinite(p) || p < 0 || p > 1) throw new Error(`router top-p: p must be a number in [0, 1], got ${p}`);
    this.spec = { name: 'top-p', p };
  }

  layoutFor(numExperts: number): RouterLayout {
    return plainLayout(numExperts);
  }

  route(logits: Tensor, numExperts: number, _ctx: RouteContext): Routing {
    const layout = this.layoutFor(numExperts);
    const T = logits.shape[0]!;
    // Alg. 1 of paper 003: stop after the expert that makes the sum strictly greater than p
    const { probs, kmax, slotRows, index } = routeByCumulativePrefix(logits, layout.rows, (cum) => cum > this.p);
    const slotGates = ops.takeAlongRows(probs, new Tensor(index, [T, kmax]));
    return buildRouting({ logits, probs, layout, kmax, slotRows, slotGates });
  }
}
