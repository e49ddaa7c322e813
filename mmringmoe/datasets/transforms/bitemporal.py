"""Loading and augmentation of bitemporal image pairs for change detection.

The two dates are stacked along the channel axis right after loading
(``img`` becomes ``H x W x 2C``), so every geometric transform of mmseg
(flip, resize, crop, rotate) moves both dates and the label together. Only the
photometric transforms need to see the dates separately; they live here.
"""
import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations, PhotoMetricDistortion

from mmringmoe.registry import TRANSFORMS


def _split_dates(img: np.ndarray):
    if img.ndim != 3 or img.shape[2] % 2:
        raise ValueError('a bitemporal image must be H x W x 2C (the two dates '
                         f'stacked along channels), got shape {img.shape}')
    half = img.shape[2] // 2
    return img[..., :half], img[..., half:]


@TRANSFORMS.register_module()
class LoadBitemporalImageFromFile(BaseTransform):
    """Read ``img_path`` (date A) and ``img_path2`` (date B) and stack them.

    Output ``img`` is ``H x W x 6`` (A's channels first) in RGB order, so the
    data preprocessor needs six means/stds and no BGR->RGB swap.
    """

    def __init__(self, to_float32=False, imdecode_backend='cv2',
                 backend_args=None):
        self.to_float32 = to_float32
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args

    def _read(self, path):
        try:
            data = fileio.get(path, backend_args=self.backend_args)
        except FileNotFoundError:
            raise FileNotFoundError(f'change detection image not found: {path}')
        img = mmcv.imfrombytes(data, flag='color', channel_order='rgb',
                               backend=self.imdecode_backend)
        if img is None:
            raise ValueError(f'could not decode image {path} (expected an '
                             '8-bit RGB raster)')
        return img

    def transform(self, results):
        img_a = self._read(results['img_path'])
        img_b = self._read(results['img_path2'])
        if img_a.shape != img_b.shape:
            raise ValueError(
                'the two dates of a pair must have the same shape, got '
                f'{img_a.shape} ({results["img_path"]}) and {img_b.shape} '
                f'({results["img_path2"]})')
        img = np.concatenate([img_a, img_b], axis=2)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class LoadChangeLabel(LoadAnnotations):
    """Load a change mask as 0 (unchanged) / 1 (changed), ignore 255 kept.

    Accepts both conventions found on disk: 0/1 masks (mmseg's ``levircd.py``
    slicer) and 0/255 masks (original LEVIR-CD, CDD ``OUT``; CDD's JPEG masks
    carry compression noise, hence the threshold rather than ``== 255``).
    """

    def __init__(self, threshold=128, **kwargs):
        super().__init__(**kwargs)
        self.threshold = threshold

    def _load_seg_map(self, results):
        super()._load_seg_map(results)
        label = results['gt_seg_map']
        if label.ndim == 3:
            label = label[..., 0]
        if label.max() > 1:
            label = (label >= self.threshold).astype(np.uint8)
        results['gt_seg_map'] = np.ascontiguousarray(label)


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
