"""UperNet segmentors on RingMoE (Appendix B.5.2-B.5.3).

``RingMoEEncoderDecoder`` is mmseg's ``EncoderDecoder`` plus the
load-balance loss of a sparse backbone. ``DualModalityEncoderDecoder``
(B.5.3) runs RingMoE-Opt on the optical image and RingMoE-SAR-L2 on its SAR
partner, concatenates the two feature maps of every level, fuses them with a
3x3 then a 1x1 convolution back to the optical width, and hands the fused
pyramid to the UperNet head.

The pair arrives as one stacked tensor (optical channels first; see
``mmringmoe.LoadOptSARPair``) so mmseg's geometric augmentations keep the
two images aligned; ``modality_channels`` splits it again.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS as SEG_MODELS
from torch import Tensor

from mmringmoe.registry import MODELS
from ..moe_loss import log_trainable, moe_balance_loss


def _out_channels(backbone) -> List[int]:
    chans = list(backbone.num_out_channels)
    return [chans[i] for i in backbone.out_indices]


@MODELS.register_module()
class RingMoEEncoderDecoder(EncoderDecoder):
    """mmseg ``EncoderDecoder`` adding ``loss_moe_balance`` (weight
    ``moe_aux_weight``) when the backbone is sparse."""

    def __init__(self, *args, moe_aux_weight: float = 0.001, **kwargs):
        super().__init__(*args, **kwargs)
        self.moe_aux_weight = moe_aux_weight

    def init_weights(self):
        super().init_weights()
        # frozen_stages and Convpass freeze on train(); count what will train
        self.train(self.training)
        log_trainable(self, type(self).__name__)

    def _moe_backbones(self) -> Tuple[nn.Module, ...]:
        return (self.backbone, )

    def loss(self, inputs: Tensor, data_samples) -> dict:
        losses = super().loss(inputs, data_samples)
        losses.update(
            moe_balance_loss(*self._moe_backbones(),
                             weight=self.moe_aux_weight))
        return losses


@MODELS.register_module()
class DualModalityEncoderDecoder(RingMoEEncoderDecoder):
    """Optical + SAR-L2 segmentor of B.5.3.

    Args:
        backbone (dict): RingMoE-Opt config.
        sar_backbone (dict): RingMoE-SAR-L2 config; its stage widths must
            match the optical backbone's.
        modality_channels (Sequence[tuple]): ``(modality, channels)`` of the
            stacked input, in order. Defaults to opt 3 then sar_l2 1.
        fusion_norm_cfg (dict): norm after the 3x3 fusion conv.
        Other args as ``mmseg.models.EncoderDecoder``.
    """

    def __init__(self,
                 backbone: dict,
                 sar_backbone: dict,
                 decode_head: dict,
                 modality_channels: Sequence[Tuple[str, int]] = (('opt', 3),
                                                                 ('sar_l2',
                                                                  1)),
                 fusion_norm_cfg: dict = dict(type='SyncBN',
                                              requires_grad=True),
                 **kwargs):
        super().__init__(backbone=backbone, decode_head=decode_head, **kwargs)
        self.sar_backbone = SEG_MODELS.build(sar_backbone)
        self.modality_channels = tuple((m, int(c))
                                       for m, c in modality_channels)
        if [m for m, _ in self.modality_channels] != ['opt', 'sar_l2']:
            raise ValueError('modality_channels must list opt then sar_l2, '
                             f'got {self.modality_channels}')
        opt_ch = _out_channels(self.backbone)
        sar_ch = _out_channels(self.sar_backbone)
        if len(opt_ch) != len(sar_ch):
            raise ValueError(f'optical backbone gives {len(opt_ch)} levels, '
                             f'SAR backbone {len(sar_ch)}')
        self.fusion = nn.ModuleList(
            nn.Sequential(
                ConvModule(co + cs, co, 3, padding=1, norm_cfg=fusion_norm_cfg,
                           act_cfg=dict(type='ReLU')),
                nn.Conv2d(co, co, 1)) for co, cs in zip(opt_ch, sar_ch))

    def _moe_backbones(self):
        return (self.backbone, self.sar_backbone)

    def split_modalities(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        expected = sum(c for _, c in self.modality_channels)
        if inputs.dim() != 4 or inputs.shape[1] != expected:
            raise ValueError(
                f'DualModalityEncoderDecoder expects (B, {expected}, H, W) '
                f'stacked {self.modality_channels}, got {tuple(inputs.shape)}')
        c_opt = self.modality_channels[0][1]
        return inputs[:, :c_opt], inputs[:, c_opt:]

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        opt, sar = self.split_modalities(inputs)
        f_opt = self.backbone(opt, modality='opt')
        f_sar = self.sar_backbone(sar, modality='sar_l2')
        x = [fuse(torch.cat([a, b], dim=1))
             for fuse, a, b in zip(self.fusion, f_opt, f_sar)]
        if self.with_neck:
            x = self.neck(x)
        return x


__all__ = ['RingMoEEncoderDecoder', 'DualModalityEncoderDecoder']
