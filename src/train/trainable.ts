/**
 * Which parameters train. A selection is a list of presets and/or regular expressions (source text,
 * matched against the parameter's Hugging Face key); the union trains, minus any `frozen` match.
 * Selected parameters get requiresGrad true, every other one false (so no gradient is ever computed
 * for them), and the optimizer only sees the selected ones.
 *
 * Presets:
 *   all       every parameter
 *   lora      LoRA / Mo-LoRA adapter tensors (names containing "lora_": lora_A, lora_B, lora_router, lora_experts)
 *   routers   MoE router rows and biases (the family's router linear and gate2, by the layouts' names), Mo-LoRA `lora_router`
 *   gate2     the AdaMoE null-expert router rows only
 *   experts   expert weights (`.experts.`: routed experts; shared experts by the layouts' names)
 *   attention self-attention projections
 *   norms     RMSNorm weights
 *   embeddings  the token embedding and the LM head
 *   current   whatever requires grad when the selection is made (e.g. after applyLora froze the base)
 */
import { tensorRolePatterns } from '../models/architectures/tensor-roles.js';
import type { Module } from '../models/module.js';
import type { Tensor } from '../tensor/index.js';

const roles = tensorRolePatterns();

export const TRAINABLE_PRESETS: Readonly<Record<string, RegExp>> = {
  all: /./,
  lora: /(^|\.)lora_/,
  routers: new RegExp(`${roles.router.source}|(^|\\.)lora_router\\.`),
  gate2: /\.gate2\.(weight|bias)$/,
  experts: new RegExp(`\\.experts\\.|${roles.sharedExpert.source}`),
  attention: /\.self_attn\./,
  norms: /norm\.weight$/,
  embeddings: /^model\.embed_tokens\.|^lm_head\./,
};

/** Marker for the 'current' preset (matched by tensor flag, not by name). */
const CURRENT = /$^current/;

export interface TrainableSpec {
  /** Presets or regex sources (default ['all']). */
  train?: readonly string[];
  /** Presets or regex sources excluded from the selection. */
  frozen?: readonly string[];
}

function toRegex(p: string, where: string): RegExp {
  if (p === 'current') return CURRENT;
  const preset = Object.hasOwn(TRAINABLE_PRESETS, p) ? TRAINABLE_PRESETS[p] : undefined;
  if (preset) return preset;
  try {
    return new RegExp(p);
  } catch (e) {
    throw new Error(`${where}: '${p}' is neither a preset (${Object.keys(TRAINABLE_PRESETS).join(', ')}) nor a valid regular expression (${(e as Error).message})`);
  }
}

/**
 * Marks the selected parameters trainable and freezes the rest; returns the trainable ones by name
 * (model order, tied tensors once). Throws when nothing is selected.
 */
export function selectTrainable(model: Module, spec: TrainableSpec = {}): Map<string, Tensor> {
  const train = (spec.train ?? ['all']).map((p) => toRegex(p, 'trainable'));
  const frozen = (spec.frozen ?? []).map((p) => toRegex(p, 'frozen'));
  const out = new Map<string, Tensor>();
  const seen = new Set<Tensor>();
  const all = model.namedParameters();
  const wasTrainable = new Set(all.filter(([, t]) => t.requiresGrad).map(([, t]) => t));
  const hit = (rs: RegExp[], name: string, t: Tensor): boolean => rs.some((r) => (r === CURRENT ? wasTrainable.has(t) : r.test(name)));
  for (const [, t] of all) t.requiresGrad = false;
  for (const [name, t] of all) {
    if (seen.has(t)) continue;
    seen.add(t);
    if (hit(train, name, t) && !hit(frozen, name, t)) {
      t.requiresGrad = true;
      out.set(name, t);
    }
  }
  if (out.size === 0) {
    const sample = all.slice(0, 4).map(([n]) => n).join(', ');
    throw new Error(`trainable: [${(spec.train ?? ['all']).join(', ')}]${spec.frozen?.length ? ` minus [${spec.frozen.join(', ')}]` : ''} matches no parameter (the model has ${all.length}, e.g. ${sample})`);
  }
  return out;
}
