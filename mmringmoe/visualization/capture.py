"""Keep a display image of every sample as its loader read it.

:class:`CaptureDisplayImage` goes right after the image loader of a test
pipeline (``RSVisualizationHook`` inserts it; configs need not name it).
It turns the loaded array -- the file's own dtype and bands, before any
normalisation or resizing -- into display images (:func:`display_image`)
and puts them in ``results['display']``, so the picture is made from the
sample's own array at ``ori_shape`` instead of re-reading the file as 8-bit
RGB.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmringmoe.registry import TRANSFORMS
from .display import PERCENTILES, DisplayImage, display_image

#: keys the transform writes (the hook adds them to the pack's meta_keys)
DISPLAY_KEYS = ('display', 'display_valid_mask')


@TRANSFORMS.register_module()
class CaptureDisplayImage(BaseTransform):
    """``results['display']``: tuple of :class:`DisplayImage` (uint8
    ``(H, W, 3)`` + legend) and ``results['display_valid_mask']`` (``(H, W)``
    bool or None).

    Args:
        layout (str): ``'single'`` (one image of ``modality``),
            ``'bitemporal'`` (channels split in two dates, A first, as
            ``LoadBitemporalImageFromFile`` stacks them) or ``'modalities'``
            (split by ``results['modality_channels']``, as ``LoadOptSARPair``
            stacks them). Defaults to ``'single'``.
        modality (str, optional): Modality of the image (or of each date);
            None: ``results['modality']``, else inferred from the band count.
        bgr (bool): The loader gave BGR (mmcv ``LoadImageFromFile``): show
            bands 2, 1, 0. Defaults to False.
        norm_stats (dict, optional): ``{modality: (mean, std)}`` a loader
            already applied (``LoadOptSARPair`` with ``stats_file``); undone
            before display, so dB and Pauli see the measured values.
        percentiles (tuple): Display stretch percentiles.
    """

    def __init__(self, layout: str = 'single',
                 modality: Optional[str] = None, bgr: bool = False,
                 norm_stats: Optional[Dict[str, Tuple[Sequence[float],
                                                      Sequence[float]]]] = None,
                 percentiles: Sequence[float] = PERCENTILES):
        if layout not in ('single', 'bitemporal', 'modalities'):
            raise ValueError(f'Unknown layout {layout!r}')
        self.layout, self.modality, self.bgr = layout, modality, bgr
        self.norm_stats = dict(norm_stats or {})
        self.percentiles = tuple(percentiles)

    def _show(self, img, modality, valid):
        return display_image(img, modality, valid,
                             percentiles=self.percentiles)

    def transform(self, results: dict) -> dict:
        img = np.asarray(results['img'])
        if img.ndim == 2:
            img = img[..., None]
        valid = results.get('valid_mask')
        modality = self.modality or results.get('modality')
        if self.layout == 'bitemporal':
            c = img.shape[-1] // 2
            displays = tuple(self._show(x, modality, valid)
                             for x in (img[..., :c], img[..., c:]))
        elif self.layout == 'modalities' and results.get('modality_channels'):
            displays, start = [], 0
            for m, c in results['modality_channels']:
                part = img[..., start:start + c].astype(np.float64)
                start += c
                if m in self.norm_stats:
                    mean, std = (np.asarray(v, np.float64)
                                 for v in self.norm_stats[m])
                    part = part * std + mean
                displays.append(self._show(part, m, valid))
            displays = tuple(displays)
        else:
            if self.bgr and img.shape[-1] == 3:
                img = img[..., ::-1]
            displays = (self._show(img, modality, valid), )
        results['display'] = displays
        results['display_valid_mask'] = None if valid is None else \
            np.asarray(valid, bool)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(layout={self.layout!r}, '
                f'modality={self.modality!r}, bgr={self.bgr})')


__all__ = ['CaptureDisplayImage', 'DISPLAY_KEYS', 'DisplayImage']
