"""Batches episodes: stacks every input field and normalises the images."""
import torch
from mmengine.model import BaseDataPreprocessor

from mmringmoe.registry import MODELS


@MODELS.register_module()
class EpisodeDataPreProcessor(BaseDataPreprocessor):
    """``inputs`` is a dict of per-episode tensors (as collated by
    ``pseudo_collate``: a dict of lists). Every field is stacked along a new
    episode axis; the fields in ``image_keys`` are converted to float and
    normalised with ``mean`` / ``std`` (optionally BGR -> RGB first, since
    mmcv loads BGR)."""

    def __init__(self, mean=(123.675, 116.28, 103.53),
                 std=(58.395, 57.12, 57.375), bgr_to_rgb=True,
                 image_keys=('support', 'query'), non_blocking=False):
        super().__init__(non_blocking)
        self.register_buffer('mean', torch.tensor(mean).view(-1, 1, 1), False)
        self.register_buffer('std', torch.tensor(std).view(-1, 1, 1), False)
        self.bgr_to_rgb = bgr_to_rgb
        self.image_keys = tuple(image_keys)

    def forward(self, data, training=False):
        data = self.cast_data(data)
        inputs = {}
        for key, value in data['inputs'].items():
            value = torch.stack(list(value)) if isinstance(
                value, (list, tuple)) else value
            if key in self.image_keys:
                if self.bgr_to_rgb and value.shape[-3] == 3:
                    value = value.flip(-3)
                value = (value.float() - self.mean) / self.std
            inputs[key] = value
        return dict(inputs=inputs, data_samples=data.get('data_samples'))
