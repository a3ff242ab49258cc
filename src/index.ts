/**
 * moe-tune's public library API: load -> surgery -> train -> save, on our own engine.
 *
 *   import { loadModel, applySurgery, nullExpertsPass, finetune, saveModel } from 'moe-tune';
 *
 * Importing this module also registers the LoRA / Mo-LoRA builders, so surgered checkpoints load.
 */
// engine
export * from './tensor/index.js';

// models
export { loadModel, loadModelConfig, type LoadedModel } from './models/load.js';
export { saveModel, stateDict, type SaveOptions } from './models/save.js';
export { createModel, configFromJson } from './models/create.js';
export { checkAllocatable, parameterBytes, MAX_TYPED_ARRAY_LENGTH, type AllocationBudget } from './models/allocation-budget.js';
export { buildCausalLM, type BuildOptions } from './models/build.js';
export { registerLayerExtension, type LayerExtension } from './models/layer-extensions.js';
export { editModelConfig, setModelConfig, modelConfigJson, moeTuneOf } from './models/config-edit.js';
export { GatedMLP } from './models/mlp.js';
export { StackedExperts } from './models/stacked-experts.js';
export { GqaAttention, type AttentionModule } from './models/attention.js';
export { routerRowGroups, routerRowCount, type RouterRowGroup, type RowTarget } from './models/router-rows.js';
export { CausalLM, DecoderStack, nextTokenTargets, IGNORE_INDEX } from './models/causal-lm.js';
export { ForwardContext } from './models/forward-context.js';
export { Module, ModuleList } from './models/module.js';
export { Linear, isLinearLike, type LinearLike } from './models/linear.js';
export { SparseMoeBlock } from './models/moe-block.js';
export { KvCache } from './models/kv-cache.js';
export type { ModelConfig, MoeConfig, MoeTuneExtensions, AttentionConfig, SharedExpertConfig } from './models/config.js';
export type { RopeConfig } from './models/rotary.js';
export { ARCHITECTURES, resolveArchitecture, layoutOf, registerArchitecture } from './models/registry.js';
export type { ArchitectureLayout, ModuleNames, GatedProjNames, FamilyConfig, FamilyMoeConfig } from './models/architectures/index.js';
export type { WeightSource, WeightKind } from './models/weight-source.js';

// routers and losses
export type { Router, RouterSpec, Routing, RoutingStats, RoutingRecord, RouterLayout, RandomStateful } from './routers/router.js';
export { ROUTERS, createRouter, parseRouterSpec } from './routers/registry.js';
export { RouterStatsAccumulator, scoredPositions, flopsAgainstTopK } from './routers/stats.js';
export type { AuxLoss, WeightedAuxLoss } from './losses/aux-loss.js';
export { AUX_LOSSES, createAuxLoss, createWeightedAuxLoss, type AuxLossSpec } from './losses/registry.js';
export { createSchedule, type Schedule, type ScheduleSpec } from './losses/schedule.js';

// adapters, surgery, conversions, quantisation
export * from './lora/index.js';
export * from './adapters/index.js';
export * from './convert/index.js';
export * from './quant/index.js';

// data, training, evaluation
export { MoeTokenizer } from './data/tokenizer.js';
export { trainByteLevelBpe } from './data/bpe-trainer.js';
export { loadBrownCorpus } from './data/brown-corpus.js';
export { loadTokenizedDataset } from './data/load-dataset.js';
export { packDocuments, type PackedSequences } from './data/packing.js';
export { tokenizeTexts, readTextDataset } from './data/text-dataset.js';
export * from './train/index.js';
export { perplexity, type PerplexityOptions, type PerplexityResult } from './eval/perplexity.js';
export { slidingWindows, type WindowOptions, type ScoredWindow } from './eval/sliding-windows.js';
export { multipleChoice, readMultipleChoice } from './eval/multiple-choice.js';
export { generate, type GenerateOptions, type GenerateResult } from './eval/generate.js';
export { runSweep, parseRouterSeries } from './eval/router-sweep.js';
export { buildRunReport } from './report/run-report.js';

// Hugging Face Hub
export * from './hub/index.js';
