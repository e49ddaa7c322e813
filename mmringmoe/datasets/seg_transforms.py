"""Loading for the segmentation experiments (Appendix B.5.2-B.5.3).

Images go through the pretraining loaders (``LoadRSImageFromFile``,
``LoadComplexSAR``); this module adds what segmentation needs on top:
checked label maps, one-hot label rasters, and optical/SAR pairs.

Pairs are stacked along the channel axis (optical first), so every mmseg
geometric transform (``RandomResize``, ``RandomCrop``, ``RandomFlip``) moves
both images with one random draw and they cannot drift apart; the
dual-modality segmentor splits the channels again by
``modality_channels``.
"""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.datasets.transforms import LoadAnnotations

from mmringmoe.registry import TRANSFORMS
from .transforms.normalize import NormalizeRS
from .transforms.raster_io import LoadRSImageFromFile, read_raster


@TRANSFORMS.register_module()
class LoadSegAnnotations(LoadAnnotations):
    """mmseg ``LoadAnnotations`` that checks the map against its image.

    Also reads label rasters that Pillow cannot (multi-band / 16-bit TIFF):
    a single-band raster holds class indices; a raster with ``C > 1`` bands
    is one-hot (band ``k`` non-zero where class ``k`` lies, as DynamicEarthNet
    stores it) and becomes ``argmax``, with ``ignore_index`` where no band is
    set.

    Raises ``ValueError`` naming the file when the map's size differs from
    the image's (``ori_shape``) or when it holds a value outside
    ``[0, num_classes)`` and ``ignore_index`` (after ``reduce_zero_label``).

    Args:
        num_classes (int, optional): classes of the data set; ``None`` skips
            the value check.
        ignore_index (int): label of unannotated pixels. Defaults to 255.
        Other args as ``mmseg.datasets.transforms.LoadAnnotations``.
    """

    def __init__(self,
                 num_classes: Optional[int] = None,
                 ignore_index: int = 255,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    @staticmethod
    def _is_raster(path: str) -> bool:
        return str(path).lower().endswith(('.tif', '.tiff', '.npy'))

    def _load_raster_map(self, results: dict) -> None:
        path = results['seg_map_path']
        arr = read_raster(path, self.backend_args)
        if arr.shape[2] == 1:
            seg = arr[..., 0]
            if seg.min() < 0 or seg.max() > 255:
                raise ValueError(
                    f'Label map {path!r}: values must lie in 0..255 (class '
                    f'indices), found {seg.min()}..{seg.max()}.')
            seg = seg.astype(np.uint8)
        else:
            hot = arr != 0
            seg = np.argmax(hot, axis=2).astype(np.uint8)
            seg[~hot.any(axis=2)] = self.ignore_index
        reduce = results.get('reduce_zero_label', False)
        if reduce:
            seg = seg.copy()
            seg[seg == 0] = 255
            seg = seg - 1
            seg[seg == 254] = 255
        if results.get('label_map', None) is not None:
            copy = seg.copy()
            for old_id, new_id in results['label_map'].items():
                seg[copy == old_id] = new_id
        results['gt_seg_map'] = seg
        results['seg_fields'].append('gt_seg_map')

    def _load_seg_map(self, results: dict) -> None:
        if self._is_raster(results['seg_map_path']):
            self._load_raster_map(results)
        else:
            super()._load_seg_map(results)
        self._check(results)

    def _check(self, results: dict) -> None:
        seg = results['gt_seg_map']
        path = results['seg_map_path']
        image_shape = results.get('ori_shape')
        if image_shape is not None and tuple(seg.shape[:2]) != tuple(
                image_shape[:2]):
            raise ValueError(
                f'Label map {path!r} has size {tuple(seg.shape[:2])} (H, W) '
                f'but its image {results.get("img_path")!r} has '
                f'{tuple(image_shape[:2])}; masks must match their images '
                'pixel for pixel.')
        if self.num_classes is not None:
            values = np.unique(seg)
            bad = values[(values >= self.num_classes)
                         & (values != self.ignore_index)]
            if bad.size:
                raise ValueError(
                    f'Label map {path!r} holds value(s) {bad.tolist()} outside '
                    f'the {self.num_classes} classes (valid: 0..'
                    f'{self.num_classes - 1}, ignore {self.ignore_index}).')

    def __repr__(self):
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')


@TRANSFORMS.register_module()
class SelectBands(BaseTransform):
    """Keep ``bands`` (indices, in the given order) of ``results['img']``.

    Used where a raster holds more bands than the RingMoE modality takes,
    e.g. DynamicEarthNet PlanetFusion stores B, G, R, NIR.
    """

    def __init__(self, bands: Sequence[int]):
        self.bands = list(bands)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if max(self.bands) >= img.shape[2]:
            raise ValueError(
                f'{results.get("img_path")!r}: bands {self.bands} requested '
                f'but the raster has {img.shape[2]}.')
        results['img'] = np.ascontiguousarray(img[..., self.bands])
        results['num_bands'] = len(self.bands)
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(bands={self.bands})'


@TRANSFORMS.register_module()
class LoadOptSARPair(BaseTransform):
    """Load an optical image and its SAR-L2 partner as one stacked array.

    ``results['img_path']`` is the optical file, ``results['sar_path']`` the
    SAR one. Each is read by ``LoadRSImageFromFile`` (band checks there);
    ``opt_bands`` picks the optical bands given to RingMoE-Opt (RGB of an
    RGB-NIR raster). The result is float32 ``(H, W, C_opt + C_sar)`` with
    ``results['modality_channels'] = (('opt', C_opt), ('sar_l2', C_sar))``.

    With ``stats_file`` (per-modality statistics JSON, keys ``opt`` and
    ``sar_l2``) each modality is normalised by ``NormalizeRS`` before
    stacking, so padding with 0 later means "the mean" for both.

    Raises ``FileNotFoundError`` when the partner file is missing and
    ``ValueError`` when the two differ in size.
    """

    def __init__(self,
                 opt_bands: Optional[Sequence[int]] = None,
                 sar_band: Optional[int] = None,
                 sar_key: str = 'sar_path',
                 stats_file: Optional[str] = None,
                 backend_args: Optional[dict] = None):
        self.opt_bands = None if opt_bands is None else list(opt_bands)
        # a SAR amplitude stored as several identical bands (e.g. a grey
        # image saved as RGB): read any band count and keep band `sar_band`
        self.sar_band = sar_band
        self.sar_key = sar_key
        self.stats_file = stats_file
        self.normalizers = None
        if stats_file is not None:
            self.normalizers = {
                m: NormalizeRS(stats_file=stats_file, modality=m)
                for m in ('opt', 'sar_l2')
            }
        self.opt_loader = LoadRSImageFromFile(
            modality=None, backend_args=backend_args)
        self.sar_loader = LoadRSImageFromFile(
            modality='sar_l2' if sar_band is None else None, key=sar_key,
            backend_args=backend_args)

    def transform(self, results: dict) -> dict:
        if not results.get(self.sar_key):
            raise FileNotFoundError(
                f'Optical image {results.get("img_path")!r} has no SAR '
                f'partner ({self.sar_key!r} missing from the sample).')
        opt = self.opt_loader(dict(img_path=results['img_path']))['img']
        if self.opt_bands is not None:
            opt = SelectBands(self.opt_bands)(dict(img=opt, **{
                'img_path': results['img_path']}))['img']
        elif opt.shape[2] != 3:
            raise ValueError(
                f'{results["img_path"]!r} (modality \'opt\'): expected 3 bands, '
                f'found {opt.shape[2]}; set opt_bands to choose them.')
        try:
            sar = self.sar_loader({self.sar_key: results[self.sar_key]})['img']
            if self.sar_band is not None:
                sar = SelectBands([self.sar_band])(dict(
                    img=sar, img_path=results[self.sar_key]))['img']
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f'SAR partner {results[self.sar_key]!r} of optical image '
                f'{results["img_path"]!r} not found.') from err
        if opt.shape[:2] != sar.shape[:2]:
            raise ValueError(
                f'Pair size mismatch: optical {results["img_path"]!r} is '
                f'{opt.shape[:2]}, SAR {results[self.sar_key]!r} is '
                f'{sar.shape[:2]}; pairs must be co-registered.')
        if self.normalizers is not None:
            opt = self.normalizers['opt'](dict(
                img=opt, img_path=results['img_path']))['img']
            sar = self.normalizers['sar_l2'](dict(
                img=sar, img_path=results[self.sar_key]))['img']
        img = np.concatenate(
            [opt.astype(np.float32), sar.astype(np.float32)], axis=2)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        results['modality_channels'] = (('opt', opt.shape[2]),
                                        ('sar_l2', sar.shape[2]))
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(opt_bands={self.opt_bands}, '
                f'sar_band={self.sar_band}, sar_key={self.sar_key!r})')


__all__ = ['LoadSegAnnotations', 'SelectBands', 'LoadOptSARPair']
