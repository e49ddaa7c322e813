"""Scene classifier of Appendix B.5.1: RingMoE features, linear head."""
from mmpretrain.models.classifiers import ImageClassifier

from mmringmoe.registry import MODELS
from ..moe_loss import log_trainable, moe_balance_loss


@MODELS.register_module()
class RingMoEImageClassifier(ImageClassifier):
    """mmpretrain ``ImageClassifier`` adding ``loss_moe_balance`` (weight
    ``moe_aux_weight``) when the backbone is sparse (RingMoE-Opt 6.5B,
    RingMoE-EP 4.3B)."""

    def __init__(self, *args, moe_aux_weight: float = 0.001, **kwargs):
        super().__init__(*args, **kwargs)
        self.moe_aux_weight = moe_aux_weight

    def init_weights(self):
        super().init_weights()
        # frozen_stages and Convpass freeze on train(); count what will train
        self.train(self.training)
        log_trainable(self, type(self).__name__)

    def loss(self, inputs, data_samples) -> dict:
        losses = super().loss(inputs, data_samples)
        losses.update(moe_balance_loss(self.backbone,
                                       weight=self.moe_aux_weight))
        return losses


__all__ = ['RingMoEImageClassifier']
