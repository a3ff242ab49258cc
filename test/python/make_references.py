"""
Tiny random checkpoints of every family, made and measured by transformers itself (and PEFT), for
test/arch-transformers.test.ts.

    python make_references.py OUT_DIR [--seed S] [--families a,b,...] [--batch B] [--seq T]

For each family (test/python/families.py) and storage dtype (f32, bf16) it writes
  OUT_DIR/<family>-<dtype>/               save_pretrained of a random model (weights re-drawn at a scale where
                                          routing is decisive and the NLL is far from uniform)
  OUT_DIR/<family>-<dtype>.ref.json       the reference, computed by transformers on the checkpoint as reloaded
                                          from disk in float32 (so bf16 rounding is what both sides read):
                                          ids, mean next-token NLL, per-MoE-layer selected experts (sorted per token,
                                          from a hook on each router module), the smallest score gap between the
                                          last chosen and the first left-out expert (how decisive the choice is)
and for f32 only:
  OUT_DIR/<family>-f32.adapter/           PEFT save_pretrained of a LoRA adapter (r 4, alpha 8, A and B random)
  OUT_DIR/<family>-f32.lora-grads.safetensors  d NLL / d lora_A, lora_B under PEFT's saved key names
and in the ref.json: loraNll, the NLL with the adapter.
The last stdout line is a JSON summary {families: [...], seconds}.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM
from peft import LoraConfig, get_peft_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from families import BASE, FAMILIES, LORA_TARGETS  # noqa: E402

torch.set_num_threads(1)


def redraw(model, seed):
    """Weights at a scale where outputs, routing and gradients are all O(1): matrices N(0, 1/fan_in),
    embeddings N(0, 0.3^2), norm weights 1 + N(0, 0.1^2), biases N(0, 0.1^2), DeepSeek's correction bias N(0, 0.05^2)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in list(model.named_parameters()) + list(model.named_buffers()):
            if "rotary" in name or "inv_freq" in name:
                continue
            if name.endswith("e_score_correction_bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
            elif p.dim() == 1 and "norm" in name:
                p.copy_(1 + torch.randn(p.shape, generator=g) * 0.1)
            elif p.dim() == 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))


TF_MAJOR = int(transformers.__version__.split(".")[0])


def is_router(name, mod):
    """transformers 5: *TopKRouter / *TopkRouter modules; transformers 4: the MoE block's `gate` (a Linear, or
    DeepSeek-V3's TopkRouter)."""
    cls = type(mod).__name__
    if cls.endswith("TopKRouter") or cls.endswith("TopkRouter"):
        return True
    return TF_MAJOR < 5 and name.endswith(".gate") and isinstance(mod, torch.nn.Linear) and "shared" not in name


def router_hooks(model, top_k):
    """Records each router's (logits, chosen experts). transformers 5 routers return (logits, weights, indices);
    in transformers 4 a Linear gate returns logits (softmax top-k chosen here, as its MoE block does) and
    DeepSeek-V3's router returns (indices, weights) (logits recomputed from its input)."""
    records = {}
    handles = []
    for name, mod in model.named_modules():
        if not is_router(name, mod):
            continue
        layer = int(name.split("layers.")[1].split(".")[0])

        def hook(m, inp, out, layer=layer):
            if isinstance(out, tuple) and len(out) == 3:
                records[layer] = (out[0], out[2])
            elif isinstance(out, tuple):
                x = inp[0].reshape(-1, inp[0].shape[-1])
                records[layer] = (torch.nn.functional.linear(x.float(), m.weight.float()), out[0])
            else:
                records[layer] = (out, torch.topk(out.float().softmax(-1), top_k, dim=-1)[1])
        handles.append(mod.register_forward_hook(hook))
    return records, handles


def nll(model, ids):
    out = model(input_ids=ids, labels=ids)
    return out.loss


def selection_margin(model_type, router, logits, cfg):
    """How decisive the router's choice is: the smallest gap between the worst chosen and best left-out choice
    score (probabilities for softmax routers, bias-corrected sigmoid for DeepSeek within kept groups)."""
    if model_type == "deepseek_v3":
        G, Kg, N = cfg.n_group, cfg.topk_group, cfg.n_routed_experts
        s = logits.sigmoid() + router.e_score_correction_bias.float()
        groups = s.view(-1, G, N // G)
        gs = groups.topk(2, dim=-1)[0].sum(-1)
        sorted_g = gs.sort(dim=-1, descending=True)[0]
        gmargin = (sorted_g[:, Kg - 1] - sorted_g[:, Kg]).min().item() if Kg < G else math.inf
        keep = torch.zeros_like(gs).scatter_(1, gs.topk(Kg, dim=-1)[1], 1)
        mask = keep.unsqueeze(-1).expand_as(groups).reshape(s.shape).bool()
        s = s.masked_fill(~mask, -math.inf)
        top = s.sort(dim=-1, descending=True)[0]
        k = cfg.num_experts_per_tok
        emargin = (top[:, k - 1] - top[:, k]).min().item()
        return min(gmargin, emargin)
    p = logits.softmax(-1)
    top = p.sort(dim=-1, descending=True)[0]
    k = cfg.num_experts_per_tok
    return (top[:, k - 1] - top[:, k]).min().item()


def reference(family, model_type, path, ids, seed, want_lora, out_dir):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    records, handles = router_hooks(model, getattr(model.config, "num_experts_per_tok", 0))
    routers = {int(n.split("layers.")[1].split(".")[0]): m for n, m in model.named_modules() if is_router(n, m)}
    with torch.no_grad():
        loss = nll(model, ids)
    for h in handles:
        h.remove()
    experts = {}
    margin = math.inf
    for layer in sorted(records):
        logits, idx = records[layer]
        experts[str(layer)] = sorted_rows(idx)
        margin = min(margin, selection_margin(model_type, routers[layer], logits.float(), model.config))
    ref = {
        "family": family,
        "modelType": model_type,
        "architecture": model.config.architectures[0],
        "ids": ids.tolist(),
        "nll": loss.item(),
        "experts": experts,
        "selectionMargin": None if margin == math.inf else margin,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if want_lora:
        torch.manual_seed(seed + 7)
        cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=LORA_TARGETS[model_type],
                         init_lora_weights=False)
        peft_model = get_peft_model(model, cfg)
        peft_model.train()  # dropout 0: the same function; grads on
        loss = nll(peft_model, ids)
        loss.backward()
        grads = {}
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                grads[name.replace(".default", "")] = p.grad.detach().contiguous().clone()
        adapter_dir = f"{out_dir}/{family}-f32.adapter"
        peft_model.save_pretrained(adapter_dir)
        save_file(grads, f"{out_dir}/{family}-f32.lora-grads.safetensors", metadata={"format": "pt"})
        ref["loraNll"] = loss.item()
        ref["loraTensors"] = len(grads)
    return ref


def sorted_rows(idx):
    return [sorted(int(e) for e in row) for row in idx.reshape(idx.shape[0], -1).tolist()]


def config_kwargs(kw):
    """transformers 4 spells the rope as rope_theta + rope_scaling (no rope_parameters)."""
    if TF_MAJOR >= 5 or "rope_parameters" not in kw:
        return kw
    kw = dict(kw)
    rp = dict(kw.pop("rope_parameters"))
    kw["rope_theta"] = rp.pop("rope_theta")
    if rp.get("rope_type", "default") != "default":
        kw["rope_scaling"] = rp
    return kw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=12)
    ap.add_argument("--dtypes", default="f32,bf16")
    args = ap.parse_args()
    t0 = time.time()
    os.makedirs(args.out, exist_ok=True)
    done = []
    for i, family in enumerate(args.families.split(",")):
        model_type, overrides = FAMILIES[family]
        seed = args.seed + 101 * i
        cfg = AutoConfig.for_model(model_type, **config_kwargs({**BASE, **overrides}))
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        redraw(model, seed)
        g = torch.Generator().manual_seed(seed + 1)
        ids = torch.randint(3, cfg.vocab_size, (args.batch, args.seq), generator=g)
        for dtype in args.dtypes.split(","):
            path = f"{args.out}/{family}-{dtype}"
            m = model if dtype == "f32" else model.to(torch.bfloat16)
            m.save_pretrained(path)
            ref = reference(family, model_type, path, ids, seed, dtype == "f32", args.out)
            ref["dtype"] = dtype
            with open(f"{path}.ref.json", "w") as f:
                json.dump(ref, f)
            done.append(f"{family}-{dtype}")
    print(json.dumps({"families": done, "seconds": round(time.time() - t0, 2), "transformers": transformers.__version__}))


if __name__ == "__main__":
    main()
