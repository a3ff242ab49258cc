/**
 * transformers remote code for the models moe-tune makes. A model whose architecture transformers
 * does not have (AdaMoE null experts, TC-MoE ternary rows, Mo-LoRA, unmerged LoRA, an XMoE
 * decomposition, a router other than the family's own) is written with model_type "moe_tune",
 * architectures ["MoeTuneForCausalLM"], an auto_map, and our PyTorch modeling files
 * (python/moe_tune_remote), so `AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)`
 * computes what moe-tune computes, and transformers without remote code refuses the directory
 * instead of loading it as the base family and dropping weights. The family the model came from is
 * kept in moe_tune.base_architecture / base_model_type; reading such a config gives back the
 * family's ModelConfig, so nothing else in moe-tune sees the difference.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ARCHITECTURES, layoutOf } from './architectures/index.js';
import type { CausalLM } from './causal-lm.js';
import { MlaAttention } from './mla-attention.js';
import type { ModelConfig } from './config.js';

export const REMOTE_MODEL_TYPE = 'moe_tune';
export const REMOTE_ARCHITECTURE = 'MoeTuneForCausalLM';
export const REMOTE_AUTO_MAP = {
  AutoConfig: 'configuration_moe_tune.MoeTuneConfig',
  AutoModel: 'modeling_moe_tune.MoeTuneModel',
  AutoModelForCausalLM: 'modeling_moe_tune.MoeTuneForCausalLM',
} as const;

/** The Python package copied into every remote-code model directory (the modeling file imports the others). */
export const REMOTE_CODE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../python/moe_tune_remote');
export const REMOTE_CODE_FILES = ['configuration_moe_tune.py', 'modeling_moe_tune.py', 'routers.py', 'losses.py', 'rng.py'] as const;

/** Whether transformers implements the family with exactly moe-tune's math and tensor names (the layout says). */
export function isTransformersNative(architecture: string): boolean {
  return ARCHITECTURES.find((a) => a.name === architecture)?.inTransformers ?? false;
}

/** Why a config needs remote code (null: transformers' own class computes it). */
export function remoteCodeReason(c: ModelConfig): string | null {
  const keys = Object.entries(c.extensions).filter(([, v]) => v !== undefined && v !== null).map(([k]) => k);
  if (keys.length > 0) return `moe_tune.${keys.join(', moe_tune.')}`;
  if (!isTransformersNative(c.architecture)) return `architecture ${c.architecture} is moe-tune's own`;
  return null;
}

/** The Python files of the remote code, by name. */
export function remoteCodeFiles(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of REMOTE_CODE_FILES) {
    const file = path.join(REMOTE_CODE_DIR, name);
    if (!fs.existsSync(file)) throw new Error(`${file}: not found (moe-tune's transformers remote code is missing from the installation)`);
    out[name] = fs.readFileSync(file, 'utf8');
  }
  return out;
}

/**
 * Everything the modeling file must know about the family, written out (moe_tune.layout), so the Python side
 * reads names and options instead of knowing families: module names (the layout's), attention options
 * (q/k/v and o bias, q/k norm per head or over the projection, clip_qkv), FFN bias, the rotary frequencies,
 * and for MoE models the family's own router, the routed-output scale and the shared expert.
 */
export function moduleLayout(model: CausalLM): Record<string, unknown> {
  const c = model.config;
  const n = layoutOf(c).names;
  const layout: Record<string, unknown> = {
    mlp: n.mlp,
    mlp_names: [n.mlpProj.gate, n.mlpProj.up, n.mlpProj.down],
    mlp_bias: c.mlpBias,
    attention: { qkv_bias: c.attention.qkvBias, o_bias: c.attention.oBias, qk_norm: c.attention.qkNorm, clip_qkv: c.attention.clipQkv },
    rope: { ...c.rope },
  };
  // DeepSeek-V3 / Kimi-K2: multi-head latent attention, with the dims (and softmax scale) moe-tune computed
  const attn = model.model.layers.items[0]?.self_attn;
  if (attn instanceof MlaAttention) {
    const d = attn.dims;
    layout['mla'] = {
      q_lora_rank: d.qLoraRank, kv_lora_rank: d.kvLoraRank, qk_nope_head_dim: d.qkNopeHeadDim, qk_rope_head_dim: d.qkRopeHeadDim,
      v_head_dim: d.vHeadDim, rope_interleave: d.ropeInterleave, scale: d.scale, bias: attn.kv_a_proj_with_mqa.localParams().has('bias'),
    };
  }
  if (c.moe) {
    const block = model.model.layers.items.find((l) => c.moe!.layers.includes(l.index))?.ffnName ?? n.moe;
    Object.assign(layout, {
      moe_block: block,
      router: n.router,
      experts: n.experts,
      expert_names: [n.expertProj.gate, n.expertProj.up, n.expertProj.down],
      family_router: { ...c.moe.router },
      routed_scale: c.moe.routedScale,
    });
    if (n.routerSelectionBias) layout['selection_bias'] = n.routerSelectionBias;
    const sh = c.moe.sharedExpert;
    if (sh && n.sharedExpert) {
      Object.assign(layout, {
        shared_expert: n.sharedExpert,
        shared_expert_names: [n.mlpProj.gate, n.mlpProj.up, n.mlpProj.down],
        shared_expert_intermediate_size: sh.intermediateSize,
        ...(sh.gated && n.sharedExpertGate ? { shared_expert_gate: n.sharedExpertGate } : {}),
      });
    }
  }
  return layout;
}

/**
 * config.json for a remote-code directory: the family's keys, model_type / architectures / auto_map of
 * the remote code, and the normalised MoE fields written explicitly (the modeling file reads them,
 * never a family's defaults).
 */
export function toRemoteCodeConfig(json: Record<string, unknown>, model: CausalLM): Record<string, unknown> {
  const c = model.config;
  const out: Record<string, unknown> = { ...json };
  const ext: Record<string, unknown> = { ...((json['moe_tune'] as Record<string, unknown> | undefined) ?? {}) };
  ext['base_architecture'] = c.architecture;
  ext['base_model_type'] = json['model_type'];
  ext['layout'] = moduleLayout(model);
  if (c.moe) {
    ext['moe_layers'] = [...c.moe.layers];
    ext['expert_intermediate_size'] = c.moe.expertIntermediateSize;
    out['num_local_experts'] = c.moe.numExperts;
    out['num_experts_per_tok'] = c.moe.topK;
  }
  out['moe_tune'] = ext;
  out['model_type'] = REMOTE_MODEL_TYPE;
  out['architectures'] = [REMOTE_ARCHITECTURE];
  out['auto_map'] = { ...REMOTE_AUTO_MAP };
  return out;
}

/**
 * The family's config.json object for a remote-code config (architectures, model_type of the base;
 * auto_map and the keys toRemoteCodeConfig derived dropped); other configs unchanged.
 */
export function fromRemoteCodeConfig(raw: Record<string, unknown>): Record<string, unknown> {
  const archs = raw['architectures'];
  const isRemote = raw['model_type'] === REMOTE_MODEL_TYPE || (Array.isArray(archs) && archs[0] === REMOTE_ARCHITECTURE);
  if (!isRemote) return raw;
  const ext = { ...((raw['moe_tune'] as Record<string, unknown> | undefined) ?? {}) };
  const base = ext['base_architecture'];
  const out: Record<string, unknown> = { ...raw };
  if (typeof base === 'string') out['architectures'] = [base];
  if (typeof ext['base_model_type'] === 'string') out['model_type'] = ext['base_model_type'];
  else delete out['model_type'];
  delete out['auto_map'];
  for (const k of ['base_architecture', 'base_model_type', 'layout', 'aux_losses']) delete ext[k];
  // explicit copies of the defaults (written for the modeling file) are not extensions
  const layers = Number(raw['num_hidden_layers']);
  const ml = ext['moe_layers'];
  if (Array.isArray(ml) && ml.length === layers && ml.every((l, i) => l === i)) delete ext['moe_layers'];
  if (ext['expert_intermediate_size'] === raw['intermediate_size']) delete ext['expert_intermediate_size'];
  if (Object.keys(ext).length > 0) out['moe_tune'] = ext;
  else delete out['moe_tune'];
  return out;
}
