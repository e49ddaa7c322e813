"""A backbone kept frozen for few-shot learning (paper B.5.8)."""
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmringmoe.registry import MODELS


class FrozenFeatureExtractor(BaseModule):
    """Wraps a backbone whose weights never change (RingMoE stays fixed in
    training and testing): no gradients, always in eval mode (no dropout /
    drop-path / noisy gating), features returned detached.

    ``feat_indices`` picks backbone outputs; several are resized to the first
    one's resolution and concatenated.
    """

    def __init__(self, backbone, feat_indices=(-1, ), frozen=True,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.feat_indices = tuple(feat_indices)
        self.frozen = frozen
        if frozen:
            for p in self.backbone.parameters():
                p.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode=True):
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def forward(self, x):
        with torch.set_grad_enabled(not self.frozen and torch.is_grad_enabled()):
            feats = self.backbone(x)
        feats = [feats[i] for i in self.feat_indices]
        size = feats[0].shape[-2:]
        feats = [feats[0]] + [
            F.interpolate(f, size=size, mode='bilinear', align_corners=False)
            for f in feats[1:]]
        out = torch.cat(feats, dim=1)
        return out.detach() if self.frozen else out
