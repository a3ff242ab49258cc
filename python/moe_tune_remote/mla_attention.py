"""
Multi-head latent attention for the remote code (DeepSeek-V3 / Kimi-K2 models moe-tune saved after surgery), the
same computation as src/models/mla-attention.ts and transformers' DeepseekV3Attention, under the same module names:

    q      = q_b_proj(q_a_layernorm(q_a_proj(x)))      (q_lora_rank set; else q_proj(x))   [H, nope + rope]
    c, k_r = kv_a_proj_with_mqa(x)                     latent [kv_lora_rank], shared rotary key [rope]
    k_n, v = kv_b_proj(kv_a_layernorm(c))              per head [nope + v_head_dim]
    q = [q_n, rope(q_r)], k = [k_n, rope(k_r) for every head], o = o_proj(softmax(q k^T * scale + mask) v)

The latent norms use eps 1e-6 (transformers' default for them); with rope_interleave (default) the rotary dims
are pairs, rotated as rotate-half on the de-interleaved vector; scale = qk_head_dim^-1/2, times
mscale(factor, mscale_all_dim)^2 under a scaled rope. cos / sin come from the model's rotary embedding over
head_dim = qk_rope_head_dim (transformers writes head_dim so). The KV cache holds the expanded k and v.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LATENT_NORM_EPS = 1e-6


class _RMSNorm(nn.Module):
    def __init__(self, n: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dt)


def _rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def deinterleave(x):
    """[..., (x0, x1), (x2, x3), ...] -> [..., x0, x2, ..., x1, x3, ...]."""
    return torch.cat((x[..., 0::2], x[..., 1::2]), dim=-1)


def mla_scale(config) -> float:
    qk = config.qk_nope_head_dim + config.qk_rope_head_dim
    scale = qk ** -0.5
    rp = dict(getattr(config, "rope_scaling", None) or {})
    rp.update(getattr(config, "rope_parameters", None) or {})
    kind = rp.get("rope_type", rp.get("type", "default"))
    ms_all = rp.get("mscale_all_dim") or 0
    factor = rp.get("factor") or 1
    if kind != "default" and ms_all and factor > 1:
        m = 0.1 * ms_all * math.log(factor) + 1.0
        scale *= m * m
    return scale


class MoeTuneMlaAttention(nn.Module):
    def __init__(self, config, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        D = config.hidden_size
        self.num_heads = H = config.num_attention_heads
        self.q_lora_rank = config.q_lora_rank
        self.kv_lora_rank = config.kv_lora_rank
        self.nope, self.rope, self.v_dim = config.qk_nope_head_dim, config.qk_rope_head_dim, config.v_head_dim
        self.interleave = bool(getattr(config, "rope_interleave", True))
        bias = bool(getattr(config, "attention_bias", False))
        qk = self.nope + self.rope
        if self.q_lora_rank is None:
            self.q_proj = nn.Linear(D, H * qk, bias=False)
        else:
            self.q_a_proj = nn.Linear(D, self.q_lora_rank, bias=bias)
            self.q_a_layernorm = _RMSNorm(self.q_lora_rank, LATENT_NORM_EPS)
            self.q_b_proj = nn.Linear(self.q_lora_rank, H * qk, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(D, self.kv_lora_rank + self.rope, bias=bias)
        self.kv_a_layernorm = _RMSNorm(self.kv_lora_rank, LATENT_NORM_EPS)
        self.kv_b_proj = nn.Linear(self.kv_lora_rank, H * (self.nope + self.v_dim), bias=False)
        self.o_proj = nn.Linear(H * self.v_dim, D, bias=bias)
        self.scaling = mla_scale(config)
        self.attention_dropout = float(getattr(config, "attention_dropout", 0.0) or 0.0)

    def forward(self, x, cos, sin, attn_mask, past_key_values=None):
        """x [B, T, D]; cos / sin [B, T, rope]; attn_mask additive [B, 1, T, S]."""
        B, T, _ = x.shape
        H = self.num_heads
        q = self.q_proj(x) if self.q_lora_rank is None else self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        q = q.view(B, T, H, self.nope + self.rope).transpose(1, 2)
        q_n, q_r = q[..., : self.nope], q[..., self.nope:]
        ckv = self.kv_a_proj_with_mqa(x)
        latent, k_r = ckv[..., : self.kv_lora_rank], ckv[..., self.kv_lora_rank:]
        k_r = k_r.view(B, 1, T, self.rope)
        if self.interleave:
            q_r, k_r = deinterleave(q_r), deinterleave(k_r)
        c, s = cos[:, None], sin[:, None]
        q_r = q_r * c + _rotate_half(q_r) * s
        k_r = k_r * c + _rotate_half(k_r) * s
        kv = self.kv_b_proj(self.kv_a_layernorm(latent)).view(B, T, H, self.nope + self.v_dim).transpose(1, 2)
        k_n, v = kv[..., : self.nope], kv[..., self.nope:]
        k = torch.cat((k_n, k_r.expand(B, H, T, self.rope)), dim=-1)
        q = torch.cat((q_n, q_r), dim=-1)
        if past_key_values is not None:
            k, v = past_key_values.update(k, v, self.layer_idx)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.scaling + attn_mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        probs = F.dropout(probs, p=self.attention_dropout, training=self.training)
        o = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, H * self.v_dim)
        return self.o_proj(o)
