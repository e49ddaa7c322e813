"""mmdet detectors that add the RingMoE load-balance loss when sparse.

Sparse backbones (RingMoE-EP, the 6.5B single-modality model) keep their
routers trainable downstream, so ``loss_moe_balance`` (Eq. 4, weight 0.001,
as in the classifiers and segmentors of this package) joins the detection
losses. With a dense (KS/KA/KC) backbone the losses are exactly mmdet's.
Faster R-CNN also carries mmrotate's Oriented R-CNN (mmrotate builds it as
``mmdet.FasterRCNN`` with oriented heads).
"""
from mmdet.models.detectors import YOLOX, FasterRCNN

from mmringmoe.registry import MODELS
from ..moe_loss import moe_balance_loss


class _MoEBalanceLoss:

    def __init__(self, *args, moe_aux_weight: float = 0.001, **kwargs):
        super().__init__(*args, **kwargs)
        self.moe_aux_weight = moe_aux_weight

    def loss(self, batch_inputs, batch_data_samples) -> dict:
        losses = super().loss(batch_inputs, batch_data_samples)
        losses.update(moe_balance_loss(self.backbone,
                                       weight=self.moe_aux_weight))
        return losses


@MODELS.register_module()
class RingMoEFasterRCNN(_MoEBalanceLoss, FasterRCNN):
    """mmdet ``FasterRCNN`` + ``loss_moe_balance`` for sparse backbones."""


@MODELS.register_module()
class RingMoEYOLOX(_MoEBalanceLoss, YOLOX):
    """mmdet ``YOLOX`` + ``loss_moe_balance`` for sparse backbones."""


__all__ = ['RingMoEFasterRCNN', 'RingMoEYOLOX']
