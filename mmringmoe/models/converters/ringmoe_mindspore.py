"""Convert the authors' MindSpore RingMoE checkpoints to mmringmoe, and back.

``convert_official`` turns ``{name: MSTensor}`` (from
:func:`~.mindspore_ckpt.read_mindspore_ckpt`) into an mmringmoe checkpoint::

    {'meta': {...},                 # backbone config, conversion report, what is needed to go back
     'state_dict': {...},           # RingMoEMindSpore keys (sparse, four modalities, mask token)
     'mim_decoders': {...}}         # the four decoders under RingMoEMIM's names

``to_official`` inverts it. The name and layout table lives in
:mod:`.ringmoe_mindspore_keys`.
"""
import json
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .mindspore_ckpt import MS_TO_NUMPY, MSTensor, to_torch
from .ringmoe_mindspore_keys import (BACKBONE_RULES, DECODER_KEY, DECODER_RULES, ENCODER_STRIDE,
                                     KINDS, OFFICIAL_DECODER_CHANNELS, OFFICIAL_IN_CHANNELS,
                                     OFFICIAL_MODALITIES, SOURCE_SHAPES, find_fill, find_rule,
                                     is_training_state, swin_relative_position_index,
                                     swin_shift_mask)

#: official SAR-L2 normalisation (ImageNet statistics on 0-255, per replicated channel)
OFFICIAL_SAR_L2_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
OFFICIAL_SAR_L2_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

OUR_MODALITIES = ('opt', 'ms', 'sar_l1', 'sar_l2')


class ConversionError(ValueError):
    """Unmapped or missing parameters (without ``allow_partial``)."""


class ShapeMismatchError(ValueError):
    """A checkpoint tensor does not have the shape the requested arch needs."""


# ------------------------------------------------------------------ arch
def detect_prefix(names: Sequence[str], anchor: str = 'patch_embed0.projection.weight') -> str:
    """What precedes the official names: ``'encoder.'`` in SimMIM / fine-tuning
    checkpoints, ``''`` for a bare encoder, more if a wrapper cell added its own
    (optimizer state, e.g. ``adam_m.``, is not considered)."""
    hits = [n[:-len(anchor)] for n in names
            if n.endswith(anchor) and not is_training_state(n) and n[:-len(anchor)][-1:] in ('', '.')]
    return min(hits, key=len) if hits else ('encoder.' if anchor.startswith('patch') else '')


def decoder_prefix(names: Sequence[str], encoder_prefix: str) -> str:
    """Prefix of ``decoder_0..3``: the SimMIM cell's, i.e. the encoder prefix minus ``encoder.``."""
    found = detect_prefix(names, 'decoder_0.weight')
    if any(n.endswith('decoder_0.weight') for n in names):
        return found
    return encoder_prefix[:-len('encoder.')] if encoder_prefix.endswith('encoder.') else ''


def infer_arch(params: Dict[str, MSTensor], prefix: Optional[str] = None) -> Tuple[dict, int]:
    """Arch dict and input size read off the tensor shapes of an official checkpoint."""
    prefix = detect_prefix(list(params)) if prefix is None else prefix

    def shape(name):
        if prefix + name not in params:
            raise ConversionError(f'cannot infer the architecture: {prefix + name} is not in '
                                  'the checkpoint; pass --arch')
        return tuple(params[prefix + name].data.shape)

    embed, _, patch, _ = shape('patch_embed0.projection.weight')
    depths, heads, windows = [], [], []
    i = 0
    while f'{prefix}layers.{i}.blocks.0.norm1.gamma' in params:
        j = 0
        while f'{prefix}layers.{i}.blocks.{j}.norm1.gamma' in params:
            j += 1
        depths.append(j)
        rows, h = shape(f'layers.{i}.blocks.0.attn.relative_position_bias.relative_position_bias_table')
        heads.append(h)
        windows.append((int(round(math.sqrt(rows))) + 1) // 2)
        i += 1
    if not depths:
        raise ConversionError('cannot infer the architecture: no layers.{i}.blocks.{j} found; pass --arch')
    blk = 'layers.0.blocks.0.mlp.'
    hidden = shape(blk + 'public_ffn.mapping.weight')[1]
    arch = dict(embed_dims=embed, depths=tuple(depths), num_heads=tuple(heads),
                mlp_ratio=hidden / embed,
                num_specialized_experts=shape(blk + 'special_ffn.0.mapping.weight')[0],
                num_collab_experts=shape(blk + 'cross_ffn.mapping.weight')[0],
                window_size=windows[0])
    img_size = 192
    for i, d in enumerate(depths):
        for j in range(d):
            for alias in ('attention_mask', 'attn_mask'):
                name = f'{prefix}layers.{i}.blocks.{j}.{alias}'
                if name in params:
                    num_windows = params[name].data.shape[1]
                    img_size = int(round(math.sqrt(num_windows))) * windows[i] * 2**i * patch
                    return arch, img_size
    return arch, img_size


def resolve_arch(arch: Union[str, dict]) -> dict:
    from ..backbones.ringmoe import RingMoE
    if isinstance(arch, str) and arch.strip().startswith('{'):
        arch = json.loads(arch)
    settings = RingMoE._resolve_arch(arch)
    for k in ('depths', 'num_heads'):
        settings[k] = tuple(settings[k])
    return settings


def official_windows(window: int, img_size: int, patch_size: int, num_stages: int) -> List[int]:
    from ..backbones.ringmoe_mindspore import official_window_sizes
    return official_window_sizes(window, img_size, patch_size, num_stages)


def backbone_config(arch: dict, img_size: int, patch_size: int = 4, keep_sar_l2_rgb: bool = False,
                    out_indices: Sequence[int] = (0, 1, 2, 3), noisy_gating: bool = False) -> dict:
    """The ``mmringmoe.RingMoEMindSpore`` config a converted checkpoint loads into."""
    arch = {k: (list(v) if isinstance(v, tuple) else v) for k, v in arch.items()}
    windows = official_windows(arch['window_size'], img_size, patch_size, len(arch['depths']))
    cfg = dict(type='mmringmoe.RingMoEMindSpore', arch=arch, modalities=list(OUR_MODALITIES),
               img_size=img_size, patch_size=patch_size, window_size=windows,
               pad_small_map=False, use_mask_token=True, out_indices=list(out_indices),
               noisy_gating=noisy_gating)
    if keep_sar_l2_rgb:
        cfg['in_channels'] = dict(sar_l2=3)
    return cfg


def target_shapes(cfg: dict) -> 'OrderedDict[str, Tuple[Tuple[int, ...], str]]':
    """Backbone state-dict names, shapes and dtypes of ``cfg``, built on the meta device."""
    import torch
    from ..backbones.ringmoe_mindspore import RingMoEMindSpore
    kwargs = {k: v for k, v in cfg.items() if k != 'type'}
    with torch.device('meta'):
        model = RingMoEMindSpore(**kwargs)
    return OrderedDict((k, (tuple(v.shape), str(v.dtype).replace('torch.', '')))
                       for k, v in model.state_dict().items())


def decoder_shapes(cfg: dict) -> 'OrderedDict[str, Tuple[Tuple[int, ...], str]]':
    embed = cfg['arch']['embed_dims'] * 2**(len(cfg['arch']['depths']) - 1)
    out = OrderedDict()
    for m in OUR_MODALITIES:
        c = decoder_channels(cfg)[m]
        out[DECODER_KEY.format(m=m, p='weight')] = ((ENCODER_STRIDE**2 * c, embed, 1, 1), 'float32')
        out[DECODER_KEY.format(m=m, p='bias')] = ((ENCODER_STRIDE**2 * c,), 'float32')
    return out


def decoder_channels(cfg: dict) -> Dict[str, int]:
    ch = dict(OFFICIAL_DECODER_CHANNELS)
    if cfg.get('in_channels', {}).get('sar_l2', 1) == 1:
        ch['sar_l2'] = 1
    return ch


def in_channels(cfg: dict) -> Dict[str, int]:
    from ..backbones.ringmoe import MODALITY_CHANNELS
    ch = dict(MODALITY_CHANNELS)
    ch.update(cfg.get('in_channels', {}))
    return ch


# -------------------------------------------------------------- convert
def _context(cfg, sar_l2_norm, extra, groups, prefix, params=None):
    ctx = dict(encoder_stride=ENCODER_STRIDE, in_channels=in_channels(cfg),
               official_in_channels=OFFICIAL_IN_CHANNELS,
               decoder_channels=decoder_channels(cfg),
               official_decoder_channels=OFFICIAL_DECODER_CHANNELS,
               sar_l2_norm=sar_l2_norm, extra=extra, param=groups.get('p'))
    if 'm' in groups:
        ctx['modality'] = groups['m']
    if 'i' in groups:
        ctx['window'] = cfg['window_size'][int(groups['i'])]
    if params is not None and groups.get('m') == 'sar_l2':
        w = params.get(prefix + 'patch_embed2.projection.weight')
        ctx['official_weight'] = None if w is None else _values(w)
    return ctx


def _shift_masks(cfg: dict, prefix: str) -> Dict[str, Tuple[int, int, int]]:
    """Official names of the shifted blocks' masks -> (res, window, shift)."""
    out = {}
    res = cfg['img_size'] // cfg['patch_size']
    for i, depth in enumerate(cfg['arch']['depths']):
        w = cfg['window_size'][i]
        for j in range(depth):
            if j % 2 == 1 and res > w:
                out[f'{prefix}layers.{i}.blocks.{j}.'] = (res, w, w // 2)
        res //= 2
    return out


def convert_official(params: Dict[str, MSTensor],
                     arch: Union[str, dict] = 'auto',
                     img_size: Optional[int] = None,
                     keep_sar_l2_rgb: bool = False,
                     sar_l2_norm: Optional[Tuple[float, float]] = None,
                     out_indices: Sequence[int] = (0, 1, 2, 3),
                     noisy_gating: bool = False,
                     with_decoders: bool = True,
                     allow_partial: bool = False,
                     source: str = '',
                     consume: bool = False) -> dict:
    """Official MindSpore RingMoE parameters -> mmringmoe checkpoint dict.

    Args:
        params: ``{name: MSTensor}`` as read from the ``.ckpt``.
        arch: ``'auto'`` (read off the shapes), ``'tiny' | 'base' | '1b'``, a
            dict or its JSON text (RingMoE arch keys, ``window_size`` included).
        img_size: pretraining input size that fixed the official windows and
            masks (default: read from the masks in auto mode, else 192).
        keep_sar_l2_rgb: keep SAR-L2 as the official 3-channel input instead
            of folding it to our 1 channel.
        sar_l2_norm: ``(mean, std)`` our pipeline normalises SAR-L2 with; the
            fold then also absorbs the official per-channel normalisation.
        allow_partial: write even if parameters are unmapped or missing.
        consume: remove converted entries from ``params`` as it goes (halves
            the peak memory of a 14.7B conversion).

    Raises:
        ShapeMismatchError: first tensor whose shape the arch does not expect.
        ConversionError: unmapped official / uninitialised RingMoE parameters.
    """
    names = list(params)
    prefix = detect_prefix(names)
    dec_prefix = decoder_prefix(names, prefix)
    if arch == 'auto' or arch is None:
        arch_settings, inferred_size = infer_arch(params, prefix)
        img_size = img_size or inferred_size
        arch_name = 'auto'
    else:
        arch_settings = resolve_arch(arch)
        img_size = img_size or 192
        arch_name = arch if isinstance(arch, str) else json.dumps(arch)
    patch = 4
    if prefix + 'patch_embed0.projection.weight' in params:
        patch = params[prefix + 'patch_embed0.projection.weight'].data.shape[-1]
    cfg = backbone_config(arch_settings, img_size, patch, keep_sar_l2_rgb, out_indices, noisy_gating)
    norm = None
    if sar_l2_norm is not None:
        norm = dict(src_mean=OFFICIAL_SAR_L2_MEAN, src_std=OFFICIAL_SAR_L2_STD,
                    dst_mean=float(sar_l2_norm[0]), dst_std=float(sar_l2_norm[1]))

    if with_decoders and not any(n.endswith('decoder_0.weight') for n in names):
        with_decoders = False  # an encoder-only checkpoint (fine-tuning code saves no decoders)
    targets = target_shapes(cfg)
    jobs = [(k, s, BACKBONE_RULES, 'state_dict') for k, s in targets.items()]
    if with_decoders:
        jobs += [(k, s, DECODER_RULES, 'mim_decoders') for k, s in decoder_shapes(cfg).items()]
    num_stages = len(arch_settings['depths'])

    # 1. plan: sources of every target, checked against the expected shapes
    plan, missing, filled = [], [], OrderedDict()
    for key, (shape, dtype), rules, section in jobs:
        hit = find_rule(key, rules, num_stages)
        if hit is None:
            fill = find_fill(key)
            if fill is not None:
                filled[key] = fill
            else:
                missing.append(f'{key} (no official counterpart)')
            continue
        rule, sources, groups = hit
        src_prefix = prefix if rules is BACKBONE_RULES else dec_prefix
        full = [src_prefix + s for s in sources]
        absent = [s for s in full if s not in params]
        if absent:
            missing.append(f'{key} (needs {", ".join(absent)})')
            continue
        ctx = _context(cfg, norm, {}, groups, prefix, params)
        expected = SOURCE_SHAPES[rule.kind](shape, ctx)
        for s, want in zip(full, expected):
            got = tuple(params[s].data.shape)
            if got != tuple(want):
                raise ShapeMismatchError(
                    f'shape mismatch for arch {arch_name!r}: official parameter {s!r} has shape '
                    f'{got}, the arch expects {tuple(want)} (it becomes {key!r} of shape '
                    f'{shape}). Check --arch / --img-size, and that the checkpoint is a merged '
                    '(not per-device sliced) one.')
        plan.append((key, section, rule, full, groups, ctx))

    # 2. constants and known extras
    used = {s for _, _, _, full, _, _ in plan for s in full}
    ignored, extra = OrderedDict(), OrderedDict()
    masks = _shift_masks(cfg, prefix)
    training_state = []
    for name, t in params.items():
        if name in used:
            continue
        if is_training_state(name):
            training_state.append(name)
            continue
        block, _, leaf = name.rpartition('.')
        if leaf in ('attention_mask', 'attn_mask') and block + '.' in masks:
            res, w, shift = masks[block + '.']
            ref = swin_shift_mask(res, w, shift)
            if t.data.shape != ref.shape or not np.array_equal(_values(t), ref):
                raise ShapeMismatchError(
                    f'{name!r} (shape {tuple(t.data.shape)}) is not the shifted-window mask of a '
                    f'{res}x{res} map, window {w}, shift {shift} (shape {ref.shape}): check '
                    '--img-size / --arch')
            ignored[name] = 'constant: shifted-window attention mask, recomputed by mmpretrain'
        elif name.startswith(prefix + 'patch_embed.'):
            ignored[name] = ('unused: SwinTransformerV2.__init__ builds patch_embed, the '
                             'multi-modal SimMIM forward uses patch_embed0..3 only')
            extra[name] = t.data
    unmapped = [n for n in names if n not in used and n not in ignored and n not in training_state]

    if (unmapped or missing) and not allow_partial:
        lines = []
        if unmapped:
            lines.append(f'{len(unmapped)} official parameter(s) not mapped:\n  ' + '\n  '.join(unmapped))
        if missing:
            lines.append(f'{len(missing)} RingMoE parameter(s) left uninitialised:\n  '
                         + '\n  '.join(missing))
        raise ConversionError('\n'.join(lines) + '\n(pass --allow-partial to write the checkpoint anyway)')

    # 3. convert
    import torch
    out = {'state_dict': OrderedDict(), 'mim_decoders': OrderedDict()}
    kept = [n for n in names if n not in training_state]
    types = {n: params[n].tensor_type for n in kept}
    dims = {n: list(params[n].dims) for n in kept}
    for key, section, rule, full, groups, ctx in plan:
        raw = [params[s].data for s in full]
        src_type = params[full[0]].tensor_type
        xs = [_values(params[s]) for s in full]
        y = KINDS[rule.kind][0](xs, ctx)
        if rule.kind == 'rel_index':
            # checked above; mmpretrain rebuilds these buffers and drops them when loading
            continue
        if rule.kind in ('patch_weight', 'decoder') and groups.get('m') == 'sar_l2' \
                and y.shape != xs[0].shape:
            suffix = 'decoder.sar_l2.' + groups['p'] if rule.kind == 'decoder' else 'sar_l2.weight'
            extra[f'unfolded.{suffix}'] = raw[0]
            if rule.kind == 'patch_weight':
                extra['unfolded.sar_l2.bias'] = params[prefix + 'patch_embed2.projection.bias'].data
        if src_type == 'BFloat16':  # computed in float32 (exact for the permutations)
            tensor = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(torch.bfloat16)
        else:
            tensor = to_torch(MSTensor(np.ascontiguousarray(y), src_type, ()))
        out[section][key] = tensor
        if consume:  # each source feeds one target: free it now
            for src in full:
                params.pop(src, None)
    for key, (value, _) in filled.items():
        shape, dtype = targets[key]
        out['state_dict'][key] = getattr(torch, value)(shape, dtype=getattr(torch, dtype))

    arch_meta = dict(cfg['arch'])
    meta = OrderedDict(
        # the keys the pruning / merging tools read (mmringmoe.models.pruning.checkpoint)
        arch=arch_meta, modalities=list(OUR_MODALITIES), moe_mode='sparse',
        in_channels=in_channels(cfg), use_mask_token=True, out_indices=list(out_indices),
        window_size=list(cfg['window_size']),
        num_specialized_experts=arch_meta['num_specialized_experts'],
        num_collab_experts=arch_meta['num_collab_experts'],
        expert_types=['specialized', 'collaborative', 'shared'],
        source=source or 'MindSpore checkpoint of HanboBizl/RingMoE (ringmoe_framework)',
        converter='tools/model_converters/mindspore_to_mmringmoe.py',
        backbone=cfg,
        # the official MIM: 8 raw SAR-L1 channels as target, L1 loss
        mim=dict(type='mmringmoe.RingMoEMIM', sar_l1_target='pixel', encoder_stride=ENCODER_STRIDE,
                 head=dict(patch_size=4, loss=dict(type='PixelReconstructionLoss', criterion='L1')),
                 target_channels=decoder_channels(cfg)),
        official_modality_order=list(OFFICIAL_MODALITIES),
        sar_l2=('kept as 3 channels' if keep_sar_l2_rgb else
                'folded 3 -> 1 channel ' + ('(sum of kernels)' if norm is None else
                                           f'(normalisation-aware, ours mean/std {sar_l2_norm})')),
        report=dict(mapped=len(used), filled=dict((k, v[1]) for k, v in filled.items()),
                    ignored=dict(ignored), unmapped=unmapped, missing=missing,
                    training_state_dropped=len(training_state)),
        mindspore=dict(prefix=prefix, decoder_prefix=dec_prefix,
                       order=kept, tensor_types=types, dims=dims,
                       sar_l2_norm=norm,
                       extra=OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v)))
                                         for k, v in extra.items())),
    )
    ckpt = {'meta': meta, 'state_dict': out['state_dict']}
    if with_decoders:
        ckpt['mim_decoders'] = out['mim_decoders']
    return ckpt


# -------------------------------------------------------------- inverse
def to_official(ckpt: dict) -> 'OrderedDict[str, MSTensor]':
    """mmringmoe checkpoint (as written by :func:`convert_official`) -> official parameters.

    Tensors come back in the original order with their original MindSpore
    types; constants (relative position indices, shifted-window masks) are
    regenerated. Optimizer state is not part of the conversion.
    """
    meta = ckpt.get('meta', {})
    cfg = meta.get('backbone')
    if cfg is None:
        raise ConversionError("the checkpoint's meta has no 'backbone' config: only checkpoints "
                              'written by mindspore_to_mmringmoe.py can be converted back')
    ms = meta.get('mindspore', {})
    prefix = ms.get('prefix', 'encoder.')
    extra = {k: _np(v) for k, v in ms.get('extra', {}).items()}
    norm = ms.get('sar_l2_norm')
    num_stages = len(cfg['arch']['depths'])
    produced = OrderedDict()
    state_dict, decoders = ckpt['state_dict'], ckpt.get('mim_decoders')
    if any(k.startswith('backbone.') for k in state_dict):  # RingMoEMIM layout
        decoders = OrderedDict((k, v) for k, v in state_dict.items() if k.startswith('neck.'))
        state_dict = OrderedDict((k[len('backbone.'):], v) for k, v in state_dict.items()
                                 if k.startswith('backbone.'))
    sections = [(state_dict, BACKBONE_RULES, prefix)]
    if decoders:
        sections.append((decoders, DECODER_RULES, ms.get('decoder_prefix', '')))
    for sd, rules, src_prefix in sections:
        for key, value in sd.items():
            hit = find_rule(key, rules, num_stages)
            if hit is None:
                if find_fill(key) is None:
                    raise ConversionError(f'{key!r} has no official counterpart')
                continue
            rule, sources, groups = hit
            ctx = _context(cfg, norm, extra, groups, prefix)
            ys = KINDS[rule.kind][1](_np(value), ctx)
            for s, y in zip(sources, ys):
                produced[src_prefix + s] = y
    for i, depth in enumerate(cfg['arch']['depths']):
        index = swin_relative_position_index(cfg['window_size'][i]).reshape(-1).astype(np.int32)
        for j in range(depth):
            produced.setdefault(
                f'{prefix}layers.{i}.blocks.{j}.attn.relative_position_bias.relative_position_index', index)
    for block, (res, w, shift) in _shift_masks(cfg, prefix).items():
        produced.setdefault(block + 'attention_mask', swin_shift_mask(res, w, shift))
    for k, v in extra.items():
        if not k.startswith('unfolded.'):
            produced[k] = v

    types, dims = ms.get('tensor_types', {}), ms.get('dims', {})
    order = ms.get('order') or list(produced)
    # masks may be stored under the attribute name (newer MindSpore)
    for name in order:
        if name.endswith('.attn_mask') and name not in produced:
            alt = name[:-len('attn_mask')] + 'attention_mask'
            if alt in produced:
                produced[name] = produced.pop(alt)
    out = OrderedDict()
    for name in list(order) + [n for n in produced if n not in order]:
        if name not in produced:
            continue
        data = produced[name]
        ttype = types.get(name, _ms_type(data))
        if ttype == 'BFloat16' and data.dtype != np.uint16:  # regenerated constants
            import torch
            data = torch.from_numpy(np.asarray(data, np.float32)).to(torch.bfloat16) \
                .view(torch.int16).numpy().view(np.uint16)
        data = np.ascontiguousarray(data).astype(MS_TO_NUMPY[ttype], copy=False)
        out[name] = MSTensor(data, ttype, tuple(dims.get(name, data.shape or (0,))))
    return out


def _values(t: MSTensor) -> np.ndarray:
    """Numeric values of a checkpoint tensor (BFloat16 bits widened to float32)."""
    if t.tensor_type == 'BFloat16':
        return (t.data.astype(np.uint32) << 16).view(np.float32)
    return t.data


def _np(value) -> np.ndarray:
    import torch
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().view(np.uint16)
        return t.numpy()
    return np.asarray(value)


def _ms_type(data: np.ndarray) -> str:
    from .mindspore_ckpt import NUMPY_TO_MS
    return NUMPY_TO_MS[data.dtype.name]


def format_report(ckpt: dict) -> str:
    """Human-readable summary of a conversion."""
    rep = ckpt['meta']['report']
    lines = [f"mapped official parameters: {rep['mapped']}",
             f"RingMoE parameters: {len(ckpt['state_dict'])}"
             + (f", MIM decoder parameters: {len(ckpt['mim_decoders'])}" if 'mim_decoders' in ckpt else ''),
             f"SAR-L2: {ckpt['meta']['sar_l2']}"]
    if rep['filled']:
        lines.append(f"filled without an official counterpart ({len(rep['filled'])}):")
        reasons = OrderedDict()
        for k, why in rep['filled'].items():
            reasons.setdefault(why, []).append(k)
        lines += [f'  {len(ks)} x {why} (e.g. {ks[0]})' for why, ks in reasons.items()]
    if rep['ignored']:
        lines.append(f"official parameters not needed ({len(rep['ignored'])}):")
        reasons = OrderedDict()
        for k, why in rep['ignored'].items():
            reasons.setdefault(why, []).append(k)
        lines += [f'  {len(ks)} x {why} (e.g. {ks[0]})' for why, ks in reasons.items()]
    if rep['training_state_dropped']:
        lines.append(f"optimizer / trainer state dropped: {rep['training_state_dropped']} entries")
    for title, items in (('NOT MAPPED official parameters', rep['unmapped']),
                         ('UNINITIALISED RingMoE parameters', rep['missing'])):
        if items:
            lines.append(f'{title} ({len(items)}):')
            lines += [f'  {n}' for n in items]
    return '\n'.join(lines)
