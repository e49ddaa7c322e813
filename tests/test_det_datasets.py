"""Detection data sets and converters: real on-disk layouts, exact box
counts through mmdet's / mmrotate's own classes, and errors that name the file
and the object."""
import os.path as osp

import numpy as np
import pytest

from det_track_data import (make_dior, make_hrsc, make_hrsid,
                            make_sar_aircraft, write_coco, write_list,
                            write_voc)
from helpers import run_tool_main


def _all_instances(ds):
    return [ins for i in range(len(ds)) for ins in
            ds.get_data_info(i)['instances']]


def test_dior_horizontal_loads_mixed_case_names(tmp_path):
    from mmringmoe.datasets.det_datasets import (DIOR_CLASSES,
                                                 DIORHBBDataset)
    splits, boxes = make_dior(str(tmp_path))
    ds = DIORHBBDataset(data_root=str(tmp_path),
                        ann_file='ImageSets/Main/train.txt', pipeline=[])
    assert len(ds) == 1
    info = ds.get_data_info(0)
    assert info['img_path'].endswith('JPEGImages-trainval/00001.jpg')
    name, box = boxes['00001'][0]
    ins = info['instances'][0]
    assert ins['bbox_label'] == DIOR_CLASSES.index(name.lower())
    # VOC pixel indices are 1-based: mmdet's convention subtracts 1
    assert ins['bbox'] == [v - 1 for v in box]
    # 'Expressway-Service-area' in the XML matches the lower-case class
    labels = {i['bbox_label'] for i in _all_instances(ds)}
    labels |= {i['bbox_label'] for i in _all_instances(DIORHBBDataset(
        data_root=str(tmp_path), ann_file='ImageSets/Main/val.txt',
        pipeline=[]))}
    assert DIOR_CLASSES.index('expressway-service-area') in labels


@pytest.mark.parametrize('kind,obj,match', [
    ('unknown', ('helicopter', [8, 8, 40, 36]), 'unknown class name'),
    ('outside', ('ship', [60, 8, 120, 36]), 'outside the image'),
    ('negative', ('ship', [-3, 8, 20, 36]), 'outside the image'),
    ('degenerate', ('ship', [30, 8, 30, 36]), 'degenerate box'),
])
def test_voc_bad_object_names_file_and_object(tmp_path, kind, obj, match):
    from mmringmoe.datasets.det_datasets import DIORHBBDataset
    root = str(tmp_path)
    write_voc(root, ['00001'], ['ship'], img_subdir='JPEGImages-trainval',
              ann_subdir='Annotations/Horizontal Bounding Boxes',
              objects={'00001': [('ship', [8, 8, 40, 36]), obj]})
    write_list(osp.join(root, 'ImageSets', 'Main', 'train.txt'), ['00001'])
    with pytest.raises(ValueError, match=match) as err:
        DIORHBBDataset(data_root=root, ann_file='ImageSets/Main/train.txt',
                       pipeline=[])
    msg = str(err.value)
    assert '00001.xml' in msg and 'object 1' in msg and obj[0] in msg
    # strict=False: warned and clipped / skipped as mmdet would
    with pytest.warns(UserWarning, match=match):
        ds = DIORHBBDataset(data_root=root,
                            ann_file='ImageSets/Main/train.txt', pipeline=[],
                            strict=False)
    n = len(ds.get_data_info(0)['instances'])
    assert n == (2 if kind in ('outside', 'negative') else 1)


def test_sar_aircraft_split_tool_7_1_2_and_box_count(tmp_path):
    from mmringmoe.datasets.det_datasets import (SAR_AIRCRAFT_CLASSES,
                                                 SARAircraftDataset)
    root = str(tmp_path)
    ids = [f'{k:07d}' for k in range(1, 21)]
    objs = write_voc(root, ids, SAR_AIRCRAFT_CLASSES, channels=1)
    assert run_tool_main('dataset_converters/sar_aircraft_split',
                         [root]) in (None, 0)
    parts = {}
    for split in ('train', 'val', 'test'):
        with open(osp.join(root, 'ImageSets', 'Main', f'{split}.txt')) as f:
            parts[split] = f.read().split()
    assert [len(parts[s]) for s in ('train', 'val', 'test')] == [14, 2, 4]
    assert sorted(sum(parts.values(), [])) == ids
    total = 0
    for split in parts:
        ds = SARAircraftDataset(data_root=root,
                                ann_file=f'ImageSets/Main/{split}.txt',
                                pipeline=[], test_mode=True)
        total += len(_all_instances(ds))
    assert total == sum(len(o) for o in objs.values())
    # 'A320/321' and 'other' are read as the Tab. A10 classes
    labels = {SAR_AIRCRAFT_CLASSES.index(n) for o in objs.values()
              for n, _ in o}
    assert labels == set(range(7))
    # never overwrites an existing split
    with pytest.raises(FileExistsError, match='train.txt'):
        run_tool_main('dataset_converters/sar_aircraft_split', [root])


def test_sar_aircraft_split_tool_rejects_bad_xml(tmp_path):
    root = str(tmp_path)
    write_voc(root, ['0000001'], ['A330'],
              objects={'0000001': [('B747', [8, 8, 40, 36])]}, channels=1)
    with pytest.raises(ValueError, match=r"0000001\.xml.*'B747'"):
        run_tool_main('dataset_converters/sar_aircraft_split', [root])


def test_hrsid_coco_loads_and_rejects_bad_annotations(tmp_path):
    from mmringmoe.datasets.det_datasets import HRSIDDataset
    root = str(tmp_path)
    n = make_hrsid(root)
    count = 0
    for split in ('train2017', 'test2017'):
        ds = HRSIDDataset(data_root=root,
                          ann_file=f'annotations/{split}.json',
                          data_prefix=dict(img='JPEGImages/'), pipeline=[],
                          test_mode=True)
        count += len(_all_instances(ds))
    assert count == n
    # a 16-bit single-band amplitude file on disk
    from PIL import Image
    img = Image.open(osp.join(root, 'JPEGImages',
                              'P0002_0_800_0_800.png'))
    assert img.mode == 'I;16'

    bad = {
        'unknown class': [(2, [8, 8, 20, 20])],
        'outside the image': [(1, [80, 8, 30, 20])],
        'degenerate box': [(1, [8, 8, 0, 20])],
    }
    for match, anns in bad.items():
        ann = osp.join(root, 'bad', f'{len(match)}.json')
        write_coco(ann, osp.join(root, 'bad'), ['img'], ('ship', 'boat'),
                   anns={'img': anns})
        with pytest.raises(ValueError, match=match) as err:
            HRSIDDataset(data_root=root, ann_file=ann,
                         data_prefix=dict(img='bad/'), pipeline=[])
        assert 'annotation id 1' in str(err.value)
        assert "'img.jpg'" in str(err.value) and ann in str(err.value)


def test_mmrotate_dior_r_and_hrsc_read_the_generated_layouts(tmp_path):
    import mmrotate.datasets  # noqa: F401  (registers the classes)
    from mmrotate.datasets import DIORDataset, HRSCDataset
    splits, boxes = make_dior(str(tmp_path / 'DIOR'))
    ds = DIORDataset(data_root=str(tmp_path / 'DIOR'),
                     ann_file='ImageSets/Main/test.txt',
                     data_prefix=dict(img_path='JPEGImages-test'),
                     pipeline=[], test_mode=True)
    inst = _all_instances(ds)
    assert len(inst) == sum(len(boxes[i]) for i in splits['test'])
    # the axis-aligned first object: quadrilateral corners of its box
    x1, y1, x2, y2 = boxes['11726'][0][1]
    np.testing.assert_allclose(inst[0]['bbox'],
                               [x1, y1, x2, y1, x2, y2, x1, y2], atol=0.06)

    splits, counts = make_hrsc(str(tmp_path / 'hrsc'))
    ds = HRSCDataset(data_root=str(tmp_path / 'hrsc'),
                     ann_file='ImageSets/trainval.txt',
                     data_prefix=dict(sub_data_root='FullDataSet/'),
                     pipeline=[], test_mode=True)
    assert len(_all_instances(ds)) == sum(counts[i]
                                          for i in splits['trainval'])
    assert osp.isfile(ds.get_data_info(0)['img_path'])


def test_generated_sar_sets_are_single_band(tmp_path):
    ids = make_sar_aircraft(str(tmp_path))
    from PIL import Image
    img = Image.open(osp.join(str(tmp_path), 'JPEGImages', ids[0] + '.jpg'))
    assert img.mode == 'L'
    with open(osp.join(str(tmp_path), 'Annotations', ids[0] + '.xml')) as f:
        assert '<depth>1</depth>' in f.read()


def _voc_sample(gt, pred):
    """gt: [(label, box)], pred: [(label, box, score)] -> VOCMetric input."""
    import torch
    t = torch.tensor
    return dict(
        gt_instances=dict(labels=t([g[0] for g in gt]),
                          bboxes=t([g[1] for g in gt], dtype=torch.float32)),
        ignored_instances=dict(labels=t([], dtype=torch.long),
                               bboxes=torch.zeros((0, 4))),
        pred_instances=dict(labels=t([p[0] for p in pred]),
                            bboxes=t([p[1] for p in pred],
                                     dtype=torch.float32),
                            scores=t([p[2] for p in pred])))


def test_classwise_voc_metric_per_class_ap50_by_hand():
    """Class a: both objects found first -> AP 1. Class b: a false positive
    outranks the only true positive -> precision 1/2 at recall 1 -> 11-point
    AP 0.5. Class c: no ground truth -> 0, left out of the mean (mmdet)."""
    import mmringmoe  # noqa: F401
    from mmringmoe.evaluation.metrics.voc_classwise import ClasswiseVOCMetric
    metric = ClasswiseVOCMetric(metric='mAP', eval_mode='11points')
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    box_a, box_b, far = [10, 10, 40, 40], [50, 50, 90, 80], [0, 60, 20, 90]
    metric.process({}, [
        _voc_sample([(0, box_a), (1, box_b)],
                    [(0, box_a, 0.9), (1, far, 0.8), (1, box_b, 0.5)]),
        _voc_sample([(0, box_b)], [(0, box_b, 0.7)]),
    ])
    res = metric.evaluate(2)
    assert res['pascal_voc/AP50_a'] == 1.0
    assert res['pascal_voc/AP50_b'] == 0.5
    assert res['pascal_voc/AP50_c'] == 0.0
    assert res['pascal_voc/mAP'] == pytest.approx(0.75)
