"""
moe-tune's routers in PyTorch: the same selections, gates, tie-breaking and statistics as
src/routers/*.ts, so a model saved by moe-tune routes every token to the same experts here.

A router turns router logits [T, R] into per-token slots (router rows and their gate values), and
`build_routing` folds the slots into the (token, true expert) pairs that cost FLOPs: a dense combine
matrix [T, N] (gate per pair, gradient to the router) and a dispatch mask [T, N]. Null experts,
zero experts, dropped assignments and ternary signs are folded in there, so the MoE block never
branches on the router's name.

Conventions shared with moe-tune (our choices where the papers are silent):
- p = softmax over all router rows, computed in float32;
- ties in every sort go to the lower row (a stable descending sort), and at an expert's capacity to
  the lower token;
- cumulative sums (top-p, threshold) are accumulated in float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from .rng import Rng, layer_stream_seed


@dataclass
class RouterLayout:
    """How router rows map onto experts (src/routers/router.ts RouterLayout)."""

    rows: int
    num_experts: int
    null_experts: int = 0
    ternary_zero_experts: int = 0


@dataclass
class Routing:
    """One MoE layer's routing decision for T tokens (src/routers/router.ts Routing)."""

    logits: torch.Tensor  # [T, R] float32
    probs: torch.Tensor  # [T, R] float32, softmax over all rows
    layout: RouterLayout
    selected: torch.Tensor  # [T, R] bool: rows the router selected, before any dropping
    top1: torch.Tensor  # [T] long: row of highest probability (ties: lower row)
    combine: torch.Tensor  # [T, N] gate of each (token, true expert) pair (0 where none)
    dispatch: torch.Tensor  # [T, N] bool: the pair costs FLOPs
    identity_weights: Optional[torch.Tensor] = None  # [T] AdaMoE identity-mapped null experts
    zero_expert_gates: Optional[torch.Tensor] = None  # [T] TC-MoE summed E^0 gate
    selected_pairs: int = 0  # (token, true expert) pairs selected before dropping
    capacity: Optional[int] = None

    @property
    def num_tokens(self) -> int:
        return int(self.logits.shape[0])

    @property
    def num_experts(self) -> int:
        return self.layout.num_experts

    def tokens_per_expert(self) -> torch.Tensor:
        """FLOP-costing pairs per expert [N]."""
        return self.dispatch.sum(0)

    def true_experts_per_token(self) -> float:
        """Mean number of FLOP-costing experts per token (AdaMoE "Load", TC-MoE "Avg K")."""
        T = self.num_tokens
        return float(self.dispatch.sum().item()) / T if T else 0.0

    def dropped_assignments(self) -> int:
        return self.selected_pairs - int(self.dispatch.sum().item())

    def bypassed_tokens(self) -> int:
        return int((~self.dispatch.any(1)).sum().item())


def expert_capacity(factor: float, num_tokens: int, num_experts: int) -> int:
    """C = ceil(factor * T / N) after forgiving float noise, at most T (src/routers/capacity.ts)."""
    if not (factor > 0) or not math.isfinite(factor):
        raise ValueError(f"capacity factor must be a positive number, got {factor}")
    exact = (factor * num_tokens) / num_experts
    c = math.ceil(exact - 1e-9 * max(1.0, exact))
    return max(0, min(num_tokens, c))


def sort_desc(probs: torch.Tensor):
    """Rows sorted by probability, descending, ties to the lower index."""
    return torch.sort(probs, dim=-1, descending=True, stable=True)


def row_to_expert(layout: RouterLayout, rows: torch.Tensor):
    """Expert index (-1: no FLOPs) and sign (+1, -1 for TC-MoE's E^-1) of router rows."""
    N = layout.num_experts
    expert = torch.full_like(rows, -1)
    sign = torch.zeros(rows.shape, dtype=torch.float32, device=rows.device)
    true = (rows >= 0) & (rows < N)
    expert = torch.where(true, rows, expert)
    sign = torch.where(true, torch.ones_like(sign), sign)
    if layout.ternary_zero_experts > 0:
        neg = (rows >= N) & (rows < 2 * N)
        expert = torch.where(neg, rows - N, expert)
        sign = torch.where(neg, -torch.ones_like(sign), sign)
    return expert, sign


def build_routing(logits, probs, layout: RouterLayout, slot_rows, slot_gates, kept=None, identity_nulls=False,
                  zero_expert_gates=None, capacity=None) -> Routing:
    """Slots [T, K] (rows, -1 for empty; gates; kept) -> the pairs of src/routers/build-routing.ts."""
    T, R = probs.shape
    N = layout.num_experts
    if logits.shape[-1] != R or R != layout.rows:
        raise ValueError(f"router: logits {tuple(logits.shape)} do not have the {layout.rows} router rows the layout needs")
    if kept is None:
        kept = torch.ones(slot_rows.shape, dtype=torch.bool, device=slot_rows.device)
    filled = slot_rows >= 0
    # scatter_add, not scatter_: an empty slot (-1, clamped to row 0) must not overwrite a selection of row 0
    selected = torch.zeros((T, R), dtype=torch.int32, device=probs.device).scatter_add(
        1, slot_rows.clamp(min=0), filled.to(torch.int32)) > 0
    # ties: argmax returns the first maximal index
    top1 = probs.argmax(-1)
    expert, sign = row_to_expert(layout, slot_rows)
    is_true = filled & (expert >= 0)
    keep = is_true & kept
    idx = expert.clamp(min=0)
    weight = torch.where(keep, slot_gates * sign.to(slot_gates.dtype), torch.zeros_like(slot_gates))
    combine = torch.zeros((T, N), dtype=slot_gates.dtype, device=probs.device).scatter_add(1, idx, weight)
    # a pair exists when any of its slots is kept (E_i^1 and E_i^-1 of one token share one pair)
    dispatch = torch.zeros((T, N), dtype=torch.int32, device=probs.device).scatter_add(1, idx, keep.to(torch.int32)) > 0
    any_sel = torch.zeros((T, N), dtype=torch.int32, device=probs.device).scatter_add(1, idx, is_true.to(torch.int32)) > 0
    identity_weights = None
    if identity_nulls:
        null_slot = filled & (slot_rows >= N) & (slot_rows < N + layout.null_experts)
        if bool(null_slot.any()):
            identity_weights = (slot_gates * null_slot.to(slot_gates.dtype)).sum(1)
    return Routing(logits=logits, probs=probs, layout=layout, selected=selected, top1=top1, combine=combine,
                   dispatch=dispatch, identity_weights=identity_weights, zero_expert_gates=zero_expert_gates,
                   selected_pairs=int(any_sel.sum().item()), capacity=capacity)


def _softmax32(logits: torch.Tensor) -> torch.Tensor:
    return F.softmax(logits.float(), dim=-1)


def _prefix_slots(probs: torch.Tensor, reached):
    """Top-p / threshold: per token the sorted rows up to and including the first whose running
    float64 sum has reached the bound (src/routers/cumulative-prefix.ts). Returns slot rows [T, K]."""
    vals, order = sort_desc(probs)
    cum = torch.cumsum(vals.double(), dim=-1)
    before = torch.cat([torch.zeros_like(cum[:, :1]), cum[:, :-1]], dim=-1)
    keep = ~reached(before)
    keep[:, 0] = True
    # a row is kept only while no earlier one reached the bound
    keep = torch.cumprod(keep.to(torch.int32), dim=-1).bool()
    kmax = max(1, int(keep.sum(-1).max().item())) if probs.shape[0] else 1
    rows = torch.where(keep, order, torch.full_like(order, -1))[:, :kmax]
    return rows


class Router:
    """Base class: `layout_for(N)` and `route(logits, N, layer)`."""

    name = "router"
    causal = True

    def spec(self) -> Dict:
        raise NotImplementedError

    def layout_for(self, num_experts: int) -> RouterLayout:
        return RouterLayout(rows=num_experts, num_experts=num_experts)

    def route(self, logits: torch.Tensor, num_experts: int, layer: int = 0, training: bool = False) -> Routing:
        raise NotImplementedError


class TopKRouter(Router):
    """Top-k (Mixtral; paper 000 eq. 2): the k largest p, renormalised to sum to 1 (unless normalize=False)."""

    name = "top-k"

    def __init__(self, k: int, normalize: bool = True):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"router top-k: k must be a positive integer, got {k}")
        self.k = k
        self.normalize = normalize

    def spec(self):
        return {"name": self.name, "k": self.k}

    def route(self, logits, num_experts, layer=0, training=False):
        layout = self.layout_for(num_experts)
        probs = _softmax32(logits)
        k = min(self.k, layout.rows)
        _, order = sort_desc(probs)
        rows = order[:, :k]
        picked = probs.gather(1, rows)
        gates = picked / picked.sum(-1, keepdim=True) if self.normalize else picked
        return build_routing(logits, probs, layout, rows, gates)


class TopPRouter(Router):
    """Top-p dynamic routing (paper 003, Alg. 1, eq. 4): the smallest prefix whose sum exceeds p; gates = p."""

    name = "top-p"

    def __init__(self, p: float):
        if not (0 <= p <= 1):
            raise ValueError(f"router top-p: p must be a number in [0, 1], got {p}")
        self.p = p

    def spec(self):
        return {"name": self.name, "p": self.p}

    def route(self, logits, num_experts, layer=0, training=False):
        layout = self.layout_for(num_experts)
        probs = _softmax32(logits)
        rows = _prefix_slots(probs, lambda cum: cum > self.p)
        gates = probs.gather(1, rows.clamp(min=0))
        return build_routing(logits, probs, layout, rows, gates)


class ThresholdRouter(Router):
    """XMoE threshold (paper 001 eq. 5, Alg. 1): prefix with sum >= t; expert capacity C = capacity * T / N
    keeps the assignments of highest priority p - rank; gates = p."""

    name = "threshold"

    def __init__(self, t: float = 0.9, capacity: float = 1.0):
        if not (0 <= t <= 1):
            raise ValueError(f"router threshold: t must be a number in [0, 1], got {t}")
        self.t = t
        self.capacity_factor = capacity

    def spec(self):
        return {"name": self.name, "t": self.t, "capacity": self.capacity_factor}

    def route(self, logits, num_experts, layer=0, training=False):
        layout = self.layout_for(num_experts)
        probs = _softmax32(logits)
        T = probs.shape[0]
        rows = _prefix_slots(probs, lambda cum: cum >= self.t)
        K = rows.shape[1]
        C = expert_capacity(self.capacity_factor, T, num_experts)
        kept = torch.zeros(rows.shape, dtype=torch.bool, device=rows.device)
        gates = probs.gather(1, rows.clamp(min=0))
        rows_l = rows.tolist()
        p_l = gates.detach().tolist()
        by_expert: List[List] = [[] for _ in range(num_experts)]
        for t in range(T):
            for j in range(K):
                r = rows_l[t][j]
                if r >= 0:
                    # priority p - rank: rank first, then p descending, then the lower token
                    by_expert[r].append((j, -p_l[t][j], t))
        for slots in by_expert:
            slots.sort()
            for (j, _, t) in slots[:C]:
                kept[t, j] = True
        return build_routing(logits, probs, layout, rows, gates, kept=kept, capacity=C)


class ExpertChoiceRouter(Router):
    """Expert choice (paper 002): each expert takes the C = capacity * T / N tokens with the highest p for it
    (ties: lower token); gates = p. Not causal."""

    name = "expert-choice"
    causal = False

    def __init__(self, capacity: float = 2.0):
        if not (capacity > 0):
            raise ValueError(f"router expert-choice: capacity must be a positive number, got {capacity}")
        self.capacity_factor = capacity

    def spec(self):
        return {"name": self.name, "capacity": self.capacity_factor}

    def route(self, logits, num_experts, layer=0, training=False):
        layout = self.layout_for(num_experts)
        probs = _softmax32(logits)
        T, N = probs.shape
        C = expert_capacity(self.capacity_factor, T, N)
        _, order = torch.sort(probs.t(), dim=-1, descending=True, stable=True)  # [N, T]
        chosen = torch.zeros((N, T), dtype=torch.bool, device=probs.device)
        chosen.scatter_(1, order[:, :C], True)
        chosen = chosen.t()
        cols = torch.arange(N, device=probs.device).expand(T, N)
        rows = torch.where(chosen, cols, torch.full_like(cols, -1))
        gates = probs
        return build_routing(logits, probs, layout, rows, gates, capacity=C)


class RandomDropRouter(Router):
    """Random drop (paper 000 baseline): top-2, the second expert dropped with probability q at inference too,
    gates renormalised over the kept experts. One seeded stream per layer, one flip per token, as
    src/routers/random-drop.ts (xoshiro128**): `reset()` restarts the streams."""

    name = "random-drop"

    def __init__(self, q: float, seed: int = 0):
        if not (0 <= q <= 1):
            raise ValueError(f"router random-drop: q must be a number in [0, 1], got {q}")
        self.q = q
        self.seed = int(seed)
        self.streams: Dict[int, Rng] = {}

    def spec(self):
        return {"name": self.name, "q": self.q, "seed": self.seed}

    def reset(self):
        self.streams.clear()

    def random_state(self):
        return {str(k): v.state() for k, v in self.streams.items()}

    def restore_random_state(self, state):
        self.streams = {int(k): Rng.from_state(v) for k, v in state.items()}

    def _stream(self, layer: int) -> Rng:
        if layer not in self.streams:
            self.streams[layer] = Rng(layer_stream_seed(self.seed, layer))
        return self.streams[layer]

    def route(self, logits, num_experts, layer=0, training=False):
        layout = self.layout_for(num_experts)
        probs = _softmax32(logits)
        T = probs.shape[0]
        k = min(2, layout.rows)
        _, order = sort_desc(probs)
        rows = order[:, :k]
        rng = self._stream(layer)
        kept = torch.ones(rows.shape, dtype=torch.bool, device=rows.device)
        for t in range(T):
            drop = rng.next() < self.q
            if drop and k == 2:
                kept[t, 1] = False
        picked = probs.gather(1, rows) * kept.to(probs.dtype)
        gates = picked / picked.sum(-1, keepdim=True)
        return build_routing(logits, probs, layout, rows, gates, kept=kept)


class NullExpertsRouter(Router):
    """AdaMoE null experts (paper 004 §3.3-3.4): top-k over N true + m null rows; true gates renormalised over
    the true experts in the top-k; a token with no true expert bypasses the layer. mapping 'identity' adds
    (sum of the raw p of the selected null rows) * x."""

    name = "null-experts"

    def __init__(self, k: int, m: int, mapping: str = "zero"):
        if mapping not in ("zero", "identity"):
            raise ValueError(f"router null-experts: mapping must be 'zero' or 'identity', got {mapping!r}")
        self.k, self.m, self.mapping = k, m, mapping

    def spec(self):
        return {"name": self.name, "k": self.k, "m": self.m, "mapping": self.mapping}

    def layout_for(self, num_experts):
        return RouterLayout(rows=num_experts + self.m, num_experts=num_experts, null_experts=self.m)

    def route(self, logits, num_experts, layer=0, training=False):
        layout = self.layout_for(num_experts)
        N = num_experts
        probs = _softmax32(logits)
        k = min(self.k, layout.rows)
        _, order = sort_desc(probs)
        rows = order[:, :k]
        true_mask = (rows < N).to(probs.dtype)
        no_true = (true_mask.sum(-1, keepdim=True) == 0).to(probs.dtype)
        picked = probs.gather(1, rows)
        true_picked = picked * true_mask
        gates = true_picked / (true_picked.sum(-1, keepdim=True) + no_true)
        if self.mapping == "identity":
            gates = gates + picked * (1 - true_mask)
        return build_routing(logits, probs, layout, rows, gates, identity_nulls=self.mapping == "identity")


class TernaryRouter(Router):
    """TC-MoE ternary routing (paper 000 eq. 4-5, A.3 eq. 16): rows E^1 [0, N), E^-1 [N, 2N), zero experts
    E^0 [2N, 2N + K); top-k over all rows; every E^0 is in the normaliser:
    g_r = p_r / sum_{j in topK u E^0} p_j. E_i^-1 contributes -g."""

    name = "ternary"

    def __init__(self, k: int = 2, zero: Optional[int] = None):
        self.k = k
        self.zero = zero if zero is not None else k

    def spec(self):
        return {"name": self.name, "k": self.k, "zero": self.zero}

    def layout_for(self, num_experts):
        return RouterLayout(rows=2 * num_experts + self.zero, num_experts=num_experts, ternary_zero_experts=self.zero)

    def route(self, logits, num_experts, layer=0, training=False):
        layout = self.layout_for(num_experts)
        N2 = 2 * num_experts
        probs = _softmax32(logits)
        k = min(self.k, layout.rows)
        _, order = sort_desc(probs)
        rows = order[:, :k]
        picked = probs.gather(1, rows)
        zero_sum = probs[:, N2:].sum(-1, keepdim=True)
        denom = (picked * (rows < N2).to(probs.dtype)).sum(-1, keepdim=True) + zero_sum
        gates = picked / denom
        zero_gates = (zero_sum / denom).reshape(-1)
        return build_routing(logits, probs, layout, rows, gates, zero_expert_gates=zero_gates)


class GroupTopKRouter(Router):
    """DeepSeek-V3 / Kimi-K2 routing (arXiv 2412.19437 §2.1.2 eq. 13-16; src/routers/group-top-k.ts):
    s = sigmoid(logits) in float32; choice c = s + b (b: the layer's e_score_correction_bias, for choosing only);
    a group's score is the sum of its 2 largest c; the group_k best groups are kept and the k largest c among
    their experts chosen (ties: lower index); gates = s of the chosen, / (sum + 1e-20) when renormalize.
    probs (for the balance losses) = s / sum s."""

    name = "group-top-k"
    uses_selection_bias = True

    def __init__(self, k: int, groups: int = 1, group_k: int = 1, renormalize: bool = True):
        if group_k > groups:
            raise ValueError(f"router group-top-k: group_k {group_k} is more than groups {groups}")
        self.k, self.groups, self.group_k, self.renormalize = k, groups, group_k, renormalize

    def spec(self):
        return {"name": self.name, "k": self.k, "groups": self.groups, "group_k": self.group_k, "renormalize": self.renormalize}

    def route(self, logits, num_experts, layer=0, training=False, selection_bias=None):
        layout = self.layout_for(num_experts)
        N, G = num_experts, self.groups
        if N % G != 0:
            raise ValueError(f"router group-top-k: {N} experts do not split into {G} groups")
        scores = torch.sigmoid(logits.float())
        choice = scores if selection_bias is None else scores + selection_bias.float()
        choice = choice.detach()
        T = scores.shape[0]
        if G > 1:
            per = N // G
            top2 = torch.sort(choice.view(T, G, per), dim=-1, descending=True, stable=True)[0][..., :2]
            group_scores = top2[..., 0] + top2[..., 1]
            _, gorder = torch.sort(group_scores, dim=-1, descending=True, stable=True)
            keep = torch.zeros((T, G), dtype=torch.bool, device=scores.device)
            keep.scatter_(1, gorder[:, : self.group_k], True)
            keep = keep.repeat_interleave(per, dim=1)
            choice = choice.masked_fill(~keep, float("-inf"))
        _, order = sort_desc(choice)
        rows = order[:, : self.k]
        picked = scores.gather(1, rows)
        gates = picked / (picked.sum(-1, keepdim=True) + 1e-20) if self.renormalize else picked
        probs = scores / scores.sum(-1, keepdim=True)
        return build_routing(logits, probs, layout, rows, gates)


ROUTERS = {
    "top-k": lambda s: TopKRouter(int(s.get("k", 2)), bool(s.get("normalize", True))),
    "top-p": lambda s: TopPRouter(float(s["p"])),
    "threshold": lambda s: ThresholdRouter(float(s.get("t", 0.9)), float(s.get("capacity", 1))),
    "expert-choice": lambda s: ExpertChoiceRouter(float(s.get("capacity", 2))),
    "random-drop": lambda s: RandomDropRouter(float(s["q"]), int(s.get("seed", 0))),
    "null-experts": lambda s: NullExpertsRouter(int(s["k"]), int(s["m"]), str(s.get("mapping", "zero"))),
    "ternary": lambda s: TernaryRouter(int(s.get("k", 2)), None if s.get("zero") is None else int(s["zero"])),
    "group-top-k": lambda s: GroupTopKRouter(int(s.get("k", 8)), int(s.get("groups", 1)), int(s.get("group_k", 1)),
                                             bool(s.get("renormalize", True))),
}


def create_router(spec: Dict) -> Router:
    """A router from moe-tune's spec {name, ...params} (config.json moe_tune.router)."""
    name = spec.get("name") if isinstance(spec, dict) else None
    if name not in ROUTERS:
        raise ValueError(f"unknown router {name!r} (valid: {', '.join(ROUTERS)})")
    return ROUTERS[name](spec)
