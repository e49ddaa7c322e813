"""Reading, describing and writing RingMoE backbone checkpoints.

Every converter in ``tools/model_converters`` goes through these functions so
that they agree on one file format::

    {'meta': {'arch': {...}, 'modalities': [...], 'moe_mode': ...,
              'num_collab_experts': int | [per block], 'in_channels': {...},
              'window_size': int, ...},
     'state_dict': <RingMoE backbone state dict, no prefix>}

The architecture is read back from the tensor shapes rather than trusted from
``meta``: a pruned checkpoint has per-block expert counts that only its tensors
know for sure, and MIM checkpoints written by mmengine carry no such meta.
All functions work on meta tensors too, so a 14.7B model can be described,
pruned and merged without allocating its weights.
"""
import os
import os.path as osp
import re
from collections import OrderedDict

import torch

BLOCK_RE = re.compile(r'^(stages\.(\d+)\.blocks\.(\d+))\.')
PREFIXES = ('backbone.', 'module.backbone.', 'module.', 'model.')


def load_checkpoint(path):
    """Load ``path`` and return ``(meta, state_dict)`` of the backbone.

    Accepts our converters' files, bare state dicts, mmengine checkpoints with
    a ``state_dict`` key and whole-model (e.g. SimMIM) state dicts whose
    backbone keys start with ``backbone.`` (the rest, e.g. the decoders, is
    dropped). Files are read with ``torch.load(weights_only=True)`` through
    ``mmringmoe.engine.checkpoint.load_weights_only`` (see README,
    "Checkpoints and resuming"), which also reads our runs' checkpoints.
    """
    from mmringmoe.engine.checkpoint import load_weights_only
    meta, state_dict, _ = split_checkpoint(load_weights_only(path), path)
    return meta, state_dict


def split_checkpoint(ckpt, path='checkpoint'):
    """``(meta, backbone state dict, other state dict)`` of a loaded file.

    The third part holds a whole-model checkpoint's non-backbone weights
    (e.g. MIM decoders, heads), empty otherwise.
    """
    meta = {}
    if isinstance(ckpt, dict) and isinstance(ckpt.get('state_dict'), dict):
        meta = plain(dict(ckpt.get('meta') or {}))
        if 'message_hub' in ckpt or 'mmengine_version' in meta:
            # a training run's meta (config text, seed, dataset meta): kept
            # apart from the architecture keys the converters write
            meta = {'source_meta': meta}
        state_dict = ckpt['state_dict']
    elif isinstance(ckpt, dict) and isinstance(ckpt.get('model'), dict):
        state_dict = ckpt['model']
    elif isinstance(ckpt, dict):
        state_dict = ckpt
    else:
        raise ValueError(f'{path}: expected a dict checkpoint, '
                         f'got {type(ckpt).__name__}')
    backbone = strip_prefix(state_dict)
    if not any(k.startswith('patch_embed.') for k in backbone):
        raise ValueError(
            f'{path} does not hold a RingMoE backbone: no '
            '"patch_embed.<modality>." keys (after stripping "backbone.")')
    other = OrderedDict()
    if len(backbone) != len(state_dict):
        other = OrderedDict((k, v) for k, v in state_dict.items()
                            if not k.startswith(PREFIXES))
    return meta, backbone, other


def plain(obj):
    """``obj`` with numpy values turned into Python ones and anything else
    that ``torch.load(weights_only=True)`` refuses into its ``repr``, so a
    converter's output stays loadable."""
    if type(obj).__module__.startswith('numpy') and hasattr(obj, 'tolist'):
        return obj.tolist()  # before the scalars: np.float64 is a float
    if obj is None or isinstance(obj, (str, int, float, bool, torch.Tensor)):
        return obj
    if isinstance(obj, dict):
        return {k if isinstance(k, (str, int)) else str(k): plain(v)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return repr(obj)


def strip_prefix(state_dict):
    """Keep the backbone part of a whole-model state dict, without prefix."""
    for prefix in PREFIXES:
        if any(k.startswith(prefix) for k in state_dict):
            return OrderedDict((k[len(prefix):], v)
                               for k, v in state_dict.items()
                               if k.startswith(prefix))
    return OrderedDict(state_dict)


def check_output_path(out, inputs, force=False):
    """Refuse to overwrite an input (a file, or anything inside an input
    directory such as a sharded checkpoint's ``extra.pth``), and an existing
    file unless forced.

    Raises:
        ValueError: ``out`` (or ``<out>.part``, the file a converter may
            write first) is an input or lies inside an input directory, or
            ``out`` is a folder.
        FileExistsError: ``out`` exists and ``force`` is False.
    """
    if isinstance(inputs, str):
        inputs = [inputs]
    for path in inputs:
        if path is None:
            continue
        for mine in (out, out + '.part'):  # .part: written first, renamed
            same = osp.abspath(mine) == osp.abspath(path) or (
                osp.exists(mine) and osp.exists(path)
                and osp.samefile(mine, path))
            if same:
                raise ValueError(
                    f'output path {out} is the input file {path}'
                    + (' (its temporary file)' if mine != out else '')
                    + '; write the converted model to a new file')
        if osp.isdir(path):
            root = osp.realpath(path)
            where = osp.realpath(osp.dirname(osp.abspath(out)))
            if osp.commonpath([root, where]) == root:
                raise ValueError(f'output path {out} is inside the input directory '
                                 f'{path}; write the converted model outside it')
    if osp.isdir(out) or out.endswith(('/', os.sep)):
        raise ValueError(f'output path {out} is a folder; give a file path')
    if osp.exists(out) and not force:
        raise FileExistsError(
            f'{out} exists; pass --force to overwrite it')


def save_checkpoint(out, meta, state_dict):
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save({'meta': plain(meta), 'state_dict': state_dict}, out)


def count_params(state_dict):
    """Number of parameters (buffers excluded) in a RingMoE state dict."""
    return sum(v.numel() for k, v in state_dict.items() if not is_buffer(k))


def is_buffer(key):
    """Buffers of a RingMoE state dict: Swin V2's position tables (rebuilt
    from the window size) and an EP router's ``kept_experts`` indices."""
    return key.endswith(('relative_position_index', 'relative_coords_table',
                         'collab_router.kept_experts'))


def format_count(n):
    if n >= 1e9:
        return f'{n / 1e9:.2f}B'
    if n >= 1e6:
        return f'{n / 1e6:.2f}M'
    return f'{n / 1e3:.1f}K' if n >= 1e3 else str(n)


def block_names(state_dict):
    """Block prefixes ``stages.i.blocks.j`` in model order."""
    found = set()
    for k in state_dict:
        m = BLOCK_RE.match(k)
        if m:
            found.add((int(m.group(2)), int(m.group(3)), m.group(1)))
    return [name for _, _, name in sorted(found)]


def modalities_of(state_dict):
    mods = []
    for k in state_dict:
        m = re.match(r'^patch_embed\.([^.]+)\.projection\.weight$', k)
        if m and m.group(1) not in mods:
            mods.append(m.group(1))
    return mods


def is_sparse(state_dict):
    return any('.ffn.collab_experts.' in k or '.ffn.shared_expert.' in k
               or '.ffn.specialized_experts.' in k for k in state_dict)


def _hidden_and_width(state_dict, block):
    for key in ('ffn.layers.0.0.weight', 'ffn.shared_expert.layers.0.0.weight'):
        if f'{block}.{key}' in state_dict:
            return tuple(state_dict[f'{block}.{key}'].shape)
    w1 = state_dict.get(f'{block}.ffn.collab_experts.w1')
    if w1 is None:
        w1 = next(v for k, v in state_dict.items()
                  if k.startswith(f'{block}.ffn.specialized_experts.')
                  and k.endswith('.w1'))
    return w1.shape[2], w1.shape[1]


def _uniform(values):
    return values[0] if len(set(values)) == 1 else list(values)


def describe(state_dict, meta=None):
    """Architecture and construction arguments read from a state dict.

    Returns the meta dict our converters write. ``meta['arch']`` is a full
    ``RingMoE`` arch dict, so ``RingMoE(**backbone_kwargs(meta))`` rebuilds
    the model the state dict belongs to. Entries of ``meta`` that cannot be
    read from shapes (e.g. provenance notes) are kept.
    """
    meta = dict(meta or {})
    mods = modalities_of(state_dict)
    blocks = block_names(state_dict)
    if not mods or not blocks:
        raise ValueError('not a RingMoE state dict: missing patch embeddings '
                         'or stages.<i>.blocks.<j> keys')
    first = mods[0]
    embed_dims = state_dict[f'patch_embed.{first}.projection.weight'].shape[0]
    depths, num_heads, windows = [], [], []
    for name in blocks:
        stage = int(name.split('.')[1])
        while len(depths) <= stage:
            depths.append(0)
            heads, window = _attention_shape(
                state_dict, f'stages.{len(depths) - 1}.blocks.0.attn.w_msa.')
            num_heads.append(heads)
            windows.append(window)
        depths[stage] += 1
    hidden, width = _hidden_and_width(state_dict, blocks[0])
    extra = [int(n.split('.')[3]) + 1 for n in blocks
             if f'{n}.norm3.weight' in state_dict]
    sparse = is_sparse(state_dict)
    arch = dict(
        embed_dims=int(embed_dims),
        depths=depths,
        num_heads=[int(h) for h in num_heads],
        mlp_ratio=float(hidden) / float(width),
        extra_norm_every_n_blocks=min(extra) if extra else 0)
    expert_types = []
    if sparse:
        n_spec, n_collab = [], []
        for name in blocks:
            p = f'{name}.ffn.'
            n_collab.append(int(state_dict[p + 'collab_experts.w1'].shape[0])
                            if p + 'collab_experts.w1' in state_dict else 0)
            spec = [v.shape[0] for k, v in state_dict.items()
                    if k.startswith(p + 'specialized_experts.')
                    and k.endswith('.w1')]
            n_spec.append(int(spec[0]) if spec else 0)
        arch['num_specialized_experts'] = _uniform(n_spec)
        arch['num_collab_experts'] = _uniform(n_collab)
        rows = _collab_router_rows(state_dict, blocks, n_collab)
        if rows != n_collab:  # EP that kept the whole router (a mask)
            arch['num_collab_router_experts'] = _uniform(rows)
        p = f'{blocks[0]}.ffn.'
        for etype, key in (('specialized', 'specialized_experts.'),
                           ('collaborative', 'collab_experts.'),
                           ('shared', 'shared_expert.')):
            if any(k.startswith(p + key) for k in state_dict):
                expert_types.append(etype)
    meta.update(
        arch=arch,
        modalities=mods,
        moe_mode='sparse' if sparse else 'dense',
        in_channels={
            m: int(state_dict[f'patch_embed.{m}.projection.weight'].shape[1])
            for m in mods
        },
        use_mask_token='mask_token' in state_dict,
        out_indices=[i for i in range(len(depths))
                     if f'norm{i}.weight' in state_dict],
        blocks=blocks,
    )
    if sparse:
        meta['num_collab_experts'] = arch['num_collab_experts']
        meta['num_specialized_experts'] = arch['num_specialized_experts']
        meta['expert_types'] = expert_types
    else:
        meta.pop('num_collab_experts', None)
        meta.pop('num_specialized_experts', None)
        meta.pop('expert_types', None)
    if all(w is not None for w in windows):
        meta['window_size'] = _uniform(windows)
    if isinstance(meta.get('backbone'), dict):
        meta['backbone'] = _updated_backbone_cfg(meta['backbone'], meta)
    return meta


def _collab_router_rows(state_dict, blocks, n_collab):
    """Logit rows of each block's collaborative router (its expert count
    when there is no router); more rows than experts need ``kept_experts``."""
    rows = []
    for name, n in zip(blocks, n_collab):
        gate = state_dict.get(f'{name}.ffn.collab_router.gate.weight')
        r = int(gate.shape[0]) if gate is not None else n
        kept = state_dict.get(f'{name}.ffn.collab_router.kept_experts')
        if r > n and (kept is None or tuple(kept.shape) != (n, )):
            raise ValueError(
                f'{name}: the collaborative router has {r} logits for {n} '
                'experts but no matching collab_router.kept_experts '
                f'(found {None if kept is None else tuple(kept.shape)}, '
                f'expected ({n},))')
        if r < n:
            raise ValueError(f'{name}: the collaborative router has {r} '
                             f'logits for {n} experts')
        rows.append(r)
    return rows


def _attention_shape(state_dict, prefix):
    """(num_heads, window) of a Swin V2 (or V1, MindSpore layout) block."""
    coords = state_dict.get(prefix + 'relative_coords_table')
    window = None if coords is None else (int(coords.shape[1]) + 1) // 2
    if prefix + 'logit_scale' in state_dict:
        return int(state_dict[prefix + 'logit_scale'].shape[0]), window
    table = state_dict.get(prefix + 'relative_position_bias_table')
    if table is not None:  # V1 attention: ((2W - 1)^2, heads)
        side = round(table.shape[0]**0.5)
        return int(table.shape[1]), (side + 1) // 2
    raise ValueError(f'not a RingMoE state dict: no {prefix}logit_scale')


def _updated_backbone_cfg(cfg, meta):
    """A stored backbone config (e.g. ``RingMoEMindSpore``'s, written by
    the MindSpore converter) brought in line with the converted weights."""
    cfg = dict(cfg)
    arch = dict(cfg['arch']) if isinstance(cfg.get('arch'), dict) else {}
    arch.update(meta['arch'])
    if meta['moe_mode'] == 'dense':
        arch.pop('num_collab_experts', None)
        arch.pop('num_specialized_experts', None)
    cfg.update(arch=arch, modalities=list(meta['modalities']),
               moe_mode=meta['moe_mode'], in_channels=dict(meta['in_channels']),
               out_indices=list(meta['out_indices']),
               use_mask_token=meta['use_mask_token'])
    if meta['moe_mode'] == 'sparse':
        cfg['expert_types'] = list(meta['expert_types'])
    else:
        cfg.pop('expert_types', None)
    cfg.pop('init_cfg', None)
    return cfg


def backbone_cfg(meta):
    """Registry config (``type`` included) that rebuilds the backbone."""
    if isinstance(meta.get('backbone'), dict):
        return dict(meta['backbone'])
    return dict(type='mmringmoe.RingMoE', **backbone_kwargs(meta))


def backbone_kwargs(meta):
    """``RingMoE`` constructor arguments for a converted checkpoint."""
    kwargs = dict(
        arch=dict(meta['arch']),
        modalities=tuple(meta['modalities']),
        moe_mode=meta['moe_mode'],
        in_channels=dict(meta['in_channels']),
        out_indices=tuple(meta.get('out_indices') or (0, 1, 2, 3)),
        use_mask_token=bool(meta.get('use_mask_token', False)))
    if meta.get('window_size'):
        kwargs['window_size'] = meta['window_size']
    if meta['moe_mode'] == 'sparse' and meta.get('expert_types'):
        kwargs['expert_types'] = tuple(meta['expert_types'])
    return kwargs


def report_load(meta, state_dict, source, min_loaded=None):
    """Count how much of the model ``meta`` describes ``state_dict`` fills.

    The model is built on the meta device from :func:`backbone_cfg` (no
    memory), the state dict matched by name and shape
    (:func:`mmringmoe.engine.checkpoint.fit_state_dict`), and one line
    ``SOURCE: loaded N/M parameter tensors of RingMoE (x/y values, z%)`` is
    printed.

    Args:
        min_loaded (float, optional): refuse below this share of the
            model's parameter values; default
            :data:`mmringmoe.engine.checkpoint.DEFAULT_MIN_LOADED`.

    Raises:
        mmringmoe.engine.checkpoint.PretrainedLoadError: too little fits.
    """
    import mmringmoe.models  # noqa: F401  (registers the backbones)
    from mmringmoe.engine.checkpoint import (DEFAULT_MIN_LOADED,
                                             PretrainedLoadError, check_report,
                                             fit_state_dict)
    from mmringmoe.registry import MODELS
    try:
        with torch.device('meta'):
            model = MODELS.build(backbone_cfg(meta))
    except (IndexError, KeyError, ValueError, TypeError) as e:
        raise PretrainedLoadError(
            f'{source}: its tensors do not describe a buildable RingMoE '
            f'({type(e).__name__}: {e})') from None
    report = fit_state_dict(model, state_dict, prefixes=())
    return check_report(report, source, type(model).__name__,
                        DEFAULT_MIN_LOADED if min_loaded is None else min_loaded)


def print_counts(before, after, what=''):
    nb, na = count_params(before), count_params(after)
    print(f'parameters before: {nb:,} ({format_count(nb)})')
    print(f'parameters after:  {na:,} ({format_count(na)})'
          + (f'  [{what}]' if what else ''))
    return nb, na
