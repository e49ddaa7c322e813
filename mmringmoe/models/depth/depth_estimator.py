"""mmseg's ``DepthEstimator`` with the sparse backbone's balance loss."""
from mmseg.models import DepthEstimator

from mmringmoe.registry import MODELS
from ..moe_loss import moe_balance_loss


@MODELS.register_module()
class MoEDepthEstimator(DepthEstimator):
    """``DepthEstimator`` + ``moe_loss_weight * backbone.aux_loss()``.

    Also routes ``test_cfg.mode='slide'`` to sliding-window inference:
    mmseg 1.2.2's ``DepthEstimator.inference`` falls through to whole-image
    inference for that mode.
    """

    def __init__(self, *args, moe_loss_weight=0.001, **kwargs):
        super().__init__(*args, **kwargs)
        self.moe_loss_weight = moe_loss_weight

    def loss(self, inputs, data_samples):
        losses = super().loss(inputs, data_samples)
        losses.update(moe_balance_loss(self.backbone, weight=self.moe_loss_weight))
        return losses

    def inference(self, inputs, batch_img_metas):
        if self.test_cfg.get('mode', 'whole') == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        return super().inference(inputs, batch_img_metas)
