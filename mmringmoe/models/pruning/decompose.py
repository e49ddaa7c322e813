"""Modality decomposition (paper Sec. 3.4, Fig. A3.a).

A sub-model for some modalities keeps their patch embeddings, specialized
experts and routers, and everything shared: attention, norms, all
collaborative experts with their router, and the shared expert. Tokens of a
kept modality meet exactly the same weights as in the full model, so its
outputs do not change.
"""
from collections import OrderedDict

from .checkpoint import describe, modalities_of


def _owner(key):
    """The modality a key belongs to, or None for shared weights."""
    parts = key.split('.')
    if parts[0] == 'patch_embed':
        return parts[1]
    for i, p in enumerate(parts[:-1]):
        if p in ('specialized_experts', 'specialized_routers'):
            return parts[i + 1]
    return None


def check_modalities(state_dict, modalities, what='checkpoint'):
    have = modalities_of(state_dict)
    if not modalities:
        raise ValueError('no modality given')
    unknown = [m for m in modalities if m not in have]
    if unknown:
        raise ValueError(f'unknown modality {unknown} for this {what}: '
                         f'it holds {have}')
    if len(set(modalities)) != len(modalities):
        raise ValueError(f'modality listed twice: {list(modalities)}')
    return have


def extract_modalities(state_dict, modalities, meta=None):
    """Sub-model state dict for ``modalities`` (in the given order).

    Returns ``(meta, state_dict)``. The order of ``modalities`` becomes the
    new model's modality order; weights stay the same tensors (no copy).
    """
    check_modalities(state_dict, modalities)
    out = OrderedDict()
    # Patch embeddings first, in the requested order, so the rebuilt
    # model's modality index matches the key order.
    for m in modalities:
        for k, v in state_dict.items():
            if k.startswith(f'patch_embed.{m}.'):
                out[k] = v
    for k, v in state_dict.items():
        owner = _owner(k)
        if k.startswith('patch_embed.'):
            continue
        if owner is None or owner in modalities:
            out[k] = v
    new_meta = describe(out, meta)
    new_meta['modalities'] = list(modalities)
    return new_meta, out
