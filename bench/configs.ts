/**
 * The fixed benchmark configurations (issue 10). Each is a config.json object plus the batch shape;
 * `adamoe` adds AdaMoE null experts, `lora` trains LoRA r 8 on all projections of a float base,
 * `qlora` the same on an NF4 base.
 */
export interface BenchConfig {
  name: string;
  config: Record<string, unknown>;
  batch: number;
  seqLen: number;
  /** AdaMoE: null experts and raised top-k (gate2 rows biased for a measured load near `targetLoad`). */
  nullExperts?: { m: number; topK: number; targetLoad: number };
  /** LoRA on all projections, on a float base or (quantize) an NF4 base (QLoRA). */
  lora?: { r: number; alpha: number; quantize: boolean };
  lr: number;
}

const tinyMoe = {
  architectures: ['MixtralForCausalLM'], model_type: 'mixtral', vocab_size: 2000, hidden_size: 256,
  intermediate_size: 512, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4, rms_norm_eps: 1e-5,
  rope_theta: 10000, max_position_embeddings: 2048, tie_word_embeddings: false, hidden_act: 'silu',
  num_local_experts: 8, num_experts_per_tok: 2, router_aux_loss_coef: 0.01, sliding_window: null,
};

const mixtralSmall = {
  ...tinyMoe, vocab_size: 2000, hidden_size: 1024, intermediate_size: 2048, num_hidden_layers: 4,
  num_attention_heads: 8, num_key_value_heads: 4,
};

/** OLMoE-1B-7B's shape (64 experts top-8, expert width d/2, MHA) scaled to fit a bench run: d 1024, 4 layers. */
const olmoeSmall = {
  ...tinyMoe, vocab_size: 2000, hidden_size: 1024, intermediate_size: 512, num_hidden_layers: 4,
  num_attention_heads: 16, num_key_value_heads: 16, num_local_experts: 64, num_experts_per_tok: 8,
};

export const BENCH_CONFIGS: BenchConfig[] = [
  { name: 'tiny-moe', config: tinyMoe, batch: 2, seqLen: 256, lr: 1e-3 },
  // fine-tuning lr, so the load measured at step 0 (~1.5) drifts little over the timed steps
  { name: 'adamoe', config: tinyMoe, batch: 2, seqLen: 256, lr: 1e-4, nullExperts: { m: 8, topK: 3, targetLoad: 1.5 } },
  { name: 'mixtral-small', config: mixtralSmall, batch: 2, seqLen: 512, lr: 1e-4 },
  { name: 'lora', config: mixtralSmall, batch: 2, seqLen: 512, lr: 1e-4, lora: { r: 8, alpha: 16, quantize: false } },
  { name: 'qlora', config: mixtralSmall, batch: 2, seqLen: 512, lr: 1e-4, lora: { r: 8, alpha: 16, quantize: true } },
  { name: 'olmoe-small', config: olmoeSmall, batch: 2, seqLen: 256, lr: 1e-4 },
  { name: 'olmoe-qlora', config: olmoeSmall, batch: 2, seqLen: 256, lr: 1e-4, lora: { r: 8, alpha: 16, quantize: true } },
];
