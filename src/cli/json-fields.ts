/** Library results as the snake_case JSON objects the CLI prints (stable field names for scripts). */
import type { RouterStatsSummary } from '../routers/stats.js';

/** load, drop / bypass rates, FLOPs against top-k and per-layer statistics. */
export function routingJson(s: RouterStatsSummary | null): Record<string, unknown> {
  if (!s) return { load: null, layers: [], flops_ratio: null };
  return {
    load: s.load,
    dropped_rate: s.droppedRate,
    bypass_rate: s.bypassRate,
    flops_ratio: s.flops ? {
      baseline_top_k: s.flops.baselineTopK,
      moe_layers: s.flops.moeLayer.ratio,
      model: s.flops.model.ratio,
      model_flops_per_token: s.flops.model.perToken,
      baseline_flops_per_token: s.flops.model.baselinePerToken,
    } : null,
    layers: s.layers.map((l) => ({
      layer: l.layer,
      module: l.module,
      experts: l.numExperts,
      router_rows: l.routerRows,
      scored_tokens: l.scoredTokens,
      load: l.load,
      tokens_per_expert: l.tokensPerExpert,
      experts_per_token_histogram: l.expertsPerTokenHistogram,
      selected_assignments: l.selectedAssignments,
      dropped_assignments: l.droppedAssignments,
      dropped_rate: l.droppedRate,
      bypassed_tokens: l.bypassedTokens,
      capacity: l.capacity,
      expert_passes_per_token: l.expertPassesPerToken,
    })),
  };
}
