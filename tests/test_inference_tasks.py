"""Scene inference with the paper's configs (tiny backbones): change
detection, depth, scene classification, SAR-L1 and optical + SAR-L2
segmentation, checkpoint meta. Each output is checked against the model's own
forward on the same pixels or against the input's georeferencing."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from helpers import ROOT, TINY_CHANNELS, tiny_backbone
from inference_models import (build, paper_config, save_checkpoint,
                              sync_to_bn, write_geotiff)

TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)


def test_change_detection_pair_to_change_mask(tmp_path):
    import rasterio
    from mmringmoe.apis import RSInferencer
    cfg = paper_config('change_detection/bit_ringmoe-opt-kc_1xb8-200e_levircd-'
               '256x256.py')
    cfg.model.decode_head.in_channels = TINY_CHANNELS
    sync_to_bn(cfg.model)
    model = build(cfg)
    ckpt = save_checkpoint(model, str(tmp_path / 'bit.pth'),
                           classes=('unchanged', 'changed'),
                           palette=[[0, 0, 0], [255, 255, 255]])
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    b = a.copy()
    b[20:40, 20:40] = 255
    pa = write_geotiff(tmp_path / 'a.tif', a)
    pb = write_geotiff(tmp_path / 'b.tif', b)
    out = str(tmp_path / 'change.tif')
    res = RSInferencer(cfg, ckpt)((pa, pb), out=out, crop=64, overlap=0)
    assert res.task == 'change_detection'
    with rasterio.open(out) as d:
        got = d.read(1)
        assert d.transform[:6] == TRANSFORM and d.tags()['CLASS_1'] == \
            'changed'
    # mmseg's own predict on the stacked pair (sigmoid head: > threshold)
    from mmseg.structures import SegDataSample
    x = torch.from_numpy(np.concatenate([a, b], 2).transpose(2, 0, 1).copy())
    data = model.data_preprocessor(dict(inputs=[x], data_samples=[
        SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64)))
    ]))
    with torch.no_grad():
        ref = model.predict(data['inputs'], data['data_samples'])[0]
    assert model.decode_head.out_channels == 1
    assert (got == ref.pred_sem_seg.data[0].numpy()).all()


def test_depth_float32_metres(tmp_path):
    import rasterio
    from mmringmoe.apis import RSInferencer
    cfg = paper_config('depth/binsformer_ringmoe-opt-kc_1xb8-38.4k_vaihingen-'
               '512x512.py')
    cfg.model.decode_head.in_channels = TINY_CHANNELS
    cfg.model.decode_head.transformer_decoder.num_layers = 3
    cfg.model.decode_head.pixel_decoder.encoder.num_layers = 1
    cfg.model.decode_head.aux_loss_layers = ()
    cfg.model.decode_head.aux_loss_weights = ()
    model = build(cfg)
    ckpt = save_checkpoint(model, str(tmp_path / 'depth.pth'),
                           classes=(), palette=[])
    img = np.random.default_rng(1).integers(0, 255, (64, 80, 3),
                                            dtype=np.uint8)
    img[:, :8] = 0
    path = write_geotiff(tmp_path / 'rgb.tif', img, nodata=0)
    out = str(tmp_path / 'height.tif')
    res = RSInferencer(cfg, ckpt)(path, out=out, crop=64, overlap=16)
    with rasterio.open(out) as d:
        h = d.read(1)
        assert d.dtypes[0] == 'float32' and d.nodata == -9999.0
        assert d.tags()['units'] == 'metre'
    assert (h[:, :8] == -9999.0).all()
    inside = h[:, 8:]
    assert (inside > 0).all() and (inside <= 100).all()  # min/max_depth
    assert res.task == 'depth'


def test_classification_per_window_map_and_topk(tmp_path):
    import rasterio
    from mmringmoe.apis import RSInferencer
    cfg = paper_config('classification/ringmoe-opt-kc_16xb64-200e_nwpu-resisc45-'
               'tr10-224px.py')
    cfg.model.head.in_channels = TINY_CHANNELS[-1]
    model = build(cfg)
    names = tuple(f'scene{i}' for i in range(45))
    ckpt = save_checkpoint(model, str(tmp_path / 'cls.pth'), classes=names,
                           palette=[[i, i, i] for i in range(45)])
    img = np.random.default_rng(2).integers(0, 255, (100, 150, 3),
                                            dtype=np.uint8)
    path = write_geotiff(tmp_path / 'scene.tif', img)
    inf = RSInferencer(cfg, ckpt)
    out = str(tmp_path / 'cls.tif')
    res = inf(path, out=out, crop=64)
    with rasterio.open(out) as d:
        grid = d.read(1)
        assert grid.shape == (2, 3)
        assert d.transform[:6] == (640.0, 0.0, 500000.0, 0.0, -640.0,
                                   4000000.0)
    assert (grid == res.pred).all() and (grid < 45).all()
    small = write_geotiff(tmp_path / 'small.tif', img[:50, :60])
    top = inf(small, crop=64, topk=3).topk
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
    assert all(c in names for c, _ in top)


def test_sar_l1_complex_scene_with_stats_option(tmp_path):
    from mmringmoe.apis import RSInferencer
    from mmringmoe.datasets.transforms import write_complex_int16_tiff
    cfg = paper_config('segmentation/upernet_ringmoe-sarl1-kc_4xb1-20k_sarsegl1-'
               '500x500.py')
    cfg.model.decode_head.in_channels = TINY_CHANNELS
    cfg.model.auxiliary_head.in_channels = TINY_CHANNELS[2]
    sync_to_bn(cfg.model)
    assert 'data_preprocessor' not in cfg.model  # top-level, as in mmseg
    model = build(cfg)
    ckpt = save_checkpoint(model, str(tmp_path / 'l1.pth'),
                           classes=tuple('abcdef')[:cfg.model.decode_head
                                                   .num_classes],
                           palette=[[0, 0, 0]] * 6)
    stats = tmp_path / 'stats.json'
    stats.write_text(json.dumps({'sar_l1': dict(mean=[0.] * 8,
                                                std=[300.] * 8)}))
    pairs = np.random.default_rng(3).integers(-900, 900, (48, 56, 4, 2),
                                              dtype=np.int16)
    path = str(tmp_path / 'l1a.tif')
    write_complex_int16_tiff(path, pairs, crs='EPSG:32633',
                             transform=TRANSFORM)
    with pytest.raises(FileNotFoundError, match='--stats'):
        RSInferencer(cfg, ckpt)
    res = RSInferencer(cfg, ckpt, stats=str(stats))(path, crop=32,
                                                    overlap=8)
    assert res.pred.shape == (48, 56) and (res.pred < 6).all()


def test_opt_sar_fusion_dict_input(tmp_path):
    from mmringmoe.apis import RSInferencer
    cfg = paper_config('segmentation/upernet_ringmoe-opt-sarl2-kc_8xb2-80k_whu-opt-'
               'sar-256x256.py')
    cfg.model.sar_backbone = tiny_backbone(
        modalities=('sar_l2', ), moe_mode=cfg.model.sar_backbone.moe_mode)
    cfg.model.decode_head.in_channels = TINY_CHANNELS
    cfg.model.auxiliary_head.in_channels = TINY_CHANNELS[2]
    sync_to_bn(cfg.model)
    model = build(cfg)
    stats = {'opt': dict(mean=[100.] * 3, std=[50.] * 3),
             'sar_l2': dict(mean=[80.], std=[40.])}
    ckpt = save_checkpoint(model, str(tmp_path / 'f.pth'),
                           classes=tuple('abcdefg'), palette=[[0, 0, 0]] * 7,
                           inference=dict(stats=stats))
    rng = np.random.default_rng(4)
    opt = write_geotiff(tmp_path / 'opt.tif',
                        rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
    sar = write_geotiff(tmp_path / 'sar.tif',
                        rng.integers(0, 255, (40, 48, 1), dtype=np.uint8))
    res = RSInferencer(cfg, ckpt)({'opt': opt, 'sar_l2': sar}, crop=32,
                                  overlap=8)
    assert res.pred.shape == (40, 48) and (res.pred < 7).all()
    bad = write_geotiff(tmp_path / 'bad.tif',
                        rng.integers(0, 255, (40, 48, 1), dtype=np.uint8),
                        transform=(20.0, 0, 500000.0, 0, -20.0, 4000000.0))
    with pytest.raises(ValueError, match='sar_l2 .*bad.tif.* has transform'):
        RSInferencer(cfg, ckpt)({'opt': opt, 'sar_l2': bad})


def test_inference_meta_of_a_config(tmp_path):
    from mmringmoe.apis import inference_meta
    from mmengine.config import Config
    stats = {'ms': dict(mean=[1., 2., 3., 4.], std=[5., 6., 7., 8.])}
    (tmp_path / 's.json').write_text(json.dumps(stats))
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'segmentation',
        'upernet_ringmoe-ms-kc_8xb1-16k_dynamicearthnet-planet-1024x1024.py'))
    for t in cfg.test_dataloader.dataset.pipeline:
        if 'stats_file' in t:
            t['stats_file'] = str(tmp_path / 's.json')
    meta = inference_meta(cfg, dict(classes=('a', 'b'), palette=[(1, 2, 3),
                                                                 (4, 5, 6)]))
    assert meta['modalities'] == ['ms']
    assert meta['band_order']['ms'] == ['blue', 'green', 'red', 'nir']
    assert meta['stats'] == stats
    assert meta['test_crop'] == [1024, 1024]
    assert meta['classes'] == ['a', 'b'] and meta['palette'][1] == [4, 5, 6]
    # weights-only loadable
    torch.save(dict(meta=dict(inference=meta)), tmp_path / 'c.pth')
    torch.load(tmp_path / 'c.pth', weights_only=True)


def test_inference_meta_hook_fills_checkpoint_meta(tmp_path):
    """The hook a training run uses: meta['inference'] from the runner's
    config and the checkpoint's dataset_meta, plain values only."""
    from types import SimpleNamespace
    from mmengine.config import Config
    from mmringmoe.engine.hooks.inference_meta_hook import InferenceMetaHook
    from mmringmoe.registry import HOOKS
    assert HOOKS.get('InferenceMetaHook') is InferenceMetaHook
    stats = {'opt': dict(mean=[1., 2., 3.], std=[4., 5., 6.])}
    (tmp_path / 's.json').write_text(json.dumps(stats))
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'segmentation',
        'upernet_ringmoe-tiny_1xb4-200iter_builtin-seg-64x64.py'))
    for t in cfg.test_dataloader.dataset.pipeline:
        if 'stats_file' in t:
            t['stats_file'] = str(tmp_path / 's.json')
    ckpt = dict(meta=dict(dataset_meta=dict(classes=('a', 'b', 'c', 'd'))))
    InferenceMetaHook().before_save_checkpoint(
        SimpleNamespace(cfg=cfg, model=None), ckpt)
    info = ckpt['meta']['inference']
    assert info['stats'] == stats and info['test_crop'] == [64, 64]
    assert info['modalities'] == ['opt'] and info['classes'][3] == 'd'


def test_train_adds_inference_meta_hook_to_task_configs_only():
    """tools/train.py: task configs get the hook (their checkpoints carry
    meta['inference']), pretraining configs (no test pipeline) do not."""
    import os.path as osp

    from mmengine.config import Config

    from mmringmoe.engine import cli
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    seg = Config.fromfile(osp.join(
        root, 'configs', 'segmentation',
        'upernet_ringmoe-tiny_1xb4-200iter_builtin-seg-64x64.py'))
    seg.custom_hooks = [h for h in seg.get('custom_hooks', [])
                        if 'InferenceMeta' not in h['type']]
    cli.add_inference_meta_hook(seg)
    cli.add_inference_meta_hook(seg)  # idempotent
    assert [h['type'] for h in seg.custom_hooks].count(
        cli.INFERENCE_META_HOOK) == 1
    mim = Config.fromfile(osp.join(
        root, 'configs', 'pretrain',
        'simmim_ringmoe-tiny_4xb2-30iter_builtin-192px.py'))
    before = list(mim.get('custom_hooks', []))
    cli.add_inference_meta_hook(mim)
    assert list(mim.get('custom_hooks', [])) == before
