/**
 * Parameter counts of a model by tensor name, total and active per token.
 *
 * Active per token: every parameter outside the routed experts counts in full (embeddings,
 * attention, norms, dense MLPs, routers); the routed experts of a MoE layer count k/N of their
 * parameters, where k is the nominal number of true experts a token uses (the config's
 * `num_experts_per_tok`, capped at N) and N the number of true experts. Dynamic routers (top-p,
 * threshold, null experts) use a data-dependent number: eval and sweep report it as `load`.
 * FLOPs against top-k are the router statistics' job (src/routers/stats.ts, src/eval/flop-dims.ts).
 */
import { tensorRoleClassifier } from '../models/architectures/tensor-roles.js';
import type { ModelConfig } from '../models/config.js';

export interface ParameterCounts {
  total: number;
  /** Parameters inside the routed experts of the MoE layers. */
  expert: number;
  /** Router rows (gate, gate2, their biases). */
  router: number;
  /** Shared experts (and their gates): every token runs them, so they count as active in full. */
  shared: number;
  /** Input embedding plus an untied LM head. */
  embedding: number;
  /** Everything else: attention, norms, dense MLPs, adapters. */
  other: number;
  /** Nominal true experts per token in a MoE layer (k), and true experts N. */
  activeExperts: number;
  numExperts: number;
  /** total - expert + expert * k / N. */
  activePerToken: number;
  /** How activePerToken was counted, in words. */
  activeBasis: string;
}

/** Counts from (name, element count) pairs: checkpoint headers or a model's parameters. */
export function countParameters(entries: Iterable<readonly [string, number]>, config: ModelConfig): ParameterCounts {
  let total = 0;
  let expert = 0;
  let router = 0;
  let embedding = 0;
  let shared = 0;
  const roleOf = tensorRoleClassifier();
  for (const [name, n] of entries) {
    const role = roleOf(name);
    if (role === 'buffer') continue; // not a parameter (transformers' num_parameters leaves it out too)
    total += n;
    if (role === 'routed-expert') expert += n;
    else if (role === 'router') router += n;
    else if (role === 'shared-expert') shared += n;
    else if (role === 'embedding') embedding += n;
  }
  const N = config.moe?.numExperts ?? 0;
  const k = config.moe ? Math.min(config.moe.topK, N) : 0;
  const activeExpert = N === 0 ? 0 : (expert * k) / N;
  const ext = config.extensions;
  const dynamic = ext.null_experts || ext.ternary || ext.router
    ? '; this checkpoint routes dynamically, so its true experts per token depend on the data: see `eval` for the measured load'
    : '';
  const activeBasis = config.moe
    ? `all non-expert parameters (embeddings${config.moe.sharedExpert ? ' and shared experts' : ''} included) plus ${k}/${N} of the routed expert parameters of the ${config.moe.layers.length} MoE layer(s) (k = num_experts_per_tok)${dynamic}`
    : 'all parameters (dense model)';
  return {
    total,
    expert,
    router,
    shared,
    embedding,
    other: total - expert - router - shared - embedding,
    activeExperts: k,
    numExperts: N,
    activePerToken: Math.round(total - expert + activeExpert),
    activeBasis,
  };
}
