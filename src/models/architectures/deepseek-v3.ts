/**
 * DeepSeek-V3 (transformers' models/deepseek_v3; also what Kimi-K2 and the DeepSeek-V3-style models use):
 * - attention: multi-head latent attention (mla-attention.ts) with `q_a_proj` / `q_a_layernorm` / `q_b_proj`
 *   (or one `q_proj` when q_lora_rank is null), `kv_a_proj_with_mqa`, `kv_a_layernorm`, `kv_b_proj`, `o_proj`;
 *   rope on qk_rope_head_dim dims, interleaved pairs when rope_interleave (the default); softmax scale
 *   qk_head_dim^-1/2, times yarn's mscale(factor, mscale_all_dim)^2 when the rope is scaled;
 * - FFN: dense `mlp` (width intermediate_size) in the first first_k_dense_replace layers, then a MoE `mlp`:
 *   router `gate` [N, D] with the buffer `gate.e_score_correction_bias` [N], routed experts
 *   `experts.e.{gate,up,down}_proj` of width moe_intermediate_size, and `shared_experts` (one MLP of width
 *   moe_intermediate_size * n_shared_experts, added ungated);
 * - routing: the group-top-k router (routers/group-top-k.ts: sigmoid + correction bias, n_group / topk_group,
 *   norm_topk_prob), routed output times routed_scaling_factor.
 * Config values transformers does not implement either (another scoring_func or topk_method, moe_layer_freq
 * other than 1, num_key_value_heads other than num_attention_heads) are one-line errors.
 */
import { z } from 'zod';
import { sourceLinear } from '../linear.js';
import { MlaAttention, type MlaDims } from '../mla-attention.js';
import { RMSNorm } from '../rms-norm.js';
import { rotaryFrequencies } from '../rotary.js';
import { plainAttention, positiveInt, readKeys, refuse } from './config-keys.js';
import type { ArchitectureLayout, AttentionBuildContext } from './layout.js';
import { FLOAT_KEPT, LLAMA_NAMES } from './llama.js';

/** transformers' DeepseekV3Config defaults (configuration_deepseek_v3.py). */
export const DEEPSEEK_V3_DEFAULTS = {
  vocab_size: 129280, hidden_size: 7168, intermediate_size: 18432, moe_intermediate_size: 2048, num_hidden_layers: 61,
  num_attention_heads: 128, num_key_value_heads: 128, n_shared_experts: 1, n_routed_experts: 256, routed_scaling_factor: 2.5,
  kv_lora_rank: 512, q_lora_rank: 1536, qk_rope_head_dim: 64, v_head_dim: 128, qk_nope_head_dim: 128, n_group: 8,
  topk_group: 4, num_experts_per_tok: 8, first_k_dense_replace: 3, norm_topk_prob: true, max_position_embeddings: 4096,
  rms_norm_eps: 1e-6, bos_token_id: 0, eos_token_id: 1, tie_word_embeddings: false, rope_theta: 10000,
  rope_interleave: true, attention_bias: false,
} as const;

/** The eps transformers gives q_a_layernorm and kv_a_layernorm (DeepseekV3RMSNorm's default, not rms_norm_eps). */
const LATENT_NORM_EPS = 1e-6;

const MlaKeys = {
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt.nullish(),
  q_lora_rank: positiveInt.nullable(),
  kv_lora_rank: positiveInt,
  qk_rope_head_dim: positiveInt,
  qk_nope_head_dim: positiveInt,
  v_head_dim: positiveInt,
  rope_interleave: z.boolean().nullish(),
  attention_bias: z.boolean(),
};

function readMla(c: Record<string, unknown>, where: string): MlaDims & { bias: boolean } {
  const k = readKeys(c, MlaKeys, where);
  refuse(where, [
    k.num_key_value_heads != null && k.num_key_value_heads !== k.num_attention_heads
      && `num_key_value_heads ${k.num_key_value_heads} (multi-head latent attention has one key / value per head: ${k.num_attention_heads})`,
    k.qk_rope_head_dim % 2 !== 0 && `qk_rope_head_dim ${k.qk_rope_head_dim} must be even for rotary embeddings`,
  ]);
  const qkHeadDim = k.qk_nope_head_dim + k.qk_rope_head_dim;
  // yarn_apply_mscale: with a scaled rope and mscale_all_dim, scale *= (0.1 * mscale_all_dim * ln(factor) + 1)^2
  let scale = qkHeadDim ** -0.5;
  const rp = { ...(c['rope_scaling'] as Record<string, unknown> | null | undefined ?? {}), ...(c['rope_parameters'] as Record<string, unknown> | null | undefined ?? {}) };
  const type = String(rp['rope_type'] ?? rp['type'] ?? 'default');
  const msAll = typeof rp['mscale_all_dim'] === 'number' ? (rp['mscale_all_dim'] as number) : 0;
  const factor = typeof rp['factor'] === 'number' ? (rp['factor'] as number) : 1;
  if (type !== 'default' && msAll && factor > 1) {
    const m = 0.1 * msAll * Math.log(factor) + 1;
    scale *= m * m;
  }
  return {
    numHeads: k.num_attention_heads,
    qLoraRank: k.q_lora_rank,
    kvLoraRank: k.kv_lora_rank,
    qkNopeHeadDim: k.qk_nope_head_dim,
    qkRopeHeadDim: k.qk_rope_head_dim,
    vHeadDim: k.v_head_dim,
    ropeInterleave: k.rope_interleave ?? true,
    scale,
    bias: k.attention_bias,
  };
}

/** MLA for one layer, its weights read under transformers' names. */
function buildMla({ config, src, prefix }: AttentionBuildContext): MlaAttention {
  const D = config.hiddenSize;
  const dims = readMla({ ...DEEPSEEK_V3_DEFAULTS, ...config.raw }, config.architecture);
  const { numHeads: H, qLoraRank: Rq, kvLoraRank: Rkv, qkNopeHeadDim: dn, qkRopeHeadDim: dr, vHeadDim: dv, bias } = dims;
  const norm = (name: string, n: number): RMSNorm => new RMSNorm(src.get(`${prefix}.${name}.weight`, [n], { type: 'norm' }), LATENT_NORM_EPS);
  const lin = (name: string, out: number, inF: number, b = false) => sourceLinear(src, `${prefix}.${name}`, out, inF, b);
  // transformers' module order: q_proj | q_a_proj, q_a_layernorm, q_b_proj; kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj
  const q = Rq === null ? { q_proj: lin('q_proj', H * (dn + dr), D), q_a_proj: null, q_a_layernorm: null, q_b_proj: null } : {
    q_proj: null,
    q_a_proj: lin('q_a_proj', Rq, D, bias),
    q_a_layernorm: norm('q_a_layernorm', Rq),
    q_b_proj: lin('q_b_proj', H * (dn + dr), Rq),
  };
  const kvA = lin('kv_a_proj_with_mqa', Rkv + dr, D, bias);
  const kvNorm = norm('kv_a_layernorm', Rkv);
  const kvB = lin('kv_b_proj', H * (dn + dv), Rkv);
  const o = lin('o_proj', D, H * dv, bias);
  return new MlaAttention(dims, { ...q, kv_a_proj_with_mqa: kvA, kv_a_layernorm: kvNorm, kv_b_proj: kvB, o_proj: o },
    (seqLen) => rotaryFrequencies(config.rope, dr, seqLen));
}

export const deepseekV3: ArchitectureLayout = {
  name: 'DeepseekV3ForCausalLM',
  modelType: 'deepseek_v3',
  inTransformers: true,
  summary: 'DeepSeek-V3 / Kimi-K2: multi-head latent attention, sigmoid router with correction bias and group-limited top-k, routed scaling, shared experts, first_k_dense_replace dense layers',
  defaults: DEEPSEEK_V3_DEFAULTS,
  read(c, where) {
    const mla = readMla(c, where);
    const k = readKeys(c, {
      n_routed_experts: positiveInt.optional(),
      num_local_experts: positiveInt.optional(),
      num_experts_per_tok: positiveInt,
      n_group: positiveInt.nullish(),
      topk_group: positiveInt.nullish(),
      norm_topk_prob: z.boolean(),
      routed_scaling_factor: z.number().positive(),
      n_shared_experts: z.number().int().nonnegative().nullish(),
      moe_intermediate_size: positiveInt,
      first_k_dense_replace: z.number().int().nonnegative(),
      num_hidden_layers: positiveInt,
      moe_layer_freq: positiveInt.optional(),
      scoring_func: z.string().optional(),
      topk_method: z.string().optional(),
      router_aux_loss_coef: z.number().nonnegative().optional(),
      aux_loss_alpha: z.number().nonnegative().optional(),
    }, where);
    const N = k.n_routed_experts ?? k.num_local_experts;
    if (N === undefined) throw new Error(`${where}: field 'n_routed_experts': missing (the number of routed experts)`);
    const groups = k.n_group ?? 1;
    const groupK = k.topk_group ?? groups;
    const shared = k.n_shared_experts ?? 0;
    const per = N / groups;
    refuse(where, [
      k.scoring_func !== undefined && k.scoring_func !== 'sigmoid' && `scoring_func '${k.scoring_func}' (DeepSeek-V3 scores with 'sigmoid')`,
      k.topk_method !== undefined && k.topk_method !== 'noaux_tc' && `topk_method '${k.topk_method}' (DeepSeek-V3 routes with 'noaux_tc')`,
      k.moe_layer_freq !== undefined && k.moe_layer_freq !== 1 && `moe_layer_freq ${k.moe_layer_freq} (every layer from first_k_dense_replace on is MoE, as in transformers)`,
      !Number.isInteger(per) && `n_routed_experts ${N} is not a multiple of n_group ${groups}`,
      groups > 1 && per < 2 && `n_group ${groups} leaves ${per} expert per group (a group's score is its 2 best experts)`,
      groupK > groups && `topk_group ${groupK} is more than n_group ${groups}`,
      k.num_experts_per_tok > groupK * per && `num_experts_per_tok ${k.num_experts_per_tok} is more than the ${groupK * per} experts of the ${groupK} kept groups`,
      shared === 0 && 'n_shared_experts 0 (transformers always builds the shared experts)',
    ]);
    return {
      attention: plainAttention(mla.bias, mla.bias),
      mlpBias: false,
      slidingWindow: null,
      moe: {
        numExperts: N,
        topK: k.num_experts_per_tok,
        routerAuxLossCoef: k.router_aux_loss_coef ?? k.aux_loss_alpha ?? 0.0001,
        expertIntermediateSize: k.moe_intermediate_size,
        layers: Array.from({ length: k.num_hidden_layers }, (_, i) => i).filter((i) => i >= k.first_k_dense_replace),
        router: { name: 'group-top-k', k: k.num_experts_per_tok, groups, group_k: groupK, renormalize: k.norm_topk_prob },
        routedScale: k.routed_scaling_factor,
        sharedExpert: { intermediateSize: k.moe_intermediate_size * shared, gated: false, count: shared },
      },
    };
  },
  names: { ...LLAMA_NAMES, moe: 'mlp', sharedExpert: 'shared_experts', sharedExpertGate: null, routerSelectionBias: 'e_score_correction_bias' },
  expertsKey: 'n_routed_experts',
  loraTargets: ['q_proj', 'q_b_proj', 'kv_b_proj'],
  quantSkip: FLOAT_KEPT,
  buildAttention: buildMla,
  attentionFlops(config) {
    const d = readMla({ ...DEEPSEEK_V3_DEFAULTS, ...config.raw }, config.architecture);
    const D = config.hiddenSize;
    const qk = d.qkNopeHeadDim + d.qkRopeHeadDim;
    const H = d.numHeads;
    // 2 FLOPs per multiply-add: q (LoRA or plain), kv_a, kv_b, o
    const q = d.qLoraRank === null ? D * H * qk : D * d.qLoraRank + d.qLoraRank * H * qk;
    const projectionFlops = 2 * (q + D * (d.kvLoraRank + d.qkRopeHeadDim) + d.kvLoraRank * H * (d.qkNopeHeadDim + d.vHeadDim) + H * d.vHeadDim * D);
    return { projectionFlops, flopsPerPosition: 2 * H * (qk + d.vHeadDim) };
  },
  // the Hub checkpoints carry num_nextn_predict_layers multi-token-prediction layers after the decoder
  // (model.layers.61 in DeepSeek-V3); transformers does not read them, nor do we
  unreadKeys(config) {
    const raw = config.raw;
    const mtp = typeof raw['num_nextn_predict_layers'] === 'number' ? raw['num_nextn_predict_layers'] : typeof raw['num_mtp_layers'] === 'number' ? raw['num_mtp_layers'] : 0;
    return Array.from({ length: mtp as number }, (_, i) => new RegExp(`^model\\.layers\\.${config.numLayers + i}\\.`));
  },
};
