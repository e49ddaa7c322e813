"""The RMoE layer of RingMoE (paper Sec. 3.2, Eq. 1-4, 8-10; Appendix A).

y_m = sum_k G^S_{m,k}(x) E^S_{m,k}(x)   (modal-specialized, one router per modality)
    + sum_k G^C_k(x) E^C_k(x)           (collaborative, one router for all modalities)
    + E^shared(x)                        (no router)

Dispatch is grouped: the (token, choice) pairs are sorted by expert id and every
expert runs one matmul over its contiguous slice (the MegaBlocks scheme), so cost
scales with the active FLOPs and no tokens x experts x capacity tensor exists.
Expert offsets come from ``torch.searchsorted`` on the device; the CPU loop
over experts reads the counts of all routers of a layer in one host transfer
(the layer's single ``torch.compile`` graph break), CUDA under bf16 runs
``torch._grouped_mm`` without any; outputs are added into the token rows in
place (``index_add_``). In eager mode the CPU loop of one router is a single
autograd node (:class:`_GatedExpertLoop`) that writes every expert's weight
gradient straight into the stacked gradient tensor.
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


class _GeluMLP(torch.autograd.Function):
    """``addmm(b2, gelu(addmm(b1, x, w1)), w2)`` saving only ``x`` and the
    pre-activation for backward; ``gelu`` is recomputed there. Autograd of
    the plain expression also keeps ``gelu(h)``, a (rows, H) tensor per
    expert (the largest saved activation of an RMoE layer)."""

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2):
        h = torch.addmm(b1, x, w1)
        ctx.save_for_backward(x, w1, w2, h)
        return torch.addmm(b2, F.gelu(h), w2)

    @staticmethod
    def backward(ctx, gy):
        x, w1, w2, h = ctx.saved_tensors
        gy = gy.contiguous()
        a = F.gelu(h)
        gw2 = a.t() @ gy
        gb2 = gy.sum(0)
        gh = torch.ops.aten.gelu_backward(gy @ w2.t(), h)
        del a
        gw1 = x.t() @ gh
        gb1 = gh.sum(0)
        gx = gh @ w1.t()
        return gx, gw1, gb1, gw2, gb2


#: Largest block of the CPU expert loop, in bytes of its (rows, H) hidden
#: activation: an expert slice longer than that is cut into row blocks
#: (never below :data:`MIN_BLOCK_ROWS` rows: GEMMs over fewer rows run
#: slower per FLOP), so that one block's pre-activation, GELU output and
#: their gradients are produced and consumed while they are in the cache.
BLOCK_BYTES = 16 << 20
MIN_BLOCK_ROWS = 1024


def _bounds(counts: Sequence[int], block_rows: Optional[int] = None
            ) -> List[Tuple[int, int, int]]:
    """``(expert, first_row, end_row)`` of the non-empty slices of rows
    grouped by expert with ``counts`` rows each; with ``block_rows``, slices
    longer than that are cut into consecutive blocks of at most
    ``block_rows`` rows (same expert). The blocks tile ``[0, sum(counts))``
    in order."""
    out, start = [], 0
    for e, n in enumerate(counts):
        step = n if not block_rows else block_rows
        for s in range(start, start + n, max(step, 1)):
            out.append((e, s, min(s + step, start + n)))
        start += n
    return out


def _weight_grads(gw, gb, inp, grad, first: bool):
    """``gw = inp.T @ grad`` and ``gb = grad.sum(0)`` into the given
    gradient views on an expert's first block, ``+=`` on its later ones."""
    if first:
        torch.mm(inp.t(), grad, out=gw)
        torch.sum(grad, 0, out=gb)
    else:
        gw.addmm_(inp.t(), grad)
        gb.add_(grad.sum(0))


def _block_rows(hidden: int, itemsize: int) -> int:
    return max(MIN_BLOCK_ROWS, BLOCK_BYTES // max(hidden * itemsize, 1))


class _GatedExpertLoop(torch.autograd.Function):
    """``y[i] = gate[i] * E_e(x[token[i]])`` for pairs ``i`` grouped by expert
    (``counts[e]`` consecutive pairs for expert ``e``), every expert an
    exact- or tanh-GELU two-layer FFN with stacked weights ``w1`` (E, C, H),
    ``b1`` (E, H), ``w2`` (E, H, C), ``b2`` (E, C). ``token=None``: the rows
    of ``x`` themselves, already grouped; ``gate=None``: no gate (the shared
    expert is this with E = 1, see :class:`SharedExpertFFN`).

    The same maths as the per-expert :class:`_GeluMLP` calls followed by
    the gate multiply, in one autograd node for all experts of a router:

    - the expert gradients are written straight into their ``(E, ...)``
      gradient tensors (per-expert parameter views would make autograd
      ``stack`` every expert's gradient into a new tensor: a copy of all
      expert weights per router and step);
    - every expert slice runs in row blocks (:data:`BLOCK_BYTES`): first
      GEMM, GELU, second GEMM of one block before the next, into one
      reused block-sized GELU buffer; backward likewise (GELU recomputed
      per block, its gradient in a second block buffer);
    - saved for backward: the gathered rows (N, C), the pre-activation
      (N, H) and, with a gate, the ungated output (N, C).
    - with E > 1 equal counts (a full capacity) and no blocking the loop
      is one ``baddbmm``.
    """

    @staticmethod
    def forward(ctx, x, token, gate, w1, b1, w2, b2, counts, approximate,
                permutation, block_rows=None):
        xs = x if token is None else x.index_select(0, token)
        n, hidden, width = xs.shape[0], w1.shape[2], w2.shape[2]
        if block_rows is None:
            block_rows = _block_rows(hidden, xs.element_size())
        bounds = _bounds(counts, block_rows)
        h = xs.new_empty(n, hidden)
        y = xs.new_empty(n, width)
        e_num = w1.shape[0]
        equal = e_num > 1 and len(bounds) == e_num and len(set(counts)) == 1
        if equal:
            rows = counts[0]
            torch.baddbmm(b1.unsqueeze(1), xs.view(e_num, rows, -1), w1,
                          out=h.view(e_num, rows, hidden))
            a = F.gelu(h, approximate=approximate)
            torch.baddbmm(b2.unsqueeze(1), a.view(e_num, rows, hidden), w2,
                          out=y.view(e_num, rows, width))
            del a
        elif bounds:
            sizes = [t - s for _, s, t in bounds]
            w1s, b1s, w2s, b2s = (p.unbind(0) for p in (w1, b1, w2, b2))
            buf = xs.new_empty(max(sizes), hidden)
            for (e, _, _), r, xb, hb, yb in zip(bounds, sizes, xs.split(sizes),
                                                h.split(sizes), y.split(sizes)):
                torch.addmm(b1s[e], xb, w1s[e], out=hb)
                a = buf[:r]
                torch.ops.aten.gelu.out(hb, approximate=approximate, out=a)
                torch.addmm(b2s[e], a, w2s[e], out=yb)
            del buf, a
        ctx.gated = gate is not None
        ctx.save_for_backward(xs if token is not None else x, h,
                              y if ctx.gated else None, gate, token, w1, w2)
        ctx.counts, ctx.bounds, ctx.equal = counts, bounds, equal
        ctx.approximate, ctx.permutation = approximate, permutation
        ctx.num_rows = x.shape[0]
        if not ctx.gated:
            return y
        return y * gate.unsqueeze(-1).to(y.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        xs, h, y, gate, token, w1, w2 = ctx.saved_tensors
        need = ctx.needs_input_grad
        wgrad, xgrad = any(need[3:7]), need[0]
        gy = gy.contiguous()
        ggate = (gy * y).sum(-1).to(gate.dtype) if ctx.gated and need[2] else None
        gw1 = gb1 = gw2 = gb2 = gx = None
        nones = (None, ) * 4
        if not (wgrad or xgrad):
            return (gx, None, ggate, gw1, gb1, gw2, gb2) + nones
        if ctx.gated:
            gy = gy * gate.unsqueeze(-1).to(gy.dtype)
        if wgrad:
            gw1, gb1, gw2, gb2 = (torch.empty_like(w) for w in (w1, w1[:, 0], w2, w2[:, 0]))
        gxs = torch.empty_like(xs) if xgrad else None
        approximate = ctx.approximate
        if ctx.equal:
            a = F.gelu(h, approximate=approximate) if wgrad else None
            ga = torch.empty_like(h)
            e_num, rows = w1.shape[0], ctx.counts[0]
            gy3 = gy.view(e_num, rows, -1)
            torch.bmm(gy3, w2.transpose(1, 2), out=ga.view(e_num, rows, -1))
            if wgrad:
                torch.bmm(a.view(e_num, rows, -1).transpose(1, 2), gy3, out=gw2)
                torch.sum(gy3, 1, out=gb2)
            del a
            torch.ops.aten.gelu_backward.grad_input(
                ga, h, approximate=approximate, grad_input=ga)
            gh3 = ga.view(e_num, rows, -1)
            if wgrad:
                torch.bmm(xs.view(e_num, rows, -1).transpose(1, 2), gh3, out=gw1)
                torch.sum(gh3, 1, out=gb1)
            if xgrad:
                torch.bmm(gh3, w1.transpose(1, 2), out=gxs.view(e_num, rows, -1))
        else:
            bounds = ctx.bounds
            sizes = [t - s for _, s, t in bounds]
            used = {e for e, _, _ in bounds}
            if wgrad:
                gw1s, gb1s, gw2s, gb2s = (g.unbind(0) for g in (gw1, gb1, gw2, gb2))
                for e in set(range(w1.shape[0])) - used:  # experts without rows
                    for g in (gw1s, gb1s, gw2s, gb2s):
                        g[e].zero_()
            w1t, w2t = w1.transpose(1, 2).unbind(0), w2.transpose(1, 2).unbind(0)
            rows = max(sizes, default=0)
            abuf = h.new_empty(rows, h.shape[1]) if wgrad else None
            gbuf = h.new_empty(rows, h.shape[1])
            gxs_b = gxs.split(sizes) if xgrad else sizes
            started = set()
            for (e, _, _), r, xb, hb, gyb, gxb in zip(
                    bounds, sizes, xs.split(sizes), h.split(sizes), gy.split(sizes), gxs_b):
                first = e not in started
                started.add(e)
                ga = gbuf[:r]
                torch.mm(gyb, w2t[e], out=ga)
                if wgrad:
                    a = abuf[:r]
                    torch.ops.aten.gelu.out(hb, approximate=approximate, out=a)
                    _weight_grads(gw2s[e], gb2s[e], a, gyb, first)
                torch.ops.aten.gelu_backward.grad_input(
                    ga, hb, approximate=approximate, grad_input=ga)
                if wgrad:
                    _weight_grads(gw1s[e], gb1s[e], xb, ga, first)
                if xgrad:
                    torch.mm(ga, w1t[e], out=gxb)
        if xgrad:
            if token is None:
                gx = gxs
            elif ctx.permutation:  # every row exactly once (top-1, no drop)
                gx = gxs.new_empty(ctx.num_rows, gxs.shape[1])
                gx.index_copy_(0, token, gxs)
            else:
                gx = gxs.new_zeros(ctx.num_rows, gxs.shape[1]).index_add_(0, token, gxs)
        if not all(need[3:7]):
            gw1, gb1, gw2, gb2 = (g if n else None
                                  for g, n in zip((gw1, gb1, gw2, gb2), need[3:7]))
        return (gx, None, ggate, gw1, gb1, gw2, gb2) + nones


class SharedExpertFFN(FFN):
    """The always-on shared expert E^shared of Eq. 1: mmcv's two-layer
    :class:`~mmcv.cnn.bricks.transformer.FFN` (same parameters and state-dict
    keys, ``layers.0.0`` / ``layers.1``), whose forward runs as the one-expert
    case of :class:`_GatedExpertLoop` (row blocks, GELU recomputed in
    backward: it saves the input and the (tokens, H) pre-activation, not the
    GELU output as well) when that is the same maths: a two-layer FFN with
    exact or tanh GELU, no dropout in effect, no identity, no layer scale,
    eager mode without autocast. Otherwise mmcv's forward runs.

    Shapes: (..., C) -> (..., C).
    """

    def fused_wanted(self, x: torch.Tensor) -> bool:
        layers = self.layers
        if self.add_identity or not isinstance(self.dropout_layer, nn.Identity) \
                or not isinstance(self.gamma2, nn.Identity) or len(layers) != 3:
            return False
        first, fc2, drop2 = layers
        if not (isinstance(first, nn.Sequential) and len(first) == 3
                and isinstance(first[0], nn.Linear) and isinstance(fc2, nn.Linear)):
            return False
        act, drop1 = first[1], first[2]
        no_drop = all(isinstance(d, nn.Dropout) and (d.p == 0 or not d.training)
                      for d in (drop1, drop2))
        return no_drop and isinstance(act, nn.GELU) \
            and act.approximate in ('none', 'tanh') \
            and first[0].bias is not None and fc2.bias is not None \
            and x.dtype == fc2.weight.dtype and not fc2.weight.is_meta \
            and not torch.is_autocast_enabled(x.device.type) \
            and not torch.compiler.is_compiling()

    def forward(self, x: torch.Tensor, identity=None) -> torch.Tensor:
        if identity is not None or not self.fused_wanted(x):
            return super().forward(x, identity)
        fc1, act = self.layers[0][0], self.layers[0][1]
        fc2 = self.layers[1]
        flat = x.reshape(-1, x.shape[-1])
        y = _GatedExpertLoop.apply(
            flat, None, None, fc1.weight.t().unsqueeze(0), fc1.bias.unsqueeze(0),
            fc2.weight.t().unsqueeze(0), fc2.bias.unsqueeze(0), (flat.shape[0], ),
            act.approximate, False)
        return y.view(*x.shape[:-1], y.shape[-1])


class GroupedExperts(nn.Module):
    """``num_experts`` two-layer FFN experts stored batched.

    ``w1`` is (E, C, H) and ``w2`` (E, H, C), i.e. ``x @ w1[e]``: the layout of
    batched-matmul MoE implementations, so converters and mergers index experts
    along the first axis.

    ``forward`` takes the rows sorted by expert. With host ``counts`` it loops
    over the experts (one matmul pair per expert, the CPU path); with a device
    tensor ``ends`` (cumulative row counts, (E,)) and ``row_expert`` it runs
    ``torch._grouped_mm`` (one kernel for all experts, no host sync), used on
    CUDA under bf16 (:attr:`use_grouped_mm`).
    """

    #: ``'auto'``: grouped GEMM on CUDA when the expert input is bf16 (or
    #: autocast to it) and ``torch._grouped_mm`` exists; ``True``/``False``
    #: force it on/off (``True`` also works on the CPU, e.g. to test it).
    use_grouped_mm = 'auto'

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

    @property
    def _exact_gelu(self) -> bool:
        """The exact (erf) GELU recomputes its output in backward
        (:class:`_GeluMLP`). Read at every call: ``act`` may be swapped after
        construction (the MindSpore variant uses the tanh approximation)."""
        return isinstance(self.act, nn.GELU) and self.act.approximate == 'none'

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
        if self._exact_gelu and torch.is_grad_enabled() and \
                not torch.is_autocast_enabled(x.device.type):
            return _GeluMLP.apply(x, w1[e], b1[e], w2[e], b2[e])
        h = self.act(torch.addmm(b1[e], x, w1[e]))
        return torch.addmm(b2[e], h, w2[e])

    def grouped_wanted(self, x: torch.Tensor) -> bool:
        """Whether :meth:`forward` should take the grouped-GEMM path for ``x``."""
        if self.use_grouped_mm is True or self.use_grouped_mm is False:
            return self.use_grouped_mm and hasattr(torch, '_grouped_mm')
        if not (x.is_cuda and hasattr(torch, '_grouped_mm')):
            return False
        if x.dtype == torch.bfloat16:
            return True
        return torch.is_autocast_enabled('cuda') and \
            torch.get_autocast_dtype('cuda') == torch.bfloat16

    def fused_wanted(self, x: torch.Tensor) -> bool:
        """Whether the per-expert loop runs as one :class:`_GatedExpertLoop`:
        eager mode (``torch.compile`` traces the plain loop), a GELU
        activation, no autocast, ``x`` in the weights' dtype."""
        act = self.act
        return isinstance(act, nn.GELU) and act.approximate in ('none', 'tanh') \
            and x.dtype == self.w1.dtype and not self.w1.is_meta \
            and not torch.is_autocast_enabled(x.device.type) \
            and not torch.compiler.is_compiling()

    def forward(self, x_sorted: torch.Tensor, counts: Optional[Sequence[int]] = None,
                ends: Optional[torch.Tensor] = None,
                row_expert: Optional[torch.Tensor] = None,
                token: Optional[torch.Tensor] = None,
                gate: Optional[torch.Tensor] = None,
                permutation: bool = False) -> torch.Tensor:
        """Expert ``e`` on its slice of ``x_sorted`` ((N, C) -> (N, C)).

        Args:
            x_sorted (Tensor): rows grouped by expert, expert 0 first; with
                ``token``: the (T, C) token rows, gathered here as
                ``x_sorted[token]``.
            counts (Sequence[int], optional): rows per expert (host ints):
                the per-expert loop.
            ends (Tensor, optional): (E,) int cumulative row counts on the
                device, and ``row_expert`` ((N,) long) each row's expert:
                one ``torch._grouped_mm`` per layer, no host sync.
            token (Tensor, optional): (N,) long, the token row of every
                (token, choice) pair, grouped by expert; with ``gate``
                ((N,) float, the pair's gate value) the output is
                ``gate[i] * E_e(x[token[i]])``.
            permutation (bool): ``token`` holds every row of ``x`` exactly
                once (top-1 without drops): the input gradient is a copy,
                not a zero-filled sum.
        """
        if token is None:
            return self._experts(x_sorted, counts, ends, row_expert)
        if counts is not None and self.fused_wanted(x_sorted):
            return _GatedExpertLoop.apply(
                x_sorted, token, gate, self.w1, self.b1, self.w2, self.b2,
                tuple(counts), self.act.approximate, permutation)
        y = self._experts(x_sorted.index_select(0, token), counts, ends, row_expert)
        return y * gate.unsqueeze(-1).to(y.dtype)

    def _experts(self, x_sorted, counts, ends, row_expert):
        if counts is None:
            return self._grouped(x_sorted, ends, row_expert)
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
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def _grouped(self, x, ends, row_expert):
        dtype = torch.get_autocast_dtype('cuda') if x.is_cuda and \
            torch.is_autocast_enabled('cuda') else x.dtype
        offs = ends.to(torch.int32)
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.to(dtype)
            h = torch._grouped_mm(x, self.w1.to(dtype), offs=offs) + \
                self.b1.to(dtype).index_select(0, row_expert)
            h = self.act(h)
            return torch._grouped_mm(h, self.w2.to(dtype), offs=offs) + \
                self.b2.to(dtype).index_select(0, row_expert)


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


def _expert_counts(idx: torch.Tensor, num_experts: int, dtype) -> torch.Tensor:
    """(E,) choices per expert, on the device (scatter-add: no ``bincount``,
    whose output size depends on the data and breaks ``torch.compile``)."""
    flat = idx.reshape(-1)
    return torch.zeros(num_experts, dtype=dtype, device=idx.device).scatter_add_(
        0, flat, torch.ones_like(flat, dtype=dtype))


def balance_loss(probs: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """N * sum_k f_k * P_k (Eq. 8-10) for one router.

    f_k: fraction of tokens that selected expert k (a token selecting k among
    its top-k counts once, so sum_k f_k = top_k); P_k: mean router probability.
    """
    num_tokens, num_experts = probs.shape
    if num_tokens == 0:
        return probs.new_zeros(())
    f = _expert_counts(idx, num_experts, probs.dtype) / num_tokens
    return num_experts * torch.sum(f * probs.mean(dim=0))


class DispatchPlan:
    """Where each (token, choice) pair of one router goes, computed on the
    device from the top-k expert ids ``idx`` ((T, k)).

    ``order`` lists the pairs (choice-major flat indices ``choice * T +
    token``) sorted by expert; within an expert first choices precede second
    choices, then token order (the capacity precedence). With a capacity the
    dropped pairs are moved behind every expert's slice. ``kept`` ((E,)) is
    the number of pairs each expert processes and ``ends`` its cumulative sum
    (expert offsets, ``torch.searchsorted`` on the sorted ids: no host sync);
    ``row_expert`` ((T k,)) is the expert of each position of ``order``.
    """

    def __init__(self, idx: torch.Tensor, num_experts: int, capacity: Optional[int]):
        self.num_tokens, self.top_k = idx.shape
        flat_expert = idx.t().reshape(-1)
        order = torch.argsort(flat_expert, stable=True)
        sorted_expert = flat_expert.index_select(0, order)
        bins = torch.arange(num_experts, device=idx.device, dtype=sorted_expert.dtype)
        ends = torch.searchsorted(sorted_expert, bins, right=True)
        counts = ends - torch.cat([ends.new_zeros(1), ends[:-1]])
        self.capacity = capacity
        if capacity is not None:
            rank = torch.arange(order.numel(), device=idx.device) - \
                (ends - counts).index_select(0, sorted_expert)
            key = torch.where(rank < capacity, sorted_expert,
                              torch.full_like(sorted_expert, num_experts))
            resort = torch.argsort(key, stable=True)
            order = order.index_select(0, resort)
            sorted_expert = sorted_expert.index_select(0, resort)
            counts = counts.clamp(max=capacity)
            ends = torch.cumsum(counts, 0)
        self.order, self.kept, self.ends = order, counts, ends
        self.row_expert = sorted_expert

    @property
    def num_pairs(self) -> int:
        return self.num_tokens * self.top_k


def _dispatch(x: torch.Tensor, gates: torch.Tensor, plan: DispatchPlan,
              experts: GroupedExperts, sizes: Optional[List[int]],
              out: torch.Tensor, offset: int = 0) -> int:
    """Add sum_k gate_k * E_{idx_k}(x) of every token into ``out`` rows
    ``offset + token`` (in place, ``index_add_``: no zero-filled slots, no
    sum over k, no concatenation). ``sizes``: host per-expert counts for the
    loop; None takes the grouped-GEMM path (dropless only). Returns the
    number of dropped pairs."""
    n_kept = plan.num_pairs if sizes is None else sum(sizes)
    order = plan.order if n_kept == plan.num_pairs else plan.order[:n_kept]
    token = order % plan.num_tokens if plan.top_k > 1 else order
    gate = gates.t().reshape(-1).index_select(0, order)
    if sizes is None:
        y = experts(x, ends=plan.ends, row_expert=plan.row_expert, token=token,
                    gate=gate)
    else:
        y = experts(x, sizes, token=token, gate=gate,
                    permutation=plan.top_k == 1 and n_kept == plan.num_tokens)
    out.index_add_(0, token + offset if offset else token, y.to(out.dtype))
    return plan.num_pairs - n_kept


def grouped_dispatch(x: torch.Tensor, gates: torch.Tensor, idx: torch.Tensor,
                     experts: GroupedExperts,
                     capacity: Optional[int]) -> Tuple[torch.Tensor, int]:
    """sum_k gate_k * E_{idx_k}(x) for every token, grouped by expert.

    With a ``capacity``, each expert processes at most that many (token,
    choice) pairs; first choices take precedence over second choices, then
    token order. Dropped pairs contribute zero. Returns (output, num_dropped).
    """
    plan = DispatchPlan(idx, experts.num_experts, capacity)
    grouped = capacity is None and experts.grouped_wanted(x)
    sizes = None if grouped else plan.kept.tolist()
    out = x.new_zeros(x.shape[0], x.shape[-1])
    dropped = _dispatch(x, gates, plan, experts, sizes, out)
    return out, dropped


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
            self.shared_expert = SharedExpertFFN(
                embed_dims=embed_dims, feedforward_channels=hidden_dims,
                num_fcs=2, ffn_drop=0., act_cfg=act_cfg, add_identity=False)
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

    def _record(self, kind: str, modality: str, idx: torch.Tensor, num_experts: int):
        counts = torch.bincount(idx.reshape(-1).detach(), minlength=num_experts).cpu()
        table = self.stats[kind]
        table[modality] = table[modality] + counts if modality in table else counts

    def _groups(self, flat, segments, per):
        """The router groups of one forward, in a fixed order:
        ``(kind, modality, tokens, first_row, router, experts)``.

        With ``dispatch_absent_modalities`` (FSDP: each modality's experts
        are a unit) every rank must run every unit, in the same order, or
        the all-gathers (forward) and reduce-scatters (backward) of the ranks
        do not match and the job hangs. So the specialized groups follow the
        layer's configured modality order, and a modality absent from this
        batch sends zero tokens through its router and experts; their empty
        outputs still enter the layer output (``index_add_`` of zero rows),
        so their zero gradients are reduced like the others whatever the loss.
        """
        groups = []
        if 'collaborative' in self.expert_types:
            groups.append(('collaborative', None, flat, 0, self.collab_router,
                           self.collab_experts))
        if 'specialized' not in self.expert_types:
            return groups
        if self.dispatch_absent_modalities:
            where = {m: (s, e) for m, s, e in segments}
            if len(where) != len(segments):
                raise ValueError(f'RMoE: a modality appears twice in {segments}')
            spans = [(m, *where.get(m, (0, 0))) for m in self.modalities]
        else:
            spans = segments
        for m, s, e in spans:
            groups.append(('specialized', m, flat[s * per:e * per], s * per,
                           self.specialized_routers[m], self.specialized_experts[m]))
        return groups

    def forward(self, x: torch.Tensor, identity=None) -> torch.Tensor:
        """(B, L, C) -> (B, L, C): shared + collaborative + specialized experts.

        Two phases: every router and its :class:`DispatchPlan` on the device,
        then the experts. The CPU loop over experts needs the per-expert
        counts on the host: they are read in ONE transfer for the whole layer
        (the layer's only ``torch.compile`` graph break); the grouped-GEMM
        path (CUDA, bf16, no capacity) reads nothing. Expert outputs are
        added into the output rows of their tokens in place.
        """
        batch = x.shape[0]
        flat = x.reshape(-1, x.shape[-1])
        per = flat.shape[0] // batch
        segments = self.context.segments or [(self.modalities[0], 0, batch)]
        out = self.shared_expert(flat) if 'shared' in self.expert_types \
            else torch.zeros_like(flat)
        aux = flat.new_zeros((), dtype=torch.float32)

        routed = []
        for kind, m, xs, first, router, experts in self._groups(flat, segments, per):
            probs, gates, idx = router(xs)
            plan = DispatchPlan(idx, experts.num_experts,
                                self._capacity(xs.shape[0], experts.num_experts,
                                               router.top_k))
            aux = aux + balance_loss(probs, idx)
            routed.append((xs, first, gates, plan, experts))
            if self.record_stats:
                if kind == 'collaborative':
                    for mod, s, e in segments:
                        self._record(kind, mod, idx[s * per:e * per], self.num_collab)
                else:
                    self._record(kind, m, idx, experts.num_experts)

        grouped = self.capacity_factor is None and bool(routed) and \
            routed[0][4].grouped_wanted(flat)
        sizes = [None] * len(routed)
        if not grouped and routed:
            host = torch.cat([r[3].kept for r in routed]).tolist()  # one sync
            sizes, start = [], 0
            for r in routed:
                n = r[4].num_experts
                sizes.append(host[start:start + n])
                start += n
        dropped = 0
        for (xs, first, gates, plan, experts), size in zip(routed, sizes):
            if size is None and xs.shape[0] == 0:
                size = [0] * experts.num_experts  # no empty grouped GEMM
            dropped += _dispatch(xs, gates, plan, experts, size, out, first)

        if self.record_stats:
            for m, s, e in segments:
                self.stats['tokens'][m] = self.stats['tokens'].get(m, 0) + \
                    (e - s) * per
        self.last_aux_loss = aux
        self.last_dropped = dropped
        return self.drop_path(out.view_as(x))
