"""Siamese encoder-decoder: one backbone shared by both dates (paper B.5.6)."""
import torch
from mmseg.models import EncoderDecoder

from mmringmoe.registry import MODELS
from ..moe_loss import moe_balance_loss


@MODELS.register_module()
class SiameseEncoderDecoder(EncoderDecoder):
    """EncoderDecoder for image pairs stacked along channels.

    ``inputs`` is ``(B, 2C, H, W)`` (date A's channels first, as
    ``LoadBitemporalImageFromFile`` / ``ConcatCDInput`` produce). Both dates
    go through the same backbone (and neck) in one batch of ``2B``; the
    decode head receives ``(feats_a, feats_b)`` and does the bitemporal
    fusion. mmseg's whole/slide inference, padding and post-processing are
    reused unchanged because they only see the stacked tensor.
    """

    def __init__(self, *args, moe_loss_weight=0.001, **kwargs):
        super().__init__(*args, **kwargs)
        self.moe_loss_weight = moe_loss_weight

    def extract_feat(self, inputs):
        if inputs.shape[1] % 2:
            raise ValueError('SiameseEncoderDecoder expects the two dates '
                             'stacked along channels (2C channels), got '
                             f'{inputs.shape[1]} channels')
        img_a, img_b = torch.chunk(inputs, 2, dim=1)
        num = inputs.shape[0]
        feats = self.backbone(torch.cat([img_a, img_b], dim=0))
        if self.with_neck:
            feats = self.neck(feats)
        return ([f[:num] for f in feats], [f[num:] for f in feats])

    def loss(self, inputs, data_samples):
        losses = super().loss(inputs, data_samples)
        losses.update(moe_balance_loss(self.backbone, weight=self.moe_loss_weight))
        return losses

