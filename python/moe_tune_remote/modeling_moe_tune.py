"""
PyTorch modeling for the models moe-tune makes (model_type "moe_tune"), in the style of transformers'
one-file-per-family modeling code. It computes what moe-tune computes (src/models, src/routers,
src/lora): the same decoder (Llama-family attention with grouped-query heads and rotary embedding,
optional q/k/v bias, q/k RMSNorm per head or over the whole projection, clip_qkv), the same MoE
block for any moe-tune router (top-k, top-p, threshold, expert choice, random drop, AdaMoE null
experts, TC-MoE ternary rows, sigmoid routing with a correction bias), optional shared experts,
XMoE's gate scale, Mo-LoRA and unmerged LoRA layers, under moe-tune's tensor names.

    model = AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)
    out = model(input_ids, labels=input_ids, aux_losses=[{"name": "balance", "weight": 0.01}],
                aux_step={"step": 10, "total_steps": 100, "steps_per_epoch": 50})
    out.loss            # lm loss + sum_i weight_i(step) * aux_i   (moe-tune's trainer objective)
    out.lm_loss         # mean next-token cross-entropy
    out.aux_losses      # {name: unweighted loss}
    out.router_outputs  # [RoutingRecord(layer, module, routing)] for every MoE layer / Mo-LoRA linear
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import PreTrainedModel
from transformers.modeling_outputs import ModelOutput

try:
    from transformers.generation import GenerationMixin
except ImportError:  # pragma: no cover
    from transformers.generation.utils import GenerationMixin

from .configuration_moe_tune import MoeTuneConfig
from .losses import RoutingRecord, compute_aux_losses
from .routers import NullExpertsRouter, Router, Routing, TopKRouter, create_router
# transformers 4.57 copies only the modules this file imports itself: routers.py needs rng.py
from .rng import Rng  # noqa: F401

IGNORE_INDEX = -100

# Per family: which optional pieces its config keys switch on (names as in transformers' own configs).
QKV_BIAS_ALWAYS = {"qwen2", "qwen2_moe"}
QK_NORM_PER_HEAD = {"qwen3", "qwen3_moe"}
QK_NORM_WHOLE = {"olmoe"}


# ----------------------------------------------------------------------------------------------- layers

class MoeTuneRMSNorm(nn.Module):
    """RMSNorm in float32: weight * x / sqrt(mean(x^2) + eps) (Llama; moe-tune's ops.rmsnorm)."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.variance_epsilon = eps

    def forward(self, x):
        dtype = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * h.to(dtype)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class MoeTuneRotaryEmbedding(nn.Module):
    """Rotary embedding for the rope types moe-tune implements (transformers' modeling_rope_utils): default,
    linear, dynamic (NTK), llama3 and yarn, from moe-tune's normalised rope config (moe_tune.layout.rope).
    inv_freq is computed in forward, not held in a buffer: transformers 5 builds remote-code models on the
    meta device and would leave a non-persistent buffer uninitialised."""

    def __init__(self, dim: int, rope: Dict):
        super().__init__()
        self.dim, self.rope = dim, dict(rope)

    def inv_freq(self, device, seq_len: int):
        r, dim = self.rope, self.dim
        base = float(r.get("theta", 10000.0))
        kind = r.get("type", "default")
        if kind == "dynamic" and seq_len > r["maxPositionEmbeddings"]:
            f, mp = float(r["factor"]), float(r["maxPositionEmbeddings"])
            base = base * ((f * seq_len / mp) - (f - 1)) ** (dim / (dim - 2))
        ar = torch.arange(0, dim, 2, dtype=torch.int64, device=device).float()
        inv = 1.0 / (base ** (ar / dim))
        scaling = 1.0
        if kind == "linear":
            inv = inv / float(r["factor"])
        elif kind == "llama3":
            factor, lo, hi, old = float(r["factor"]), float(r["lowFreqFactor"]), float(r["highFreqFactor"]), float(r["originalMaxPositionEmbeddings"])
            low_wl, high_wl = old / lo, old / hi
            wavelen = 2 * math.pi / inv
            inv_l = torch.where(wavelen > low_wl, inv / factor, inv)
            smooth = (old / wavelen - lo) / (hi - lo)
            smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
            medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
            inv = torch.where(medium, smoothed, inv_l)
        elif kind == "yarn":
            factor, orig = float(r["factor"]), float(r["originalMaxPositionEmbeddings"])
            bf, bs = float(r["betaFast"]), float(r["betaSlow"])

            def corr_dim(rot):
                return (dim * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(base))

            low, high = corr_dim(bf), corr_dim(bs)
            if r.get("truncate", True):
                low, high = math.floor(low), math.ceil(high)
            low, high = max(low, 0), min(high, dim - 1)
            if low == high:
                high += 0.001
            ramp = ((torch.arange(dim // 2, dtype=torch.float32, device=device) - low) / (high - low)).clamp(0, 1)
            pos = base ** (ar / dim)
            extra = 1 - ramp
            inv = (1.0 / (factor * pos)) * (1 - extra) + (1.0 / pos) * extra
            scaling = float(r["attentionFactor"])
        return inv, scaling

    def forward(self, x, position_ids):
        inv, scaling = self.inv_freq(x.device, int(position_ids.max().item()) + 1 if position_ids.numel() else 0)
        freqs = position_ids[..., None].float() * inv
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * scaling).to(x.dtype), (emb.sin() * scaling).to(x.dtype)


def apply_rope(x, cos, sin):
    """x [B, H, T, Dh], cos / sin [B, T, Dh]."""
    return x * cos[:, None] + rotate_half(x) * sin[:, None]


class MoeTuneAttention(nn.Module):
    """Grouped-query causal self-attention with rotary embedding (Llama / Mistral / Mixtral / Qwen / OLMoE)."""

    def __init__(self, config: MoeTuneConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        D = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim or D // self.num_heads
        fam = config.base_model_type
        att = (config.moe_tune.get("layout") or {}).get("attention")
        if att is not None:
            # moe-tune wrote the family's attention options out (moe_tune.layout.attention)
            qkv_bias, o_bias = bool(att.get("qkv_bias")), bool(att.get("o_bias"))
        else:
            qkv_bias = bool(config.attention_bias) or fam in QKV_BIAS_ALWAYS
            o_bias = bool(config.attention_bias) and fam not in QKV_BIAS_ALWAYS
        H, Hkv, Dh = self.num_heads, self.num_kv_heads, self.head_dim
        self.q_proj = nn.Linear(D, H * Dh, bias=qkv_bias)
        self.k_proj = nn.Linear(D, Hkv * Dh, bias=qkv_bias)
        self.v_proj = nn.Linear(D, Hkv * Dh, bias=qkv_bias)
        self.o_proj = nn.Linear(H * Dh, D, bias=o_bias)
        self.qk_norm = None
        qk = att.get("qk_norm") if att is not None else ("head" if fam in QK_NORM_PER_HEAD else "projection" if fam in QK_NORM_WHOLE else "none")
        if qk == "head":
            self.qk_norm = "head"
            self.q_norm = MoeTuneRMSNorm(Dh, config.rms_norm_eps)
            self.k_norm = MoeTuneRMSNorm(Dh, config.rms_norm_eps)
        elif qk == "projection":
            self.qk_norm = "whole"
            self.q_norm = MoeTuneRMSNorm(H * Dh, config.rms_norm_eps)
            self.k_norm = MoeTuneRMSNorm(Hkv * Dh, config.rms_norm_eps)
        self.clip_qkv = att.get("clip_qkv") if att is not None else getattr(config, "clip_qkv", None)
        self.scaling = Dh ** -0.5
        self.attention_dropout = float(getattr(config, "attention_dropout", 0.0) or 0.0)

    def forward(self, x, cos, sin, attn_mask, past_key_values=None):
        B, T, _ = x.shape
        H, Hkv, Dh = self.num_heads, self.num_kv_heads, self.head_dim
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        if self.qk_norm == "whole":
            q, k = self.q_norm(q), self.k_norm(k)
        if self.clip_qkv is not None:
            # OLMoE: clamped after the q / k norms
            q, k, v = (t.clamp(min=-self.clip_qkv, max=self.clip_qkv) for t in (q, k, v))
        q = q.view(B, T, H, Dh)
        k = k.view(B, T, Hkv, Dh)
        if self.qk_norm == "head":
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.view(B, T, Hkv, Dh).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if past_key_values is not None:
            k, v = past_key_values.update(k, v, self.layer_idx)
        if Hkv != H:
            k = k.repeat_interleave(H // Hkv, dim=1)
            v = v.repeat_interleave(H // Hkv, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.scaling + attn_mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        probs = F.dropout(probs, p=self.attention_dropout, training=self.training)
        o = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, H * Dh)
        return self.o_proj(o)


def deinterleave(x):
    """[.., d] laid out as pairs (x0, x1), (x2, x3), ... -> [x0, x2, ..., x1, x3, ...] (DeepSeek's rope_interleave)."""
    *lead, d = x.shape
    return x.reshape(*lead, d // 2, 2).transpose(-1, -2).reshape(*lead, d)


class MoeTuneMlaAttention(nn.Module):
    """Multi-head latent attention (DeepSeek-V2 report arXiv 2405.04434 §2.1.2-2.1.3 eq. 9-19; DeepSeek-V3, Kimi-K2;
    src/models/mla-attention.ts): q = W_qb RMSNorm(W_qa x) (or W_q x); [c_kv, k_R] = W_kva x;
    [k_C, v] = W_kvb RMSNorm(c_kv); q = [q_C, RoPE(q_R)], k = [k_C, RoPE(k_R) shared by every head]; the inner
    norms use eps 1e-6; the softmax scale is moe-tune's (qk_head_dim^-1/2, times yarn's mscale^2)."""

    def __init__(self, config: MoeTuneConfig, layer_idx: int, mla: Dict):
        super().__init__()
        self.layer_idx = layer_idx
        D = config.hidden_size
        H = self.num_heads = config.num_attention_heads
        self.q_lora_rank = mla.get("q_lora_rank")
        self.kv_lora_rank, self.dn, self.dr, self.dv = mla["kv_lora_rank"], mla["qk_nope_head_dim"], mla["qk_rope_head_dim"], mla["v_head_dim"]
        self.interleave = bool(mla.get("rope_interleave", True))
        self.scaling = float(mla["scale"])
        bias = bool(mla.get("bias", False))
        dqk = self.dn + self.dr
        if self.q_lora_rank is None:
            self.q_proj = nn.Linear(D, H * dqk, bias=False)
        else:
            self.q_a_proj = nn.Linear(D, self.q_lora_rank, bias=bias)
            self.q_a_layernorm = MoeTuneRMSNorm(self.q_lora_rank, 1e-6)
            self.q_b_proj = nn.Linear(self.q_lora_rank, H * dqk, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(D, self.kv_lora_rank + self.dr, bias=bias)
        self.kv_a_layernorm = MoeTuneRMSNorm(self.kv_lora_rank, 1e-6)
        self.kv_b_proj = nn.Linear(self.kv_lora_rank, H * (self.dn + self.dv), bias=False)
        self.o_proj = nn.Linear(H * self.dv, D, bias=bias)
        self.attention_dropout = float(getattr(config, "attention_dropout", 0.0) or 0.0)

    def forward(self, x, cos, sin, attn_mask, past_key_values=None):
        B, T, _ = x.shape
        H, dn, dr, dv = self.num_heads, self.dn, self.dr, self.dv
        qf = self.q_proj(x) if self.q_lora_rank is None else self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        q = qf.view(B, T, H, dn + dr).transpose(1, 2)
        q_pass, q_rot = q[..., :dn], q[..., dn:]
        ckv = self.kv_a_proj_with_mqa(x)
        latent, k_rot = ckv[..., : self.kv_lora_rank], ckv[..., self.kv_lora_rank:]
        kv = self.kv_b_proj(self.kv_a_layernorm(latent)).view(B, T, H, dn + dv).transpose(1, 2)
        k_pass, v = kv[..., :dn], kv[..., dn:]
        k_rot = k_rot.view(B, 1, T, dr)
        if self.interleave:
            q_rot, k_rot = deinterleave(q_rot), deinterleave(k_rot)
        q_rot, k_rot = apply_rope(q_rot, cos, sin), apply_rope(k_rot, cos, sin)
        q = torch.cat([q_pass, q_rot], -1)
        k = torch.cat([k_pass, k_rot.expand(B, H, T, dr)], -1)
        if past_key_values is not None:
            k, v = past_key_values.update(k, v, self.layer_idx)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.scaling + attn_mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        probs = F.dropout(probs, p=self.attention_dropout, training=self.training)
        o = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, H * dv)
        return self.o_proj(o)


class MoeTuneMLP(nn.Module):
    """SwiGLU FFN down(silu(gate(x)) * up(x)) under configurable names (Llama: gate_proj / up_proj / down_proj,
    Mixtral experts: w1 / w3 / w2)."""

    def __init__(self, D: int, F_: int, names: Sequence[str] = ("gate_proj", "up_proj", "down_proj"), bias: bool = False):
        super().__init__()
        self.names = tuple(names)
        g, u, d = self.names
        setattr(self, g, nn.Linear(D, F_, bias=bias))
        setattr(self, u, nn.Linear(D, F_, bias=bias))
        setattr(self, d, nn.Linear(F_, D, bias=bias))

    def forward(self, x):
        g, u, d = self.names
        return getattr(self, d)(F.silu(getattr(self, g)(x)) * getattr(self, u)(x))


class MoeTuneSparseMoeBlock(nn.Module):
    """The MoE FFN for any moe-tune router (src/models/moe-block.ts): router logits from `gate` (then `gate2`'s
    null-expert rows), the router's (token, expert) pairs, each expert run on its tokens, outputs added with
    their gates; times gate_scale (XMoE); plus identity-mapped null experts; plus shared experts."""

    def __init__(self, config: MoeTuneConfig, layer_idx: int, router: Router):
        super().__init__()
        ext = config.moe_tune
        layout = ext.get("layout") or {}
        D = config.hidden_size
        self.layer_idx = layer_idx
        self.num_experts = int(config.num_local_experts)
        self.router = router
        F_ = int(ext.get("expert_intermediate_size") or config.intermediate_size)
        rows = router.layout_for(self.num_experts)
        gate2_rows = rows.null_experts if "null_experts" in ext and rows.null_experts else 0
        gate_rows = rows.rows - gate2_rows
        bias = bool(layout.get("mlp_bias", False))
        self.router_name = layout.get("router", "gate")
        self.experts_name = layout.get("experts", "experts")
        setattr(self, self.router_name, nn.Linear(D, gate_rows, bias="ternary" in ext))
        self.gate2 = nn.Linear(D, gate2_rows, bias=False) if gate2_rows else None
        names = tuple(layout.get("expert_names") or ("w1", "w3", "w2"))
        setattr(self, self.experts_name, nn.ModuleList([MoeTuneMLP(D, F_, names, bias) for _ in range(self.num_experts)]))
        # routed outputs x routed_scaling_factor (DeepSeek) or N (XMoE gate_scale), as moe-tune's routedScale
        self.gate_scale = float(layout["routed_scale"]) if "routed_scale" in layout else float(ext.get("gate_scale", 1.0))
        # Qwen2-MoE: one shared expert with a sigmoid gate; DeepSeek: shared experts without a gate
        self.shared_name = layout.get("shared_expert")
        if self.shared_name:
            Fs = int(layout.get("shared_expert_intermediate_size") or F_)
            setattr(self, self.shared_name, MoeTuneMLP(D, Fs, tuple(layout.get("shared_expert_names") or ("gate_proj", "up_proj", "down_proj")), bias))
        self.shared_gate_name = layout.get("shared_expert_gate")
        if self.shared_gate_name:
            setattr(self, self.shared_gate_name, nn.Linear(D, 1, bias=False))
        self.selection_bias_name = layout.get("selection_bias")
        if self.selection_bias_name:
            # DeepSeek-V3: e_score_correction_bias [N] beside the router weight, for choosing only
            self.router_linear().register_buffer(self.selection_bias_name, torch.zeros(gate_rows))

    def router_linear(self) -> nn.Module:
        """The router's linear (`gate` in every family so far; the name comes from the layout)."""
        return getattr(self, self.router_name)

    def expert_list(self) -> nn.ModuleList:
        return getattr(self, self.experts_name)

    def router_logits(self, x):
        g, g2 = self.router_linear(), self.gate2
        if g2 is None:
            return g(x)
        if type(g) is nn.Linear and type(g2) is nn.Linear:
            # one product over the stacked rows, as moe-tune does (ties between copied rows stay ties)
            w = torch.cat([g.weight, g2.weight], 0)
            b = None
            if g.bias is not None or g2.bias is not None:
                b = torch.cat([g.bias if g.bias is not None else w.new_zeros(g.out_features),
                               g2.bias if g2.bias is not None else w.new_zeros(g2.out_features)])
            return F.linear(x, w, b)
        return torch.cat([g(x), g2(x)], -1)

    def forward(self, x) -> Tuple[torch.Tensor, Routing]:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        logits = self.router_logits(flat)
        kwargs = {}
        if self.selection_bias_name and getattr(self.router, "uses_selection_bias", False):
            kwargs["selection_bias"] = getattr(self.router_linear(), self.selection_bias_name)
        routing = self.router.route(logits, self.num_experts, layer=self.layer_idx, training=self.training, **kwargs)
        out = torch.zeros_like(flat)
        combine = routing.combine.to(flat.dtype)
        for e in range(self.num_experts):
            tok = routing.dispatch[:, e].nonzero().squeeze(-1)
            if tok.numel() == 0:
                continue
            y = self.expert_list()[e](flat[tok]) * combine[tok, e, None]
            out = out.index_add(0, tok, y)
        if self.gate_scale != 1.0:
            out = out * self.gate_scale
        if routing.identity_weights is not None:
            out = out + flat * routing.identity_weights.to(flat.dtype)[:, None]
        if self.shared_name:
            s = getattr(self, self.shared_name)(flat)
            if self.shared_gate_name:
                s = torch.sigmoid(getattr(self, self.shared_gate_name)(flat)) * s
            out = out + s
        return out.reshape(shape), routing


# ----------------------------------------------------------------------------------------- LoRA layers

class MoeTuneLoraLinear(nn.Module):
    """LoRA (Hu et al. 2021): y = W x (+ b) + scaling * B A dropout(x), scaling = alpha / r (alpha / sqrt(r) with
    rsLoRA). Keys as moe-tune writes them: `<path>.weight`, `<path>.lora_A.weight`, `<path>.lora_B.weight`."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0, rslora: bool = False):
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.lora_A = nn.Linear(self.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, self.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / math.sqrt(r) if rslora else alpha / r
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x):
        return F.linear(x, self.weight, self.bias) + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling


class MoeTuneLoraExpert(nn.Module):
    def __init__(self, in_features: int, out_features: int, r: int):
        super().__init__()
        self.lora_A = nn.Linear(in_features, r, bias=False)
        self.lora_B = nn.Linear(r, out_features, bias=False)

    def forward(self, x):
        return self.lora_B(self.lora_A(x))


class MoeTuneMoLoraLinear(nn.Module):
    """Mo-LoRA (AdaMoE on dense models, paper 004 §3.5): y = W x + scaling * sum_{e routed} g_e(x) B_e A_e dropout(x),
    routed by `lora_router` [n + m, in] with top-k (m = 0) or AdaMoE's null-experts router. Keys:
    `<path>.weight`, `<path>.lora_router.weight`, `<path>.lora_experts.E.lora_A.weight` / `.lora_B.weight`."""

    def __init__(self, base: nn.Linear, path: str, layer_idx: int, experts: int, r: int, alpha: float, top_k: int,
                 null_experts: int = 0, dropout: float = 0.0):
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.path, self.layer_idx, self.num_experts = path, layer_idx, experts
        self.router: Router = NullExpertsRouter(top_k, null_experts, "zero") if null_experts > 0 else TopKRouter(top_k)
        self.lora_router = nn.Linear(self.in_features, experts + null_experts, bias=False)
        self.lora_experts = nn.ModuleList([MoeTuneLoraExpert(self.in_features, self.out_features, r) for _ in range(experts)])
        for e in self.lora_experts:
            nn.init.kaiming_uniform_(e.lora_A.weight, a=math.sqrt(5))
            nn.init.zeros_(e.lora_B.weight)
        self.scaling = alpha / r
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.records: Optional[List[RoutingRecord]] = None

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)
        flat = x.reshape(-1, self.in_features)
        routing = self.router.route(self.lora_router(flat), self.num_experts, layer=self.layer_idx, training=self.training)
        if self.records is not None:
            self.records.append(RoutingRecord(self.layer_idx, self.path, routing))
        xd = self.lora_dropout(flat)
        delta = torch.zeros(flat.shape[0], self.out_features, dtype=y.dtype, device=y.device)
        combine = routing.combine.to(y.dtype)
        for e in range(self.num_experts):
            tok = routing.dispatch[:, e].nonzero().squeeze(-1)
            if tok.numel() == 0:
                continue
            delta = delta.index_add(0, tok, self.lora_experts[e](xd[tok]) * combine[tok, e, None])
        return y + (delta * self.scaling).reshape(y.shape)


ALL_LINEAR = "all-linear"


def path_selected(path: str, targets, exclude=None, layers=None) -> bool:
    """PEFT's target_modules rules (src/lora/target-match.ts): names match the full path or a `.name` suffix, a
    string is a regex over the whole path, 'all-linear' is every linear but lm_head; layers_to_transform keeps
    modules whose first `.<name>.<digits>.` group is a listed layer."""

    def matches(p) -> bool:
        if isinstance(p, str):
            if p == ALL_LINEAR:
                return path != "lm_head"
            return re.fullmatch(p, path) is not None
        return any(path == n or path.endswith("." + n) for n in p)

    if exclude and matches(exclude):
        return False
    if not matches(targets):
        return False
    if layers:
        i = layer_index_of(path)
        if i is None or i not in layers:
            return False
    return True


def layer_index_of(path: str) -> Optional[int]:
    m = re.match(r"^.*?\.[^.]*\.(\d+)\.", path)
    return int(m.group(1)) if m else None


def candidate_linears(root: nn.Module) -> List[Tuple[str, nn.Linear]]:
    """Every nn.Linear of the model, not counting those inside LoRA / Mo-LoRA wrappers."""
    out = []
    inside: List[str] = []
    for path, m in root.named_modules():
        if path == "" or any(path.startswith(p + ".") for p in inside):
            continue
        if isinstance(m, (MoeTuneLoraLinear, MoeTuneMoLoraLinear)):
            inside.append(path)
            out.append((path, m))
        elif isinstance(m, nn.Linear):
            out.append((path, m))
    return out


def set_module(root: nn.Module, path: str, module: nn.Module):
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


# ------------------------------------------------------------------------------------------- decoder

def default_router(config: MoeTuneConfig) -> Optional[Router]:
    """The router the config asks for (src/models/default-router.ts): moe_tune.router, else AdaMoE null experts,
    else TC-MoE ternary rows, else the family's own (top-k with num_experts_per_tok; sigmoid routing for
    DeepSeek-V3)."""
    if not config.num_local_experts:
        return None
    ext = config.moe_tune
    if ext.get("router"):
        return create_router(ext["router"])
    if ext.get("null_experts"):
        n = ext["null_experts"]
        return create_router({"name": "null-experts", "k": n["top_k"], "m": n["m"], "mapping": n.get("mapping", "zero")})
    if ext.get("ternary"):
        return create_router({"name": "ternary", "k": config.num_experts_per_tok, "zero": ext["ternary"]["zero_experts"]})
    fam = (ext.get("layout") or {}).get("family_router")
    if fam:
        return create_router(fam)
    if config.base_model_type in ("deepseek_v3", "kimi_k2"):
        return create_router({"name": "group-top-k", "k": config.num_experts_per_tok,
                              "groups": getattr(config, "n_group", 1) or 1, "group_k": getattr(config, "topk_group", 1) or 1,
                              "renormalize": bool(getattr(config, "norm_topk_prob", True))})
    normalize = bool(getattr(config, "norm_topk_prob", True)) if config.base_model_type in ("qwen2_moe", "qwen3_moe", "olmoe") else True
    return TopKRouter(int(config.num_experts_per_tok), normalize)


class MoeTuneDecoderLayer(nn.Module):
    """Pre-norm block: h = x + attn(norm(x)); out = h + ffn(norm(h)); the FFN is dense (`mlp`) or MoE."""

    def __init__(self, config: MoeTuneConfig, layer_idx: int, router: Optional[Router], moe: bool):
        super().__init__()
        D = config.hidden_size
        self.input_layernorm = MoeTuneRMSNorm(D, config.rms_norm_eps)
        mla = (config.moe_tune.get("layout") or {}).get("mla")
        self.self_attn = MoeTuneMlaAttention(config, layer_idx, mla) if mla else MoeTuneAttention(config, layer_idx)
        self.post_attention_layernorm = MoeTuneRMSNorm(D, config.rms_norm_eps)
        layout = config.moe_tune.get("layout") or {}
        self.is_moe = moe
        if moe:
            self.ffn_name = layout.get("moe_block", "block_sparse_moe")
            setattr(self, self.ffn_name, MoeTuneSparseMoeBlock(config, layer_idx, router))
        else:
            self.ffn_name = layout.get("mlp", "mlp")
            setattr(self, self.ffn_name, MoeTuneMLP(D, config.intermediate_size, tuple(layout.get("mlp_names") or ("gate_proj", "up_proj", "down_proj")),
                                                    bool(layout.get("mlp_bias", False))))

    def forward(self, x, cos, sin, attn_mask, past_key_values=None):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, attn_mask, past_key_values)
        n = self.post_attention_layernorm(h)
        ffn = getattr(self, self.ffn_name)
        if self.is_moe:
            f, routing = ffn(n)
            return h + f, routing
        return h + ffn(n), None


@dataclass
class MoeTuneModelOutput(ModelOutput):
    last_hidden_state: Optional[torch.FloatTensor] = None
    past_key_values: Optional[object] = None
    router_outputs: Optional[List[RoutingRecord]] = None


@dataclass
class MoeTuneCausalLMOutputWithPast(ModelOutput):
    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    past_key_values: Optional[object] = None
    lm_loss: Optional[torch.FloatTensor] = None
    aux_loss: Optional[torch.FloatTensor] = None
    aux_losses: Optional[Dict[str, torch.Tensor]] = None
    router_outputs: Optional[List[RoutingRecord]] = None


class MoeTunePreTrainedModel(PreTrainedModel):
    config_class = MoeTuneConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MoeTuneDecoderLayer"]
    _skip_keys_device_placement = ["past_key_values"]

    def _init_weights(self, module):
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)
        elif isinstance(module, MoeTuneRMSNorm):
            module.weight.data.fill_(1.0)


class MoeTuneModel(MoeTunePreTrainedModel):
    """The `model.` part: embeddings, decoder layers, final norm."""

    def __init__(self, config: MoeTuneConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.router = default_router(config)
        ext = config.moe_tune
        if config.num_local_experts:
            moe_layers = set(ext.get("moe_layers", range(config.num_hidden_layers)))
        else:
            moe_layers = set()
        self.layers = nn.ModuleList([MoeTuneDecoderLayer(config, i, self.router, i in moe_layers)
                                     for i in range(config.num_hidden_layers)])
        self.norm = MoeTuneRMSNorm(config.hidden_size, config.rms_norm_eps)
        # set by transformers' gradient_checkpointing_enable() (see _checkpointed_layer)
        self.gradient_checkpointing = False
        head_dim = config.head_dim or config.hidden_size // config.num_attention_heads
        mla = (ext.get("layout") or {}).get("mla")
        if mla:
            head_dim = mla["qk_rope_head_dim"]
        rope = (ext.get("layout") or {}).get("rope") or {"type": "default", "theta": config.rope_base()}
        self.rotary_emb = MoeTuneRotaryEmbedding(head_dim, rope)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, inputs_embeds=None,
                use_cache=None, **kwargs):
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        B, T = x.shape[:2]
        if use_cache and past_key_values is None:
            from transformers.cache_utils import DynamicCache
            past_key_values = DynamicCache()
        past = past_key_values.get_seq_length() if past_key_values is not None else 0
        if position_ids is None:
            position_ids = torch.arange(past, past + T, device=x.device).unsqueeze(0).expand(B, T)
        cos, sin = self.rotary_emb(x, position_ids)
        # additive causal mask [B, 1, T, past + T], with padding from attention_mask
        S = past + T
        q_pos = torch.arange(past, S, device=x.device)[:, None]
        k_pos = torch.arange(S, device=x.device)[None, :]
        allowed = (k_pos <= q_pos)[None, None].expand(B, 1, T, S)
        if attention_mask is not None and attention_mask.dim() == 2:
            allowed = allowed & attention_mask[:, None, None, :S].bool()
        mask = torch.zeros(allowed.shape, dtype=x.dtype, device=x.device).masked_fill(~allowed, torch.finfo(x.dtype).min)
        records: List[RoutingRecord] = []
        molora = [m for m in self.modules() if isinstance(m, MoeTuneMoLoraLinear)]
        for m in molora:
            m.records = records
        try:
            for i, layer in enumerate(self.layers):
                if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                    x, routing = self._checkpointed_layer(layer, x, cos, sin, mask)
                else:
                    x, routing = layer(x, cos, sin, mask, past_key_values)
                if routing is not None:
                    records.append(RoutingRecord(i, f"model.layers.{i}.{layer.ffn_name}", routing))
        finally:
            for m in molora:
                m.records = None
        return MoeTuneModelOutput(last_hidden_state=self.norm(x), past_key_values=past_key_values if use_cache else None,
                                  router_outputs=records)


    def _checkpointed_layer(self, layer, x, cos, sin, mask):
        """Activation checkpointing of one decoder layer (moe-tune's train.gradient_checkpointing): torch's
        non-reentrant checkpoint, which replays torch's own RNG (LoRA dropout); a router with its own random
        streams (random drop) is set back to its state before the layer for the recomputation and returned to
        where the step left it afterwards, as src/models/layer-checkpoint.ts does. Mo-LoRA records are only
        appended on the first pass (their list is unset by the time the backward recomputes)."""
        from torch.utils.checkpoint import checkpoint

        router = self.router if hasattr(self.router, "random_state") else None
        before = router.random_state() if router is not None else None
        calls = [0]

        def run(x, cos, sin, mask):
            calls[0] += 1
            if calls[0] == 1 or router is None:
                return layer(x, cos, sin, mask, None)
            now = router.random_state()
            router.restore_random_state(before)
            try:
                return layer(x, cos, sin, mask, None)
            finally:
                router.restore_random_state(now)

        return checkpoint(run, x, cos, sin, mask, use_reentrant=False)


def _tied_keys():
    import transformers
    major = int(transformers.__version__.split(".")[0])
    return {"lm_head.weight": "model.embed_tokens.weight"} if major >= 5 else ["lm_head.weight"]


class MoeTuneForCausalLM(MoeTunePreTrainedModel, GenerationMixin):
    _tied_weights_keys = _tied_keys()

    def __init__(self, config: MoeTuneConfig):
        super().__init__(config)
        self.model = MoeTuneModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        add_adapter_layers(self, config)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def reset_router_state(self):
        """Restarts the random streams of a random-drop router (moe-tune's RandomDropRouter.reset())."""
        r = self.model.router
        if r is not None and hasattr(r, "reset"):
            r.reset()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, inputs_embeds=None,
                labels=None, use_cache=None, aux_losses: Optional[Sequence[Dict]] = None, aux_step: Optional[Dict] = None,
                logits_to_keep=0, return_dict=True, **kwargs):
        """`aux_losses`: moe-tune aux-loss specs [{name, weight (number or schedule), ...options}] (default: the
        config's moe_tune.aux_losses, else none); `aux_step`: {step, total_steps, steps_per_epoch} for the schedules."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=past_key_values, inputs_embeds=inputs_embeds, use_cache=use_cache)
        h = out.last_hidden_state
        if isinstance(logits_to_keep, int) and logits_to_keep > 0:
            h = h[:, -logits_to_keep:]
        logits = self.lm_head(h)
        loss = lm_loss = aux_total = None
        aux_values = None
        if labels is not None:
            shift_logits = logits[:, :-1].float().reshape(-1, logits.shape[-1])
            shift_labels = labels[:, 1:].reshape(-1).to(logits.device)
            lm_loss = F.cross_entropy(shift_logits, shift_labels, ignore_index=IGNORE_INDEX)
            loss = lm_loss
        specs = aux_losses if aux_losses is not None else self.config.moe_tune.get("aux_losses", [])
        if specs:
            st = aux_step or {}
            aux_values, aux_total = compute_aux_losses(out.router_outputs, specs, int(st.get("step", 0)),
                                                      int(st.get("total_steps", 1)), int(st.get("steps_per_epoch", 1)))
            if loss is not None and aux_total is not None:
                loss = loss + aux_total.to(loss.dtype)
        return MoeTuneCausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=out.past_key_values, lm_loss=lm_loss,
                                             aux_loss=aux_total, aux_losses=aux_values, router_outputs=out.router_outputs)


def add_adapter_layers(model: nn.Module, config: MoeTuneConfig):
    """Wraps the target linears as moe-tune did: Mo-LoRA first, then LoRA (src/lora/build-extensions.ts)."""
    ext = config.moe_tune
    mo = ext.get("mo_lora")
    if mo:
        picked = [(p, m) for p, m in candidate_linears(model) if type(m) is nn.Linear and path_selected(p, mo["targets"])]
        if not picked:
            raise ValueError(f"moe_tune.mo_lora: targets {mo['targets']!r} match no linear of the model")
        for p, m in picked:
            set_module(model, p, MoeTuneMoLoraLinear(m, p, layer_index_of(p) if layer_index_of(p) is not None else -1,
                                                     int(mo["experts"]), int(mo["r"]), float(mo["alpha"]), int(mo["top_k"]),
                                                     int(mo.get("null_experts", 0)), float(mo.get("dropout", 0.0))))
    lo = ext.get("lora")
    if lo:
        picked = [(p, m) for p, m in candidate_linears(model)
                  if type(m) is nn.Linear and path_selected(p, lo["targets"], lo.get("exclude"), lo.get("layers"))]
        if not picked:
            raise ValueError(f"moe_tune.lora: targets {lo['targets']!r} match no linear of the model")
        for p, m in picked:
            set_module(model, p, MoeTuneLoraLinear(m, int(lo["r"]), float(lo["alpha"]), float(lo.get("dropout", 0.0)),
                                                   bool(lo.get("rslora", False))))
