"""Tiny random checkpoints of every family moe-tune reads, made and run by transformers itself.

Usage: arch_families.py OUT_DIR
Writes OUT_DIR/<case>/ (save_pretrained) for each case and prints one JSON line:
{case: {nll, ids, experts: {layer: [[expert, ...] per token]}}} with transformers' own NLL on a fixed
batch (float32 forward) and the experts its router selected per MoE layer. Weights are redrawn
N(0, 0.2^2) (norms 1 + N(0, 0.1^2)) so routers are not tied and every tensor matters.
"""
import json
import os
import sys

import torch
import transformers as tf

OUT = sys.argv[1]
torch.manual_seed(0)
BASE = dict(vocab_size=96, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False)

CASES = {
    'llama3': (tf.LlamaConfig, tf.LlamaForCausalLM, dict(head_dim=12, attention_bias=True, mlp_bias=True, rope_parameters=dict(
        rope_type='llama3', rope_theta=500000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=16))),
    'llama-yarn': (tf.LlamaConfig, tf.LlamaForCausalLM, dict(rope_parameters=dict(rope_type='yarn', rope_theta=10000.0, factor=4.0, original_max_position_embeddings=16))),
    'llama-linear': (tf.LlamaConfig, tf.LlamaForCausalLM, dict(rope_parameters=dict(rope_type='linear', rope_theta=10000.0, factor=2.0))),
    'llama-dynamic': (tf.LlamaConfig, tf.LlamaForCausalLM, dict(max_position_embeddings=8, rope_parameters=dict(rope_type='dynamic', rope_theta=10000.0, factor=2.0))),
    'qwen2': (tf.Qwen2Config, tf.Qwen2ForCausalLM, dict()),
    'qwen3': (tf.Qwen3Config, tf.Qwen3ForCausalLM, dict(head_dim=12)),
    'qwen2_moe': (tf.Qwen2MoeConfig, tf.Qwen2MoeForCausalLM, dict(num_hidden_layers=3, num_experts=6, num_experts_per_tok=2, moe_intermediate_size=12,
                                                                  shared_expert_intermediate_size=20, mlp_only_layers=[1], norm_topk_prob=False)),
    'qwen3_moe': (tf.Qwen3MoeConfig, tf.Qwen3MoeForCausalLM, dict(head_dim=12, num_experts=8, num_experts_per_tok=3, moe_intermediate_size=12, norm_topk_prob=True)),
    'qwen3_moe_bf16': (tf.Qwen3MoeConfig, tf.Qwen3MoeForCausalLM, dict(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=12, norm_topk_prob=True)),
    'olmoe': (tf.OlmoeConfig, tf.OlmoeForCausalLM, dict(num_experts=8, num_experts_per_tok=2, clip_qkv=0.6, pad_token_id=0, eos_token_id=1)),
}
only = sys.argv[2].split(',') if len(sys.argv) > 2 else None

result = {}
for name, (C, M, kw) in CASES.items():
    if only and name not in only:
        continue
    cfg = C(**{**BASE, **kw})
    model = M(cfg).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith('norm.weight') or 'layernorm' in pname:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    d = os.path.join(OUT, name)
    if name.endswith('_bf16'):
        model = model.to(torch.bfloat16)
        model.save_pretrained(d)
        model = M.from_pretrained(d, dtype=torch.float32).eval()
    else:
        model.save_pretrained(d)
    experts = {}
    hooks = []
    for i, layer in enumerate(model.model.layers):
        gate = getattr(layer.mlp, 'gate', None)
        if gate is None or not hasattr(gate, 'top_k'):
            continue
        def hook(_m, _inp, out, i=i):
            experts[i] = sorted_rows(out[2])
        hooks.append(gate.register_forward_hook(hook))
    def sorted_rows(idx):
        return [sorted(r) for r in idx.tolist()]
    ids = torch.randint(0, cfg.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(ids, labels=ids)
    result[name] = {'nll': out.loss.item(), 'ids': ids.tolist(), 'experts': experts}
print(json.dumps(result))
