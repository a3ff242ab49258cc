#!/usr/bin/env python3
"""The benchmark peer: transformers (+ PEFT for LoRA) on torch 2.x, what a user would run instead.

Loads the model directory the TypeScript bench wrote (config.json + model.safetensors: the same
initial weights) with transformers' own AutoModelForCausalLM (its eager attention and its MoE block
as shipped), optionally wraps it with PEFT LoRA (r, alpha, the same target projections: q/k/v/o and
the experts' w1/w2/w3, which transformers 5 keeps fused as experts.gate_up_proj / experts.down_proj
and PEFT targets with target_parameters), trains on the same batch with torch.optim.AdamW (same
hyper-parameters; LoRA: only the adapter parameters), and reports the first step's loss and the
median step time.

Usage: .venv-py/bin/python bench/hf_ref.py SPEC.json
SPEC.json: {"model_dir": DIR, "batch": "batch.json", "steps": 5, "warmup": 2, "threads": 2, "lr": 1e-3,
            "betas": [0.9, 0.95], "weight_decay": 0.1, "eps": 1e-8,
            "lora": null | {"r": 8, "alpha": 16, "targets": ["q_proj", ...], "experts": true}}
Prints one JSON object on stdout.
"""
import json
import statistics
import sys
import time

import torch


def expert_parameters(model):
    """Names of the fused expert weights transformers 5 uses for Mixtral-style MoE blocks."""
    names = set()
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if ".experts." in f".{name}." and p.dim() == 3 and leaf in ("gate_up_proj", "down_proj", "w1", "w2", "w3"):
            names.add(leaf)
    return sorted(names)


def main():
    spec = json.load(open(sys.argv[1]))
    torch.set_num_threads(int(spec.get("threads", 2)))
    torch.manual_seed(0)
    import transformers
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(spec["model_dir"], dtype=torch.float32, attn_implementation="eager")
    model.config.output_router_logits = False
    note = f"transformers {transformers.__version__}, torch {torch.__version__}"
    lora = spec.get("lora")
    if lora:
        import peft
        from peft import LoraConfig, get_peft_model

        targets = [t for t in lora["targets"] if t not in ("w1", "w2", "w3")]
        params = [f"experts.{n}" for n in expert_parameters(model)] if lora.get("experts") else []
        cfg = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=0.0, target_modules=targets,
                         target_parameters=params or None)
        model = get_peft_model(model, cfg)
        note += f", peft {peft.__version__} (LoRA on {', '.join(targets + params)})"
    model.train()
    batch = json.load(open(spec["batch"]))
    ids = torch.tensor(batch["ids"], dtype=torch.long)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=spec.get("lr", 1e-3), betas=tuple(spec.get("betas", [0.9, 0.95])),
                            eps=spec.get("eps", 1e-8), weight_decay=spec.get("weight_decay", 0.1))
    times, losses = [], []
    steps, warmup = int(spec.get("steps", 5)), int(spec.get("warmup", 2))
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        losses.append(float(out.loss))
        if s >= warmup:
            times.append(dt * 1000)
    print(json.dumps({
        "peer": note, "threads": torch.get_num_threads(), "first_loss": losses[0], "losses": losses,
        "ms_per_step": statistics.median(times), "ms_all": times, "load": None,
        "trainable_params": sum(p.numel() for p in trainable),
    }))


if __name__ == "__main__":
    main()
