"""The RMoE layer of RingMoE (paper Sec. 3.2, Eq. 1-4, 8-10; Appendix A).

y_m = sum_k G^S_{m,k}(x) E^S_{m,k}(x)   (modal-specialized, one router per modality)
    + sum_k G^C_k(x) E^C_k(x)           (collaborative, one router for all modalities)
    + E^shared(x)                        (no router)

Dispatch is grouped: the (token, choice) pairs are sorted by expert id and every
expert runs one matmul over its contiguous slice (the MegaBlocks scheme), so cost
scales with the active FLOPs and no tokens x experts x capacity tensor exists.
"""
import contextlib
import math
import weakref
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from mmcv.cnn.bricks.drop import DropPath
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule


class GroupedExperts(nn.Module):
    """``num_experts`` two-layer FFN experts stored batched.

    ``w1`` is (E, C, H) and ``w2`` (E, H, C), i.e. ``x @ w1[e]``: the layout of
    batched-matmul MoE implementations, so converters and mergers index experts
    along the first axis.
    """

    def __init__(self, num_experts: int, embed_dims: int, hidden_dims: int,
                 act_cfg: dict = dict(type='GELU')):
        super().__init__()
        self.num_experts = num_experts
        self.w1 = nn.Parameter(torch.empty(num_experts, embed_dims, hidden_dims))
        self.b1 = nn.Parameter(torch.empty(num_experts, hidden_dims))
        self.w2 = nn.Parameter(torch.empty(num_experts, hidden_dims, embed_dims))
        self.b2 = nn.Parameter(torch.empty(num_experts, embed_dims))
        self.act = build_activation_layer(act_cfg)
        self.reset_parameters()

    def reset_parameters(self):
        # Same distribution as nn.Linear's default, so experts start like the
        # dense FFN they replace.
        if self.w1.is_meta:
            return
        for w, b in ((self.w1, self.b1), (self.w2, self.b2)):
            bound = 1.0 / math.sqrt(w.shape[1])
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    def expert_forward(self, e: int, x: torch.Tensor, weights=None) -> torch.Tensor:
        w1, b1, w2, b2 = weights or (self.w1, self.b1, self.w2, self.b2)
        h = self.act(torch.addmm(b1[e], x, w1[e]))
        return torch.addmm(b2[e], h, w2[e])

    def forward(self, x_sorted: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
        """Run expert ``e`` on the ``counts[e]`` rows of its slice."""
        # unbind once: indexing w1[e] per expert would make every expert's
        # backward write a zero-filled (E, C, H) gradient, O(E^2) traffic
        weights = tuple(p.unbind(0) for p in (self.w1, self.b1, self.w2, self.b2))
        outs = []
        for e, chunk in enumerate(torch.split(x_sorted, list(counts))):
            if chunk.shape[0]:
                outs.append(self.expert_forward(e, chunk, weights))
        if not outs:
            # no token at all: an empty output that still depends on every
            # expert weight, so each gets a (zero) gradient; FSDP reduces the
            # gradients of a unit only on ranks where it took part
            return sum(self.expert_forward(e, x_sorted[:0], weights)
                       for e in range(self.num_experts))
        return torch.cat(outs)


class NoisyTopKRouter(nn.Module):
    """Noisy top-k gating (Eq. 13-14), computed in fp32 even under autocast.

    Returns the full softmax ``probs`` (H(x) of Eq. 10) and the top-k gate
    values and expert ids; the kept values are not renormalised (Eq. 13).

    After expert pruning (EP) the router keeps the logits of all
    ``total_experts`` it was trained with, and the persistent buffer
    ``kept_experts`` ((num_experts,) long, ascending) names the logit rows of
    the experts that remain: the softmax still runs over all of them, only
    the top-k choice is restricted to the kept ones. A token whose choice
    survives therefore gets exactly its old gate value. ``probs`` are then the
    kept columns of that softmax (they sum to <= 1) and ``idx`` counts in kept
    experts (0 .. num_experts - 1).
    """

    def __init__(self, embed_dims: int, num_experts: int, top_k: int = 1,
                 noisy: bool = True, total_experts: Optional[int] = None):
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f'top_k={top_k} must be in [1, {num_experts}] '
                             f'(the number of experts of this router)')
        total = num_experts if total_experts is None else total_experts
        if total < num_experts:
            raise ValueError(f'total_experts={total} < num_experts={num_experts}: '
                             'the router needs a logit per kept expert')
        self.num_experts = num_experts
        self.top_k = top_k
        self.gate = nn.Linear(embed_dims, total, bias=False)
        self.noise = nn.Linear(embed_dims, total, bias=False) if noisy else None
        # placeholder values; a pruned checkpoint carries the real ones
        self.register_buffer(
            'kept_experts',
            torch.arange(num_experts) if total > num_experts else None)

    @property
    def total_experts(self) -> int:
        return self.gate.out_features

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.autocast(device_type=x.device.type, enabled=False):
            x32 = x.float()
            logits = F.linear(x32, self.gate.weight.float())
            if self.training and self.noise is not None:
                std = F.softplus(F.linear(x32, self.noise.weight.float()))
                logits = logits + torch.randn_like(logits) * std
            probs = logits.softmax(dim=-1)
            if self.kept_experts is not None:
                probs = probs.index_select(-1, self.kept_experts)
            gates, idx = probs.topk(self.top_k, dim=-1)
        return probs, gates, idx


def balance_loss(probs: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """N * sum_k f_k * P_k (Eq. 8-10) for one router.

    f_k: fraction of tokens that selected expert k (a token selecting k among
    its top-k counts once, so sum_k f_k = top_k); P_k: mean router probability.
    """
    num_tokens, num_experts = probs.shape
    if num_tokens == 0:
        return probs.new_zeros(())
    counts = torch.bincount(idx.reshape(-1), minlength=num_experts)
    f = counts.to(probs.dtype) / num_tokens
    return num_experts * torch.sum(f * probs.mean(dim=0))


def grouped_dispatch(x: torch.Tensor, gates: torch.Tensor, idx: torch.Tensor,
                     experts: GroupedExperts,
                     capacity: Optional[int]) -> Tuple[torch.Tensor, int]:
    """sum_k gate_k * E_{idx_k}(x) for every token, grouped by expert.

    With a ``capacity``, each expert processes at most that many (token,
    choice) pairs; first choices take precedence over second choices, then
    token order. Dropped pairs contribute zero. Returns (output, num_dropped).
    """
    num_tokens, top_k = idx.shape
    # choice-major flattening: every token's first choice precedes any second
    flat_expert = idx.t().reshape(-1)
    flat_gate = gates.t().reshape(-1)
    order = torch.argsort(flat_expert, stable=True)
    counts = torch.bincount(flat_expert, minlength=experts.num_experts)
    dropped = 0
    if capacity is not None:
        starts = torch.cumsum(counts, 0) - counts
        sorted_expert = flat_expert[order]
        rank_in_expert = torch.arange(order.numel(), device=x.device) - starts[sorted_expert]
        keep = rank_in_expert < capacity
        dropped = int((~keep).sum())
        order = order[keep]
        counts = counts.clamp(max=capacity)
    token = order % num_tokens
    out = experts(x.index_select(0, token), counts.tolist())
    out = out * flat_gate[order].unsqueeze(-1).to(out.dtype)
    # each (token, choice) slot is written once: a copy, then a sum over the
    # k choices, is much faster on CPU than a scatter-add into the tokens
    slots = x.new_zeros(num_tokens * top_k, out.shape[-1])
    slots.index_copy_(0, order, out.to(x.dtype))
    return slots.view(top_k, num_tokens, -1).sum(0), dropped


class RoutingContext:
    """Which samples of the batch belong to which modality.

    The backbone fills it before each forward; every RMoE layer of the
    backbone holds the same instance, so the blocks' upstream ``forward(x,
    hw_shape)`` signature stays untouched. ``segments`` are
    ``(modality, first_sample, end_sample)`` with samples grouped by modality.

    Activation checkpointing re-runs blocks in the backward pass, after later
    forwards may have replaced ``segments``; :func:`layout_context_fn` (the
    ``context_fn`` of ``torch.utils.checkpoint``) restores, for each
    recomputation, the layout its own forward saw.
    """

    _live: 'weakref.WeakSet[RoutingContext]' = weakref.WeakSet()

    def __init__(self):
        self.segments: List[Tuple[str, int, int]] = []
        RoutingContext._live.add(self)

    def __setstate__(self, state):  # copies (deepcopy of a model) count too
        self.__dict__.update(state)
        RoutingContext._live.add(self)


@contextlib.contextmanager
def _restored_layouts(snapshot):
    saved = [(ctx, ctx.segments) for ctx, _ in snapshot]
    try:
        for ctx, segments in snapshot:
            ctx.segments = segments
        yield
    finally:
        for ctx, segments in saved:
            ctx.segments = segments


def layout_context_fn():
    """``context_fn`` for non-reentrant ``torch.utils.checkpoint``: snapshot
    every routing context's layout at forward time and put it back while the
    checkpointed function is recomputed (then restore the current one).

    Returns:
        tuple: (forward context, recomputation context).
    """
    snapshot = [(ctx, tuple(ctx.segments)) for ctx in list(RoutingContext._live)]
    return contextlib.nullcontext(), _restored_layouts(snapshot)


class RMoE(BaseModule):
    """Hierarchical MoE feed-forward layer: specialized + collaborative + shared.

    Args:
        embed_dims (int): token width C.
        hidden_dims (int): expert hidden width H (the dense FFN's).
        modalities (Sequence[str]): modalities with their own specialized experts.
        context (RoutingContext): shared with the backbone, names each sample's modality.
        num_specialized (int): N_S per modality.
        num_collab (int): N_C.
        top_k (int): experts per token per router.
        capacity_factor (float, optional): per-router expert capacity is
            ceil(factor * tokens * top_k / experts); None drops no token.
        noisy_gating (bool): Eq. 14 noise while training.
        expert_types (Sequence[str]): subset of specialized / collaborative /
            shared, for the Tab. 6 ablation.
        drop_path (float): stochastic depth on the layer output (like the dense FFN).
        num_collab_router (int, optional): logits of the collaborative router,
            more than ``num_collab`` after expert pruning (see
            :class:`NoisyTopKRouter`); default ``num_collab``.
    """

    EXPERT_TYPES = ('specialized', 'collaborative', 'shared')

    def __init__(self,
                 embed_dims: int,
                 hidden_dims: int,
                 modalities: Sequence[str],
                 context: RoutingContext,
                 num_specialized: int = 4,
                 num_collab: int = 4,
                 top_k: int = 1,
                 capacity_factor: Optional[float] = None,
                 noisy_gating: bool = True,
                 expert_types: Sequence[str] = EXPERT_TYPES,
                 act_cfg: dict = dict(type='GELU'),
                 drop_path: float = 0.,
                 num_collab_router: Optional[int] = None,
                 init_cfg=None):
        super().__init__(init_cfg)
        unknown = set(expert_types) - set(self.EXPERT_TYPES)
        if unknown or not expert_types:
            raise ValueError(f'expert_types must be a non-empty subset of '
                             f'{self.EXPERT_TYPES}, got {tuple(expert_types)}')
        self.embed_dims = embed_dims
        self.hidden_dims = hidden_dims
        self.modalities = tuple(modalities)
        self.top_k = top_k
        self.capacity_factor = capacity_factor
        self.expert_types = tuple(expert_types)
        # a plain attribute list, not a submodule: one context for all layers
        self._context = [context]

        if 'shared' in expert_types:
            self.shared_expert = FFN(embed_dims=embed_dims, feedforward_channels=hidden_dims,
                                     num_fcs=2, ffn_drop=0., act_cfg=act_cfg,
                                     add_identity=False)
        if 'collaborative' in expert_types:
            self.collab_experts = GroupedExperts(num_collab, embed_dims, hidden_dims, act_cfg)
            self.collab_router = NoisyTopKRouter(embed_dims, num_collab,
                                                 min(top_k, num_collab), noisy_gating,
                                                 total_experts=num_collab_router)
        if 'specialized' in expert_types:
            self.specialized_experts = nn.ModuleDict({
                m: GroupedExperts(num_specialized, embed_dims, hidden_dims, act_cfg)
                for m in self.modalities})
            self.specialized_routers = nn.ModuleDict({
                m: NoisyTopKRouter(embed_dims, num_specialized,
                                   min(top_k, num_specialized), noisy_gating)
                for m in self.modalities})
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

        self.last_aux_loss = None
        self.last_dropped = 0
        # set by MetaInitFSDPStrategy: every modality's experts run (absent
        # ones on zero tokens) in a fixed order, see _specialized_all_modalities
        self.dispatch_absent_modalities = False
        self.record_stats = False
        self.stats: Dict[str, Dict[str, torch.Tensor]] = {}
        self.reset_stats()

    @property
    def context(self) -> RoutingContext:
        return self._context[0]

    @property
    def num_collab(self) -> int:
        return self.collab_experts.num_experts if hasattr(self, 'collab_experts') else 0

    def reset_stats(self):
        self.stats = {'collaborative': {}, 'specialized': {}, 'tokens': {}}

    def _capacity(self, num_tokens: int, num_experts: int, top_k: int) -> Optional[int]:
        if self.capacity_factor is None:
            return None
        return math.ceil(self.capacity_factor * num_tokens * top_k / num_experts)

    def _route(self, x, router: NoisyTopKRouter, experts: GroupedExperts):
        probs, gates, idx = router(x)
        y, dropped = grouped_dispatch(
            x, gates, idx, experts, self._capacity(x.shape[0], experts.num_experts, router.top_k))
        return y, balance_loss(probs, idx), idx, dropped

    def _record(self, kind: str, modality: str, idx: torch.Tensor, num_experts: int):
        counts = torch.bincount(idx.reshape(-1).detach(), minlength=num_experts).cpu()
        table = self.stats[kind]
        table[modality] = table[modality] + counts if modality in table else counts

    def _specialized_all_modalities(self, flat, segments, tokens_per_sample):
        """Specialized experts when each modality's experts are an FSDP unit.

        Every rank must run every unit, in the same order, or the all-gathers
        (forward) and reduce-scatters (backward) of the ranks do not match
        and the job hangs. So the modalities run in the layer's configured
        order, and a modality absent from this batch sends zero tokens
        through its router and experts, whose (empty, exactly zero) sums are
        added to the layer output, so that their zero gradients are reduced
        like the others whatever the loss.
        Returns (output in segment order, balance loss, dropped pairs).
        """
        where = {m: (s, e) for m, s, e in segments}
        dropped = 0
        if len(where) != len(segments):
            raise ValueError(f'RMoE: a modality appears twice in {segments}')
        outs, aux = {}, flat.new_zeros((), dtype=torch.float32)
        anchor = flat.new_zeros(())
        for m in self.modalities:
            router, experts = self.specialized_routers[m], self.specialized_experts[m]
            if m in where:
                s, e = where[m]
                y, loss, idx, n = self._route(
                    flat[s * tokens_per_sample:e * tokens_per_sample], router, experts)
                outs[m] = y
                aux = aux + loss
                dropped += n
                if self.record_stats:
                    self._record('specialized', m, idx, experts.num_experts)
                continue
            empty = flat[:0]
            probs, _, _ = router(empty)
            # through the module call (an FSDP unit gathers its weights there)
            y = experts(empty, [0] * experts.num_experts)
            anchor = anchor + probs.sum().to(anchor.dtype) + y.sum()  # exactly 0
        out = torch.cat([outs[m] for m, _, _ in segments]) + anchor
        return out, aux, dropped

    def forward(self, x: torch.Tensor, identity=None) -> torch.Tensor:
        batch = x.shape[0]
        flat = x.reshape(-1, x.shape[-1])
        tokens_per_sample = flat.shape[0] // batch
        segments = self.context.segments or [(self.modalities[0], 0, batch)]
        out = self.shared_expert(flat) if 'shared' in self.expert_types \
            else torch.zeros_like(flat)
        aux = flat.new_zeros((), dtype=torch.float32)
        dropped = 0

        if 'collaborative' in self.expert_types:
            y, loss, idx, n = self._route(flat, self.collab_router, self.collab_experts)
            out = out + y
            aux = aux + loss
            dropped += n
            if self.record_stats:
                for m, s, e in segments:
                    self._record('collaborative', m,
                                 idx[s * tokens_per_sample:e * tokens_per_sample],
                                 self.num_collab)

        if 'specialized' in self.expert_types and self.dispatch_absent_modalities:
            y, loss, n = self._specialized_all_modalities(flat, segments,
                                                          tokens_per_sample)
            out = out + y
            aux = aux + loss
            dropped += n
        elif 'specialized' in self.expert_types:
            spec_out = []
            for m, s, e in segments:
                xs = flat[s * tokens_per_sample:e * tokens_per_sample]
                y, loss, idx, n = self._route(xs, self.specialized_routers[m],
                                              self.specialized_experts[m])
                spec_out.append(y)
                aux = aux + loss
                dropped += n
                if self.record_stats:
                    self._record('specialized', m, idx,
                                 self.specialized_experts[m].num_experts)
            out = out + torch.cat(spec_out)

        if self.record_stats:
            for m, s, e in segments:
                self.stats['tokens'][m] = self.stats['tokens'].get(m, 0) + \
                    (e - s) * tokens_per_sample
        self.last_aux_loss = aux
        self.last_dropped = dropped
        return self.drop_path(out.view_as(x))

