"""
moe-tune's auxiliary losses in PyTorch (src/losses/*.ts): the same names, formulas, pooling over layers
and weight schedules, computed from the `router_outputs` a MoeTuneForCausalLM forward returns, so a
Python user keeps training with the objective moe-tune trained with:

    out = model(input_ids, labels=labels, aux_losses=[{"name": "balance", "weight": 0.01}],
                aux_step={"step": step, "total_steps": steps, "steps_per_epoch": per_epoch})
    out.loss  # = lm loss + sum_i weight_i(step) * aux_i
    out.aux_losses  # {"balance": tensor(...)} (unweighted)

Every loss reads a list of RoutingRecord (one per MoE layer or Mo-LoRA linear, in forward order). A
loss that does not apply to any record (a dense model) is None.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import torch

from .routers import Routing


@dataclass
class RoutingRecord:
    """One MoE layer's routing in a forward pass: decoder layer index, module path, decision."""

    layer: int
    module: str
    routing: Routing


def _non_empty(records: Sequence[RoutingRecord]) -> List[RoutingRecord]:
    return [r for r in records if r.routing.num_tokens > 0]


def _mean(terms: List[torch.Tensor]) -> Optional[torch.Tensor]:
    if not terms:
        return None
    acc = terms[0]
    for t in terms[1:]:
        acc = acc + t
    return acc if len(terms) == 1 else acc * (1.0 / len(terms))


def _counts(r: Routing) -> torch.Tensor:
    """Selections per router row [R] (before any dropping), float64."""
    return r.selected.sum(0).double()


def _weighted(psum: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (psum * w.to(psum.dtype)).sum()


def _pooled(name: str, records):
    R = records[0].routing.layout.rows
    for rec in records:
        if rec.routing.layout.rows != R:
            raise ValueError(f"aux loss '{name}': layer {rec.layer} ({rec.module}) has {rec.routing.layout.rows} router rows, "
                             f"layer {records[0].layer} has {R}; the all-layers form needs equal rows (use form=per-layer)")
    counts = sum(_counts(r.routing) for r in records)
    total = sum(r.routing.num_tokens for r in records)
    psum = sum(r.routing.probs.sum(0) for r in records)
    return R, counts, total, psum


def balance(records, form: str = "mixtral-all"):
    """Switch / Mixtral balance R * sum_i f_i P_i (src/losses/balance.ts): 'mixtral-all' pools all layers as
    transformers' load_balancing_loss_func, 'per-layer' averages layers, 'top1' is XMoE's (paper 001 eq. 7)."""
    recs = _non_empty(records)
    if not recs:
        return None
    if form == "mixtral-all":
        R, counts, total, psum = _pooled("balance", recs)
        return _weighted(psum, R * counts / (total * total))
    if form not in ("per-layer", "top1"):
        raise ValueError(f"aux loss 'balance': form must be one of mixtral-all, per-layer, top1, got {form!r}")
    terms = []
    for rec in recs:
        r = rec.routing
        R, T = r.layout.rows, r.num_tokens
        if form == "top1":
            counts = torch.bincount(r.top1, minlength=R).double()
        else:
            counts = _counts(r)
        terms.append(_weighted(r.probs.sum(0), R * counts / (T * T)))
    return _mean(terms)


def _adamoe_weights(counts: torch.Tensor, N: int, m: int, tokens: int) -> torch.Tensor:
    R = N + m
    null_count = counts[N:].sum()
    w = counts.clone()
    w[N:] = null_count / m
    return R * w / (tokens * tokens)


def adamoe_balance(records, form: str = "mixtral-all"):
    """AdaMoE balance (paper 004 eq. 6): the m null experts count as one averaged group, prefactor N + m."""
    recs = _non_empty(records)
    if not recs:
        return None
    for rec in recs:
        if rec.routing.layout.null_experts <= 0:
            raise ValueError(f"aux loss 'adamoe-balance': layer {rec.layer} ({rec.module}) has no null experts (its router is not null-experts; use 'balance')")
    if form == "mixtral-all":
        _, counts, total, psum = _pooled("adamoe-balance", recs)
        lay = recs[0].routing.layout
        return _weighted(psum, _adamoe_weights(counts, lay.num_experts, lay.null_experts, total))
    return _mean([_weighted(r.routing.probs.sum(0), _adamoe_weights(_counts(r.routing), r.routing.layout.num_experts,
                                                                   r.routing.layout.null_experts, r.routing.num_tokens))
                  for r in recs])


def tcmoe_balance(records):
    """TC-MoE balance over ternary pairs (paper 000 eq. 6-9): L = sum_i (f_i - mean f) * P_i per layer."""
    recs = _non_empty(records)
    if not recs:
        return None
    terms = []
    for rec in recs:
        r = rec.routing
        lay = r.layout
        if lay.ternary_zero_experts <= 0:
            raise ValueError(f"aux loss 'tcmoe-balance': layer {rec.layer} ({rec.module}) has no ternary router rows (use 'balance')")
        N, R, T = lay.num_experts, lay.rows, r.num_tokens
        sel = r.selected
        K = float(sel.sum().item()) / T
        tokens_of = (sel[:, :N] | sel[:, N:2 * N]).sum(0).double()
        f = tokens_of / (K * T)
        fbar = f.sum() / N
        w = torch.zeros(R, dtype=torch.float64, device=sel.device)
        w[:N] = (f - fbar) / T
        w[N:2 * N] = (f - fbar) / T
        terms.append(_weighted(r.probs.sum(0), w))
    return _mean(terms)


def tcmoe_reward(records):
    """TC-MoE reward (paper 000 eq. 12): minus the mean summed zero-expert gate, layers averaged."""
    recs = _non_empty(records)
    if not recs:
        return None
    terms = []
    for rec in recs:
        if rec.routing.zero_expert_gates is None:
            raise ValueError(f"aux loss 'tcmoe-reward': layer {rec.layer} ({rec.module}) has no zero experts (its router is not ternary)")
        terms.append(-rec.routing.zero_expert_gates.mean())
    return _mean(terms)


def entropy(records):
    """Top-p's dynamic loss (paper 003 eq. 5): -sum_i P_i log P_i, mean over tokens, then layers."""
    recs = _non_empty(records)
    if not recs:
        return None
    return _mean([-(r.routing.probs * torch.log_softmax(r.routing.logits.float(), -1)).sum() * (1.0 / r.routing.num_tokens)
                  for r in recs])


def topp_balance(records, sequenceLength: Optional[int] = None):
    """Top-p's balance (paper 003 eq. 6-8) per sequence of M tokens: N * sum_i f_i Q_i, sequences then layers averaged."""
    recs = _non_empty(records)
    if not recs:
        return None
    terms = []
    for rec in recs:
        r = rec.routing
        T, R = r.num_tokens, r.layout.rows
        M = sequenceLength or T
        if T % M != 0:
            raise ValueError(f"aux loss 'topp-balance': layer {rec.layer} ({rec.module}) routed {T} tokens, not a multiple of sequenceLength {M}")
        B = T // M
        w = r.selected.view(B, M, R).sum(1).double() * (R / (B * M * M))
        psum = r.probs.view(B, M, R).sum(1)
        terms.append(_weighted(psum, w))
    return _mean(terms)


def z_loss(records):
    """Router z-loss (ST-MoE): mean over tokens of logsumexp(logits)^2, layers averaged."""
    recs = _non_empty(records)
    if not recs:
        return None
    return _mean([torch.logsumexp(r.routing.logits.float(), -1).square().mean() for r in recs])


AUX_LOSSES = {
    "balance": lambda recs, o: balance(recs, o.get("form", "mixtral-all")),
    "adamoe-balance": lambda recs, o: adamoe_balance(recs, o.get("form", "mixtral-all")),
    "tcmoe-balance": lambda recs, o: tcmoe_balance(recs),
    "tcmoe-reward": lambda recs, o: tcmoe_reward(recs),
    "entropy": lambda recs, o: entropy(recs),
    "topp-balance": lambda recs, o: topp_balance(recs, o.get("sequenceLength", o.get("sequence_length"))),
    "z-loss": lambda recs, o: z_loss(recs),
}


def schedule_value(weight: Union[None, float, Dict], step: int = 0, total_steps: int = 1, steps_per_epoch: int = 1) -> float:
    """An aux-loss weight at a step (src/losses/schedule.ts): a number, or {type: constant | per-epoch | linear | cosine}."""
    if weight is None:
        return 1.0
    if isinstance(weight, (int, float)):
        return float(weight)
    kind = weight.get("type")
    progress = 1.0 if total_steps <= 1 else min(1.0, max(0.0, step / (total_steps - 1)))
    if kind == "constant":
        return float(weight["value"])
    if kind == "per-epoch":
        values = weight["values"]
        return float(values[min(len(values) - 1, step // max(1, steps_per_epoch))])
    if kind == "linear":
        return weight["from"] + (weight["to"] - weight["from"]) * progress
    if kind == "cosine":
        return weight["to"] + (weight["from"] - weight["to"]) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"schedule: unknown type {kind!r} (valid: constant, per-epoch, linear, cosine)")


def compute_aux_losses(records: Sequence[RoutingRecord], specs: Sequence[Dict], step: int = 0, total_steps: int = 1,
                       steps_per_epoch: int = 1):
    """The unweighted value of each spec's loss ({name: tensor}) and the weighted sum (None when no loss applies).
    A spec is a recipe's aux_losses entry: {name, weight (number or schedule), ...the loss's options}."""
    values: Dict[str, torch.Tensor] = {}
    total = None
    for spec in specs:
        name = spec.get("name")
        if name not in AUX_LOSSES:
            raise ValueError(f"unknown aux loss {name!r} (valid: {', '.join(AUX_LOSSES)})")
        opts = {k: v for k, v in spec.items() if k not in ("name", "weight")}
        v = AUX_LOSSES[name](records, opts)
        if v is None:
            continue
        values[name] = v
        w = schedule_value(spec.get("weight"), step, total_steps, steps_per_epoch)
        if w != 0:
            total = v * w if total is None else total + v * w
    return values, total
