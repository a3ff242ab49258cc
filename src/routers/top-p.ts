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
import { argsortDesc, ops, Tensor } from '../tensor/index.js';
import { buildRouting, padSlots } from './build-routing.js';
import type { RouteContext, Router, RouterLayout, Routing, RouterSpec } from './router.js';
import { plainLayout } from './top-k.js';

/** Rows chosen by Alg. 1 of paper 003 for one token's probabilities (row-major slice). */
export function topPSelect(probs: ArrayLike<number>, offset: number, n: number, p: number, order: Int32Array = new Int32Array(n)): number[] {
  argsortDesc(probs, offset, n, order);
  const out: number[] = [];
  let cum = 0;
  for (let j = 0; j < n; j++) {
    const r = order[j]!;
    cum += probs[offset + r]!;
    out.push(r);
    if (cum > p) break;
  }
  return out;
}

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
    const R = layout.rows;
    const probs = ops.softmax(logits);
    const pf = probs.f;
    const order = new Int32Array(R);
    const lists: number[][] = [];
    for (let t = 0; t < T; t++) lists.push(topPSelect(pf, t * R, R, this.p, order));
    const { kmax, slotRows, index } = padSlots(lists);
    const slotGates = ops.takeAlongRows(probs, new Tensor(index, [T, kmax]));
    return buildRouting({ logits, probs, layout, kmax, slotRows, slotGates });
  }
}
