/**
 * Model configs: Hugging Face config.json validated once, at the edge, into one normalised
 * `ModelConfig` the model code reads. Missing keys take transformers' defaults for the
 * architecture; values whose math we do not implement are a clear error, never silently
 * different math.
 */
import { z } from 'zod';

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

export interface MoeConfig {
  numExperts: number;
  topK: number;
  routerAuxLossCoef: number;
  /** Width of each expert's hidden layer. */
  expertIntermediateSize: number;
  /** Indices of the decoder layers whose FFN is a MoE block. */
  layers: number[];
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
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Attention window (Mixtral / Mistral); sequences longer than this are refused. */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  /** Null for dense models. */
  moe: MoeConfig | null;
  extensions: MoeTuneExtensions;
  /** The config.json object as read (kept for writing back unknown keys). */
  raw: Record<string, unknown>;
}

const positiveInt = z.number().int().positive();

/** transformers' defaults per architecture (the fields we read). */
export const LLAMA_DEFAULTS = {
  vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32,
  rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 2048, tie_word_embeddings: false,
  bos_token_id: 1, eos_token_id: 2,
} as const;

export const MIXTRAL_DEFAULTS = {
  vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32,
  num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 1e6, max_position_embeddings: 4096 * 32,
  tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2, num_local_experts: 8, num_experts_per_tok: 2,
  router_aux_loss_coef: 0.001,
} as const;

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
  rope_parameters: z.object({ rope_type: z.string().optional(), type: z.string().optional(), rope_theta: z.number().positive().optional() }).loose().nullish(),
  rope_scaling: z.object({ rope_type: z.string().optional(), type: z.string().optional() }).loose().nullish(),
  max_position_embeddings: positiveInt,
  tie_word_embeddings: z.boolean(),
  hidden_act: z.string().optional(),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  attention_dropout: z.number().optional(),
  bos_token_id: z.number().int().nullish(),
  eos_token_id: z.union([z.number().int(), z.array(z.number().int())]).nullish(),
  pad_token_id: z.number().int().nullish(),
  sliding_window: positiveInt.nullish(),
  moe_tune: MoeTuneExtensionsSchema.optional(),
}).loose();

const MoeSchema = z.object({
  num_local_experts: positiveInt,
  num_experts_per_tok: positiveInt,
  router_aux_loss_coef: z.number().nonnegative(),
  router_jitter_noise: z.number().nonnegative().optional(),
}).loose();

function formatIssues(where: string, error: z.ZodError): string {
  return error.issues
    .map((i) => `${where}: field '${i.path.join('.') || '(root)'}': ${i.message}`)
    .join('; ');
}

/** Rejects the config values whose math moe-tune does not implement. */
function checkSupported(where: string, c: z.infer<typeof CommonSchema>, moe: z.infer<typeof MoeSchema> | null): void {
  const bad: string[] = [];
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') bad.push(`hidden_act '${act}' (only 'silu' is implemented)`);
  if (c.attention_bias) bad.push('attention_bias true (only bias-free attention projections are implemented)');
  if (c.mlp_bias) bad.push('mlp_bias true (only bias-free MLP projections are implemented)');
  for (const [key, v] of [['rope_scaling', c.rope_scaling], ['rope_parameters', c.rope_parameters]] as const) {
    if (!v) continue;
    const type = v.rope_type ?? v.type ?? 'default';
    if (type !== 'default') bad.push(`${key} type '${type}' (only the default rotary embedding is implemented)`);
  }
  if (moe && (moe.router_jitter_noise ?? 0) > 0) bad.push(`router_jitter_noise ${moe.router_jitter_noise} (only 0 is implemented)`);
  const H = c.num_attention_heads;
  const Hkv = c.num_key_value_heads ?? H;
  if (H % Hkv !== 0) bad.push(`num_attention_heads ${H} is not a multiple of num_key_value_heads ${Hkv}`);
  const Dh = c.head_dim ?? c.hidden_size / H;
  if (!Number.isInteger(Dh)) bad.push(`hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${H}`);
  else if (Dh % 2 !== 0) bad.push(`head_dim ${Dh} must be even for rotary embeddings`);
  if (bad.length > 0) throw new Error(`${where}: unsupported config: ${bad.join('; ')}`);
}

export interface ArchitectureDefaults {
  defaults: Record<string, unknown>;
  moe: boolean;
}

/**
 * Validates a config.json object for an architecture and normalises it. `where` names the file in
 * error messages.
 */
export function parseModelConfig(raw: Record<string, unknown>, architecture: string, arch: ArchitectureDefaults, where: string): ModelConfig {
  const withDefaults: Record<string, unknown> = { ...arch.defaults };
  for (const [k, v] of Object.entries(raw)) if (v !== undefined && !(v === null && k in arch.defaults)) withDefaults[k] = v;
  const common = CommonSchema.safeParse(withDefaults);
  if (!common.success) throw new Error(formatIssues(where, common.error));
  const c = common.data;
  let moeRaw: z.infer<typeof MoeSchema> | null = null;
  if (arch.moe) {
    const m = MoeSchema.safeParse(withDefaults);
    if (!m.success) throw new Error(formatIssues(where, m.error));
    moeRaw = m.data;
  }
  checkSupported(where, c, moeRaw);
  const ext = c.moe_tune ?? {};
  const ropeTheta = c.rope_parameters?.rope_theta ?? c.rope_theta ?? (arch.defaults['rope_theta'] as number);
  const numLayers = c.num_hidden_layers;
  let moe: MoeConfig | null = null;
  if (moeRaw) {
    const layers = ext.moe_layers ?? Array.from({ length: numLayers }, (_, i) => i);
    for (const l of layers) if (l >= numLayers) throw new Error(`${where}: field 'moe_tune.moe_layers': layer ${l} >= num_hidden_layers ${numLayers}`);
    if (moeRaw.num_experts_per_tok > moeRaw.num_local_experts && !ext.null_experts && !ext.ternary) {
      throw new Error(`${where}: field 'num_experts_per_tok': ${moeRaw.num_experts_per_tok} is more than num_local_experts ${moeRaw.num_local_experts}`);
    }
    moe = {
      numExperts: moeRaw.num_local_experts,
      topK: moeRaw.num_experts_per_tok,
      routerAuxLossCoef: moeRaw.router_aux_loss_coef,
      expertIntermediateSize: ext.expert_intermediate_size ?? c.intermediate_size,
      layers,
    };
  }
  if (ext.null_experts && moe && ext.null_experts.m % moe.numExperts !== 0) {
    throw new Error(`${where}: field 'moe_tune.null_experts.m': ${ext.null_experts.m} is not a multiple of num_local_experts ${moe.numExperts}`);
  }
  return {
    architecture,
    modelType: typeof raw['model_type'] === 'string' ? (raw['model_type'] as string) : '',
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers,
    numHeads: c.num_attention_heads,
    numKvHeads: c.num_key_value_heads ?? c.num_attention_heads,
    headDim: c.head_dim ?? c.hidden_size / c.num_attention_heads,
    rmsNormEps: c.rms_norm_eps,
    ropeTheta,
    maxPositionEmbeddings: c.max_position_embeddings,
    tieWordEmbeddings: c.tie_word_embeddings,
    slidingWindow: c.sliding_window ?? null,
    bosTokenId: c.bos_token_id ?? null,
    eosTokenId: c.eos_token_id ?? null,
    padTokenId: c.pad_token_id ?? null,
    moe,
    extensions: ext,
    raw,
  };
}
