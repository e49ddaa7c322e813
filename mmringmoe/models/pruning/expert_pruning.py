"""Frequency-aware expert pruning, EP (paper Eq. 8, 16, Appendix B.4.1).

Per block and modality the collaborative experts used at least as often as
the ``100 * (1 - keep_ratio)``-th percentile of that modality's frequencies
are kept (keep_ratio 0.25: the 75th percentile, Eq. 16); the kept sets of
all chosen modalities are united. With distinct frequencies this keeps
exactly ``keep_ratio * N_C`` experts per modality, the same set as Eq. 8's
strict ``f > phi``; ``>=`` only matters for ties, where it keeps all tied
experts instead of none. ``fixed_threshold`` is Tab. A1's fixed phi and
uses Eq. 8 as written (``f > phi``).

The dropped collaborative experts are removed; specialized and shared
experts stay. By default the collaborative router keeps all its rows and a
buffer ``collab_router.kept_experts`` excludes the dropped experts from the
top-k choice only (:class:`~mmringmoe.models.layers.rmoe.NoisyTopKRouter`):
the softmax still runs over every expert the model was trained with, so a
token whose choice survives gets exactly its old gate value and output. With
``renormalise=True`` the router rows of the dropped experts are removed as
well, so the softmax renormalises over the kept experts (with one kept
expert every gate becomes 1.0).
"""
from collections import OrderedDict

import torch

from .checkpoint import describe, is_sparse
from .usage import check_usage, percentile


def select_experts(usage, modalities=None, keep_ratio=0.25,
                   fixed_threshold=None):
    """Kept collaborative expert indices per block (sorted lists)."""
    if fixed_threshold is None and not 0 < keep_ratio <= 1:
        raise ValueError(f'keep ratio must be in (0, 1], got {keep_ratio}')
    modalities = list(modalities or usage['modalities'])
    kept = {}
    for b in usage['blocks']:
        freqs = usage['layers'][b]['collaborative']
        unknown = [m for m in modalities if m not in freqs]
        if unknown:
            raise ValueError(
                f'unknown modality {unknown}: the usage file has no '
                f'collaborative routing for it in {b} (it has '
                f'{sorted(freqs)})')
        keep = set()
        for m in modalities:
            f = freqs[m]
            if fixed_threshold is not None:
                keep |= {k for k, v in enumerate(f) if v > fixed_threshold}
            else:
                phi = percentile(f, 100.0 * (1.0 - keep_ratio))
                keep |= {k for k, v in enumerate(f) if v >= phi}
        if not keep:
            # A block without collaborative experts cannot route; keep the
            # one the chosen modalities use most.
            total = [sum(freqs[m][k] for m in modalities)
                     for k in range(len(freqs[modalities[0]]))]
            keep = {max(range(len(total)), key=total.__getitem__)}
        kept[b] = sorted(keep)
    return kept


def prune_collab_experts(state_dict, kept, meta=None, renormalise=False):
    """Keep the collaborative experts ``kept[block]`` (indices of the
    state dict's experts) of every block.

    By default the router keeps all its logits and gets (or, for an already
    pruned model, narrows) the buffer ``collab_router.kept_experts``: router
    rows of the kept experts, so routed tokens keep their gate values. With
    ``renormalise=True`` the router rows are sliced too (softmax over the kept
    experts only).

    Returns ``(meta, state_dict)`` of a sparse RingMoE whose per-block
    ``num_collab_experts`` and ``num_collab_router_experts`` (in
    ``meta['arch']``) rebuild it.
    """
    if not is_sparse(state_dict):
        raise ValueError('expert pruning needs a sparse RingMoE checkpoint '
                         "(moe_mode='sparse'); this one is dense")
    router_rows = {}  # block -> router rows of the kept experts
    for block, idx in kept.items():
        w1 = state_dict.get(f'{block}.ffn.collab_experts.w1')
        if w1 is None:
            continue
        if not idx or any(not 0 <= i < w1.shape[0] for i in idx) \
                or sorted(set(idx)) != list(idx):
            raise ValueError(f'{block}.ffn.collab_experts has {w1.shape[0]} '
                             f'experts, asked to keep {list(idx)} (ascending '
                             'distinct indices, at least one)')
        old = state_dict.get(f'{block}.ffn.collab_router.kept_experts')
        router_rows[block] = [int(old[i]) for i in idx] \
            if old is not None and not old.is_meta \
            else list(idx)
    out = OrderedDict()
    for k, v in state_dict.items():
        block = k.split('.ffn.')[0]
        if block not in router_rows:
            out[k] = v
            continue
        if '.ffn.collab_experts.' in k:
            out[k] = v[torch.tensor(kept[block], dtype=torch.long,
                                    device=v.device)]
        elif k.endswith('.ffn.collab_router.kept_experts'):
            continue  # written below
        elif '.ffn.collab_router.' in k and renormalise:
            out[k] = v[torch.tensor(router_rows[block], dtype=torch.long,
                                    device=v.device)]
        else:
            out[k] = v
        if k == f'{block}.ffn.collab_router.gate.weight' and not renormalise \
                and len(router_rows[block]) < v.shape[0]:
            out[f'{block}.ffn.collab_router.kept_experts'] = torch.tensor(
                router_rows[block], dtype=torch.long,
                device='meta' if v.is_meta else 'cpu')
    new_meta = describe(out, meta)
    new_meta['kept_collab_experts'] = {b: list(i) for b, i in kept.items()}
    return new_meta, out


def prune_by_usage(state_dict, meta, usage, modalities=None, keep_ratio=0.25,
                   fixed_threshold=None, usage_path='usage file',
                   renormalise=False):
    if not is_sparse(state_dict):
        raise ValueError('expert pruning needs a sparse RingMoE checkpoint '
                         "(moe_mode='sparse'); this one is dense")
    meta = describe(state_dict, meta)
    check_usage(usage, meta, usage_path)
    modalities = list(modalities or meta['modalities'])
    unknown = [m for m in modalities if m not in meta['modalities']]
    if unknown:
        raise ValueError(f'unknown modality {unknown}: the checkpoint holds '
                         f'{meta["modalities"]}')
    kept = select_experts(usage, modalities, keep_ratio, fixed_threshold)
    new_meta, out = prune_collab_experts(state_dict, kept, meta, renormalise)
    new_meta['pruning'] = dict(
        modalities=modalities,
        keep_ratio=None if fixed_threshold is not None else keep_ratio,
        fixed_threshold=fixed_threshold,
        router='renormalised' if renormalise else 'full, kept_experts mask')
    return new_meta, out
