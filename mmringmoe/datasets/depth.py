"""ISPRS Vaihingen and Potsdam for height (depth) estimation (paper B.5.7).

The optical tile is the input and the DSM of the same area the target.
Splits follow the ISPRS 2D labelling benchmark, as the paper does: Vaihingen
16 train / 17 test areas, Potsdam 24 train / 14 test tiles. On-disk layouts
are the ISPRS downloads unchanged:

* Vaihingen: ``top/top_mosaic_09cm_area{N}.tif`` (IRRG, 8 bit) and
  ``dsm/dsm_09cm_matching_area{N}.tif`` (float32).
* Potsdam: ``2_Ortho_RGB/top_potsdam_{r}_{c}_RGB.tif`` (RGB, 8 bit; the
  paper drops the near-infrared band) and ``1_DSM/dsm_potsdam_{rr}_{cc}.tif``
  (float32; row/column zero-padded to two digits).
"""
import os.path as osp

from mmengine.dataset import BaseDataset

from mmringmoe.registry import DATASETS


class _ISPRSDepthDataset(BaseDataset):
    METAINFO = dict(task='depth estimation', depth_unit='m')
    SPLITS = dict(train=(), test=())
    DEFAULT_PREFIX = dict(img_path='', depth_map_path='')

    def __init__(self, split='train', data_prefix=None, **kwargs):
        if split not in self.SPLITS:
            raise ValueError(f'split must be one of {tuple(self.SPLITS)}, '
                             f'got {split!r}')
        self.split = split
        super().__init__(data_prefix=dict(data_prefix or self.DEFAULT_PREFIX),
                         **kwargs)

    def file_names(self, area):
        raise NotImplementedError

    def load_data_list(self):
        data_list = []
        for area in self.SPLITS[self.split]:
            img_name, dsm_name = self.file_names(area)
            info = dict(
                img_path=osp.join(self.data_prefix['img_path'], img_name),
                depth_map_path=osp.join(self.data_prefix['depth_map_path'],
                                        dsm_name),
                area=area, seg_fields=[], reduce_zero_label=False)
            for key in ('img_path', 'depth_map_path'):
                if not osp.isfile(info[key]):
                    raise FileNotFoundError(
                        f'{type(self).__name__} ({self.split}, area {area}): '
                        f'missing {info[key]}')
            data_list.append(info)
        return data_list


@DATASETS.register_module()
class VaihingenDepthDataset(_ISPRSDepthDataset):
    """ISPRS Vaihingen: IRRG orthophoto -> DSM, 9 cm."""

    SPLITS = dict(
        train=(1, 3, 5, 7, 11, 13, 15, 17, 21, 23, 26, 28, 30, 32, 34, 37),
        test=(2, 4, 6, 8, 10, 12, 14, 16, 20, 22, 24, 27, 29, 31, 33, 35, 38))
    DEFAULT_PREFIX = dict(img_path='top', depth_map_path='dsm')

    def file_names(self, area):
        return (f'top_mosaic_09cm_area{area}.tif',
                f'dsm_09cm_matching_area{area}.tif')


@DATASETS.register_module()
class PotsdamDepthDataset(_ISPRSDepthDataset):
    """ISPRS Potsdam: RGB orthophoto -> DSM, 5 cm."""

    SPLITS = dict(
        train=('2_10', '2_11', '2_12', '3_10', '3_11', '3_12', '4_10', '4_11',
               '4_12', '5_10', '5_11', '5_12', '6_7', '6_8', '6_9', '6_10',
               '6_11', '6_12', '7_7', '7_8', '7_9', '7_10', '7_11', '7_12'),
        test=('2_13', '2_14', '3_13', '3_14', '4_13', '4_14', '4_15', '5_13',
              '5_14', '5_15', '6_13', '6_14', '6_15', '7_13'))
    DEFAULT_PREFIX = dict(img_path='2_Ortho_RGB', depth_map_path='1_DSM')

    def file_names(self, area):
        row, col = (int(v) for v in area.split('_'))
        return (f'top_potsdam_{row}_{col}_RGB.tif',
                f'dsm_potsdam_{row:02d}_{col:02d}.tif')
