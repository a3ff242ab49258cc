/**
 * The Routing of a router that is a plain top-k over softmax probabilities (top-k, AdaMoE null
 * experts) from the fused routeTopK op: one kernel computes the probabilities, the choices, the
 * gates and the pairs grouped by expert, instead of a chain of small ops and buildRouting's
 * TypeScript loops. The numbers are buildRouting's for the same choices (test/routers-fused-top-k).
 */
import { ops, type Tensor } from '../tensor/index.js';
import type { Routing, RouterLayout } from './router.js';

export interface TopKRoutingOptions {
  k: number;
  /** Gates renormalised over each token's chosen true experts (1 when none). */
  normalize: boolean;
  /** AdaMoE identity-mapped null experts: the layer adds (sum of the chosen null p) * x. */
  identityNulls?: boolean;
}

export function topKRouting(logits: Tensor, layout: RouterLayout, opts: TopKRoutingOptions): Routing {
  const R = layout.rows;
  const N = layout.numExperts;
  if (logits.rank !== 2 || logits.shape[1] !== R) {
    throw new Error(`router: logits [${logits.shape.join(', ')}] do not have the ${R} router rows the layout needs`);
  }
  const T = logits.shape[0]!;
  const r = ops.routeTopK(logits, { trueColumns: N, k: opts.k, normalize: opts.normalize, nullSums: opts.identityNulls ?? false });
  const P = r.tokens.length;
  const counts = new Int32Array(N);
  for (let e = 0; e < N; e++) counts[e] = r.offsets[e + 1]! - r.offsets[e]!;
  let bypassed = 0;
  let nullSlots = 0;
  for (let t = 0; t < T; t++) {
    let any = false;
    for (let j = 0; j < r.k; j++) {
      if (r.slotRows[t * r.k + j]! < N) any = true;
      else nullSlots++;
    }
    if (!any) bypassed++;
  }
  return {
    numTokens: T,
    numExperts: N,
    tokens: r.tokens,
    expertOffsets: r.offsets,
    gates: r.gates,
    identityWeights: opts.identityNulls && nullSlots > 0 ? r.nullSums : null,
    zeroExpertGates: null,
    logits,
    probs: r.probs,
    selected: r.selected,
    top1: r.top1,
    layout,
    stats: {
      tokens: T,
      tokensPerExpert: counts,
      trueExpertsPerToken: T === 0 ? 0 : P / T,
      droppedAssignments: 0,
      selectedAssignments: P,
      bypassedTokens: bypassed,
      capacity: null,
    },
  };
}
