"""Horizontal-box detection data sets of the paper (Appendix B.5.4).

The VOC-style sets (DIOR, SAR-AIRcraft-1.0) and the COCO-style sets (HRSID,
SARDet-100k) reuse mmdet's ``XMLDataset`` / ``CocoDataset`` readers. What they
add is strictness: mmdet silently drops objects of unknown classes and clips
or skips broken boxes, which hides annotation errors in remote sensing
releases (mixed-case class names, boxes a few pixels past the border). Here a
bad object raises a ``ValueError`` that names the annotation file and the
object, unless ``strict=False`` is passed (then it is clipped or skipped with
a warning, as mmdet would).
"""
import os.path as osp
import warnings
import xml.etree.ElementTree as ET
from typing import List, Sequence

from mmdet.datasets import CocoDataset, XMLDataset

from mmringmoe.registry import DATASETS

DIOR_CLASSES = ('airplane', 'airport', 'baseballfield', 'basketballcourt',
                'bridge', 'chimney', 'dam', 'expressway-service-area',
                'expressway-toll-station', 'golffield', 'groundtrackfield',
                'harbor', 'overpass', 'ship', 'stadium', 'storagetank',
                'tenniscourt', 'trainstation', 'vehicle', 'windmill')
# Category names as written in the SAR-AIRcraft-1.0 XML files (Tab. A10 order).
SAR_AIRCRAFT_CLASSES = ('A330', 'A320/321', 'A220', 'ARJ21', 'Boeing737',
                        'Boeing787', 'other')
HRSID_CLASSES = ('ship', )
SARDET100K_CLASSES = ('ship', 'aircraft', 'car', 'tank', 'bridge', 'harbor')


def check_box(box: Sequence[float], width: float, height: float,
              where: str) -> None:
    """Raise ``ValueError`` for a degenerate box or one outside the image.

    ``box`` is ``(x1, y1, x2, y2)`` in pixels; ``where`` names the file and
    the object for the message.
    """
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        raise ValueError(
            f'{where}: degenerate box (x1, y1, x2, y2)={tuple(box)}: '
            'expected x2 > x1 and y2 > y1')
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        raise ValueError(
            f'{where}: box (x1, y1, x2, y2)={tuple(box)} lies outside the '
            f'image of width {width} and height {height}')


class _StrictVOCMixin:
    """Validated ``<object>`` parsing for mmdet's ``XMLDataset``."""

    def _class_lookup(self) -> dict:
        classes = self._metainfo['classes']
        if self.case_sensitive:
            return {c: c for c in classes}
        return {c.lower(): c for c in classes}

    def parse_data_info(self, img_info: dict) -> dict:
        # _parse_instance_info gets no file name or image size: keep them.
        self._current_xml = img_info['xml_path']
        root = ET.parse(img_info['xml_path']).getroot()
        size = root.find('size')
        self._current_size = None if size is None else (
            float(size.find('width').text), float(size.find('height').text))
        return super().parse_data_info(img_info)

    def _parse_instance_info(self, raw_ann_info, minus_one: bool = True
                             ) -> List[dict]:
        lookup = self._class_lookup()
        instances = []
        for idx, obj in enumerate(raw_ann_info.findall('object')):
            raw_name = obj.find('name').text.strip()
            where = f'{self._current_xml}: object {idx} ({raw_name!r})'
            key = raw_name if self.case_sensitive else raw_name.lower()
            if key not in lookup:
                self._bad(
                    f'{where}: unknown class name; expected one of '
                    f'{tuple(self._metainfo["classes"])}')
                continue
            name = lookup[key]
            difficult = obj.find('difficult')
            difficult = 0 if difficult is None else int(difficult.text)
            bnd = obj.find('bndbox')
            box = [float(bnd.find(k).text)
                   for k in ('xmin', 'ymin', 'xmax', 'ymax')]
            if self._current_size is not None:
                width, height = self._current_size
                try:
                    check_box(box, width, height, where)
                except ValueError as err:
                    self._bad(str(err))
                    box = [min(max(box[0], 0), width),
                           min(max(box[1], 0), height),
                           min(max(box[2], 0), width),
                           min(max(box[3], 0), height)]
                    if not (box[2] > box[0] and box[3] > box[1]):
                        continue
            # VOC pixel indices start at 1 (mmdet's XMLDataset convention).
            box = [int(v) for v in box]
            if minus_one:
                box = [v - 1 for v in box]
            ignore = False
            if self.bbox_min_size is not None:
                ignore = min(box[2] - box[0],
                             box[3] - box[1]) < self.bbox_min_size
            instances.append(
                dict(
                    bbox=box,
                    bbox_label=self.cat2label[name],
                    ignore_flag=int(bool(difficult or ignore))))
        return instances

    def _bad(self, msg: str) -> None:
        if self.strict:
            raise ValueError(msg)
        warnings.warn(msg)


@DATASETS.register_module()
class StrictXMLDataset(_StrictVOCMixin, XMLDataset):
    """mmdet ``XMLDataset`` that validates every object.

    Args:
        strict (bool): raise ``ValueError`` on an unknown class name, a
            degenerate box or a box outside the image (True), or warn and
            clip / skip (False). Defaults to True.
        case_sensitive (bool): match class names exactly; DIOR's XML files
            mix cases (``Expressway-Service-area``), so its subclass sets
            False. Defaults to True.
        Other arguments: see :class:`mmdet.datasets.XMLDataset`
            (``img_subdir``, ``ann_subdir``, ``data_prefix['sub_data_root']``).
    """

    def __init__(self, *args, strict: bool = True,
                 case_sensitive: bool = True, **kwargs):
        self.strict = strict
        self.case_sensitive = case_sensitive
        # XMLDataset reads <sub_data_root>/<ann_subdir>; without this key the
        # paths would be relative to the working directory, not data_root
        data_prefix = dict(kwargs.pop('data_prefix', None) or {})
        data_prefix.setdefault('sub_data_root', '')
        super().__init__(*args, data_prefix=data_prefix, **kwargs)


@DATASETS.register_module()
class DIORHBBDataset(StrictXMLDataset):
    """DIOR (horizontal boxes), as released with DIOR-R::

        DIOR/
          JPEGImages-trainval/00001.jpg ...
          JPEGImages-test/11726.jpg ...
          Annotations/Horizontal Bounding Boxes/00001.xml ...  (VOC XML)
          ImageSets/Main/{train,val,test}.txt

    The original DIOR release keeps the same XML in ``Annotations/``: pass
    ``ann_subdir='Annotations'``. Class names are matched case-insensitively.
    (mmrotate's ``DIORDataset`` reads the oriented boxes of the same release.)
    """
    METAINFO = dict(classes=DIOR_CLASSES)

    def __init__(self, *args, img_subdir='JPEGImages-trainval',
                 ann_subdir='Annotations/Horizontal Bounding Boxes',
                 case_sensitive=False, **kwargs):
        super().__init__(*args, img_subdir=img_subdir, ann_subdir=ann_subdir,
                         case_sensitive=case_sensitive, **kwargs)


@DATASETS.register_module()
class SARAircraftDataset(StrictXMLDataset):
    """SAR-AIRcraft-1.0: 7 aircraft classes, VOC layout::

        SAR-AIRcraft-1.0/
          JPEGImages/0000001.jpg ...     (single-band amplitude SAR)
          Annotations/0000001.xml ...
          ImageSets/Main/{train,val,test}.txt   (7:1:2; see
              tools/dataset_converters/sar_aircraft_split.py)
    """
    METAINFO = dict(classes=SAR_AIRCRAFT_CLASSES)

    def __init__(self, *args, case_sensitive=False, **kwargs):
        super().__init__(*args, case_sensitive=case_sensitive, **kwargs)


@DATASETS.register_module()
class StrictCocoDataset(CocoDataset):
    """mmdet ``CocoDataset`` that validates every annotation.

    An annotation whose category is not one of ``classes``, whose box is
    degenerate or which lies outside its image raises ``ValueError`` naming
    the json file, the annotation id and the image (``strict=False``: skipped
    with a warning, as mmdet's reader does silently).
    """

    def __init__(self, *args, strict: bool = True, **kwargs):
        self.strict = strict
        super().__init__(*args, **kwargs)

    def parse_data_info(self, raw_data_info: dict) -> dict:
        img_info = raw_data_info['raw_img_info']
        cat_names = {c['id']: c['name'] for c in self.coco.dataset.get(
            'categories', [])}
        good = []
        for ann in raw_data_info['raw_ann_info']:
            where = (f'{self.ann_file}: annotation id {ann.get("id")} in '
                     f'image {img_info["file_name"]!r}')
            cat = ann.get('category_id')
            if cat not in self.cat_ids:
                self._bad(f'{where}: unknown class '
                          f'{cat_names.get(cat, cat)!r}; expected one of '
                          f'{tuple(self.metainfo["classes"])}')
                continue
            x, y, w, h = ann['bbox']
            try:
                check_box((x, y, x + w, y + h), img_info['width'],
                          img_info['height'], where)
            except ValueError as err:
                self._bad(str(err))
                continue
            good.append(ann)
        return super().parse_data_info(
            dict(raw_img_info=img_info, raw_ann_info=good))

    def _bad(self, msg: str) -> None:
        if self.strict:
            raise ValueError(msg)
        warnings.warn(msg)


@DATASETS.register_module()
class HRSIDDataset(StrictCocoDataset):
    """HRSID (COCO json, one class ``ship``)::

        HRSID/
          JPEGImages/P0001_0_800_7200_8000.jpg ...  (800x800 amplitude SAR)
          annotations/train2017.json, test2017.json
    """
    METAINFO = dict(classes=HRSID_CLASSES, palette=[(220, 20, 60)])


@DATASETS.register_module()
class SARDet100kDataset(StrictCocoDataset):
    """SARDet-100k (COCO json, 6 classes)::

        SARDet_100K/
          JPEGImages/{train,val,test}/*.png|jpg
          Annotations/{train,val,test}.json
    """
    METAINFO = dict(classes=SARDET100K_CLASSES)


def split_ids(ids: Sequence[str], ratios=(7, 1, 2), seed: int = 0
              ) -> List[List[str]]:
    """Deterministic shuffle-and-cut of ``ids`` by ``ratios`` (e.g. 7:1:2).

    Every id lands in exactly one part; part sizes are the floor of the ratio
    shares, the remainder goes to the first parts in order.
    """
    import random
    ids = sorted(ids)
    random.Random(seed).shuffle(ids)
    total = sum(ratios)
    sizes = [len(ids) * r // total for r in ratios]
    for i in range(len(ids) - sum(sizes)):
        sizes[i % len(sizes)] += 1
    parts, start = [], 0
    for s in sizes:
        parts.append(sorted(ids[start:start + s]))
        start += s
    return parts


def voc_ids(ann_dir: str) -> List[str]:
    """Ids (file stems) of all ``*.xml`` files in ``ann_dir``."""
    if not osp.isdir(ann_dir):
        raise FileNotFoundError(f'{ann_dir}: annotation folder not found')
    import os
    return sorted(f[:-4] for f in os.listdir(ann_dir) if f.endswith('.xml'))


__all__ = [
    'DIORHBBDataset', 'SARAircraftDataset', 'HRSIDDataset', 'SARDet100kDataset',
    'StrictXMLDataset', 'StrictCocoDataset', 'check_box', 'split_ids',
    'voc_ids'
]
