"""Dense RingMoE <-> mmpretrain ``SwinTransformerV2`` state dicts.

A dense RingMoE uses mmpretrain's Swin V2 names for everything except its
per-modality patch embeddings (``patch_embed.<m>.``), so a one-modality
export only renames those and drops what Swin V2 has no slot for
(``mask_token``). The relative position buffers are dropped as well:
``SwinTransformerV2`` rebuilds them for its own window size (its
load hook deletes them from any incoming state dict).
"""
from collections import OrderedDict

from .checkpoint import describe, is_buffer, is_sparse


def mmpretrain_kwargs(meta, modality):
    """``SwinTransformerV2`` arguments that load the exported state dict."""
    arch = meta['arch']
    kwargs = dict(
        arch=dict(
            embed_dims=arch['embed_dims'],
            depths=list(arch['depths']),
            num_heads=list(arch['num_heads']),
            extra_norm_every_n_blocks=arch.get('extra_norm_every_n_blocks',
                                               0)),
        in_channels=meta['in_channels'][modality],
        window_size=meta.get('window_size', 8),
        pad_small_map=True,
        out_indices=tuple(meta.get('out_indices') or (3, )))
    if arch.get('mlp_ratio', 4.0) != 4.0:
        kwargs['stage_cfgs'] = dict(
            block_cfgs=dict(ffn_ratio=arch['mlp_ratio']))
    return kwargs


def to_mmpretrain(state_dict, modality=None, meta=None):
    """Return ``(kwargs, state_dict)`` for ``mmpretrain.SwinTransformerV2``.

    ``kwargs`` are the constructor arguments (add ``type='mmpretrain.
    SwinTransformerV2'`` to use them as a config).
    """
    if is_sparse(state_dict):
        raise ValueError('only a dense RingMoE maps onto Swin V2: merge the '
                         'experts first (merge_experts.py --method ks|ka|kc)')
    if any(k.endswith('relative_position_bias_table') for k in state_dict):
        raise ValueError('this model uses Swin V1 window attention (the '
                         'official MindSpore layout); mmpretrain '
                         'SwinTransformerV2 cannot load it')
    meta = describe(state_dict, meta)
    mods = meta['modalities']
    if modality is None:
        if len(mods) != 1:
            raise ValueError(f'the checkpoint holds modalities {mods}: name '
                             'the one whose patch embedding to export')
        modality = mods[0]
    if modality not in mods:
        raise ValueError(f'unknown modality {modality!r}: the checkpoint '
                         f'holds {mods}')
    out = OrderedDict()
    for k, v in state_dict.items():
        if k.startswith('patch_embed.'):
            parts = k.split('.')
            if parts[1] == modality:
                out['.'.join(['patch_embed'] + parts[2:])] = v
        elif k == 'mask_token' or is_buffer(k):
            continue
        else:
            out[k] = v
    return mmpretrain_kwargs(meta, modality), out


def from_mmpretrain(state_dict, modalities, in_channels=None,
                    src_channels=None):
    """Split a Swin V2 state dict into a dense RingMoE one.

    The patch embedding is copied to every modality; a modality whose channel
    count differs from the source gets the source kernel's channel mean,
    repeated and scaled by ``src / dst`` channels (so a constant image gives
    the same embedding). Returns the state dict.
    """
    from .checkpoint import strip_prefix
    state_dict = strip_prefix(state_dict)
    if 'patch_embed.projection.weight' not in state_dict:
        raise ValueError('not a Swin V2 state dict: no '
                         'patch_embed.projection.weight')
    proj = state_dict['patch_embed.projection.weight']
    src = proj.shape[1] if src_channels is None else src_channels
    out = OrderedDict()
    for m in modalities:
        c = (in_channels or {}).get(m, src)
        for k, v in state_dict.items():
            if not k.startswith('patch_embed.'):
                continue
            if k == 'patch_embed.projection.weight' and c != src:
                v = v.mean(1, keepdim=True).repeat(1, c, 1, 1) * (src / c)
            out[k.replace('patch_embed.', f'patch_embed.{m}.', 1)] = \
                v.clone()
    for k, v in state_dict.items():
        if not k.startswith('patch_embed.'):
            out[k] = v
    return out
