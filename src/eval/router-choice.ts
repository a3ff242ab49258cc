/**
 * Running a model under a router other than its own for the length of one evaluation, and router
 * specs as text (`top-p:p=0.4`).
 */
import type { CausalLM } from '../models/causal-lm.js';
import type { Router, RouterSpec } from '../routers/router.js';

/** `NAME:key=value,...` (the form --router takes). */
export function formatRouterSpec(spec: RouterSpec): string {
  const params = Object.entries(spec).filter(([k]) => k !== 'name').map(([k, v]) => `${k}=${String(v)}`);
  return params.length === 0 ? spec.name : `${spec.name}:${params.join(',')}`;
}

/** The router the model's MoE layers use now (the first layer's), as text; null for dense models. */
export function currentRouterText(model: CausalLM): string | null {
  const blocks = model.moeBlocks();
  return blocks.length === 0 ? null : formatRouterSpec(blocks[0]!.router.spec);
}

/** Runs fn with every MoE layer routed by `router` (when given), then restores each layer's own. */
export function withRouter<T>(model: CausalLM, router: Router | undefined, fn: () => T): T {
  if (!router) return fn();
  const blocks = model.moeBlocks();
  const previous = blocks.map((b) => b.router);
  model.setRouter(router);
  try {
    return fn();
  } finally {
    blocks.forEach((b, i) => {
      b.router = previous[i]!;
    });
  }
}
