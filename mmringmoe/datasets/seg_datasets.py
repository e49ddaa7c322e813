"""Segmentation data sets of Appendix B.5.2-B.5.3 that mmseg does not ship.

iSAID and Potsdam use mmseg's own ``iSAIDDataset`` / ``PotsdamDataset``.
Each class here reads its data set's on-disk layout (described in its
docstring) as the official release or our converter in
``tools/dataset_converters/`` leaves it.
"""
import os.path as osp
from typing import List

import mmengine
from mmseg.datasets import BaseSegDataset

from mmringmoe.registry import DATASETS


@DATASETS.register_module()
class DynamicEarthNetDataset(BaseSegDataset):
    """Dyna.-pla: DynamicEarthNet PlanetFusion (4-band MS, 1024 x 1024).

    Official layout (``data_root``)::

        planet/<...>/<cube>/PF-SR/YYYY-MM-DD.tif     # daily 4-band images
        labels/<cube>/Labels/Raster/<...>-YYYY_MM_01.tif   # monthly, one-hot
        dynnet_training_splits/{train,val,test}.txt

    Each split line is ``<planet dir> <label file> <YYYY-MM>`` (paths start
    with ``/`` relative to ``data_root``; the release's
    ``/reprocess-cropped/UTM-24000/`` prefix is the ``planet/`` folder). The
    monthly label pairs with the image of the month's first day, giving 24
    samples per location. Label rasters are one-hot (one band per class):
    load them with ``mmringmoe.LoadSegAnnotations``.
    """
    METAINFO = dict(
        classes=('impervious_surface', 'agriculture',
                 'forest_and_other_vegetation', 'wetlands', 'soil', 'water',
                 'snow_and_ice'),
        palette=[[96, 96, 96], [204, 204, 0], [0, 204, 0], [0, 0, 153],
                 [153, 76, 0], [0, 128, 255], [138, 178, 198]])

    def __init__(self, day: str = '01', **kwargs):
        self.day = day
        kwargs.setdefault('reduce_zero_label', False)
        super().__init__(img_suffix='.tif', seg_map_suffix='.tif', **kwargs)

    def _resolve(self, path: str) -> str:
        path = path.replace('/reprocess-cropped/UTM-24000/', '/planet/')
        return osp.join(self.data_root, path.lstrip('/'))

    def load_data_list(self) -> List[dict]:
        if not self.ann_file or not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'DynamicEarthNet split file not found: {self.ann_file!r} '
                '(expected dynnet_training_splits/<split>.txt)')
        data_list = []
        for line in mmengine.list_from_file(self.ann_file):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise ValueError(
                    f'{self.ann_file!r}: line {line!r} must be '
                    '"<planet dir> <label file> <YYYY-MM>"')
            planet_dir, label, year_month = parts
            data_list.append(
                dict(
                    img_path=osp.join(
                        self._resolve(planet_dir),
                        f'{year_month}-{self.day}{self.img_suffix}'),
                    seg_map_path=self._resolve(label),
                    label_map=self.label_map,
                    reduce_zero_label=self.reduce_zero_label,
                    seg_fields=[]))
        return data_list


@DATASETS.register_module()
class SARSegL1Dataset(BaseSegDataset):
    """SARSegL1: GF-3 fully polarimetric SAR-L1, 8 channels, 5 classes.

    Layout written by ``tools/dataset_converters/sarsegl1.py`` (500 x 500
    tiles, overlap 200, 8:2 split)::

        img_dir/{train,test}/<scene>_<row>_<col>.tif   # (500, 500, 8)
        ann_dir/{train,test}/<scene>_<row>_<col>.png   # 0..4, 255 unlabelled

    Channels: HH, HV, VH, VV, each real then imaginary (``LoadComplexSAR``).
    """
    METAINFO = dict(
        classes=('water', 'vegetation', 'bare_land', 'road', 'building'),
        palette=[[0, 0, 255], [0, 255, 0], [255, 255, 0], [255, 0, 0],
                 [255, 0, 255]])

    def __init__(self, img_suffix='.tif', seg_map_suffix='.png', **kwargs):
        kwargs.setdefault('reduce_zero_label', False)
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)


@DATASETS.register_module()
class AIRPolSARSegDataset(BaseSegDataset):
    """AIR-PolSAR-Seg: GF-3 amplitude SAR (SAR-L2), 512 x 512, 6 classes.

    Release layout (7:3 train/test)::

        {train,test}/images/<id>_<POL>.tiff     # POL in HH, HV, VH, VV
        {train,test}/labels/<id>.png            # class indices 0..5

    The paper treats the data as single-channel amplitude SAR: one
    polarisation (``polarization``, default HH) is read per sample. The
    paper leaves Land-use and Other areas out of its results; the evaluator
    does that with ``RSSegMetric(report_classes=...)``.
    """
    METAINFO = dict(
        classes=('housing_area', 'industrial_area', 'natural_area',
                 'land_use_area', 'water', 'other_area'),
        palette=[[255, 0, 0], [255, 255, 0], [0, 255, 0], [0, 255, 255],
                 [0, 0, 255], [128, 128, 128]])

    def __init__(self, polarization: str = 'HH', **kwargs):
        if polarization not in ('HH', 'HV', 'VH', 'VV'):
            raise ValueError(f'polarization must be HH, HV, VH or VV, got '
                             f'{polarization!r}')
        self.polarization = polarization
        kwargs.setdefault('reduce_zero_label', False)
        super().__init__(
            img_suffix=f'_{polarization}.tiff', seg_map_suffix='.png',
            **kwargs)


class _PairedOptSARDataset(BaseSegDataset):
    """Optical images with co-registered SAR partners.

    ``data_prefix`` holds ``img_path`` (optical), ``sar_path`` and
    ``seg_map_path``; partners share the file stem. A missing partner raises
    ``FileNotFoundError`` naming the optical file and the expected path.
    """
    sar_suffix = '.tif'

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        sar_dir = self.data_prefix.get('sar_path')
        if sar_dir is None:
            raise ValueError(f'{type(self).__name__}: data_prefix needs '
                             "'sar_path' (the SAR partner folder)")
        img_dir = self.data_prefix['img_path']
        for info in data_list:
            rel = osp.relpath(info['img_path'], img_dir)
            stem = rel[:-len(self.img_suffix)]
            sar = osp.join(sar_dir, stem + self.sar_suffix)
            if not osp.isfile(sar):
                raise FileNotFoundError(
                    f'Missing SAR partner for optical image '
                    f'{info["img_path"]!r}: expected {sar!r} (modality '
                    "'sar_l2').")
            info['sar_path'] = sar
        return data_list


@DATASETS.register_module()
class WHUOptSARDataset(_PairedOptSARDataset):
    """WHU-OPT-SAR: optical + SAR-L2 pairs, 7 classes, 256 x 256 patches.

    Layout written by ``tools/dataset_converters/whu_opt_sar.py`` (256 x 256
    patches without overlap, 8:2 split, label values 10..70 mapped to
    0..6 and the unlabelled 0 to 255)::

        optical/{train,test}/<scene>_<row>_<col>.tif
        sar/{train,test}/<scene>_<row>_<col>.tif
        lbl/{train,test}/<scene>_<row>_<col>.png
    """
    METAINFO = dict(
        classes=('farmland', 'city', 'village', 'water', 'forest', 'road',
                 'others'),
        palette=[[204, 102, 1], [254, 0, 0], [255, 255, 1], [0, 0, 254],
                 [85, 167, 0], [93, 255, 255], [152, 102, 153]])

    def __init__(self, **kwargs):
        kwargs.setdefault('reduce_zero_label', False)
        super().__init__(img_suffix='.tif', seg_map_suffix='.png', **kwargs)


@DATASETS.register_module()
class DFC23Dataset(_PairedOptSARDataset):
    """DFC23 track 1 (roof types): optical + SAR-L2 pairs, 512 x 512.

    Layout written by ``tools/dataset_converters/dfc23.py`` (COCO roof
    polygons rasterised; 7:2:1 split of the released training set)::

        rgb/{train,val,test}/<id>.tif
        sar/{train,val,test}/<id>.tif
        ann/{train,val,test}/<id>.png     # 0 background, 1..12 roof types

    Classes follow the paper's Tab. A9: background and 12 roof types.
    """
    METAINFO = dict(
        classes=('background', 'flat_roof', 'gable_roof', 'gambrel_roof',
                 'row_roof', 'multiple_eave_roof', 'hipped_roof_v1',
                 'hipped_roof_v2', 'mansard_roof', 'pyramid_roof',
                 'arched_roof', 'dome', 'other'),
        palette=[[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25],
                 [0, 130, 200], [245, 130, 48], [145, 30, 180],
                 [70, 240, 240], [240, 50, 230], [210, 245, 60],
                 [250, 190, 212], [0, 128, 128], [220, 190, 255]])

    def __init__(self, **kwargs):
        kwargs.setdefault('reduce_zero_label', False)
        super().__init__(img_suffix='.tif', seg_map_suffix='.png', **kwargs)


__all__ = [
    'DynamicEarthNetDataset', 'SARSegL1Dataset', 'AIRPolSARSegDataset',
    'WHUOptSARDataset', 'DFC23Dataset'
]
