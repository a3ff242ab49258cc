/**
 * The registry of architecture families, keyed by `config.architectures[0]` (or `model_type`).
 * Adding a family: one file in this folder (its ArchitectureLayout) and its line below; see
 * docs/architectures.md.
 */
import type { ArchitectureLayout } from './layout.js';
import { deepseekV3 } from './deepseek-v3.js';
import { llama } from './llama.js';
import { mistral } from './mistral.js';
import { mixtral } from './mixtral.js';
import { olmoe } from './olmoe.js';
import { qwen2 } from './qwen2.js';
import { qwen2Moe } from './qwen2-moe.js';
import { qwen3 } from './qwen3.js';
import { qwen3Moe } from './qwen3-moe.js';
import { xmoe } from './xmoe.js';

export type { ArchitectureLayout, ModuleNames, GatedProjNames, FamilyConfig, FamilyMoeConfig, AttentionBuildContext } from './layout.js';

export const ARCHITECTURES: ArchitectureLayout[] = [
  llama,
  mistral,
  mixtral,
  xmoe,
  qwen2,
  qwen3,
  qwen2Moe,
  qwen3Moe,
  olmoe,
  deepseekV3,
];

/** Adds a family at run time (a user's own layout; the built-in ones are listed above). */
export function registerArchitecture(layout: ArchitectureLayout): void {
  const i = ARCHITECTURES.findIndex((a) => a.name === layout.name);
  if (i >= 0) ARCHITECTURES[i] = layout;
  else ARCHITECTURES.push(layout);
}

/** The architecture of a config.json object; one clear error naming the file when unknown. */
export function resolveArchitecture(raw: Record<string, unknown>, where: string): ArchitectureLayout {
  const archs = raw['architectures'];
  const declared = Array.isArray(archs) && typeof archs[0] === 'string' ? (archs[0] as string) : null;
  const modelType = typeof raw['model_type'] === 'string' ? (raw['model_type'] as string) : null;
  const byName = declared ? ARCHITECTURES.find((a) => a.name === declared) : undefined;
  if (byName) return byName;
  if (!declared && modelType) {
    const byType = ARCHITECTURES.find((a) => a.modelType === modelType);
    if (byType) return byType;
  }
  const what = declared ? `architecture '${declared}'` : modelType ? `model_type '${modelType}'` : 'no architectures / model_type field';
  throw new Error(`${where}: unsupported ${what} (supported: ${ARCHITECTURES.map((a) => a.name).join(', ')})`);
}

/** The layout of a parsed config (by its architecture name). */
export function layoutOf(config: { architecture: string }): ArchitectureLayout {
  const l = ARCHITECTURES.find((a) => a.name === config.architecture);
  if (!l) throw new Error(`unsupported architecture '${config.architecture}' (supported: ${ARCHITECTURES.map((a) => a.name).join(', ')})`);
  return l;
}
