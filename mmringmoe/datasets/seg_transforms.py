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
from .label_conventions import (check_convention, load_binary_label,
                                load_index_label, nodata_to_ignore)
from .transforms.normalize import NormalizeRS
from .transforms.raster_io import LoadRSImageFromFile


@TRANSFORMS.register_module()
class LoadSegAnnotations(LoadAnnotations):
    """mmseg ``LoadAnnotations`` that keeps the file's values and checks them.

    Every label file is read by :func:`read_label_map` in its own dtype
    (mmseg's reader casts to uint8, which wraps 16-bit maps silently):

    * ``label_convention='index'`` (default): one band of class indices,
      ``ignore_index`` for unlabelled pixels. A multi-band TIFF / npy whose
      bands differ is one-hot (band ``k`` non-zero where class ``k`` lies,
      as DynamicEarthNet stores it) and becomes ``argmax``, with
      ``ignore_index`` where no band is set; a pixel with several bands set
      is refused (a colour-coded label is not one-hot). JPEG is refused
      (lossy). ``reduce_zero_label`` and ``label_map`` apply here only.
    * a binary convention (``'0/1'``, ``'0/255'``, ``'0/1/255'``,
      ``'0/255-jpeg'``, ``'auto'``; see
      :mod:`mmringmoe.datasets.label_conventions`) for two-class masks:
      decoded to 0 / 1 / ``ignore_index``.

    With ``nodata_to_ignore`` (default) the pixels that the image loader
    marked invalid (``results['valid_mask']`` False: declared nodata, mask
    band, NaN) become ``ignore_index``: training and evaluation skip them.

    Raises ``ValueError`` naming the file when the map's size differs from
    the image's (``ori_shape``), when a value lies outside
    ``[0, num_classes)`` and ``ignore_index`` (after ``reduce_zero_label``),
    or when the file does not fit ``label_convention``.

    Args:
        num_classes (int, optional): classes of the data set; ``None`` skips
            the value check.
        ignore_index (int): label of unannotated pixels. Defaults to 255.
        label_convention (str): see above. Defaults to ``'index'``.
        nodata_to_ignore (bool): invalid input pixels -> ``ignore_index``.
            Defaults to True.
        Other args as ``mmseg.datasets.transforms.LoadAnnotations``.
    """

    def __init__(self,
                 num_classes: Optional[int] = None,
                 ignore_index: int = 255,
                 label_convention: str = 'index',
                 nodata_to_ignore: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.label_convention = check_convention(label_convention)
        self.nodata_to_ignore = nodata_to_ignore

    @staticmethod
    def _is_raster(path: str) -> bool:
        return str(path).lower().endswith(('.tif', '.tiff', '.npy'))

    def _read(self, results: dict) -> np.ndarray:
        path = results['seg_map_path']
        if self.label_convention != 'index':
            return load_binary_label(path, self.label_convention,
                                     self.ignore_index,
                                     backend_args=self.backend_args)
        # a multi-band TIFF / npy may be one-hot; a PNG / JPEG with several
        # differing bands is a colour-coded label and is refused
        seg = load_index_label(path, self.ignore_index, self.backend_args,
                               allow_one_hot=self._is_raster(path))
        if results.get('reduce_zero_label', False):
            seg = seg.copy()
            seg[seg == 0] = 255
            seg = seg - 1
            seg[seg == 254] = 255
        if results.get('label_map', None) is not None:
            copy = seg.copy()
            for old_id, new_id in results['label_map'].items():
                seg[copy == old_id] = new_id
        return seg

    def _load_seg_map(self, results: dict) -> None:
        seg = self._read(results)
        self._check(results, seg)
        if self.nodata_to_ignore:
            seg = nodata_to_ignore(seg, results, self.ignore_index)
        results['gt_seg_map'] = seg
        results['seg_fields'].append('gt_seg_map')

    def _check(self, results: dict, seg: np.ndarray) -> None:
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
                f'ignore_index={self.ignore_index}, label_convention='
                f'{self.label_convention!r}, nodata_to_ignore='
                f'{self.nodata_to_ignore})')


@TRANSFORMS.register_module()
class NodataToIgnore(BaseTransform):
    """Set ``ignore_index`` in ``gt_seg_map`` (and every other key of
    ``keys``) wherever ``results['valid_mask']`` is False.

    For pipelines whose label loader is mmseg's own; ``LoadSegAnnotations``
    and ``LoadChangeLabel`` already do it (``nodata_to_ignore=True``). Place
    it right after the label loader, before any geometric transform.
    """

    def __init__(self, ignore_index: int = 255, keys=('gt_seg_map', )):
        self.ignore_index = ignore_index
        self.keys = tuple(keys)

    def transform(self, results: dict) -> dict:
        for key in self.keys:
            if key in results:
                results[key] = nodata_to_ignore(results[key], results,
                                                self.ignore_index)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(ignore_index={self.ignore_index}, '
                f'keys={self.keys})')


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

    ``results['valid_mask']`` (when the loader reports one) is the AND of
    both files' valid masks.

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
        opt_out = self.opt_loader(dict(img_path=results['img_path']))
        opt = opt_out['img']
        if self.opt_bands is not None:
            opt = SelectBands(self.opt_bands)(dict(img=opt, **{
                'img_path': results['img_path']}))['img']
        elif opt.shape[2] != 3:
            raise ValueError(
                f'{results["img_path"]!r} (modality \'opt\'): expected 3 bands, '
                f'found {opt.shape[2]}; set opt_bands to choose them.')
        try:
            sar_out = self.sar_loader({self.sar_key: results[self.sar_key]})
            sar = sar_out['img']
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
        # a pixel is valid when it is valid in both files (nodata of either
        # becomes ignore in LoadSegAnnotations)
        masks = [o['valid_mask'] for o in (opt_out, sar_out)
                 if o.get('valid_mask') is not None]
        if masks:
            results['valid_mask'] = np.logical_and.reduce(masks)
        for key in ('crs', 'transform', 'nodata'):
            if key in opt_out:
                results[key] = opt_out[key]
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(opt_bands={self.opt_bands}, '
                f'sar_band={self.sar_band}, sar_key={self.sar_key!r})')


__all__ = [
    'LoadSegAnnotations', 'NodataToIgnore', 'nodata_to_ignore', 'SelectBands',
    'LoadOptSARPair'
]
