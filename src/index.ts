/**
 * moe-tune's public library API: load -> surgery -> train -> save, on our own engine.
 */
export * from './tensor/index.js';
export { loadModel, loadModelConfig, type LoadedModel } from './models/load.js';
export { saveModel, stateDict, type SaveOptions } from './models/save.js';
export { createModel, configFromJson } from './models/create.js';
export { buildCausalLM, type BuildOptions } from './models/build.js';
export { CausalLM, DecoderStack, nextTokenTargets, IGNORE_INDEX } from './models/causal-lm.js';
export { ForwardContext } from './models/forward-context.js';
export { Module, ModuleList } from './models/module.js';
export { Linear, isLinearLike, type LinearLike } from './models/linear.js';
export { SparseMoeBlock } from './models/moe-block.js';
export { KvCache } from './models/kv-cache.js';
export type { ModelConfig, MoeConfig, MoeTuneExtensions } from './models/config.js';
export { ARCHITECTURES, resolveArchitecture } from './models/registry.js';
export type { WeightSource, WeightKind } from './models/weight-source.js';
export type { Router, RouterSpec, Routing, RoutingStats, RoutingRecord, RouterLayout } from './routers/router.js';
export { ROUTERS, createRouter, parseRouterSpec } from './routers/registry.js';
export type { AuxLoss, WeightedAuxLoss } from './losses/aux-loss.js';
export { createSchedule, type Schedule, type ScheduleSpec } from './losses/schedule.js';
export { AdamW, type AdamWOptions } from './train/adamw.js';
