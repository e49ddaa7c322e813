"""Loading and augmentation of bitemporal image pairs for change detection.

The two dates are stacked along the channel axis right after loading
(``img`` becomes ``H x W x 2C``), so every geometric transform of mmseg
(flip, resize, crop, rotate) moves both dates and the label together. Only the
photometric transforms need to see the dates separately; they live here.
"""
import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations, PhotoMetricDistortion

from mmringmoe.registry import TRANSFORMS
from ..label_conventions import (check_convention, load_binary_label,
                                 nodata_to_ignore)
from .raster_io import LoadRSImageFromFile


def _split_dates(img: np.ndarray):
    if img.ndim != 3 or img.shape[2] % 2:
        raise ValueError('a bitemporal image must be H x W x 2C (the two dates '
                         f'stacked along channels), got shape {img.shape}')
    half = img.shape[2] // 2
    return img[..., :half], img[..., half:]


@TRANSFORMS.register_module()
class LoadBitemporalImageFromFile(BaseTransform):
    """Read ``img_path`` (date A) and ``img_path2`` (date B) and stack them.

    Each date is read by ``LoadRSImageFromFile`` (the reader of
    ``compute_rs_stats.py``): file band order (RGB for an RGB PNG, no BGR
    swap), the file's dtype, and its band count checked against
    ``modality`` / ``expected_channels`` (a grey or 16-bit date is refused
    with its name instead of being converted to 8-bit RGB). Output ``img`` is
    ``H x W x 2C`` (A's bands first), so the data preprocessor needs 2C
    means/stds and no BGR->RGB swap.

    When the loader reports ``valid_mask`` (declared nodata, mask band, NaN)
    for the dates, ``results['valid_mask']`` is their AND: a pixel is valid
    only if it is valid on both dates.

    Args:
        modality (str): modality of both dates. Defaults to ``'opt'``.
        expected_channels (int, optional): band count per date (default: the
            modality's).
        to_float32 (bool): cast to float32. Defaults to False.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self, modality='opt', expected_channels=None,
                 to_float32=False, backend_args=None, **kwargs):
        if 'imdecode_backend' in kwargs:
            kwargs.pop('imdecode_backend')  # old argument: files go to rasterio
        if kwargs:
            raise TypeError(f'unexpected arguments {sorted(kwargs)}')
        self.modality = modality
        self.expected_channels = expected_channels
        self.to_float32 = to_float32
        self.backend_args = backend_args
        self.loader = LoadRSImageFromFile(
            modality=modality, expected_channels=expected_channels,
            backend_args=backend_args)

    def _read(self, path):
        if not fileio.exists(path, backend_args=self.backend_args):
            raise FileNotFoundError(f'change detection image not found: {path}')
        return self.loader(dict(img_path=path))

    def transform(self, results):
        a = self._read(results['img_path'])
        b = self._read(results['img_path2'])
        img_a, img_b = a['img'], b['img']
        if img_a.shape != img_b.shape or img_a.dtype != img_b.dtype:
            raise ValueError(
                'the two dates of a pair must have the same shape and dtype, '
                f'found {img_a.shape} {img_a.dtype} ({results["img_path"]}) '
                f'and {img_b.shape} {img_b.dtype} ({results["img_path2"]})')
        img = np.concatenate([img_a, img_b], axis=2)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        for key in ('crs', 'transform', 'nodata'):
            if key in a:
                results[key] = a[key]
        masks = [d['valid_mask'] for d in (a, b) if 'valid_mask' in d]
        if masks:
            results['valid_mask'] = np.logical_and.reduce(masks)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(modality={self.modality!r}, '
                f'expected_channels={self.expected_channels}, '
                f'to_float32={self.to_float32})')


@TRANSFORMS.register_module()
class LoadChangeLabel(LoadAnnotations):
    """Load a change mask as 0 (unchanged) / 1 (changed) / ``ignore_index``.

    The file's value convention is explicit (``label_convention``, see
    :mod:`mmringmoe.datasets.label_conventions`): ``'0/1'`` (mmseg's
    ``levircd.py`` slicer), ``'0/255'`` (original LEVIR-CD), ``'0/1/255'``
    (255 = ignore), ``'0/255-jpeg'`` (CDD ``OUT``: JPEG noise, split at
    ``threshold``) or ``'auto'`` (detected per file; a file that fits two
    conventions, e.g. values {0, 255} in a PNG, is refused). A file whose
    values do not fit the convention is refused with one line naming it.

    With ``nodata_to_ignore`` (default) the pixels that are invalid on
    either date (``results['valid_mask']`` False) become ``ignore_index``.

    Args:
        label_convention (str): Defaults to ``'auto'``.
        threshold (int): ``'0/255-jpeg'`` split. Defaults to 128.
        ignore_index (int): Defaults to 255.
        nodata_to_ignore (bool): Defaults to True.
        Other args as ``mmseg.datasets.transforms.LoadAnnotations``.
    """

    def __init__(self, label_convention='auto', threshold=128,
                 ignore_index=255, nodata_to_ignore=True, **kwargs):
        super().__init__(**kwargs)
        self.label_convention = check_convention(label_convention,
                                                 binary_only=True)
        self.threshold = threshold
        self.ignore_index = ignore_index
        self.nodata_to_ignore = nodata_to_ignore

    def _load_seg_map(self, results):
        path = results['seg_map_path']
        label = load_binary_label(path, self.label_convention,
                                  self.ignore_index, self.threshold,
                                  self.backend_args)
        if self.nodata_to_ignore:
            label = nodata_to_ignore(label, results, self.ignore_index)
        results['gt_seg_map'] = np.ascontiguousarray(label)
        results['seg_fields'].append('gt_seg_map')

    def __repr__(self):
        return (f'{self.__class__.__name__}(label_convention='
                f'{self.label_convention!r}, threshold={self.threshold}, '
                f'ignore_index={self.ignore_index})')


@TRANSFORMS.register_module()
class BitemporalPhotoMetricDistortion(PhotoMetricDistortion):
    """mmseg's colour jitter applied to each date of a stacked pair.

    ``same_for_both_dates=False`` (default) draws fresh jitter per date, as
    BIT does (its ColorJitter is re-sampled per image), which simulates
    illumination differences between acquisitions; ``True`` replays the same
    random draws on date B.
    """

    def __init__(self, same_for_both_dates=False, **kwargs):
        super().__init__(**kwargs)
        self.same_for_both_dates = same_for_both_dates

    def _jitter(self, img):
        # PhotoMetricDistortion's hue/saturation assume BGR; our pairs are RGB
        out = super().transform({'img': np.ascontiguousarray(img[..., ::-1])})
        return out['img'][..., ::-1]

    def transform(self, results):
        if results['img'].dtype != np.uint8:
            raise ValueError(
                f'{type(self).__name__} on {results.get("img_path")!r}: found '
                f'{results["img"].dtype}; expected 8-bit images (its '
                'brightness / contrast / hue steps are on the 0..255 scale).')
        img_a, img_b = _split_dates(results['img'])
        state = np.random.get_state()
        img_a = self._jitter(img_a)
        if self.same_for_both_dates:
            np.random.set_state(state)
        img_b = self._jitter(img_b)
        results['img'] = np.ascontiguousarray(
            np.concatenate([img_a, img_b], axis=2))
        return results


@TRANSFORMS.register_module()
class BitemporalGaussianBlur(BaseTransform):
    """Gaussian blur with one random sigma shared by both dates (as in BIT)."""

    def __init__(self, prob=0.5, sigma_range=(0.1, 2.0)):
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob
        self.sigma_range = sigma_range

    def transform(self, results):
        if np.random.rand() >= self.prob:
            return results
        sigma = float(np.random.uniform(*self.sigma_range))
        dates = _split_dates(results['img'])
        dtype = results['img'].dtype
        blurred = [cv2.GaussianBlur(np.ascontiguousarray(d), (0, 0), sigma)
                   for d in dates]
        blurred = [b[..., None] if b.ndim == 2 else b for b in blurred]
        results['img'] = np.concatenate(blurred, axis=2).astype(dtype)
        return results
