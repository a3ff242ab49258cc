import type { BuildOptions } from './build.js';
import { checkAllocatable } from './allocation-budget.js';
import { buildCausalLM } from './build.js';
import type { CausalLM } from './causal-lm.js';
import { parseModelConfig, type ModelConfig } from './config.js';
import { randomSource, type InitOptions } from './init.js';
import { resolveArchitecture } from './registry.js';
import { fromRemoteCodeConfig } from './remote-code.js';

/** Validates a config.json-style object (e.g. from a recipe) into a ModelConfig. */
export function configFromJson(json: Record<string, unknown>, where = 'model config'): ModelConfig {
  const raw = fromRemoteCodeConfig(json);
  const arch = resolveArchitecture(raw, where);
  return parseModelConfig(raw, arch, where);
}

/** A randomly initialised model (pretraining from scratch, tests). */
export function createModel(config: ModelConfig | Record<string, unknown>, init: InitOptions, opts: BuildOptions = {}): CausalLM {
  const c = 'architecture' in config && 'raw' in config ? (config as ModelConfig) : configFromJson(config as Record<string, unknown>);
  checkAllocatable(c, 'model config'); // before any tensor is allocated
  return buildCausalLM(c, randomSource(c, init), opts);
}
