"""Parameter map between the official MindSpore RingMoE and mmringmoe.

Source: HanboBizl/RingMoE, ``ringmoe_framework`` (read, not copied):
``arch/simmim_moe.py`` (``SimMIM_Moe``: ``encoder`` + ``decoder_0..3``),
``models/backbone/swin_transformerv2.py`` (``patch_embed0..3``, ``layers``,
``norm``), ``models/layers/block.py`` (``SwinTransformerV2Block``),
``models/layers/attention.py`` (``WindowAttention``: ``q``, ``k``, ``v``,
``proj``, ``relative_position_bias``), ``models/layers/moe_modal.py``
(``Moe_modal``: ``special_ffn``/``special_router`` per modality,
``cross_ffn``/``cross_router``, ``public_ffn``), ``models/layers/mlp.py`` and
MindSpore's ``parallel._transformer.layers._Linear`` (``mapping``,
``projection``).

Layouts (MindSpore -> torch):

- ``_Linear`` with ``transpose_b=True`` (q, k, v, proj, patch-merging
  reduction) stores ``(out, in)`` like ``nn.Linear``: copied.
- ``MLP`` expert weights (``transpose_b=False``, ``expert_num=E > 1``) are
  ``(E, in, out)`` with biases ``(1, E, 1, out)``: the RMoE ``w1/w2`` layout
  (``x @ w``); biases are squeezed to ``(E, out)``.
- the shared expert (``public_ffn``, ``expert_num=1``) stores ``(in, out)``:
  transposed into mmcv FFN's ``nn.Linear``.
- router ``nn.Dense(C, E, has_bias=False)``: ``(E, C)``, copied to ``gate``.
- LayerNorm ``gamma``/``beta`` -> ``weight``/``bias``.
- patch merging concatenates the 2x2 neighbours as ``(dw, dh, C)`` (Swin's
  x0, x1, x2, x3); mmpretrain's ``nn.Unfold`` orders ``(C, dh, dw)``: the
  reduction's input columns are permuted.
- decoders: ``Conv2d(8C, r*r*c, 1)`` followed by the official depth-to-space
  whose output channel index is ``(i*r + j)*c + k``; ``nn.PixelShuffle``
  reads ``k*r*r + i*r + j``: output rows are permuted.
- ``layers.{i}.downsample`` ends stage i officially; mmpretrain starts stage
  i+1 with it: ``stages.{i+1}.downsample``.
- ``norm`` (after the last stage) -> ``norm3``.

Modality order (``patch_embed{i}``, ``special_ffn.{i}``, ``decoder_{i}``,
the batch split of ``Moe_modal``): 0 opt (3 channels), 1 SAR-L1 (8), 2 SAR-L2
(3: the dataset stacks the single band three times, ``Tiff_converter_toRGB``),
3 MS (4). Decoders reconstruct 3, 8, 3, 4 channels. (The dataset code also
prepends a power map to the SAR-L1 bands, ``Power_generation``, but
``patch_embed1`` and ``decoder_1`` have 8 channels: the weights are followed.)

Official parameters that are not weights of the RingMoE computation:
``relative_position_index`` and the shifted blocks' attention masks
(constants; checked against ours, then dropped), ``encoder.patch_embed``
(a 3-channel embedding built by ``SwinTransformerV2.__init__`` but unused by
``SwinTransformerV2ForSimMIM_Moe.construct``), and optimizer / loss-scale
state (``adam_m.``, ``adam_v.``, ``global_step``, ...).
"""
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

#: official modality index -> mmringmoe modality name
OFFICIAL_MODALITIES = ('opt', 'sar_l1', 'sar_l2', 'ms')
OFFICIAL_IN_CHANNELS = dict(opt=3, sar_l1=8, sar_l2=3, ms=4)
OFFICIAL_DECODER_CHANNELS = dict(opt=3, sar_l1=8, sar_l2=3, ms=4)
ENCODER_STRIDE = 32

#: converted decoders take the names of ``mmringmoe.RingMoEMIM``'s default neck
#: (``MultiModalLinearDecoder``: 1x1 conv then ``nn.PixelShuffle``).
DECODER_KEY = 'neck.decoders.{m}.decoder.0.{p}'

#: entries of training state written by MindSpore's optimizers / trainers
TRAINING_STATE_PREFIXES = ('adam_m.', 'adam_v.', 'moment1.', 'moment2.', 'moments.',
                           'accum.', 'mean_grad.', 'mean_square.', 'ema.', 'learning_rate',
                           'global_step', 'beta1_power', 'beta2_power', 'scale_sense',
                           'current_iterator_step', 'last_overflow_iterator_step',
                           'epoch_num', 'step_num', 'loss_scale')


def is_training_state(name: str) -> bool:
    return name.startswith(TRAINING_STATE_PREFIXES)


# ------------------------------------------------------------ transforms
# Each kind maps official arrays (list) -> our array, and back.
def _copy(xs, ctx):
    return xs[0]


def _copy_inv(y, ctx):
    return [y]


def _transpose(xs, ctx):
    return np.ascontiguousarray(xs[0].T)


def _transpose_inv(y, ctx):
    return [np.ascontiguousarray(y.T)]


def _cat(xs, ctx):
    return np.concatenate(xs, axis=0)


def _cat_inv(y, ctx):
    return [np.ascontiguousarray(a) for a in np.split(y, 3, axis=0)]


def _expert_bias(xs, ctx):
    x = xs[0]
    if x.ndim != 4 or x.shape[0] != 1 or x.shape[2] != 1:
        raise _LayoutError(f'expected (1, E, 1, out), got {tuple(x.shape)}')
    return np.ascontiguousarray(x[0, :, 0, :])


def _expert_bias_inv(y, ctx):
    return [np.ascontiguousarray(y[None, :, None, :])]


def _merge_order(xs, ctx):
    w = xs[0]
    out, cols = w.shape
    c = cols // 4
    # official columns (dw, dh, c) -> Unfold columns (c, dh, dw)
    return np.ascontiguousarray(w.reshape(out, 2, 2, c).transpose(0, 3, 2, 1).reshape(out, cols))


def _merge_order_inv(y, ctx):
    out, cols = y.shape
    c = cols // 4
    return [np.ascontiguousarray(y.reshape(out, c, 2, 2).transpose(0, 3, 2, 1).reshape(out, cols))]


def _shuffle_rows(a: np.ndarray, r: int, inverse: bool) -> np.ndarray:
    rows = a.shape[0]
    c = rows // (r * r)
    tail = a.shape[1:]
    if not inverse:  # official (i, j, k) -> PixelShuffle (k, i, j)
        return np.ascontiguousarray(a.reshape(r, r, c, *tail).transpose(2, 0, 1, *range(3, 3 + len(tail)))
                                    .reshape(rows, *tail))
    return np.ascontiguousarray(a.reshape(c, r, r, *tail).transpose(1, 2, 0, *range(3, 3 + len(tail)))
                                .reshape(rows, *tail))


def _fold_decoder_rows(a: np.ndarray, r: int, norm: Optional[dict], is_bias: bool) -> np.ndarray:
    """Rows (c, i, j) of a decoder predicting the band 3 times -> rows (1, i, j).

    Plain: the mean of the three predictions. With ``norm`` (see
    :func:`fold_replicated_input`) each prediction is first mapped back from
    the official per-channel normalisation to ours:
    ``y = mean_c((p_c * std_c + mean_c - dst_mean) / dst_std)``.
    """
    c = a.shape[0] // (r * r)
    x = a.astype(np.float64).reshape(c, r * r, *a.shape[1:])
    if norm is None:
        coef, const = np.full(c, 1.0 / c), 0.0
    else:
        src_mean = np.asarray(norm['src_mean'], np.float64)
        src_std = np.asarray(norm['src_std'], np.float64)
        coef = src_std / (c * norm['dst_std'])
        const = float(np.mean((src_mean - norm['dst_mean']) / norm['dst_std']))
    out = np.tensordot(coef, x, axes=(0, 0))
    if is_bias:
        out = out + const
    return out.reshape(r * r, *a.shape[1:]).astype(a.dtype)


def _decoder(xs, ctx):
    r = ctx['encoder_stride']
    a = _shuffle_rows(xs[0], r, inverse=False)
    m = ctx['modality']
    have, want = a.shape[0] // (r * r), ctx['decoder_channels'][m]
    if have != want and m == 'sar_l2' and want == 1:
        a = _fold_decoder_rows(a, r, ctx.get('sar_l2_norm'), ctx['param'] == 'bias')
    return a


def _decoder_inv(y, ctx):
    r = ctx['encoder_stride']
    m = ctx['modality']
    original = ctx.get('extra', {}).get(f'unfolded.decoder.{m}.{ctx["param"]}')
    if original is not None:
        return [original]
    src = ctx['official_decoder_channels'][m]
    if y.shape[0] // (r * r) != src and m == 'sar_l2':
        y = np.concatenate([y] * src, axis=0)
    return [_shuffle_rows(y, r, inverse=True)]


def _patch_weight(xs, ctx):
    w = xs[0]
    m = ctx['modality']
    want = ctx['in_channels'][m]
    if w.ndim == 4 and w.shape[1] != want and m == 'sar_l2' and want == 1:
        return fold_replicated_input(w, ctx.get('sar_l2_norm'))[0]
    return w


def _patch_weight_inv(y, ctx):
    m = ctx['modality']
    original = ctx.get('extra', {}).get(f'unfolded.{m}.weight')
    if original is not None:
        return [original]
    src = ctx['official_in_channels'][m]
    if y.shape[1] != src and m == 'sar_l2':
        # a valid (not unique) inverse of the fold: equal thirds
        return [np.ascontiguousarray(np.repeat(y, src, axis=1) / src).astype(y.dtype)]
    return [y]


def _patch_bias(xs, ctx):
    b = xs[0]
    m = ctx['modality']
    folds = m == 'sar_l2' and ctx['in_channels'][m] == 1 and ctx['official_in_channels'][m] == 3
    if folds and ctx.get('sar_l2_norm'):
        return fold_replicated_input(ctx['official_weight'], ctx['sar_l2_norm'], b)[1]
    return b


def _patch_bias_inv(y, ctx):
    original = ctx.get('extra', {}).get(f'unfolded.{ctx["modality"]}.bias')
    return [original if original is not None else y]


def _rel_index(xs, ctx):
    idx = xs[0]
    n = ctx['window'] ** 2
    ours = swin_relative_position_index(ctx['window'])
    if idx.size != n * n or not np.array_equal(idx.reshape(n, n), ours):
        raise _LayoutError('relative_position_index differs from the Swin index '
                           f'for window {ctx["window"]}')
    return ours.astype(np.int64)


def _rel_index_inv(y, ctx):
    return [np.ascontiguousarray(y.reshape(-1)).astype(ctx.get('index_dtype', np.int32))]


class _LayoutError(ValueError):
    pass


KINDS: Dict[str, Tuple[Callable, Callable]] = {
    'copy': (_copy, _copy_inv),
    'transpose': (_transpose, _transpose_inv),
    'cat_qkv': (_cat, _cat_inv),
    'expert_bias': (_expert_bias, _expert_bias_inv),
    'merge_order': (_merge_order, _merge_order_inv),
    'decoder': (_decoder, _decoder_inv),
    'patch_weight': (_patch_weight, _patch_weight_inv),
    'patch_bias': (_patch_bias, _patch_bias_inv),
    'rel_index': (_rel_index, _rel_index_inv),
}


def _patch_shape(s, ctx):
    return [(s[0], ctx['official_in_channels'][ctx['modality']], *s[2:])]


#: kind -> official source shapes expected for a RingMoE shape (no data touched)
SOURCE_SHAPES: Dict[str, Callable] = {
    'copy': lambda s, ctx: [tuple(s)],
    'transpose': lambda s, ctx: [tuple(reversed(s))],
    'cat_qkv': lambda s, ctx: [(s[0] // 3, *s[1:])] * 3,
    'expert_bias': lambda s, ctx: [(1, s[0], 1, s[1])],
    'merge_order': lambda s, ctx: [tuple(s)],
    'decoder': lambda s, ctx: [(s[0] // ctx['decoder_channels'][ctx['modality']]
                                * ctx['official_decoder_channels'][ctx['modality']], *s[1:])],
    'patch_weight': _patch_shape,
    'patch_bias': lambda s, ctx: [tuple(s)],
    'rel_index': lambda s, ctx: [(int(np.prod(s)),)],
}


def fold_replicated_input(weight: np.ndarray, norm: Optional[dict] = None,
                          bias: Optional[np.ndarray] = None):
    """Fold a conv over 3 replicated channels into a conv over the one band.

    Without ``norm`` the 3 input-channel kernels are summed, which is exact when
    the three channels equal our one channel. The official dataset normalises
    the replicated band per channel, ``x_c = (v - mean_c) / std_c``; with
    ``norm = dict(src_mean, src_std, dst_mean, dst_std)`` (the official
    per-channel values and our pipeline's single ``y = (v - dst_mean) /
    dst_std``) the fold is exact for that too:
    ``x_c = (dst_std / std_c) * y + (dst_mean - mean_c) / std_c``.
    """
    w = weight.astype(np.float64)
    if norm is None:
        folded = w.sum(axis=1, keepdims=True)
        new_bias = None if bias is None else bias
    else:
        src_mean = np.asarray(norm['src_mean'], np.float64)
        src_std = np.asarray(norm['src_std'], np.float64)
        scale = norm['dst_std'] / src_std
        shift = (norm['dst_mean'] - src_mean) / src_std
        folded = (w * scale[None, :, None, None]).sum(axis=1, keepdims=True)
        new_bias = None
        if bias is not None:
            new_bias = (bias.astype(np.float64)
                        + (w.sum(axis=(2, 3)) * shift[None, :]).sum(axis=1)).astype(bias.dtype)
    return folded.astype(weight.dtype), new_bias


def swin_relative_position_index(window: int) -> np.ndarray:
    """(N, N) index into the ((2w-1)^2, heads) table, N = w*w (original Swin layout)."""
    coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing='ij')).reshape(2, -1)
    rel = coords[:, :, None] - coords[:, None, :]
    return (rel[0] + window - 1) * (2 * window - 1) + (rel[1] + window - 1)


def swin_shift_mask(res: int, window: int, shift: int) -> np.ndarray:
    """The official ``attention_mask`` (1, nW, 1, N, N) of a shifted block at ``res`` x ``res``."""
    img = np.zeros((res, res))
    cnt = 0
    for h in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for w in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            img[h, w] = cnt
            cnt += 1
    win = img.reshape(res // window, window, res // window, window).transpose(0, 2, 1, 3)
    win = win.reshape(-1, window * window)
    mask = win[:, None, :] - win[:, :, None]
    mask = np.where(mask == 0, 0., -100.).astype(np.float32)
    return mask[None, :, None]


# ----------------------------------------------------------------- rules
@dataclass
class Rule:
    """One RingMoE key pattern, its official source name(s) and the layout kind."""
    target: str
    sources: Sequence[str]
    kind: str = 'copy'
    regex: re.Pattern = field(init=False)

    def __post_init__(self):
        self.regex = re.compile('^' + self.target + '$')


_BLK = r'stages\.(?P<i>\d+)\.blocks\.(?P<j>\d+)\.'
_OBLK = 'layers.{i}.blocks.{j}.'
_EXP = r'(?P<m>opt|ms|sar_l1|sar_l2)'

#: RingMoE (backbone) key -> official key(s) relative to ``encoder.``; ``{mi}``
#: is the official index of modality ``{m}``, ``{pi}`` the previous stage.
BACKBONE_RULES: List[Rule] = [
    Rule(r'patch_embed\.' + _EXP + r'\.projection\.weight', ['patch_embed{mi}.projection.weight'],
         'patch_weight'),
    Rule(r'patch_embed\.' + _EXP + r'\.projection\.bias', ['patch_embed{mi}.projection.bias'],
         'patch_bias'),
    Rule(r'patch_embed\.' + _EXP + r'\.norm\.weight', ['patch_embed{mi}.norm.gamma']),
    Rule(r'patch_embed\.' + _EXP + r'\.norm\.bias', ['patch_embed{mi}.norm.beta']),
    Rule(r'mask_token', ['mask_token']),
    Rule(_BLK + r'norm(?P<n>[12])\.weight', [_OBLK + 'norm{n}.gamma']),
    Rule(_BLK + r'norm(?P<n>[12])\.bias', [_OBLK + 'norm{n}.beta']),
    Rule(_BLK + r'attn\.w_msa\.qkv\.weight',
         [_OBLK + 'attn.q.weight', _OBLK + 'attn.k.weight', _OBLK + 'attn.v.weight'], 'cat_qkv'),
    Rule(_BLK + r'attn\.w_msa\.qkv\.bias',
         [_OBLK + 'attn.q.bias', _OBLK + 'attn.k.bias', _OBLK + 'attn.v.bias'], 'cat_qkv'),
    Rule(_BLK + r'attn\.w_msa\.proj\.(?P<p>weight|bias)', [_OBLK + 'attn.proj.{p}']),
    Rule(_BLK + r'attn\.w_msa\.relative_position_bias_table',
         [_OBLK + 'attn.relative_position_bias.relative_position_bias_table']),
    Rule(_BLK + r'attn\.w_msa\.relative_position_index',
         [_OBLK + 'attn.relative_position_bias.relative_position_index'], 'rel_index'),
    Rule(_BLK + r'ffn\.shared_expert\.layers\.0\.0\.weight', [_OBLK + 'mlp.public_ffn.mapping.weight'],
         'transpose'),
    Rule(_BLK + r'ffn\.shared_expert\.layers\.0\.0\.bias', [_OBLK + 'mlp.public_ffn.mapping.bias']),
    Rule(_BLK + r'ffn\.shared_expert\.layers\.1\.weight', [_OBLK + 'mlp.public_ffn.projection.weight'],
         'transpose'),
    Rule(_BLK + r'ffn\.shared_expert\.layers\.1\.bias', [_OBLK + 'mlp.public_ffn.projection.bias']),
    Rule(_BLK + r'ffn\.collab_experts\.w1', [_OBLK + 'mlp.cross_ffn.mapping.weight']),
    Rule(_BLK + r'ffn\.collab_experts\.b1', [_OBLK + 'mlp.cross_ffn.mapping.bias'], 'expert_bias'),
    Rule(_BLK + r'ffn\.collab_experts\.w2', [_OBLK + 'mlp.cross_ffn.projection.weight']),
    Rule(_BLK + r'ffn\.collab_experts\.b2', [_OBLK + 'mlp.cross_ffn.projection.bias'], 'expert_bias'),
    Rule(_BLK + r'ffn\.collab_router\.gate\.weight', [_OBLK + 'mlp.cross_router.dense.weight']),
    Rule(_BLK + r'ffn\.specialized_experts\.' + _EXP + r'\.w1',
         [_OBLK + 'mlp.special_ffn.{mi}.mapping.weight']),
    Rule(_BLK + r'ffn\.specialized_experts\.' + _EXP + r'\.b1',
         [_OBLK + 'mlp.special_ffn.{mi}.mapping.bias'], 'expert_bias'),
    Rule(_BLK + r'ffn\.specialized_experts\.' + _EXP + r'\.w2',
         [_OBLK + 'mlp.special_ffn.{mi}.projection.weight']),
    Rule(_BLK + r'ffn\.specialized_experts\.' + _EXP + r'\.b2',
         [_OBLK + 'mlp.special_ffn.{mi}.projection.bias'], 'expert_bias'),
    Rule(_BLK + r'ffn\.specialized_routers\.' + _EXP + r'\.gate\.weight',
         [_OBLK + 'mlp.special_router.{mi}.dense.weight']),
    Rule(r'stages\.(?P<i>[1-9]\d*)\.downsample\.reduction\.weight',
         ['layers.{pi}.downsample.reduction.weight'], 'merge_order'),
    Rule(r'stages\.(?P<i>[1-9]\d*)\.downsample\.norm\.weight', ['layers.{pi}.downsample.norm.gamma']),
    Rule(r'stages\.(?P<i>[1-9]\d*)\.downsample\.norm\.bias', ['layers.{pi}.downsample.norm.beta']),
    Rule(r'norm(?P<last>\d+)\.weight', ['norm.gamma']),
    Rule(r'norm(?P<last>\d+)\.bias', ['norm.beta']),
]

#: decoders (top level of the official SimMIM_Moe, no ``encoder.`` prefix)
DECODER_RULES: List[Rule] = [
    Rule(r'neck\.decoders\.' + _EXP + r'\.decoder\.0\.(?P<p>weight|bias)', ['decoder_{mi}.{p}'],
         'decoder'),
]

#: RingMoE keys the official model has no counterpart for, and how they are filled.
FILLS: List[Tuple[re.Pattern, str, str]] = [
    (re.compile(r'^norm\d+\.weight$'), 'ones',
     'output norm of an intermediate stage: the official model only normalises the last stage'),
    (re.compile(r'^norm\d+\.bias$'), 'zeros',
     'output norm of an intermediate stage: the official model only normalises the last stage'),
    (re.compile(r'.*router\.noise\.weight$'), 'zeros',
     'noise projection of noisy gating: the official router has no noise (noisy_policy=None)'),
]


def official_index(modality: str, order: Sequence[str] = OFFICIAL_MODALITIES) -> int:
    return list(order).index(modality)


def resolve(rule: Rule, key: str, num_stages: int,
            order: Sequence[str] = OFFICIAL_MODALITIES) -> Optional[Tuple[List[str], dict]]:
    """Official names for RingMoE ``key`` under ``rule`` (None if it does not match)."""
    match = rule.regex.match(key)
    if match is None:
        return None
    groups = {k: v for k, v in match.groupdict().items() if v is not None}
    if 'last' in groups and int(groups['last']) != num_stages - 1:
        return None
    if 'm' in groups:
        if groups['m'] not in order:
            return None
        groups['mi'] = official_index(groups['m'], order)
    if 'i' in groups:
        groups['pi'] = int(groups['i']) - 1
    return [s.format(**groups) for s in rule.sources], groups


def find_rule(key: str, rules: Sequence[Rule], num_stages: int,
              order: Sequence[str] = OFFICIAL_MODALITIES):
    for rule in rules:
        hit = resolve(rule, key, num_stages, order)
        if hit is not None:
            return rule, hit[0], hit[1]
    return None


def find_fill(key: str):
    for pattern, value, reason in FILLS:
        if pattern.match(key):
            return value, reason
    return None
