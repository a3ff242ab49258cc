#!/usr/bin/env python3
"""PyTorch CPU reference for moe-tune's benchmarks.

Runs the identical model (Hugging Face Llama / Mixtral eager math: fp32 RMSNorm, rotate_half RoPE,
GQA by repeating kv heads, softmax -> top-k -> renormalise router, a Python loop over experts with
index_add_, as transformers' MixtralSparseMoeBlock does) on the same weights and batch that the
TypeScript bench wrote, and reports the loss of the first step and the median step time.

Usage: /usr/bin/python3 bench/torch_ref.py SPEC.json
SPEC.json: {"config": {...config.json...}, "weights": "file.safetensors", "batch": "batch.json",
            "steps": 5, "warmup": 2, "threads": 2, "lr": 1e-3, "betas": [0.9, 0.95], "weight_decay": 0.1,
            "eps": 1e-8, "null_experts": 0, "null_top_k": 0}
Prints one JSON object on stdout.
"""
import json
import math
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "F64": np.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[a:b], dtype=DTYPES[info["dtype"]])
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


class RMSNorm(torch.nn.Module):
    def __init__(self, w, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(w)
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(torch.nn.Module):
    def __init__(self, W, p, c):
        super().__init__()
        self.H = c["num_attention_heads"]
        self.Hkv = c.get("num_key_value_heads") or self.H
        self.Dh = c["hidden_size"] // self.H
        self.theta = c.get("rope_theta", 10000.0)
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            lin = torch.nn.Linear(1, 1, bias=False)
            lin.weight = torch.nn.Parameter(W[f"{p}.{n}.weight"])
            setattr(self, n, lin)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.Dh).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.Hkv, self.Dh).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.Hkv, self.Dh).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.H // self.Hkv
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        s = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.Dh) + mask
        pr = F.softmax(s, dim=-1, dtype=torch.float32)
        o = torch.matmul(pr, v).transpose(1, 2).reshape(B, T, self.H * self.Dh)
        return self.o_proj(o)


def linear(W, name):
    bias_name = name[: -len("weight")] + "bias"
    lin = torch.nn.Linear(1, 1, bias=bias_name in W)
    lin.weight = torch.nn.Parameter(W[name])
    if bias_name in W:
        lin.bias = torch.nn.Parameter(W[bias_name])
    return lin


class Expert(torch.nn.Module):
    def __init__(self, W, p):
        super().__init__()
        self.w1, self.w2, self.w3 = linear(W, f"{p}.w1.weight"), linear(W, f"{p}.w2.weight"), linear(W, f"{p}.w3.weight")

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class SparseMoe(torch.nn.Module):
    """transformers' MixtralSparseMoeBlock (eager), optionally with AdaMoE null experts (gate2)."""

    def __init__(self, W, p, c, null_m, null_k):
        super().__init__()
        self.N = c["num_local_experts"]
        self.k = null_k if null_m else c["num_experts_per_tok"]
        self.null_m = null_m
        self.gate = linear(W, f"{p}.gate.weight")
        self.gate2 = linear(W, f"{p}.gate2.weight") if null_m else None
        self.experts = torch.nn.ModuleList([Expert(W, f"{p}.experts.{e}") for e in range(self.N)])
        self.loads = []

    def forward(self, x):
        B, T, D = x.shape
        h = x.view(-1, D)
        logits = self.gate(h)
        if self.gate2 is not None:
            logits = torch.cat([logits, self.gate2(h)], dim=-1)
        w = F.softmax(logits, dim=1, dtype=torch.float)
        w, sel = torch.topk(w, self.k, dim=-1)
        if self.null_m:
            true = (sel < self.N).to(w.dtype)
            w = w * true
            w = w / w.sum(dim=-1, keepdim=True).clamp_min(1e-20)
            self.loads.append(float(true.sum(dim=-1).mean()))
        else:
            w = w / w.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(h)
        mask = F.one_hot(sel, num_classes=self.N + self.null_m).permute(2, 1, 0)
        for e in range(self.N):
            idx, top_x = torch.where(mask[e])
            if top_x.numel() == 0:
                continue
            cur = self.experts[e](h[top_x]) * w[top_x, idx, None]
            out.index_add_(0, top_x, cur)
        return out.view(B, T, D)


class Layer(torch.nn.Module):
    def __init__(self, W, i, c, null_m, null_k):
        super().__init__()
        p = f"model.layers.{i}"
        eps = c["rms_norm_eps"]
        self.input_layernorm = RMSNorm(W[f"{p}.input_layernorm.weight"], eps)
        self.self_attn = Attention(W, f"{p}.self_attn", c)
        self.post_attention_layernorm = RMSNorm(W[f"{p}.post_attention_layernorm.weight"], eps)
        if "num_local_experts" in c:
            self.ffn = SparseMoe(W, f"{p}.block_sparse_moe", c, null_m, null_k)
        else:
            self.ffn = torch.nn.Module()
            self.ffn.g, self.ffn.u, self.ffn.d = (linear(W, f"{p}.mlp.{n}_proj.weight") for n in ("gate", "up", "down"))
            self.ffn.forward = lambda x: self.ffn.d(F.silu(self.ffn.g(x)) * self.ffn.u(x))

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.ffn(self.post_attention_layernorm(x))


class Model(torch.nn.Module):
    def __init__(self, W, c, null_m, null_k):
        super().__init__()
        self.c = c
        self.embed = torch.nn.Parameter(W["model.embed_tokens.weight"])
        self.layers = torch.nn.ModuleList([Layer(W, i, c, null_m, null_k) for i in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(W["model.norm.weight"], c["rms_norm_eps"])
        self.tied = c.get("tie_word_embeddings", False)
        if not self.tied:
            self.lm_head = linear(W, "lm_head.weight")

    def forward(self, ids):
        B, T = ids.shape
        c = self.c
        Dh = c["hidden_size"] // c["num_attention_heads"]
        theta = c.get("rope_theta", 10000.0)
        inv = 1.0 / (theta ** (torch.arange(0, Dh, 2, dtype=torch.int64).float() / Dh))
        fr = torch.outer(torch.arange(T).float(), inv)
        emb = torch.cat((fr, fr), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((T, T), float("-inf")).triu(1)[None, None]
        x = F.embedding(ids, self.embed)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        x = self.norm(x)
        return F.linear(x, self.embed) if self.tied else self.lm_head(x)


def main():
    spec = json.load(open(sys.argv[1]))
    torch.set_num_threads(int(spec.get("threads", 2)))
    torch.manual_seed(0)
    W = read_safetensors(spec["weights"])
    batch = json.load(open(spec["batch"]))
    ids = torch.tensor(batch["ids"], dtype=torch.long)
    targets = torch.tensor(batch["targets"], dtype=torch.long)
    model = Model(W, spec["config"], int(spec.get("null_experts", 0)), int(spec.get("null_top_k", 0)))
    opt = torch.optim.AdamW(model.parameters(), lr=spec.get("lr", 1e-3), betas=tuple(spec.get("betas", [0.9, 0.95])),
                            eps=spec.get("eps", 1e-8), weight_decay=spec.get("weight_decay", 0.1))
    times, losses = [], []
    steps, warmup = int(spec.get("steps", 5)), int(spec.get("warmup", 2))
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(ids)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), targets.view(-1), ignore_index=-100)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        losses.append(float(loss))
        if s >= warmup:
            times.append(dt * 1000)
    loads = [l for layer in model.layers if hasattr(layer.ffn, "loads") for l in layer.ffn.loads]
    print(json.dumps({
        "torch_version": torch.__version__, "threads": torch.get_num_threads(),
        "first_loss": losses[0], "losses": losses, "ms_per_step": statistics.median(times),
        "ms_all": times, "load": (sum(loads) / len(loads)) if loads else None,
    }))


if __name__ == "__main__":
    main()
