"""Frequency-aware expert pruning, EP (paper Eq. 8, 16, Appendix B.4.1).

Per block and modality the collaborative experts used at least as often as
the ``100 * (1 - keep_ratio)``-th percentile of that modality's frequencies
are kept (keep_ratio 0.25: the 75th percentile, Eq. 16); the kept sets of
all chosen modalities are united. With distinct frequencies this keeps
exactly ``keep_ratio * N_C`` experts per modality, the same set as Eq. 8's
strict ``f > phi``; ``>=`` only matters for ties, where it keeps all tied
experts instead of none. ``fixed_threshold`` is Tab. A1's fixed phi and
uses Eq. 8 as written (``f > phi``).

The collaborative experts and the router rows of the dropped experts are
removed; specialized and shared experts stay. Tokens whose top-1 choice was
a kept expert still pick it; their gate value is the softmax over the kept
experts' logits, which equals the old one when the router was confident
(the dropped experts' probabilities were ~0).
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


def prune_collab_experts(state_dict, kept, meta=None):
    """Slice collaborative experts and their router to ``kept`` per block.

    Returns ``(meta, state_dict)`` of a sparse RingMoE whose per-block
    ``num_collab_experts`` (in ``meta['arch']``) rebuilds it.
    """
    if not is_sparse(state_dict):
        raise ValueError('expert pruning needs a sparse RingMoE checkpoint '
                         "(moe_mode='sparse'); this one is dense")
    out = OrderedDict()
    for k, v in state_dict.items():
        block = k.split('.ffn.')[0]
        if ('.ffn.collab_experts.' in k or '.ffn.collab_router.' in k) \
                and block in kept:
            idx = kept[block]
            if any(i >= v.shape[0] for i in idx):
                raise ValueError(f'{k} has {v.shape[0]} experts, asked to '
                                 f'keep {idx}')
            v = v[torch.tensor(idx, dtype=torch.long, device=v.device)]
        out[k] = v
    new_meta = describe(out, meta)
    new_meta['kept_collab_experts'] = {b: list(i) for b, i in kept.items()}
    return new_meta, out


def prune_by_usage(state_dict, meta, usage, modalities=None, keep_ratio=0.25,
                   fixed_threshold=None, usage_path='usage file'):
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
    new_meta, out = prune_collab_experts(state_dict, kept, meta)
    new_meta['pruning'] = dict(
        modalities=modalities,
        keep_ratio=None if fixed_threshold is not None else keep_ratio,
        fixed_threshold=fixed_threshold)
    return new_meta, out
