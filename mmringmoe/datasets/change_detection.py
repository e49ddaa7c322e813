"""Change detection data sets (paper B.5.6) on mmseg's ``BaseCDDataset``.

On-disk layouts (one folder per split, the two dates and the mask share a
file name):

* LEVIR-CD: ``{train,val,test}/{A,B,label}/*.png``. The paper trains and tests
  on non-overlapping 256 x 256 slices; mmseg ships the slicer
  (``mmseg/.mim/tools/dataset_converters/levircd.py --clip_size 256
  --stride_size 256``), which keeps this layout and writes 0/1 masks.
* CDD (Lebedev et al., "Real/subset"): ``{train,val,test}/{A,B,OUT}/*.jpg``,
  already 256 x 256, masks 0/255 JPEG.
"""
from mmseg.datasets import BaseCDDataset

from mmringmoe.registry import DATASETS

_CD_METAINFO = dict(classes=('unchanged', 'changed'),
                    palette=[[0, 0, 0], [255, 255, 255]])


@DATASETS.register_module()
class LEVIRCDDataset(BaseCDDataset):
    """LEVIR-CD (445 / 64 / 128 image pairs, 1024 x 1024, 0.5 m)."""

    METAINFO = _CD_METAINFO

    def __init__(self, img_suffix='.png', img_suffix2='.png',
                 seg_map_suffix='.png', **kwargs):
        super().__init__(img_suffix=img_suffix, img_suffix2=img_suffix2,
                         seg_map_suffix=seg_map_suffix, **kwargs)

    def load_data_list(self):
        data_list = super().load_data_list()
        if not data_list:
            raise FileNotFoundError(
                f'no {self.img_suffix} images found in '
                f'{self.data_prefix.get("img_path")} (expected the '
                'LEVIR-CD layout <split>/A, <split>/B, <split>/label)')
        return data_list


@DATASETS.register_module()
class CDDDataset(LEVIRCDDataset):
    """CDD season-varying change detection (10000 / 3000 / 3000 pairs)."""

    def __init__(self, img_suffix='.jpg', img_suffix2='.jpg',
                 seg_map_suffix='.jpg', **kwargs):
        super().__init__(img_suffix=img_suffix, img_suffix2=img_suffix2,
                         seg_map_suffix=seg_map_suffix, **kwargs)
