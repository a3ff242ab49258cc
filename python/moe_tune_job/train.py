#!/usr/bin/env python3
"""Training loop of a job exported by `moe-tune export-job`: plain PyTorch + transformers + PEFT, data-parallel
under accelerate (torchrun / `accelerate launch`; gloo on CPU, NCCL + bf16 autocast + FSDP on GPUs).

It reproduces moe-tune's trainer (src/train/trainer.ts) step for step:

- data: JOB/data holds the packed sequences and the order moe-tune's batch iterator draws them in; step s uses
  micro-batches order[s, 0..A-1] (A = grad_accum), each of batch_size sequences. With N processes, process r
  runs the micro-batches i with i % N == r (A must be a multiple of N), and the gradients are summed over all
  micro-batches: the same global batch, the same micro-batches, only the summation order differs.
- loss of micro-batch i: lm_i * targets_i / targets_step (mean next-token cross-entropy over its targets,
  weighted by its share of the step's targets, so accumulation equals one big batch) + sum_j w_j(step) * aux_ij / A,
  where aux_ij are the recipe's auxiliary losses of the routing of that micro-batch and w_j their scheduled weights.
- update: global L2 norm of the summed gradients; clipping by max_norm / (norm + 1e-6) when norm > max_norm; AdamW
  (decoupled weight decay, torch.optim.AdamW: p *= 1 - lr * wd, then the Adam step) with the recipe's betas / eps /
  weight decay, no decay on the parameters moe-tune exempts; a parameter with no gradient in a step is skipped;
  lr = linear warmup then cosine to min_lr_ratio * peak (src/train/lr-schedule.ts).
- metrics: out/metrics.jsonl, one line per step, with moe-tune's field names (src/train/metrics.ts).
- checkpoints: out/checkpoints/step-NNNNNN (accelerate state: model, optimizer, RNG) every checkpoint_every steps
  and at the end; a rerun continues from the newest one (metrics after it are dropped).
- output: out/final/trainable.safetensors (the trained tensors under moe-tune's names), out/final/adapter (PEFT),
  out/eval.json; `moe-tune import-job JOB/out --out RUN` brings them back.

Run: `bash launch.sh` (see README.md).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------------------------------------------
# Job description and data


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def fail(msg):
    """One clear line and exit code 2 (bad input), from every process."""
    print(f"train.py: {msg}", file=sys.stderr, flush=True)
    sys.exit(2)


def load_array(data_dir, entry, verify):
    path = os.path.join(data_dir, entry["file"])
    if not os.path.exists(path):
        fail(f"{path}: file not found (the job's data/index.json lists it)")
    n = int(np.prod(entry["shape"]))
    arr = np.fromfile(path, dtype="<i4")
    if arr.size != n:
        fail(f"{path}: {arr.size} int32 values, index.json says shape {entry['shape']} ({n} values)")
    if verify:
        h = hashlib.sha256(arr.tobytes()).hexdigest()
        if h != entry["sha256"]:
            fail(f"{path}: sha256 {h} does not match index.json ({entry['sha256']})")
    return arr.reshape(entry["shape"])


class JobData:
    """The packed sequences and the trainer's order (data/index.json)."""

    def __init__(self, data_dir, verify=True):
        self.index = read_json(os.path.join(data_dir, "index.json"))
        if self.index.get("format") != "moe-tune-job-data":
            fail(f"{data_dir}/index.json: format is {self.index.get('format')!r}, expected 'moe-tune-job-data'")
        a = self.index["arrays"]
        self.input_ids = load_array(data_dir, a["train_input_ids"], verify)
        self.labels = load_array(data_dir, a["train_labels"], verify)
        self.order = load_array(data_dir, a["train_order"], verify)
        self.eval_input_ids = load_array(data_dir, a["eval_input_ids"], verify) if "eval_input_ids" in a else None
        self.eval_labels = load_array(data_dir, a["eval_labels"], verify) if "eval_labels" in a else None
        self.ignore_index = int(self.index["ignore_index"])

    def micro_batch(self, step, i):
        rows = self.order[step, i]
        return torch.from_numpy(self.input_ids[rows].astype(np.int64)), torch.from_numpy(self.labels[rows].astype(np.int64))

    def targets(self, step, i):
        return int((self.labels[self.order[step, i]] != self.ignore_index).sum())


# ---------------------------------------------------------------------------------------------------------------
# Schedules (src/train/lr-schedule.ts, src/losses/schedule.ts)


def lr_at(t, step):
    """Linear warmup to the peak (the first update at peak / W), then cosine to the floor at the last step."""
    peak, total, warm = t["lr"], t["steps"], t["warmup_steps"]
    floor = peak * t["min_lr_ratio"]
    if step < warm:
        return peak * (step + 1) / warm
    decay = total - warm
    if decay <= 0:
        return peak
    progress = min(1.0, (step - warm + 1) / decay)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def weight_at(spec, step, total, steps_per_epoch):
    """An aux-loss weight schedule: a number, constant, per-epoch (values[e] in epoch e), linear or cosine."""
    if isinstance(spec, (int, float)):
        return float(spec)
    kind = spec["type"]
    progress = 1.0 if total <= 1 else min(1.0, max(0.0, step / (total - 1)))
    if kind == "constant":
        return float(spec["value"])
    if kind == "per-epoch":
        vals = spec["values"]
        return float(vals[min(len(vals) - 1, step // max(1, steps_per_epoch))])
    if kind == "linear":
        return spec["from"] + (spec["to"] - spec["from"]) * progress
    if kind == "cosine":
        return spec["to"] + (spec["from"] - spec["to"]) * 0.5 * (1 + math.cos(math.pi * progress))
    fail(f"job.json: aux loss weight type {kind!r} is not one of constant, per-epoch, linear, cosine")


# ---------------------------------------------------------------------------------------------------------------
# Model: the remote-code checkpoint of JOB/model, LoRA through PEFT, moe-tune's trainable set


def moe_tune_name(torch_name):
    """PEFT / torch parameter name -> moe-tune's (the Hugging Face key without PEFT's wrapping)."""
    n = torch_name
    for prefix in ("_fsdp_wrapped_module.", "module."):
        n = n.replace(prefix, "")
    if n.startswith("base_model.model."):
        n = n[len("base_model.model."):]
    n = n.replace(".base_layer.", ".").replace(".default.", ".")
    n = re.sub(r"\.modules_to_save\.default\.", ".", n)
    n = n.replace(".original_module.", ".")
    return n


def load_model(job_dir, job, dtype):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(os.path.join(job_dir, job["model"]), trust_remote_code=True, dtype=dtype)
    if job.get("adapter"):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, os.path.join(job_dir, job["adapter"]), is_trainable=True)
    # the trainable set is moe-tune's, by name: LoRA tensors and whatever the recipe trains in full
    want = set(job["trainable"])
    params = {}
    for name, p in model.named_parameters():
        mt = moe_tune_name(name)
        p.requires_grad_(mt in want)
        if mt in want:
            params[mt] = p
    missing = sorted(want - set(params))
    if missing:
        fail(f"job.json: trainable parameter {missing[0]!r} is not in the model ({len(missing)} missing)")
    return model, params


def remote_module(model):
    """The remote modeling module of JOB/model (python/moe_tune_remote in moe-tune): routing records, aux losses."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    mod = sys.modules[type(base).__module__]
    if not hasattr(mod, "compute_aux_losses"):
        fail(f"{type(base).__name__} ({mod.__name__}) is not moe-tune's remote code: JOB/model must be written by moe-tune export-job")
    return mod


def aux_spec(a):
    """A recipe aux_losses entry as the remote code's compute_aux_losses takes it (its options by their moe-tune names)."""
    spec = dict(a)
    if "sequence_length" in spec:
        spec["sequenceLength"] = spec["sequence_length"]
    return spec


# ---------------------------------------------------------------------------------------------------------------
# One forward pass with its routing


def forward(model, ids):
    """Logits [B, T, V] and the routing records of every MoE layer (aux losses are applied by the loop)."""
    out = model(input_ids=ids, aux_losses=[], return_dict=True)
    return out.logits, list(out.router_outputs or [])


def aux_values(remote, records, specs):
    """The unweighted value of each aux loss on this forward's routing ({name: tensor}; a loss that does not apply
    is absent), with moe-tune's formulas (src/losses/*.ts, ported in the remote code's losses.py)."""
    values, _ = remote.compute_aux_losses(records, [dict(s, weight=0) for s in specs])
    return values


def routing_pairs(records):
    """Per layer: (token, true expert) FLOP-costing pairs per expert [N] and the tokens routed."""
    return [(rec.routing.dispatch.sum(0).detach().to("cpu", torch.float64), int(rec.routing.num_tokens)) for rec in records]


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints


def checkpoint_dirs(out_dir):
    root = os.path.join(out_dir, "checkpoints")
    if not os.path.isdir(root):
        return []
    found = []
    for d in os.listdir(root):
        m = re.fullmatch(r"step-(\d+)", d)
        if m and os.path.exists(os.path.join(root, d, "trainer_state.json")):
            found.append((int(m.group(1)), os.path.join(root, d)))
    return sorted(found)


def truncate_metrics(path, step):
    if not os.path.exists(path):
        return
    kept = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # torn last line of a killed run
            if rec.get("step", 0) <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(kept)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description="train an exported moe-tune job (see README.md)")
    ap.add_argument("--job", default=HERE, help="job directory (default: the directory of this file)")
    ap.add_argument("--out", default=None, help="output directory (default: JOB/out)")
    ap.add_argument("--fresh", action="store_true", help="start at step 0, removing the checkpoints in --out")
    ap.add_argument("--stop-after", type=int, default=None, help="stop (with a checkpoint) after this step; rerun to continue")
    ap.add_argument("--no-verify-data", action="store_true", help="skip the sha256 check of the data files")
    ap.add_argument("--bf16", choices=["auto", "yes", "no"], default="auto", help="bf16 autocast (auto: on GPUs)")
    args = ap.parse_args()

    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    job_dir = os.path.abspath(args.job)
    job = read_json(os.path.join(job_dir, "job.json"))
    if job.get("format") != "moe-tune-job":
        fail(f"{job_dir}/job.json: format is {job.get('format')!r}, expected 'moe-tune-job'")
    out_dir = os.path.abspath(args.out or os.path.join(job_dir, "out"))
    t = job["trainer"]
    cuda = torch.cuda.is_available()
    bf16 = cuda if args.bf16 == "auto" else args.bf16 == "yes"
    acc = Accelerator(
        cpu=not cuda,
        mixed_precision="bf16" if bf16 else "no",
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    world, rank = acc.num_processes, acc.process_index
    A, S = t["grad_accum"], t["steps"]
    if A % world != 0:
        fail(f"grad_accum {A} (micro-batches per step) is not a multiple of the {world} processes; "
             f"export again with --set train.grad_accum=K*{world} (and train.batch_size to keep the global batch)")
    set_seed(t["seed"])

    data = JobData(os.path.join(job_dir, "data"), verify=not args.no_verify_data)
    if tuple(data.order.shape[:2]) != (S, A):
        fail(f"data/index.json: order has shape {list(data.order.shape)}, job.json says {S} steps x {A} micro-batches")
    model, params = load_model(job_dir, job, torch.float32)
    if t.get("gradient_checkpointing"):
        # train.gradient_checkpointing: recompute each decoder layer in the backward (moe-tune's is bit-identical
        # to training without it; torch's non-reentrant checkpoint replays torch's RNG and the remote code replays
        # a random-drop router's streams)
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if acc.is_main_process:
            on = sum(1 for m in base.modules() if getattr(m, "gradient_checkpointing", False) is True)
            print(f"activation checkpointing: on ({on} module(s) recompute their layers in the backward)", flush=True)
    remote = remote_module(model)
    aux_specs = [aux_spec(a) for a in job["aux_losses"]]
    no_decay = set(job["no_decay"])
    decay_p = [p for n, p in params.items() if n not in no_decay]
    plain_p = [p for n, p in params.items() if n in no_decay]
    groups = [g for g in ({"params": decay_p, "weight_decay": t["weight_decay"]}, {"params": plain_p, "weight_decay": 0.0}) if g["params"]]
    opt = torch.optim.AdamW(groups, lr=t["lr"], betas=(t["beta1"], t["beta2"]), eps=t["eps"], foreach=False)
    fsdp = acc.distributed_type.name == "FSDP"
    if fsdp and job.get("adapter"):
        # PEFT's policy puts the LoRA layers in FSDP units of their own, so the units of frozen base weights
        # allocate no gradients (https://huggingface.co/docs/peft/accelerate/fsdp)
        from peft.utils.other import fsdp_auto_wrap_policy

        acc.state.fsdp_plugin.auto_wrap_policy = fsdp_auto_wrap_policy(model)
    model, opt = acc.prepare(model, opt)
    trained = [p for g in opt.param_groups for p in g["params"]]

    os.makedirs(out_dir, exist_ok=True)
    metrics_path = os.path.join(out_dir, "metrics.jsonl")
    step, tokens_seen, elapsed, processed = 0, 0, 0.0, 0
    if args.fresh and acc.is_main_process:
        shutil.rmtree(os.path.join(out_dir, "checkpoints"), ignore_errors=True)  # a later rerun must not resume them
    acc.wait_for_everyone()
    ckpts = [] if args.fresh else checkpoint_dirs(out_dir)
    if ckpts:
        _, ck_dir = ckpts[-1]
        acc.load_state(ck_dir)
        st = read_json(os.path.join(ck_dir, "trainer_state.json"))
        step, tokens_seen, elapsed, processed = st["step"], st["tokens_seen"], st["elapsed_s"], st["tokens_processed"]
        if acc.is_main_process:
            truncate_metrics(metrics_path, step)
            print(f"resumed from {ck_dir} at step {step}", flush=True)
    elif acc.is_main_process and os.path.exists(metrics_path):
        truncate_metrics(metrics_path, 0)
    acc.wait_for_everyone()

    def evaluate():
        """Mean next-token NLL over the held-out set in file order (src/train/evaluate.ts); every process runs it."""
        if data.eval_input_ids is None:
            return None
        B = max(1, data.index["eval_batch_size"])
        n = data.eval_input_ids.shape[0]
        batches = math.ceil(n / B)
        mb = data.index["eval_max_batches"]
        limit = batches if mb is None else min(batches, mb)
        total, tokens, pairs, routed = 0.0, 0, 0.0, 0
        model.eval()
        with torch.no_grad():
            for b in range(limit):
                ids = torch.from_numpy(data.eval_input_ids[b * B:(b + 1) * B].astype(np.int64)).to(acc.device)
                lab = torch.from_numpy(data.eval_labels[b * B:(b + 1) * B].astype(np.int64)).to(acc.device)
                with acc.autocast():
                    logits, records = forward(model, ids)
                total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), lab.reshape(-1), ignore_index=data.ignore_index, reduction="sum").item()
                tokens += int((lab != data.ignore_index).sum())
                for per_expert, ntok in routing_pairs(records):
                    pairs += float(per_expert.sum())
                    routed += ntok
        model.train()
        loss = total / tokens if tokens else float("nan")
        return {"loss": loss, "ppl": math.exp(loss), "tokens": tokens, "load": pairs / routed if routed else None}

    def save_checkpoint():
        root = os.path.join(out_dir, "checkpoints")
        final = os.path.join(root, f"step-{step:06d}")
        tmp = os.path.join(root, f".step-{step:06d}.tmp")
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
        acc.wait_for_everyone()
        acc.save_state(tmp)
        acc.wait_for_everyone()
        if acc.is_main_process:
            with open(os.path.join(tmp, "trainer_state.json"), "w", encoding="utf-8") as f:
                json.dump({"step": step, "tokens_seen": tokens_seen, "elapsed_s": elapsed, "tokens_processed": processed}, f)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            for _, old in checkpoint_dirs(out_dir)[:-t["keep_checkpoints"]]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()

    eval_before = evaluate() if step == 0 else None
    last_eval = None
    model.train()
    mine = [i for i in range(A) if i % world == rank]
    metrics_file = open(metrics_path, "a", encoding="utf-8") if acc.is_main_process else None
    stop_at = S if args.stop_after is None else min(S, args.stop_after)
    while step < stop_at:
        t0 = time.perf_counter()
        lr = lr_at(t, step)
        for g in opt.param_groups:
            g["lr"] = lr
        targets = [data.targets(step, i) for i in range(A)]
        all_targets = sum(targets)
        weights = [weight_at(a["weight"], step, S, t["steps_per_epoch"]) for a in aux_specs]
        # per process partial sums, all-reduced after the micro-batches:
        # [loss, lm_loss, tokens, aux sums..., aux counts..., pairs per layer and expert..., tokens per layer...]
        loss_sum, lm_sum, tokens = 0.0, 0.0, 0
        aux_sum = [0.0] * len(aux_specs)
        aux_seen = [0] * len(aux_specs)
        per_layer = None
        for j, i in enumerate(mine):
            ids, lab = data.micro_batch(step, i)
            ids, lab = ids.to(acc.device), lab.to(acc.device)
            tokens += ids.numel()
            sync = contextlib.nullcontext() if j == len(mine) - 1 or world == 1 else acc.no_sync(model)
            with sync:
                with acc.autocast():
                    logits, records = forward(model, ids)
                    lm = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), lab.reshape(-1), ignore_index=data.ignore_index)
                    share = 1.0 / A if all_targets == 0 else targets[i] / all_targets
                    total = lm * share
                    lm_sum += lm.item() * share
                    values = aux_values(remote, records, aux_specs)
                    for k, a in enumerate(aux_specs):
                        v = values.get(a["name"])
                        if v is None:
                            continue
                        aux_sum[k] += v.item()
                        aux_seen[k] += 1
                        if weights[k] != 0:
                            total = total + v.float() * (weights[k] / A)
                value = total.item()
                if not math.isfinite(value):
                    fail(f"training diverged at step {step + 1}: loss is {value} (micro-batch {i + 1} of {A}); stopped before updating the weights")
                loss_sum += value
                layers = routing_pairs(records)
                if per_layer is None:
                    per_layer = [[pe.clone(), n] for pe, n in layers]
                else:
                    for acc_l, (pe, n) in zip(per_layer, layers):
                        acc_l[0] += pe
                        acc_l[1] += n
                # the processes' gradients are averaged by DDP / FSDP: scale by their number to sum them
                acc.backward(total * world)
        per_layer = per_layer or []
        stats = [loss_sum, lm_sum, float(tokens), *aux_sum, *map(float, aux_seen)]
        for pe, n in per_layer:
            stats += [*pe.tolist(), float(n)]
        stats_t = torch.tensor(stats, dtype=torch.float64, device=acc.device)
        if world > 1:
            torch.distributed.all_reduce(stats_t)
        stats = stats_t.tolist()
        loss_sum, lm_sum, tokens = stats[0], stats[1], int(stats[2])
        na = len(aux_specs)
        aux_sum, aux_seen = stats[3:3 + na], stats[3 + na:3 + 2 * na]
        rest = stats[3 + 2 * na:]
        layer_stats = []
        for pe, _ in per_layer:
            e = pe.numel()
            layer_stats.append((rest[:e], rest[e]))
            rest = rest[e + 1:]

        # global gradient norm (float64), guard, clipping as moe-tune (scale = max / (norm + 1e-6) above max)
        if fsdp:
            norm = float(acc.clip_grad_norm_(trained, float("inf")))
        else:
            sq = 0.0
            for p in trained:
                if p.grad is not None:
                    sq += float(p.grad.detach().double().pow(2).sum())
            norm = math.sqrt(sq)
        if not math.isfinite(norm):
            fail(f"training diverged at step {step + 1}: gradient norm is {norm} (loss {loss_sum}); stopped before updating the weights")
        clip = t["clip_grad_norm"]
        scale = clip / (norm + 1e-6) if clip is not None and norm > clip else 1.0
        if scale != 1.0:
            for p in trained:
                if p.grad is not None:
                    p.grad.mul_(scale)
        opt.step()
        opt.zero_grad(set_to_none=True)

        step += 1
        tokens_seen += all_targets
        seconds = time.perf_counter() - t0
        elapsed += seconds
        processed += tokens
        pairs = [sum(pe) for pe, _ in layer_stats]
        routed = [n for _, n in layer_stats]
        bpe = data.index["batches_per_epoch"]
        m = {
            "step": step,
            "epoch": step * A / bpe if bpe else None,
            "loss": loss_sum,
            "lm_loss": lm_sum,
            "load": sum(pairs) / max(1, sum(routed)) if layer_stats else None,
            "load_per_layer": [p / max(1, n) for p, n in zip(pairs, routed)],
            "tokens_per_expert": [[int(round(c)) for c in pe] for pe, _ in layer_stats],
            "lr": lr,
            "grad_norm": norm,
            "clip_scale": scale,
            "tokens": tokens,
            "targets": all_targets,
            "tokens_per_s": tokens / max(seconds, 1e-9),
            "elapsed_s": elapsed,
        }
        for k, a in enumerate(aux_specs):
            m[a["name"]] = aux_sum[k] / aux_seen[k] if aux_seen[k] > 0 else None
            m[a["name"] + "_weight"] = weights[k]
        last = step == S
        if (t["eval_every"] > 0 and step % t["eval_every"] == 0) or last:
            last_eval = evaluate()
            if last_eval:
                m["eval_loss"], m["eval_ppl"], m["eval_load"] = last_eval["loss"], last_eval["ppl"], last_eval["load"]
        if metrics_file:
            metrics_file.write(json.dumps(m) + "\n")
            metrics_file.flush()
            ev = f" eval {m['eval_loss']:.4f}" if "eval_loss" in m else ""
            print(f"step {step}/{S} loss {loss_sum:.6f} lm {lm_sum:.6f} lr {lr:.3e} norm {norm:.4f}{ev}", flush=True)
        if last or step == stop_at or (t["checkpoint_every"] > 0 and step % t["checkpoint_every"] == 0):
            save_checkpoint()
    if metrics_file:
        metrics_file.close()

    if step == S:
        final = os.path.join(out_dir, "final")
        state = acc.get_state_dict(model)
        if acc.is_main_process:
            from safetensors.torch import save_file

            os.makedirs(final, exist_ok=True)
            tensors = {}
            for name, v in state.items():
                mt = moe_tune_name(name)
                if mt in params:
                    tensors[mt] = v.detach().to("cpu", torch.float32).contiguous()
            save_file(tensors, os.path.join(final, "trainable.safetensors"), metadata={"format": "pt"})
            unwrapped = acc.unwrap_model(model)
            if hasattr(unwrapped, "peft_config"):
                unwrapped.save_pretrained(os.path.join(final, "adapter"), state_dict=state)
            with open(os.path.join(final, "trainable.json"), "w", encoding="utf-8") as f:
                json.dump({"step": step, "parameters": sorted(tensors), "evalAfter": last_eval["loss"] if last_eval else None, "processes": world}, f, indent=2)
            ev = lambda e: None if e is None else {k: e[k] for k in ("loss", "ppl", "tokens", "load")}
            before = ev(eval_before)
            if before is None and os.path.exists(os.path.join(out_dir, "eval.json")):
                before = read_json(os.path.join(out_dir, "eval.json")).get("before")
            with open(os.path.join(out_dir, "eval.json"), "w", encoding="utf-8") as f:
                json.dump({"steps": step, "before": before, "after": ev(last_eval)}, f, indent=2)
            print(f"done: {step} steps, final eval loss {last_eval['loss'] if last_eval else None}; weights in {final}", flush=True)
    elif acc.is_main_process:
        if eval_before is not None:
            with open(os.path.join(out_dir, "eval.json"), "w", encoding="utf-8") as f:
                json.dump({"steps": step, "before": {k: eval_before[k] for k in ("loss", "ppl", "tokens", "load")}, "after": None}, f, indent=2)
        print(f"stopped after step {step} of {S} with a checkpoint; run again to continue", flush=True)
    acc.wait_for_everyone()
    acc.end_training()


if __name__ == "__main__":
    main()
