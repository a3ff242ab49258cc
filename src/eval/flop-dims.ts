/**
 * A model config as the plain dimensions the router statistics need for FLOPs against plain
 * top-k (src/routers/stats.ts), and FLOPs for a given load without routing records (a training
 * log's per-layer load, for reports).
 */
import { layoutOf } from '../models/architectures/index.js';
import { routerRowCount } from '../models/router-rows.js';
import type { ModelConfig } from '../models/config.js';
import {
  flopsAgainstTopK, type FlopsJson, type LayerStatsJson, type ModelFlopDims, type RouterStatsAccumulator, type RouterStatsSummary,
} from '../routers/stats.js';

/** Dimensions of a MoE model (null for dense models). Baseline k = num_experts_per_tok, capped at N. */
export function flopDimsOf(config: ModelConfig, contextLength?: number): ModelFlopDims | null {
  if (!config.moe) return null;
  return {
    hiddenSize: config.hiddenSize,
    numLayers: config.numLayers,
    vocabSize: config.vocabSize,
    numHeads: config.numHeads,
    numKvHeads: config.numKvHeads,
    headDim: config.headDim,
    intermediateSize: config.intermediateSize,
    expertIntermediateSize: config.moe.expertIntermediateSize,
    moeLayers: config.moe.layers,
    numExperts: config.moe.numExperts,
    topK: Math.min(config.moe.topK, config.moe.numExperts),
    contextLength,
    attention: layoutOf(config).attentionFlops?.(config),
    sharedExpertIntermediateSize: config.moe.sharedExpert?.intermediateSize ?? 0,
    sharedExpertGated: config.moe.sharedExpert?.gated ?? false,
  };
}

/**
 * FLOPs against top-k for a load per MoE layer (layer index -> experts per token), as the
 * statistics would give for routing with that load and no capacity padding.
 */
export function flopsForLoad(config: ModelConfig, loadPerLayer: ReadonlyMap<number, number>): FlopsJson | null {
  const dims = flopDimsOf(config);
  if (!dims) return null;
  const routerRows = routerRowCount(config);
  const layers: LayerStatsJson[] = [...loadPerLayer].map(([layer, load]) => ({
    layer, module: '', numExperts: dims.numExperts, routerRows, forwardPasses: 1, scoredTokens: 1, load,
    tokensPerExpert: [], expertsPerTokenHistogram: [], selectedAssignments: 0, droppedAssignments: 0, droppedRate: 0,
    bypassedTokens: 0, capacity: null, expertPassesPerToken: load,
  }));
  return flopsAgainstTopK(layers, dims);
}

/** The accumulated statistics (FLOPs included for MoE configs), or null when nothing was routed. */
export function routingSummary(acc: RouterStatsAccumulator, config: ModelConfig): RouterStatsSummary | null {
  const s = acc.summary(flopDimsOf(config) ?? undefined);
  return s.layers.length === 0 ? null : s;
}
