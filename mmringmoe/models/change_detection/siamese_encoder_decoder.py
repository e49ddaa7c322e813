"""Siamese encoder-decoder: one backbone shared by both dates (paper B.5.6)."""
import torch
from mmseg.models import EncoderDecoder

from mmringmoe.registry import MODELS


def add_moe_balance_loss(losses, backbone, weight):
    """Add the sparse backbone's load-balance loss of the last forward.

    Dense (merged KS/KA/KC) backbones return 0 and add nothing; a frozen
    backbone's loss carries no gradient and is skipped.
    """
    aux_loss = getattr(backbone, 'aux_loss', None)
    if weight <= 0 or aux_loss is None:
        return losses
    value = aux_loss()
    if torch.is_tensor(value) and value.requires_grad:
        losses['loss_moe_balance'] = weight * value
    return losses


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
        return add_moe_balance_loss(losses, self.backbone,
                                    self.moe_loss_weight)

