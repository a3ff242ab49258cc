/**
 * The registry of architectures, keyed by `config.architectures[0]` (or `model_type`). Each entry
 * gives transformers' defaults for its config and whether its FFNs are MoE blocks; the one
 * builder in build.ts constructs all of them. A new architecture in the same family is one entry.
 */
import { LLAMA_DEFAULTS, MIXTRAL_DEFAULTS, type ArchitectureDefaults } from './config.js';

export interface ArchitectureEntry extends ArchitectureDefaults {
  name: string;
  modelType: string;
  summary: string;
}

export const ARCHITECTURES: ArchitectureEntry[] = [
  { name: 'LlamaForCausalLM', modelType: 'llama', summary: 'Llama-2 dense decoder', defaults: LLAMA_DEFAULTS, moe: false },
  { name: 'MistralForCausalLM', modelType: 'mistral', summary: 'Mistral dense decoder (Llama math; sliding window refused past its length)', defaults: { ...LLAMA_DEFAULTS, rms_norm_eps: 1e-6, max_position_embeddings: 4096 * 32, num_key_value_heads: 8, intermediate_size: 14336 }, moe: false },
  { name: 'MixtralForCausalLM', modelType: 'mixtral', summary: 'Mixtral sparse MoE decoder', defaults: MIXTRAL_DEFAULTS, moe: true },
  {
    name: 'XMoEForCausalLM', modelType: 'xmoe',
    summary: 'moe-tune: a dense Llama decomposed into small experts (paper 001), Mixtral tensor layout',
    defaults: { ...LLAMA_DEFAULTS, router_aux_loss_coef: 0.01 }, moe: true,
  },
];

/** The architecture of a config.json object; one clear error naming the file when unknown. */
export function resolveArchitecture(raw: Record<string, unknown>, where: string): ArchitectureEntry {
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
