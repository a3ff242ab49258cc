/**
 * The declared layout of one architecture family: everything about a family that the rest of
 * moe-tune needs, in one object, so that the builder, the trainable presets, the parameter counts,
 * the FLOP dimensions, the quantisation skip list, the surgery passes and the PEFT export read
 * names and rows from here and none of them names a family. Adding a family is one file in this
 * folder plus its line in ./index.ts (docs/architectures.md).
 *
 * Tensor names stay exactly the Hub checkpoint's names: a layout only says which module names the
 * family uses (`block_sparse_moe` vs `mlp`, `w1` vs `gate_proj`, ...), and the module tree built
 * from it produces the keys.
 */
import type { AttentionModule } from '../attention.js';
import type { AttentionConfig, ModelConfig, MoeConfig } from '../config.js';
import type { WeightSource } from '../weight-source.js';

/**
 * Names of a gated (SwiGLU) FFN's three projections: down(silu(gate(x)) * up(x)). The key order of
 * the object is the order in which the projections are registered and created (state-dict order and
 * the random-init stream), so declare them in the order of the family's PyTorch module.
 */
export interface GatedProjNames {
  readonly gate: string;
  readonly up: string;
  readonly down: string;
}

/** Module names of one family (the segments of its Hugging Face tensor keys). */
export interface ModuleNames {
  /** FFN module of a dense decoder layer (`mlp`). */
  readonly mlp: string;
  /** Projections of a dense FFN and of a shared expert (`gate_proj`, `up_proj`, `down_proj`). */
  readonly mlpProj: GatedProjNames;
  /** FFN module of a MoE decoder layer (`block_sparse_moe` for Mixtral, `mlp` for Qwen / OLMoE). */
  readonly moe: string;
  /** The router's linear inside the MoE module (`gate`). */
  readonly router: string;
  /** The routed experts' list inside the MoE module (`experts`). */
  readonly experts: string;
  /** Projections of one routed expert (`w1` / `w3` / `w2` for Mixtral, `gate_proj` / ... for Qwen). */
  readonly expertProj: GatedProjNames;
  /** The shared expert(s) module (`shared_expert`, `shared_experts`), or null when the family has none. */
  readonly sharedExpert: string | null;
  /** The shared expert's sigmoid gate linear [1, D] (`shared_expert_gate`), or null. */
  readonly sharedExpertGate: string | null;
  /**
   * A per-expert bias tensor [N] inside the router module, added to the scores for choosing experts only
   * (DeepSeek-V3 `e_score_correction_bias`), or absent.
   */
  readonly routerSelectionBias?: string | null;
}

/**
 * The MoE part of a family's config, as the family's own keys say it (see each family's read()): the same
 * shape as the model's MoeConfig, which is this with the moe_tune extensions (moe_layers, gate_scale,
 * expert_intermediate_size) applied on top (src/models/config.ts).
 */
export type FamilyMoeConfig = MoeConfig;

/** What a family's read() returns from config.json (merged with the family's defaults). */
export interface FamilyConfig {
  attention: AttentionConfig;
  /** Bias on the dense / expert FFN projections (Llama mlp_bias). */
  mlpBias: boolean;
  moe: FamilyMoeConfig | null;
  /** The attention window when the family decides it (Qwen: use_sliding_window); undefined: the sliding_window key. */
  slidingWindow?: number | null;
}

/** What an attention builder gets: the config, the weight source and the layer's key prefix. */
export interface AttentionBuildContext {
  config: ModelConfig;
  src: WeightSource;
  /** `model.layers.3.self_attn` */
  prefix: string;
  layer: number;
}

export interface ArchitectureLayout {
  /** `config.architectures[0]` (e.g. `Qwen3MoeForCausalLM`). */
  readonly name: string;
  /** `model_type` (e.g. `qwen3_moe`). */
  readonly modelType: string;
  readonly summary: string;
  /** Whether transformers itself has this family (false for moe-tune's own, e.g. XMoE): PEFT adapters load on it. */
  readonly inTransformers: boolean;
  /** transformers' defaults for the config keys this family reads (its configuration_*.py). */
  readonly defaults: Readonly<Record<string, unknown>>;
  /**
   * Reads the family's own keys from config.json merged with `defaults` (the common keys, rope and
   * sizes are read by parseModelConfig). Throws one line naming `where` and the key for a value whose
   * math moe-tune does not implement.
   */
  read(c: Record<string, unknown>, where: string): FamilyConfig;
  readonly names: ModuleNames;
  /** The config key holding the number of routed experts (`num_local_experts`, `num_experts`); null for dense families. */
  readonly expertsKey: string | null;
  /**
   * PEFT key mapping to transformers 5: module-path segments it names differently from the Hub
   * checkpoint (Mixtral: `block_sparse_moe` is `mlp`), and whether it holds the routed experts as one
   * fused parameter (then PEFT cannot save one expert as a module). Absent: the paths are the same.
   */
  readonly transformers5?: { readonly renames: Readonly<Record<string, string>>; readonly fusedExperts: boolean };
  /** Default LoRA targets (PEFT's target_modules default for this model_type). */
  readonly loraTargets: readonly string[];
  /** Linear module names kept in float by quantizeModel (router rows, shared-expert gate, head, embeddings). */
  readonly quantSkip: readonly string[];
  /**
   * FLOPs of one layer's attention when it is not the default grouped-query attention: projections per
   * token, and q.k + p.v per attended position (for the FLOP comparisons of the router statistics).
   */
  readonly attentionFlops?: (config: ModelConfig) => { projectionFlops: number; flopsPerPosition: number };
  /**
   * Checkpoint tensors this family's transformers model leaves unread, so loading does not refuse them
   * (DeepSeek-V3's multi-token-prediction layers `model.layers.{num_hidden_layers}.*`).
   */
  readonly unreadKeys?: (config: ModelConfig) => RegExp[];
  /** Builds one layer's self-attention (default: grouped-query attention with the config's options, attention.ts). */
  readonly buildAttention?: (b: AttentionBuildContext) => AttentionModule;
}
