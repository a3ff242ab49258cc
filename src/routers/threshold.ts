/**
 * XMoE threshold routing (paper 001, §3.2, eq. 5 and Alg. 1 of appendix A.1): sort p descending
 * and dispatch the token to the smallest prefix whose cumulative sum is >= t (at least one expert;
 * t = 0 acts as top-1, t = 1 sends the token to every expert). Each dispatched assignment gets
 * the priority r = p - rank (rank 1 = the token's top choice). Each expert has capacity
 * C = capacity * T / N (eq. 3; rounding in capacity.ts) and keeps the C assignments of highest
 * priority; the others are dropped: they cost nothing, and a token dropped by all its experts
 * passes through the residual only. Gates are the probabilities (eq. 2), not renormalised.
 *
 * Our choices where the paper is silent: ties in the sort go to the lower expert index; equal
 * priorities at an expert go to the lower token index; the cumulative sum is accumulated in
 * float64.
 */
import { ops, Tensor } from '../tensor/index.js';
import { buildRouting } from './build-routing.js';
import { routeByCumulativePrefix } from './cumulative-prefix.js';
import { expertCapacity } from './capacity.js';
import type { RouteContext, Router, RouterLayout, Routing, RouterSpec } from './router.js';
import { plainLayout } from './top-k.js';

export class ThresholdRouter implements Router {
  readonly causal = true;
  readonly spec: RouterSpec;

  constructor(readonly t: number, readonly capacityFactor: number) {
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > 1) throw new Error(`router threshold: t must be a number in [0, 1], got ${t}`);
    if (typeof capacityFactor !== 'number' || !(capacityFactor > 0) || !Number.isFinite(capacityFactor)) {
      throw new Error(`router threshold: capacity must be a positive number, got ${capacityFactor}`);
    }
    this.spec = { name: 'threshold', t, capacity: capacityFactor };
  }

  layoutFor(numExperts: number): RouterLayout {
    return plainLayout(numExperts);
  }

  route(logits: Tensor, numExperts: number, _ctx: RouteContext): Routing {
    const layout = this.layoutFor(numExperts);
    const T = logits.shape[0]!;
    const R = layout.rows;
    // eq. 5 of paper 001: the smallest prefix whose sum is >= t
    const { probs, kmax, slotRows, index } = routeByCumulativePrefix(logits, R, (cum) => cum >= this.t);
    const pf = probs.f;
    // capacity: per expert, keep the C slots of highest priority p - rank (ties: lower token)
    const C = expertCapacity(this.capacityFactor, T, numExperts);
    const kept = new Uint8Array(T * kmax);
    const byExpert: number[][] = Array.from({ length: numExperts }, () => []);
    for (let s = 0; s < slotRows.length; s++) if (slotRows[s]! >= 0) byExpert[slotRows[s]!]!.push(s);
    // r = p - rank with p in [0, 1] orders by rank first, then by p: comparing (rank, p) directly
    // gives the same order without the rounding of p - rank in floating point.
    const rank = (s: number): number => s % kmax;
    const prob = (s: number): number => pf[Math.floor(s / kmax) * R + slotRows[s]!]!;
    for (const slots of byExpert) {
      if (slots.length > C) slots.sort((a, b) => rank(a) - rank(b) || prob(b) - prob(a) || a - b);
      for (let i = 0; i < Math.min(C, slots.length); i++) kept[slots[i]!] = 1;
    }
    const slotGates = ops.takeAlongRows(probs, new Tensor(index, [T, kmax]));
    return buildRouting({ logits, probs, layout, kmax, slotRows, slotGates, kept, capacity: C });
  }
}
