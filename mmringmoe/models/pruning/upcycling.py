"""Sparse upcycling: a sparse RingMoE initialised from a dense Swin V2.

Every expert (specialized of each modality, collaborative, shared) starts as
a copy of the block's dense FFN and every router at zero, so all experts are
equally likely at the first step and the balance loss starts at its minimum.
Merging the result with KA gives the dense FFN back exactly.
"""
from collections import OrderedDict

import torch

from .checkpoint import describe, is_sparse
from .export import from_mmpretrain


def _per_block(value, n_blocks, name):
    if isinstance(value, int):
        return [value] * n_blocks
    value = list(value)
    if len(value) != n_blocks:
        raise ValueError(f'{name} lists {len(value)} blocks, the model has '
                         f'{n_blocks}')
    return value


def upcycle(state_dict, modalities, in_channels=None,
            num_specialized_experts=4, num_collab_experts=4,
            expert_types=('specialized', 'collaborative', 'shared'),
            mask_token=False):
    """Sparse RingMoE state dict from a Swin V2 (mmpretrain names) one.

    Returns ``(meta, state_dict)``.
    """
    dense = from_mmpretrain(state_dict, modalities, in_channels)
    if is_sparse(dense):
        raise ValueError('the input is already a sparse model')
    meta = describe(dense)
    blocks = meta['blocks']
    n_spec = _per_block(num_specialized_experts, len(blocks),
                        'num_specialized_experts')
    n_collab = _per_block(num_collab_experts, len(blocks),
                          'num_collab_experts')
    out = OrderedDict()
    if mask_token:
        out['mask_token'] = torch.zeros(1, 1, meta['arch']['embed_dims'])
    done = set()
    for k, v in dense.items():
        if '.ffn.' not in k:
            out[k] = v
            continue
        block = k.split('.ffn.')[0]
        if block in done:
            continue
        done.add(block)
        i = blocks.index(block)
        p = f'{block}.ffn.'
        w1, b1 = dense[p + 'layers.0.0.weight'], dense[p + 'layers.0.0.bias']
        w2, b2 = dense[p + 'layers.1.weight'], dense[p + 'layers.1.bias']
        width = w1.shape[1]

        def stacked(n):
            return OrderedDict(
                w1=w1.t().unsqueeze(0).repeat(n, 1, 1).contiguous(),
                b1=b1.unsqueeze(0).repeat(n, 1),
                w2=w2.t().unsqueeze(0).repeat(n, 1, 1).contiguous(),
                b2=b2.unsqueeze(0).repeat(n, 1))

        def router(n):
            return OrderedDict(
                (f'{name}.weight', torch.zeros(n, width, dtype=w1.dtype))
                for name in ('gate', 'noise'))

        if 'shared' in expert_types:
            out[p + 'shared_expert.layers.0.0.weight'] = w1.clone()
            out[p + 'shared_expert.layers.0.0.bias'] = b1.clone()
            out[p + 'shared_expert.layers.1.weight'] = w2.clone()
            out[p + 'shared_expert.layers.1.bias'] = b2.clone()
        if 'collaborative' in expert_types:
            for n, t in stacked(n_collab[i]).items():
                out[p + f'collab_experts.{n}'] = t
            for n, t in router(n_collab[i]).items():
                out[p + f'collab_router.{n}'] = t
        if 'specialized' in expert_types:
            for m in modalities:
                for n, t in stacked(n_spec[i]).items():
                    out[p + f'specialized_experts.{m}.{n}'] = t
            for m in modalities:
                for n, t in router(n_spec[i]).items():
                    out[p + f'specialized_routers.{m}.{n}'] = t
    new_meta = describe(out)
    new_meta['upcycled_from'] = 'dense Swin V2 FFN copies, routers at zero'
    return new_meta, out
