"""1-shot segmentation by prototypes (paper B.5.8): masked average pooling
of the support features into foreground / background prototypes, cosine
similarity of every query feature to them."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel

from mmringmoe.registry import MODELS
from .frozen_backbone import FrozenFeatureExtractor


def resize_mask_to(mask, size):
    """(B, H, W) float mask -> (B, h, w) soft mask: area average when
    shrinking (``adaptive_avg_pool2d``, so no pixel of the mask is skipped),
    bilinear when growing."""
    size = tuple(int(v) for v in size)
    if tuple(mask.shape[-2:]) == size:
        return mask
    if mask.shape[-2] >= size[0] and mask.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(mask[:, None], size)[:, 0]
    return F.interpolate(mask[:, None], size=size, mode='bilinear',
                         align_corners=False)[:, 0]


def masked_average_pooling(feats, mask, allow_empty=False):
    """Mean feature over the pixels where ``mask`` is 1.

    Args:
        feats: (B, C, h, w) features.
        mask: (B, H, W) 0/1 mask at image resolution. It is brought to
            (h, w) by area averaging (``adaptive_avg_pool2d``): each feature
            cell is weighted by the share of its pixels in the mask, so every
            cell that holds part of an object keeps a positive weight. (A
            bilinear resize samples 2 x 2 pixels per cell: at stride 8 an
            object of 6 x 6 px could fall between samples and vanish from
            the prototype.) A mask smaller than the features is upsampled
            bilinearly.
        allow_empty: return a zero vector instead of raising for a sample
            whose mask has no positive pixel.
    Returns:
        (B, C) prototypes.
    """
    if mask.dim() != 3 or feats.dim() != 4 or mask.shape[0] != feats.shape[0]:
        raise ValueError(f'expected feats (B,C,h,w) and mask (B,H,W), got '
                         f'{tuple(feats.shape)} and {tuple(mask.shape)}')
    mask = mask.float()
    empty = mask.flatten(1).sum(1) == 0
    if empty.any() and not allow_empty:
        raise ValueError(
            'masked average pooling: the support mask of sample(s) '
            f'{empty.nonzero().flatten().tolist()} has no foreground pixel; '
            'a 1-shot episode needs the class visible in its support image')
    mask = resize_mask_to(mask, feats.shape[-2:])
    weight = mask[:, None]
    return (feats * weight).sum((2, 3)) / weight.sum((2, 3)).clamp(min=1e-5)


@MODELS.register_module()
class PrototypeFewShotSegmentor(BaseModel):
    """Frozen backbone -> trainable 1x1 projection -> prototype matching.

    Args:
        feat_indices: backbone levels concatenated (at the first one's
            resolution); mid-level features, as PANet/PFENet use.
        in_channels: their total width.
        proj_channels: width of the learned projection.
        scale: temperature multiplying the cosine similarities.
    """

    def __init__(self, backbone, feat_indices=(1, 2), in_channels=2688,
                 proj_channels=256, scale=20., dropout=0.1, frozen=True,
                 ignore_index=255, data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor or dict(
            type='mmringmoe.EpisodeDataPreProcessor'), init_cfg=init_cfg)
        self.extractor = FrozenFeatureExtractor(backbone, feat_indices, frozen)
        self.proj = nn.Sequential(
            nn.Conv2d(in_channels, proj_channels, 1), nn.ReLU(inplace=True),
            nn.Dropout2d(dropout))
        self.scale = scale
        self.ignore_index = ignore_index

    def _logits(self, query, support, support_mask):
        fq = self.proj(self.extractor(query))
        fs = self.proj(self.extractor(support))
        valid = support_mask != self.ignore_index
        fg = masked_average_pooling(fs, (support_mask == 1) & valid)
        bg = masked_average_pooling(fs, (support_mask == 0) & valid,
                                    allow_empty=True)
        sims = [F.cosine_similarity(fq, p[:, :, None, None], dim=1)
                for p in (bg, fg)]
        logits = self.scale * torch.stack(sims, dim=1)
        return F.interpolate(logits, size=query.shape[-2:], mode='bilinear',
                             align_corners=False)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        logits = self._logits(inputs['query'], inputs['support'],
                              inputs['support_mask'])
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            target = torch.stack([ds.gt_mask for ds in data_samples]).to(
                logits.device).long()
            return dict(loss_ce=F.cross_entropy(
                logits, target, ignore_index=self.ignore_index))
        if mode == 'predict':
            pred = logits.argmax(dim=1)
            for p, ds in zip(pred, data_samples):
                ds.pred_mask = p.detach()
            return data_samples
        raise ValueError(f'invalid mode {mode!r}')
