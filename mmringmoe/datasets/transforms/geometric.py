"""Geometric augmentations for rasters of any band count and dtype.

mmcv/mmpretrain resize through ``cv2.resize``, which drops the band axis of
single-band images, cannot take complex or int32 data, and is only reliable
up to 4 channels per call; these transforms keep ``(H, W, C)`` and the dtype.
Flips need nothing special: mmcv's ``RandomFlip`` (``np.flip``) already works
for any band count and dtype.
"""
from typing import Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.datasets.transforms import RandomResizedCrop

from mmringmoe.registry import TRANSFORMS

_INTERP = dict(
    nearest=cv2.INTER_NEAREST,
    bilinear=cv2.INTER_LINEAR,
    bicubic=cv2.INTER_CUBIC,
    area=cv2.INTER_AREA,
    lanczos=cv2.INTER_LANCZOS4)
_CV2_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
_SEG_KEYS = ('gt_seg_map', 'gt_depth_map', 'gt_power')


def resize_bands(img: np.ndarray, size: Tuple[int, int],
                 interpolation: str = 'bilinear') -> np.ndarray:
    """Resize ``(H, W[, C])`` to ``size = (w, h)`` keeping shape rank and dtype.

    Integer results are rounded and clipped to the dtype's range.
    """
    w, h = int(size[0]), int(size[1])
    if np.iscomplexobj(img):
        return (resize_bands(img.real, size, interpolation) +
                1j * resize_bands(img.imag, size, interpolation)).astype(
                    img.dtype)
    flag = _INTERP[interpolation]
    squeeze = img.ndim == 2
    x = img[..., None] if squeeze else img
    work = x if x.dtype.type in _CV2_DTYPES else x.astype(np.float64)
    if work.dtype == np.bool_:
        work = work.astype(np.uint8)
    out = np.empty((h, w, x.shape[2]), dtype=work.dtype)
    for c0 in range(0, x.shape[2], 4):
        part = np.ascontiguousarray(work[..., c0:c0 + 4])
        res = cv2.resize(part, (w, h), interpolation=flag)
        out[..., c0:c0 + 4] = res.reshape(h, w, -1)
    if out.dtype != x.dtype:
        if x.dtype.kind in 'iu':
            info = np.iinfo(x.dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        out = out.astype(x.dtype)
    return out[..., 0] if squeeze else out


@TRANSFORMS.register_module()
class RSRandomResizedCrop(RandomResizedCrop):
    """mmpretrain's ``RandomResizedCrop`` for any band count and dtype.

    Same crop sampling (``crop_ratio_range``, ``aspect_ratio_range``); the
    crop and resize keep ``(H, W, C)`` and the dtype (int16 SAR stays int16).
    Maps in ``seg_keys`` (segmentation labels, depth, power targets) get the
    same crop with nearest-neighbour resizing.
    """

    def __init__(self, *args, seg_keys: Sequence[str] = _SEG_KEYS, **kwargs):
        super().__init__(*args, **kwargs)
        self.seg_keys = tuple(seg_keys)

    def transform(self, results: dict) -> dict:
        img = results['img']
        top, left, th, tw = self.rand_crop_params(img)
        size = (self.scale[1], self.scale[0])
        results['img'] = resize_bands(img[top:top + th, left:left + tw], size,
                                      self.interpolation)
        for key in self.seg_keys:
            if key in results and results[key] is not None:
                results[key] = resize_bands(
                    results[key][top:top + th, left:left + tw], size,
                    'nearest')
        results['img_shape'] = results['img'].shape[:2]
        return results


@TRANSFORMS.register_module()
class RSResize(BaseTransform):
    """Resize to a fixed ``scale`` = (w, h) for any band count and dtype.

    Args:
        scale (int | tuple): Output (w, h); an int gives a square.
        interpolation (str): For ``img``. Defaults to ``'bilinear'``.
        seg_keys (sequence): Maps resized with nearest neighbour.
    """

    def __init__(self, scale: Union[int, Tuple[int, int]],
                 interpolation: str = 'bilinear',
                 seg_keys: Sequence[str] = _SEG_KEYS):
        self.scale = (scale, scale) if isinstance(scale, int) else tuple(scale)
        if interpolation not in _INTERP:
            raise ValueError(f'interpolation must be one of {tuple(_INTERP)}')
        self.interpolation = interpolation
        self.seg_keys = tuple(seg_keys)

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        results['img'] = resize_bands(results['img'], self.scale,
                                      self.interpolation)
        for key in self.seg_keys:
            if key in results and results[key] is not None:
                results[key] = resize_bands(results[key], self.scale,
                                            'nearest')
        results['img_shape'] = results['img'].shape[:2]
        results['scale_factor'] = (self.scale[0] / w, self.scale[1] / h)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(scale={self.scale}, '
                f'interpolation={self.interpolation!r})')


__all__ = ['resize_bands', 'RSRandomResizedCrop', 'RSResize']
