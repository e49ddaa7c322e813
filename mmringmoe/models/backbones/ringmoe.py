"""RingMoE backbone: Swin Transformer V2 with hierarchical RMoE feed-forward layers.

The attention, norms and patch merging are mmpretrain's Swin V2 parts, kept at
the same module paths, so ``moe_mode='dense'`` loads (and exports to)
``mmpretrain.SwinTransformerV2`` state dicts name for name; the only additions
are one patch embedding per modality (``patch_embed.<modality>``) and, in
sparse mode, the RMoE layer in place of each block's ``ffn``.
"""
from copy import deepcopy
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import PatchEmbed
from mmengine.model import ModuleList
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones.swin_transformer_v2 import (
    SwinBlockV2Sequence, SwinTransformerV2)

from mmringmoe.registry import MODELS
from ..layers.rmoe import RMoE, RoutingContext, layout_context_fn

#: input channels per modality (DESIGN.md section 3): SAR-L1 is HH, HV, VH, VV,
#: each real then imaginary.
MODALITY_CHANNELS = dict(opt=3, ms=4, sar_l1=8, sar_l2=1)

_ARCH_DEFAULTS = dict(mlp_ratio=4., num_specialized_experts=4,
                      num_collab_experts=4, extra_norm_every_n_blocks=0)


@MODELS.register_module()
class RingMoE(SwinTransformerV2):
    """RingMoE (paper Sec. 3.2, Appendix B.2).

    Args:
        arch (str | dict): ``'tiny'``, ``'base'`` (Swin-B sizes, the 88M
            variant), ``'1b'``, a full dict (``embed_dims, depths, num_heads``
            plus optional ``mlp_ratio, num_specialized_experts,
            num_collab_experts, extra_norm_every_n_blocks, window_size``), or
            ``dict(base='1b', **overrides)``. ``num_collab_experts`` may be a
            list with one count per block (all stages in order), as written
            by expert pruning. ``num_collab_router_experts`` (int or per-block
            list, default ``num_collab_experts``) is the collaborative
            router's logit count: expert pruning keeps the whole router and
            the buffer ``collab_router.kept_experts`` says which of its
            experts remain (:class:`~mmringmoe.models.layers.rmoe.NoisyTopKRouter`).
        modalities (Sequence[str]): configured modalities; the first is the
            default of a single-tensor forward.
        moe_mode (str): ``'sparse'`` (RMoE in every block) or ``'dense'``
            (one FFN per block, the merged model).
        in_channels (dict, optional): channel count overrides per modality.
        window_size (int | Sequence[int], optional): ``None`` takes the arch's.
        use_mask_token (bool): add a learned mask token for masked image modeling.
        capacity_factor (float, optional): expert capacity; ``None`` is dropless.
        top_k (int): experts per token per router (paper: 1).
        noisy_gating (bool): Eq. 14 noise while training.
        expert_types (Sequence[str]): which expert types the RMoE layers keep.
        with_cp (bool): activation checkpointing per block (non-reentrant,
            so the balance loss still gets gradients). Each recomputation
            uses the modality layout of its own forward, so several forwards
            before one backward give the gradients of ``with_cp=False``.
        Other args follow ``mmpretrain.SwinTransformerV2``.
    """
    arch_zoo = {
        'tiny': dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
                     window_size=8),
        'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32),
                     window_size=12),
        '1b': dict(embed_dims=448, depths=(2, 2, 18, 2), num_heads=(14, 28, 56, 112),
                   window_size=12),
    }

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 modalities: Sequence[str] = ('opt', 'ms', 'sar_l1', 'sar_l2'),
                 moe_mode: str = 'sparse',
                 in_channels: Optional[Dict[str, int]] = None,
                 img_size: int = 192,
                 patch_size: int = 4,
                 window_size=None,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 pad_small_map: bool = True,
                 with_cp: bool = False,
                 use_mask_token: bool = False,
                 capacity_factor: Optional[float] = None,
                 top_k: int = 1,
                 noisy_gating: bool = True,
                 expert_types: Sequence[str] = RMoE.EXPERT_TYPES,
                 norm_cfg: dict = dict(type='LN'),
                 pretrained_window_sizes: Sequence[int] = (0, 0, 0, 0),
                 init_cfg=None):
        # SwinTransformerV2.__init__ is skipped on purpose: it calls .item()
        # on a tensor, which fails under ``torch.device('meta')``; the modules
        # it would build are built below from the same mmpretrain parts.
        super(SwinTransformerV2, self).__init__(init_cfg=init_cfg)
        if moe_mode not in ('sparse', 'dense'):
            raise ValueError(f"moe_mode must be 'sparse' or 'dense', got {moe_mode!r}")
        self.arch_settings = self._resolve_arch(arch)
        self.modalities = tuple(modalities)
        if not self.modalities:
            raise ValueError('RingMoE needs at least one modality')
        self.in_channels = {m: MODALITY_CHANNELS.get(m) for m in self.modalities}
        self.in_channels.update(in_channels or {})
        missing = [m for m, c in self.in_channels.items() if c is None]
        if missing:
            raise ValueError(f'no channel count for modalities {missing}: '
                             f'pass in_channels={{...}} (known: {MODALITY_CHANNELS})')
        self.moe_mode = moe_mode
        self.embed_dims = self.arch_settings['embed_dims']
        self.depths = tuple(self.arch_settings['depths'])
        self.num_heads = tuple(self.arch_settings['num_heads'])
        self.num_layers = len(self.depths)
        self.extra_norm_every_n_blocks = self.arch_settings['extra_norm_every_n_blocks']
        self.out_indices = tuple(out_indices)
        self.use_abs_pos_embed = False
        self.interpolate_mode = 'bicubic'
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        window_size = window_size or self.arch_settings['window_size']
        self.window_sizes = [window_size] * self.num_layers \
            if isinstance(window_size, int) else list(window_size)

        self.patch_embed = nn.ModuleDict({
            m: PatchEmbed(in_channels=c, input_size=img_size, embed_dims=self.embed_dims,
                          conv_type='Conv2d', kernel_size=patch_size, stride=patch_size,
                          norm_cfg=dict(type='LN'))
            for m, c in self.in_channels.items()})
        self.patch_resolution = self.patch_embed[self.modalities[0]].init_out_size
        self.drop_after_pos = nn.Dropout(p=drop_rate)
        self.use_mask_token = use_mask_token
        if use_mask_token:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        self._register_load_state_dict_pre_hook(self._delete_reinit_params)

        self._build_stages(drop_path_rate, pad_small_map, pretrained_window_sizes)
        for i in self.out_indices:
            norm = build_norm_layer(norm_cfg, self.num_out_channels[i])[1] \
                if norm_cfg is not None else nn.Identity()
            self.add_module(f'norm{i}', norm)

        self.routing_context = RoutingContext()
        if moe_mode == 'sparse':
            self._install_rmoe(capacity_factor, top_k, noisy_gating, expert_types)

    @classmethod
    def _resolve_arch(cls, arch) -> dict:
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_zoo:
                raise ValueError(f'unknown RingMoE arch {arch!r}; choose from '
                                 f'{sorted(cls.arch_zoo)} or pass a dict')
            return {**_ARCH_DEFAULTS, **cls.arch_zoo[arch.lower()]}
        arch = dict(arch)
        base = arch.pop('base', None)
        settings = {**_ARCH_DEFAULTS, **(cls._resolve_arch(base) if base else {}), **arch}
        needed = {'embed_dims', 'depths', 'num_heads'} - set(settings)
        if needed:
            raise ValueError(f'RingMoE arch dict lacks {sorted(needed)}')
        settings.setdefault('window_size', 8)
        return settings

    @property
    def num_out_channels(self):
        return [self.embed_dims * 2**i for i in range(self.num_layers)]

    #: Buffers Swin V2 computes from the window sizes the model is built with.
    POSITION_BUFFERS = ('relative_position_index', 'relative_coords_table')

    def _delete_reinit_params(self, state_dict, prefix, *args, **kwargs):
        """Load-time hook: the position buffers come from this model.

        ``relative_position_index`` and ``relative_coords_table`` are functions
        of the window sizes (and ``pretrained_window_sizes``) this model was
        built with, so a checkpoint's copies are never used: mmpretrain's
        ``SwinTransformerV2._delete_reinit_params`` deletes them from the
        incoming state dict (then every load lists them as missing keys, a
        ``strict=True`` load fails, and any key of the whole checkpoint with
        those names goes, not only this backbone's). Here, under ``prefix``
        only, the model's own buffers replace the checkpoint's or fill in for
        absent ones (a ``--to-mmpretrain`` export, another window size at
        fine-tuning): the result is upstream's, with no missing keys. The
        checkpoint's copies stay in saved files, where the pruning tools read
        the window size from them.
        """
        own = {prefix + name: buf for name, buf in self.named_buffers()
               if name.endswith(self.POSITION_BUFFERS)}
        for key in [k for k in state_dict if k.startswith(prefix)
                    and k.endswith(self.POSITION_BUFFERS) and k not in own]:
            del state_dict[key]  # a block this model does not have
        state_dict.update(own)

    def _build_stages(self, drop_path_rate, pad_small_map, pretrained_window_sizes):
        total = sum(self.depths)
        # torch.linspace(0, rate, total) without a tensor (meta-device safe)
        dpr = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.stages = ModuleList()
        dims = self.embed_dims
        for i, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
            stage = SwinBlockV2Sequence(
                embed_dims=dims, depth=depth, num_heads=heads,
                window_size=self.window_sizes[i], downsample=i > 0,
                downsample_cfg=dict(use_post_norm=True), drop_paths=dpr[:depth],
                block_cfgs=dict(ffn_ratio=self.arch_settings['mlp_ratio']),
                with_cp=False, pad_small_map=pad_small_map,
                extra_norm_every_n_blocks=self.extra_norm_every_n_blocks,
                pretrained_window_size=pretrained_window_sizes[i])
            self.stages.append(stage)
            dpr = dpr[depth:]
            dims = stage.out_channels

    def _install_rmoe(self, capacity_factor, top_k, noisy_gating, expert_types):
        n_collab = self.arch_settings['num_collab_experts']
        per_block = list(n_collab) if isinstance(n_collab, Sequence) \
            else [n_collab] * sum(self.depths)
        if len(per_block) != sum(self.depths):
            raise ValueError(f'num_collab_experts has {len(per_block)} entries, '
                             f'the arch has {sum(self.depths)} blocks')
        n_router = self.arch_settings.get('num_collab_router_experts')
        router_rows = list(n_router) if isinstance(n_router, Sequence) \
            else [n_router] * sum(self.depths)
        if len(router_rows) != sum(self.depths):
            raise ValueError(f'num_collab_router_experts has {len(router_rows)} '
                             f'entries, the arch has {sum(self.depths)} blocks')
        k = 0
        for stage in self.stages:
            for block in stage.blocks:
                dense = block.ffn
                drop = getattr(dense.dropout_layer, 'drop_prob', 0.)
                block.ffn = RMoE(
                    embed_dims=stage.out_channels,
                    hidden_dims=dense.feedforward_channels,
                    modalities=self.modalities, context=self.routing_context,
                    num_specialized=self.arch_settings['num_specialized_experts'],
                    num_collab=per_block[k], top_k=top_k,
                    capacity_factor=capacity_factor, noisy_gating=noisy_gating,
                    expert_types=expert_types, drop_path=drop,
                    num_collab_router=router_rows[k])
                k += 1

    def init_weights(self):
        super().init_weights()
        self.init_own_weights()

    def init_own_weights(self):
        """What ``init_weights`` gives this module's own parameters (the
        mask token, unless pretrained weights are loaded); the FSDP meta
        initialisation calls it too (``mmringmoe.engine.fsdp``)."""
        pretrained = isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained'
        if self.use_mask_token and not pretrained:
            trunc_normal_(self.mask_token, mean=0, std=.02)

    def train(self, mode: bool = True):
        # the parent freezes stages here but returns None; nn.Module returns self
        super().train(mode)
        return self

    # ---------------------------------------------------------------- forward
    def _check_input(self, modality, x):
        if modality not in self.patch_embed:
            raise ValueError(f'RingMoE: unknown modality {modality!r}; this model '
                             f'holds {list(self.modalities)}')
        c = self.in_channels[modality]
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != c:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"RingMoE: input for modality '{modality}' must be a 4D "
                             f'tensor of shape (B, {c}, H, W), got {got}')

    def _embed(self, modality, x, mask):
        self._check_input(modality, x)
        tokens, hw = self.patch_embed[modality](x)
        if mask is not None:
            if not self.use_mask_token:
                raise ValueError('a mask was given but the model has no mask token: '
                                 'build it with use_mask_token=True')
            if tuple(mask.shape) != (x.shape[0], *hw):
                raise ValueError(f"RingMoE: mask for modality '{modality}' must have "
                                 f'shape {(x.shape[0], *hw)} (one value per patch '
                                 f'token), got {tuple(mask.shape)}')
            w = mask.flatten(1).unsqueeze(-1).type_as(tokens)
            tokens = tokens * (1. - w) + self.mask_token.type_as(tokens) * w
        return tokens, hw

    def forward(self, x, modality: Optional[str] = None, mask=None):
        """Features of one modality, or of several in one shared pass.

        Args:
            x (Tensor | dict): ``(B, C_m, H, W)``, or ``{modality: tensor}``
                whose tensors share H and W.
            modality (str, optional): the modality of a tensor input
                (default: the first configured one).
            mask (Tensor | dict, optional): ``(B, H/p, W/p)`` token mask, or a
                dict of them, for masked image modeling.

        Returns:
            tuple[Tensor] | dict[str, tuple[Tensor]]: one map per ``out_indices``.
        """
        single = not isinstance(x, dict)
        inputs = {modality or self.modalities[0]: x} if single else x
        masks = ({next(iter(inputs)): mask} if single else mask) or {}
        if not inputs:
            raise ValueError('RingMoE: empty input dict')
        tokens, segments, hw, start = [], [], None, 0
        for m, img in inputs.items():
            t, hw_m = self._embed(m, img, masks.get(m))
            if hw is not None and hw_m != hw:
                raise ValueError('RingMoE: all modalities of one forward must share '
                                 f'the spatial size; got {hw} and {hw_m} ({m!r})')
            hw = hw_m
            tokens.append(t)
            segments.append((m, start, start + t.shape[0]))
            start += t.shape[0]
        x = torch.cat(tokens) if len(tokens) > 1 else tokens[0]
        # checkpointed blocks re-run during backward with the layout saved
        # for them by layout_context_fn
        self.routing_context.segments = segments
        x = self.drop_after_pos(x)

        outs = []
        for i, stage in enumerate(self.stages):
            if stage.downsample is not None:
                x, hw = stage.downsample(x, hw)
            for block in stage.blocks:
                if self.with_cp and x.requires_grad:
                    # the recomputation sees this forward's modality layout,
                    # even after later forwards (support/query, multi-view)
                    x = cp.checkpoint(block, x, hw, use_reentrant=False,
                                      context_fn=layout_context_fn)
                else:
                    x = block(x, hw)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs.append(out.view(-1, *hw, stage.out_channels)
                            .permute(0, 3, 1, 2).contiguous())
        if single:
            return tuple(outs)
        return {m: tuple(o[s:e] for o in outs) for m, s, e in segments}

    # ------------------------------------------------------------ MoE state
    def rmoe_layers(self) -> Dict[str, RMoE]:
        """``{'stages.i.blocks.j': RMoE}`` in block order (empty when dense)."""
        return {f'stages.{i}.blocks.{j}': b.ffn
                for i, s in enumerate(self.stages) for j, b in enumerate(s.blocks)
                if isinstance(b.ffn, RMoE)}

    def aux_loss(self) -> torch.Tensor:
        """Load-balance loss of the last forward (Eq. 4), summed over layers."""
        losses = [m.last_aux_loss for m in self.rmoe_layers().values()
                  if m.last_aux_loss is not None]
        if not losses:
            ref = next(self.parameters())
            return torch.zeros((), device=ref.device, dtype=torch.float32)
        return torch.stack(losses).sum()

    def dropped_tokens(self) -> int:
        """(token, choice) pairs dropped by expert capacity in the last forward."""
        return sum(m.last_dropped for m in self.rmoe_layers().values())

    def record_routing_stats(self, enable: bool = True):
        for m in self.rmoe_layers().values():
            m.record_stats = enable

    def reset_routing_stats(self):
        for m in self.rmoe_layers().values():
            m.reset_stats()

    def routing_stats(self) -> Dict[str, dict]:
        """Per block: tokens sent to each collaborative / specialized expert per modality."""
        return {name: deepcopy(m.stats) for name, m in self.rmoe_layers().items()}


def to_mmpretrain_state_dict(state_dict: Dict[str, torch.Tensor],
                             modality: str) -> Dict[str, torch.Tensor]:
    """Dense RingMoE state dict -> ``mmpretrain.SwinTransformerV2`` names.

    Keeps ``modality``'s patch embedding as ``patch_embed``; drops the other
    modalities' embeddings and the mask token.
    """
    prefix = f'patch_embed.{modality}.'
    if not any(k.startswith(prefix) for k in state_dict):
        raise ValueError(f'no patch embedding for modality {modality!r} in the state dict')
    if any('.ffn.collab_experts.' in k or '.ffn.shared_expert.' in k for k in state_dict):
        raise ValueError('a sparse RingMoE state dict cannot map onto SwinTransformerV2: '
                         'merge the experts first (tools/model_converters/merge_experts.py)')
    out = {}
    for k, v in state_dict.items():
        if k.startswith(prefix):
            out['patch_embed.' + k[len(prefix):]] = v
        elif not (k.startswith('patch_embed.') or k == 'mask_token'):
            out[k] = v
    return out
