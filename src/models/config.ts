/**
 * Model configs: Hugging Face config.json validated once, at the edge, into one normalised
 * `ModelConfig` the model code reads. Missing keys take transformers' defaults for the
 * architecture; values whose math we do not implement are a clear error, never silently
 * different math.
 */
import { z } from 'zod';
import type { RouterSpec } from '../routers/router.js';
import type { ArchitectureLayout } from './architectures/layout.js';
import { readRope, type RopeConfig } from './rotary.js';

/** moe-tune's own config keys (under "moe_tune" in config.json) for architectures made by surgery. */
export const MoeTuneExtensionsSchema = z.object({
  /** Router strategy spec (e.g. {name: 'top-p', p: 0.4}) that replaces the architecture's default. */
  router: z.object({ name: z.string() }).loose().optional(),
  /** AdaMoE null experts: m null experts scored by `gate2` rows, top-k over N + m. */
  null_experts: z.object({
    m: z.number().int().positive(),
    top_k: z.number().int().positive(),
    mapping: z.enum(['zero', 'identity']).default('zero'),
  }).optional(),
  /** TC-MoE ternary router: 2N + K rows with a bias, K zero experts. */
  ternary: z.object({ zero_experts: z.number().int().positive() }).optional(),
  /** Expert outputs are multiplied by this (XMoE decomposition of a dense FFN: N). */
  gate_scale: z.number().positive().optional(),
  /** Width of each expert's hidden layer when it differs from intermediate_size (decomposed / fine-grained experts). */
  expert_intermediate_size: z.number().int().positive().optional(),
  /** Which decoder layers have a MoE FFN (default: all); others keep a dense MLP. */
  moe_layers: z.array(z.number().int().nonnegative()).optional(),
  /**
   * Mo-LoRA (AdaMoE on dense models): LoRA experts with a router on target linears. Targets follow
   * PEFT's target_modules rules (a list of names / path suffixes, or one regex string, or 'all-linear').
   */
  mo_lora: z.object({
    targets: z.union([z.array(z.string()).min(1), z.string().min(1)]),
    experts: z.number().int().positive(),
    r: z.number().int().positive(),
    alpha: z.number().positive(),
    top_k: z.number().int().positive(),
    null_experts: z.number().int().nonnegative().default(0),
    dropout: z.number().min(0).lt(1).default(0),
  }).optional(),
  /** Plain LoRA adapters on target linears (PEFT's target_modules rules), unmerged. */
  lora: z.object({
    targets: z.union([z.array(z.string()).min(1), z.string().min(1)]),
    exclude: z.union([z.array(z.string()), z.string()]).nullish(),
    layers: z.array(z.number().int().nonnegative()).nullish(),
    r: z.number().int().positive(),
    alpha: z.number().positive(),
    dropout: z.number().min(0).lt(1).default(0),
    rslora: z.boolean().default(false),
  }).optional(),
}).loose();
export type MoeTuneExtensions = z.infer<typeof MoeTuneExtensionsSchema>;

/** A shared expert that every token runs (Qwen2-MoE `shared_expert`, DeepSeek `shared_experts`). */
export interface SharedExpertConfig {
  /** Width of its hidden layer (all shared experts fused into one MLP, as the checkpoints store them). */
  intermediateSize: number;
  /** Output multiplied by sigmoid(shared_expert_gate(x)) (Qwen2-MoE), else added as is. */
  gated: boolean;
  /** How many shared experts are fused into this one MLP (DeepSeek n_shared_experts; 1 when absent). */
  count?: number;
}

export interface MoeConfig {
  numExperts: number;
  topK: number;
  routerAuxLossCoef: number;
  /** Width of each expert's hidden layer. */
  expertIntermediateSize: number;
  /** Indices of the decoder layers whose FFN is a MoE block. */
  layers: number[];
  /** The family's own routing rule (moe_tune.router, null experts or ternary rows take precedence). */
  router: RouterSpec;
  /** Routed expert outputs are multiplied by this (routed_scaling_factor; moe_tune.gate_scale for XMoE). */
  routedScale: number;
  sharedExpert: SharedExpertConfig | null;
}

/** Attention options beyond Llama's plain grouped-query attention. */
export interface AttentionConfig {
  /** Bias on q / k / v (Qwen2; Llama attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama attention_bias). */
  oBias: boolean;
  /**
   * RMSNorm of q and k before rope: 'head' per head over head_dim (Qwen3, weights [head_dim]);
   * 'projection' over the whole projection (OLMoE, weights [H * head_dim] and [Hkv * head_dim]).
   */
  qkNorm: 'none' | 'head' | 'projection';
  /** q, k, v clamped to [-clip, clip] after projection (OLMoE clip_qkv), or null. */
  clipQkv: number | null;
}

export interface ModelConfig {
  architecture: string;
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** Rotary embedding frequencies (rope_scaling / rope_parameters). */
  rope: RopeConfig;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Attention window (Mixtral / Mistral); sequences longer than this are refused. */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  attention: AttentionConfig;
  /** Bias on the FFN projections (Llama mlp_bias). */
  mlpBias: boolean;
  /** Null for dense models. */
  moe: MoeConfig | null;
  extensions: MoeTuneExtensions;
  /** The config.json object as read (kept for writing back unknown keys). */
  raw: Record<string, unknown>;
}

const positiveInt = z.number().int().positive();

/** The keys every family reads (Llama's config); a family's defaults fill the missing ones first. */
const CommonSchema = z.object({
  vocab_size: positiveInt,
  hidden_size: positiveInt,
  intermediate_size: positiveInt,
  num_hidden_layers: positiveInt,
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt.nullish(),
  head_dim: positiveInt.nullish(),
  rms_norm_eps: z.number().positive(),
  rope_theta: z.number().positive().optional(),
  max_position_embeddings: positiveInt,
  tie_word_embeddings: z.boolean(),
  hidden_act: z.string().optional(),
  attention_dropout: z.number().optional(),
  bos_token_id: z.number().int().nullish(),
  eos_token_id: z.union([z.number().int(), z.array(z.number().int())]).nullish(),
  pad_token_id: z.number().int().nullish(),
  sliding_window: z.number().int().nonnegative().nullish(),
  moe_tune: MoeTuneExtensionsSchema.optional(),
}).loose();

export function formatIssues(where: string, error: z.ZodError): string {
  return error.issues
    .map((i) => `${where}: field '${i.path.join('.') || '(root)'}': ${i.message}`)
    .join('; ');
}

/** Rejects the common config values whose math moe-tune does not implement. */
function checkSupported(where: string, c: z.infer<typeof CommonSchema>): void {
  const bad: string[] = [];
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') bad.push(`hidden_act '${act}' (only 'silu' is implemented)`);
  // bitsandbytes 4-bit is moe-tune's own NF4 format (src/quant); fine-grained FP8 (DeepSeek-V3, Kimi-K2, Qwen3-FP8)
  // is read dequantised (src/io/fp8-blocks.ts); other schemes (GPTQ, AWQ, per-tensor FP8...) store weights we
  // would read as something else
  const q = (c as Record<string, unknown>)['quantization_config'];
  const qc = q && typeof q === 'object' ? (q as Record<string, unknown>) : null;
  const method = qc?.['quant_method'];
  if (method === 'fp8') {
    const fmt = qc?.['fmt'] ?? 'e4m3';
    if (fmt !== 'e4m3') bad.push(`quantization_config.fmt '${String(fmt)}' (moe-tune reads fine-grained FP8 as e4m3 only)`);
  } else if (method !== undefined && method !== 'bitsandbytes') {
    bad.push(`quantization_config.quant_method '${String(method)}' (moe-tune reads float checkpoints (f32 / bf16 / f16), fine-grained FP8 and bitsandbytes NF4; dequantise to bf16 first)`);
  }
  const H = c.num_attention_heads;
  const Hkv = c.num_key_value_heads ?? H;
  if (H % Hkv !== 0) bad.push(`num_attention_heads ${H} is not a multiple of num_key_value_heads ${Hkv}`);
  const Dh = c.head_dim ?? c.hidden_size / H;
  if (!Number.isInteger(Dh)) bad.push(`hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${H}`);
  else if (Dh % 2 !== 0) bad.push(`head_dim ${Dh} must be even for rotary embeddings`);
  if (bad.length > 0) throw new Error(`${where}: unsupported config: ${bad.join('; ')}`);
}

/**
 * Validates a config.json object for an architecture layout and normalises it. `where` names the
 * file in error messages.
 */
export function parseModelConfig(raw: Record<string, unknown>, layout: ArchitectureLayout, where: string): ModelConfig {
  const withDefaults: Record<string, unknown> = { ...layout.defaults };
  for (const [k, v] of Object.entries(raw)) if (v !== undefined && !(v === null && k in layout.defaults)) withDefaults[k] = v;
  const common = CommonSchema.safeParse(withDefaults);
  if (!common.success) throw new Error(formatIssues(where, common.error));
  const c = common.data;
  checkSupported(where, c);
  const family = layout.read(withDefaults, where);
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  const rope = readRope(withDefaults, headDim, c.max_position_embeddings, layout.defaults['rope_theta'] as number, where);
  const ext: MoeTuneExtensions = { ...(c.moe_tune ?? {}) };
  // moe_tune keys that only restate the family's own values are not extensions (a family with
  // moe_intermediate_size, a remote-code config that writes every field explicitly)
  if (family.moe) {
    if (ext.expert_intermediate_size === family.moe.expertIntermediateSize) delete ext.expert_intermediate_size;
    const fl = family.moe.layers;
    if (ext.moe_layers && ext.moe_layers.length === fl.length && ext.moe_layers.every((l, i) => l === fl[i])) delete ext.moe_layers;
  }
  const numLayers = c.num_hidden_layers;
  let moe: MoeConfig | null = null;
  if (family.moe) {
    const fm = family.moe;
    const layers = ext.moe_layers ?? fm.layers;
    for (const l of layers) if (l >= numLayers) throw new Error(`${where}: field 'moe_tune.moe_layers': layer ${l} >= num_hidden_layers ${numLayers}`);
    if (fm.topK > fm.numExperts && !ext.null_experts && !ext.ternary) {
      throw new Error(`${where}: field 'num_experts_per_tok': ${fm.topK} is more than the ${fm.numExperts} experts`);
    }
    moe = {
      ...fm,
      expertIntermediateSize: ext.expert_intermediate_size ?? fm.expertIntermediateSize,
      layers,
      routedScale: ext.gate_scale ?? fm.routedScale,
    };
  }
  return {
    architecture: layout.name,
    modelType: typeof raw['model_type'] === 'string' ? (raw['model_type'] as string) : '',
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers,
    numHeads: c.num_attention_heads,
    numKvHeads: c.num_key_value_heads ?? c.num_attention_heads,
    headDim,
    rmsNormEps: c.rms_norm_eps,
    ropeTheta: rope.theta,
    rope,
    maxPositionEmbeddings: c.max_position_embeddings,
    tieWordEmbeddings: c.tie_word_embeddings,
    slidingWindow: family.slidingWindow !== undefined ? family.slidingWindow : c.sliding_window || null,
    bosTokenId: c.bos_token_id ?? null,
    eosTokenId: c.eos_token_id ?? null,
    padTokenId: c.pad_token_id ?? null,
    attention: family.attention,
    mlpBias: family.mlpBias,
    moe,
    extensions: ext,
    raw,
  };
}
