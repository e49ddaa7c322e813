"""Geometric augmentations for rasters of any band count and dtype.

mmcv/mmpretrain resize through ``cv2.resize``, which drops the band axis of
single-band images, cannot take complex or int32 data, and is only reliable
up to 4 channels per call; these transforms keep ``(H, W, C)`` and the dtype.
mmcv's ``RandomFlip`` (``np.flip``) works for any band count and dtype but
flips no per-pixel map other than ``gt_seg_map``; :class:`RSRandomFlip` also
flips ``gt_power``, ``gt_depth_map`` and ``valid_mask``.
"""
from typing import Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, RandomFlip
from mmpretrain.datasets.transforms import RandomResizedCrop

from mmringmoe.registry import TRANSFORMS

_INTERP = dict(
    nearest=cv2.INTER_NEAREST,
    bilinear=cv2.INTER_LINEAR,
    bicubic=cv2.INTER_CUBIC,
    area=cv2.INTER_AREA,
    lanczos=cv2.INTER_LANCZOS4)
_CV2_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
#: per-pixel maps that move with the image, always nearest neighbour: labels,
#: depth, the SAR-L1 power target (nearest keeps each value a measured one and
#: the speckle statistics the normalisation was computed on) and the
#: valid-pixel mask (stays exactly True/False)
_SEG_KEYS = ('gt_seg_map', 'gt_depth_map', 'gt_power', 'valid_mask')


def crop_resize_transform(transform, top: int, left: int, crop_h: int,
                          crop_w: int, out_h: int, out_w: int):
    """Affine 6-tuple of a crop ``[top:top+crop_h, left:left+crop_w]``
    resized to ``out_h x out_w`` (pixel-corner convention, as GDAL), given the
    source's affine (rasterio order ``a, b, c, d, e, f``); None stays None.

    A pixel (r, c) of the output maps where the source point
    (top + r * crop_h / out_h, left + c * crop_w / out_w) does.
    """
    if transform is None:
        return None
    a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
    sx, sy = crop_w / out_w, crop_h / out_h
    return (a * sx, b * sy, a * left + b * top + c,
            d * sx, e * sy, d * left + e * top + f)


def flip_transform(transform, height: int, width: int, direction: str):
    """Affine of an image flipped ``'horizontal'``, ``'vertical'`` or
    ``'diagonal'`` (both), so every flipped pixel keeps its map coordinate."""
    if transform is None:
        return None
    t = tuple(float(v) for v in tuple(transform)[:6])
    if direction in ('horizontal', 'diagonal'):
        # output column c shows input column W - 1 - c
        t = crop_resize_transform(t, 0, width, 1, -width, 1, width)
    if direction in ('vertical', 'diagonal'):
        t = crop_resize_transform(t, height, 0, -height, 1, height, 1)
    return t


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
        if results.get('transform') is not None:
            results['transform'] = crop_resize_transform(
                results['transform'], top, left, th, tw, size[1], size[0])
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
        if results.get('transform') is not None:
            results['transform'] = crop_resize_transform(
                results['transform'], 0, 0, h, w, self.scale[1],
                self.scale[0])
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(scale={self.scale}, '
                f'interpolation={self.interpolation!r})')


@TRANSFORMS.register_module()
class RSRandomFlip(RandomFlip):
    """mmcv's ``RandomFlip`` that also flips the per-pixel maps.

    mmcv flips ``img``, ``gt_bboxes``, ``gt_keypoints`` and ``gt_seg_map``
    only; a power target or valid-pixel mask computed before the flip would
    silently stay unflipped. This flips every ``map_keys`` entry present with
    the same draw (``np.flip`` via ``mmcv.imflip``, any dtype), and updates
    the affine ``transform`` (:func:`flip_transform`) so every pixel keeps its
    map coordinate.

    Args:
        map_keys (sequence): ``(H, W[, C])`` maps flipped with the image.
            Defaults to ``('gt_depth_map', 'gt_power', 'valid_mask')``.
        Other args as ``mmcv.transforms.RandomFlip``.
    """

    def __init__(self, *args,
                 map_keys: Sequence[str] = ('gt_depth_map', 'gt_power',
                                            'valid_mask'),
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.map_keys = tuple(k for k in map_keys if k != 'gt_seg_map')

    def _flip(self, results: dict) -> None:
        h, w = results['img'].shape[:2]
        super()._flip(results)
        if results.get('transform') is not None:
            results['transform'] = flip_transform(
                results['transform'], h, w, results['flip_direction'])
        for key in self.map_keys:
            if results.get(key, None) is not None:
                results[key] = mmcv.imflip(
                    results[key], direction=results['flip_direction'])


__all__ = ['resize_bands', 'crop_resize_transform', 'flip_transform',
           'RSRandomResizedCrop', 'RSResize', 'RSRandomFlip']
