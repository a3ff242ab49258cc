"""
The tiny configs of every family moe-tune checks against transformers itself (test/arch-transformers.test.ts).

One entry per table row: the transformers model_type and the config keys that make it small but keep what is
particular to the family (rope scaling, biases, q/k norms, shared experts, dense layers between MoE layers, MLA,
group-limited routing...). Shapes are tiny so that the whole suite runs in seconds on 2 cores.
"""

# Shared by every row: 3 layers so that dense-between-MoE rules (decoder_sparse_step, mlp_only_layers,
# first_k_dense_replace) have something to choose.
BASE = dict(
    vocab_size=96,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    rms_norm_eps=1e-6,
    hidden_act="silu",
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=None,
)

MOE = dict(num_experts_per_tok=2, moe_intermediate_size=16, router_aux_loss_coef=0.001)

FAMILIES = {
    # Llama-2 style: default rotary embedding.
    "llama": ("llama", dict(rope_parameters=dict(rope_type="default", rope_theta=10000.0))),
    # Llama-3.x: rope type llama3 (low/high frequency bands re-scaled), tied embeddings as in Llama-3.2-1B.
    "llama3": ("llama", dict(
        tie_word_embeddings=True,
        rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                             high_freq_factor=4.0, original_max_position_embeddings=64),
    )),
    "mistral": ("mistral", dict(sliding_window=4096, rope_parameters=dict(rope_type="default", rope_theta=1e6))),
    "mixtral": ("mixtral", dict(num_local_experts=8, num_experts_per_tok=2, router_aux_loss_coef=0.02,
                                rope_parameters=dict(rope_type="default", rope_theta=1e6))),
    # Qwen2: q/k/v bias, tied embeddings (Qwen2.5-0.5B).
    "qwen2": ("qwen2", dict(tie_word_embeddings=True, rope_parameters=dict(rope_type="default", rope_theta=1e6))),
    # Qwen3: per-head q/k RMSNorm and a head_dim that is not hidden_size / heads.
    "qwen3": ("qwen3", dict(head_dim=16, rope_parameters=dict(rope_type="default", rope_theta=1e6))),
    # Qwen2-MoE: shared expert with a sigmoid gate, no top-k renormalisation, a dense layer between MoE layers.
    "qwen2-moe": ("qwen2_moe", dict(
        num_experts=8, shared_expert_intermediate_size=24, norm_topk_prob=False, decoder_sparse_step=1,
        mlp_only_layers=[1], **MOE, rope_parameters=dict(rope_type="default", rope_theta=1e6),
    )),
    # Qwen3-MoE: q/k norm + MoE with renormalised top-k; a sparse step of 2 makes layer 0 dense.
    "qwen3-moe": ("qwen3_moe", dict(
        num_experts=8, norm_topk_prob=True, decoder_sparse_step=2, mlp_only_layers=[], head_dim=16,
        **MOE, rope_parameters=dict(rope_type="default", rope_theta=1e6),
    )),
    # OLMoE: q/k RMSNorm over the whole projection, clip_qkv, no renormalisation.
    "olmoe": ("olmoe", dict(
        num_experts=8, norm_topk_prob=False, clip_qkv=1.5, intermediate_size=16, num_experts_per_tok=2,
        router_aux_loss_coef=0.01, rope_parameters=dict(rope_type="default", rope_theta=10000.0),
    )),
    # DeepSeek-V3: MLA with q LoRA rank, interleaved rope, v_head_dim above qk_head_dim, attention_bias (on
    # q_a_proj, kv_a_proj_with_mqa, o_proj), sigmoid router with correction bias, 4 groups of 2 experts with the
    # best 2 groups kept, renormalised top-k scaled by 2.5, one shared expert, layer 0 dense.
    "deepseek-v3": ("deepseek_v3", dict(
        num_key_value_heads=4, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2,
        moe_intermediate_size=16, n_group=4, topk_group=2, norm_topk_prob=True, routed_scaling_factor=2.5,
        first_k_dense_replace=1, q_lora_rank=16, kv_lora_rank=12, qk_rope_head_dim=8, qk_nope_head_dim=8,
        v_head_dim=12, rope_interleave=True, attention_bias=True,
        rope_parameters=dict(rope_type="default", rope_theta=10000.0),
    )),
    # Kimi-K2 / DeepSeek-V2-Lite style: no q LoRA (plain q_proj), one group, 2 shared experts, not
    # renormalised, no rope interleave; yarn rope with mscale / mscale_all_dim as Kimi-K2 and DeepSeek-V3 ship
    # (softmax scale times mscale^2).
    "kimi-k2": ("deepseek_v3", dict(
        num_key_value_heads=4, n_routed_experts=8, n_shared_experts=2, num_experts_per_tok=3,
        moe_intermediate_size=16, n_group=1, topk_group=1, norm_topk_prob=False, routed_scaling_factor=2.827,
        first_k_dense_replace=1, q_lora_rank=None, kv_lora_rank=12, qk_rope_head_dim=8, qk_nope_head_dim=8,
        v_head_dim=8, rope_interleave=False,
        rope_parameters=dict(rope_type="yarn", rope_theta=50000.0, factor=4.0, original_max_position_embeddings=64,
                             beta_fast=32.0, beta_slow=1.0, mscale=1.0, mscale_all_dim=1.0),
    )),
}

# LoRA targets (PEFT target_modules, one regex) per model_type: the plain linears of attention, and of the dense MLPs
# / shared experts where PEFT leaves the names alone. For Qwen3-MoE, OLMoE, Mixtral and DeepSeek-V3, PEFT 0.21 on
# transformers 5 rewrites gate_proj / up_proj / down_proj targets into target_parameters on the fused 3-D routed
# experts (and drops the dense ones), a different adapter format; their rows target attention only.
_DENSE_MLP = r"(mlp|shared_experts?)\.(gate_proj|up_proj|down_proj)"
LORA_TARGETS = {
    "llama": rf".*\.((self_attn\.(q_proj|k_proj|v_proj|o_proj))|{_DENSE_MLP})",
    "mistral": rf".*\.((self_attn\.(q_proj|k_proj|v_proj|o_proj))|{_DENSE_MLP})",
    "mixtral": r".*\.self_attn\.(q_proj|k_proj|v_proj|o_proj)",
    "qwen2": rf".*\.((self_attn\.(q_proj|k_proj|v_proj|o_proj))|{_DENSE_MLP})",
    "qwen3": rf".*\.((self_attn\.(q_proj|k_proj|v_proj|o_proj))|{_DENSE_MLP})",
    "qwen2_moe": rf".*\.((self_attn\.(q_proj|v_proj|o_proj))|{_DENSE_MLP})",
    "qwen3_moe": r".*\.self_attn\.(q_proj|k_proj|o_proj)",
    "olmoe": r".*\.self_attn\.(q_proj|k_proj|v_proj|o_proj)",
    "deepseek_v3": r".*\.self_attn\.(q_proj|q_a_proj|q_b_proj|kv_a_proj_with_mqa|kv_b_proj|o_proj)",
}
