import { createRouter } from '../routers/registry.js';
import type { Router, RouterSpec } from '../routers/router.js';
import type { ModelConfig } from './config.js';

/**
 * The router a checkpoint's config asks for: moe_tune.router when set, AdaMoE null experts or
 * TC-MoE ternary rows when the layout has them, else the family's own routing rule (softmax top-k
 * renormalised or not, ...).
 */
export function createDefaultRouter(config: ModelConfig): Router {
  if (!config.moe) throw new Error('createDefaultRouter: the model has no MoE layers');
  const ext = config.extensions;
  if (ext.router) return createRouter(ext.router as RouterSpec);
  if (ext.null_experts) {
    return createRouter({ name: 'null-experts', k: ext.null_experts.top_k, m: ext.null_experts.m, mapping: ext.null_experts.mapping });
  }
  if (ext.ternary) return createRouter({ name: 'ternary', k: config.moe.topK, zero: ext.ternary.zero_experts });
  return createRouter(config.moe.router);
}
