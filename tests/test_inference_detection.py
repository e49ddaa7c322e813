"""Scene inference for detection: objects cut by window borders, GeoJSON."""
import json

import numpy as np
import pytest

from inference_models import (blob_det_config, build, save_checkpoint,
                              write_geotiff)

TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)


@pytest.mark.parametrize('rotated', [False, True])
def test_object_straddling_window_border_appears_once(tmp_path, rotated):
    """A bright block across the border of the first window column (col 64)
    is cut in windows 0 and 64 and whole in window 32; the GeoJSON holds it
    once, with the whole box, and its map polygon is its pixel polygon
    through the scene transform."""
    from mmringmoe.apis import RSInferencer
    cfg = blob_det_config(rotated=rotated)
    ckpt = save_checkpoint(build(cfg), str(tmp_path / 'det.pth'),
                           classes=('ship', ), palette=[[255, 0, 0]])
    img = np.zeros((96, 160, 1), np.uint8)
    img[50:60, 58:70] = 200  # rows 50..59, cols 58..69
    path = write_geotiff(tmp_path / 'sar.tif', img)
    out = str(tmp_path / 'ships.geojson')
    res = RSInferencer(cfg, ckpt)(path, out=out, crop=64, overlap=32)
    with open(out) as f:
        fc = json.load(f)
    assert fc['type'] == 'FeatureCollection'
    assert fc['crs']['properties']['name'] == 'urn:ogc:def:crs:EPSG::32633'
    assert len(fc['features']) == 1
    feat = fc['features'][0]
    props = feat['properties']
    assert props['class_name'] == 'ship' and props['score'] == \
        pytest.approx(0.9)
    if rotated:
        assert props['pixel_rbox'] == pytest.approx([64, 55, 12, 10, 0])
    else:
        assert props['pixel_bbox'] == [58, 50, 70, 60]
    px = np.array(props['pixel_polygon'])
    assert sorted({tuple(p) for p in px.tolist()}) == [
        (58, 50), (58, 60), (70, 50), (70, 60)]
    ring = np.array(feat['geometry']['coordinates'][0])
    assert (ring[0] == ring[-1]).all() and len(ring) == 5
    a, b, c, d, e, f = TRANSFORM
    np.testing.assert_allclose(ring[:4, 0], a * px[:, 0] + b * px[:, 1] + c)
    np.testing.assert_allclose(ring[:4, 1], d * px[:, 0] + e * px[:, 1] + f)
    assert res.task == 'detection' and res.pred == fc


def test_nms_merges_duplicates_across_windows():
    """Two windows' copies of one object that both claim it (centres in
    different cores after rounding) are merged by mmcv's batched_nms, the op
    mmdet's merge_results_by_nms wraps."""
    import torch
    from mmcv.ops import batched_nms
    boxes = torch.tensor([[10., 10., 20., 20.], [10.5, 10., 20.5, 20.],
                          [40., 40., 50., 50.]])
    _, keep = batched_nms(boxes, torch.tensor([0.9, 0.8, 0.7]),
                          torch.tensor([0, 0, 0]),
                          dict(type='nms', iou_threshold=0.5))
    assert keep.tolist() == [0, 2]


def test_core_bounds_partition_the_axis():
    from mmringmoe.apis.rs_inferencer import core_bounds
    from mmringmoe.datasets.windows import window_starts
    starts = window_starts(160, 64, 32)
    assert starts == [0, 32, 64, 96]
    b = core_bounds(starts, 64, 160)
    # each boundary half-way through the overlap of neighbours
    assert b == [0, 48.0, 80.0, 112.0, 160.0]
    for s, lo, hi in zip(starts, b[:-1], b[1:]):
        assert s <= lo and hi <= s + 64


@pytest.mark.parametrize('rotated', [False, True])
def test_merge_equals_mmdet_merge_results_by_nms(tmp_path, rotated):
    """Upstream reference: the per-window predictions, computed here by
    calling the model on each window array, kept by the core rule and merged
    by mmdet's own merge_results_by_nms (mmdet/utils/large_image.py; sahi
    shift for horizontal, shift_rbboxes + nms_rotated for rotated boxes),
    equal the inferencer's GeoJSON (boxes, scores, classes, order). Each
    window reports every object three times (a copy 1 px off of the same
    class, one of another class), so NMS has work to do."""
    import torch
    from mmdet.structures import DetDataSample
    from mmdet.utils.large_image import merge_results_by_nms
    from mmengine.structures import InstanceData
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.rs_inferencer import core_bounds
    from mmringmoe.datasets.windows import window_grid, window_starts
    cfg = blob_det_config(rotated=rotated, copies=True)
    model = build(cfg)
    ckpt = save_checkpoint(model, str(tmp_path / 'det.pth'),
                           classes=('ship', 'tank'),
                           palette=[[255, 0, 0], [0, 0, 255]])
    H, W, crop, stride = 96, 160, 64, 32
    img = np.zeros((H, W, 1), np.uint8)
    img[50:60, 58:70] = 200   # across the border of the first window column
    img[5:15, 140:150] = 220  # in the last window column only
    path = write_geotiff(tmp_path / 'sar.tif', img)
    res = RSInferencer(cfg, ckpt)(path, crop=crop, overlap=crop - stride)
    props = [f['properties'] for f in res.pred['features']]
    key = 'pixel_rbox' if rotated else 'pixel_bbox'

    rb = core_bounds(window_starts(H, crop, stride, 'pad'), crop, H)
    cb = core_bounds(window_starts(W, crop, stride, 'pad'), crop, W)
    rows = window_starts(H, crop, stride, 'pad')
    cols = window_starts(W, crop, stride, 'pad')
    results, offsets, n_before = [], [], 0
    for win in window_grid(H, W, crop, stride, small='pad'):
        x = torch.from_numpy(img[win.slices][..., 0].astype(np.float32)
                             / 255.)[None]
        sample = model.predict([x], [DetDataSample()])[0]
        inst = sample.pred_instances
        b = inst.bboxes
        cx = b[:, 0] if rotated else (b[:, 0] + b[:, 2]) / 2
        cy = b[:, 1] if rotated else (b[:, 1] + b[:, 3]) / 2
        i, j = rows.index(win.row_off), cols.index(win.col_off)
        gx, gy = cx + win.col_off, cy + win.row_off
        keep = ((gy >= rb[i]) & (gy < rb[i + 1]) & (gx >= cb[j])
                & (gx < cb[j + 1]))
        if keep.any():
            results.append(DetDataSample(pred_instances=InstanceData(
                bboxes=b[keep], scores=inst.scores[keep],
                labels=inst.labels[keep])))
            offsets.append((win.col_off, win.row_off))
            n_before += int(keep.sum())
    nms = dict(type='nms_rotated' if rotated else 'nms',
               iou_threshold=0.1 if rotated else 0.5)
    ref = merge_results_by_nms(results, offsets, (H, W), nms).pred_instances
    assert n_before == 6 and len(ref) == 4  # NMS removed the 1 px copies
    np.testing.assert_allclose([p[key] for p in props], ref.bboxes.numpy())
    assert [p['score'] for p in props] == pytest.approx(ref.scores.tolist())
    assert [p['label'] for p in props] == ref.labels.tolist()
    assert sorted(p['class_name'] for p in props) == ['ship', 'ship', 'tank',
                                                      'tank']
