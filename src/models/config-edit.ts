/**
 * Surgery changes a model's architecture, so its config must follow: edits go through the
 * config.json form (the one place that knows every key) and are validated again, so a model after
 * surgery has exactly the config that loadModel will read back.
 */
import type { CausalLM } from './causal-lm.js';
import type { ModelConfig } from './config.js';
import { configToJson } from './config-json.js';
import { configFromJson } from './create.js';

/** The model's config.json object with its moe_tune extensions (a fresh copy to edit). */
export function modelConfigJson(model: CausalLM): Record<string, unknown> {
  return structuredClone(configToJson(model.config));
}

/** The moe_tune object of a config.json object (created when absent). */
export function moeTuneOf(json: Record<string, unknown>): Record<string, unknown> {
  const cur = json['moe_tune'];
  if (cur && typeof cur === 'object' && !Array.isArray(cur)) return cur as Record<string, unknown>;
  const fresh: Record<string, unknown> = {};
  json['moe_tune'] = fresh;
  return fresh;
}

/** Replaces the model's config (surgery changes the architecture in place). */
export function setModelConfig(model: CausalLM, config: ModelConfig): void {
  (model as unknown as { config: ModelConfig }).config = config;
}

/**
 * Edits the model's config.json form, validates it, and installs the result; returns the new
 * config. Empty moe_tune objects are dropped.
 */
export function editModelConfig(model: CausalLM, edit: (json: Record<string, unknown>) => void, where = 'surgery'): ModelConfig {
  const json = modelConfigJson(model);
  edit(json);
  const ext = json['moe_tune'] as Record<string, unknown> | undefined;
  if (ext && Object.keys(ext).length === 0) delete json['moe_tune'];
  const config = configFromJson(json, `${where}: config`);
  setModelConfig(model, config);
  return config;
}
