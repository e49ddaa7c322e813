"""Height (depth) estimation (paper B.5.7, Tab. A12/A16): metric against a
hand computation, bins-to-depth, DSM loading, BinsFormer configs end to end
on generated ISPRS Vaihingen / Potsdam layouts."""
import math

import numpy as np
import pytest
import torch

from cd_depth_fewshot_helpers import (assert_variant_of, load_config,
                                      tiny_like, train_then_test)
from helpers import TINY_CHANNELS

VAIHINGEN = 'depth/binsformer_ringmoe-opt-kc_1xb8-38.4k_vaihingen-512x512.py'
POTSDAM = 'depth/binsformer_ringmoe-opt-kc_1xb8-38.4k_potsdam-512x512.py'


def test_depth_metric_hand_computed():
    """The configured evaluator (mmseg DepthMetric, default metrics) gives
    Rel / delta1-3 / RMSE of the paper's formulas; gt 0 = invalid."""
    from mmengine.registry import METRICS
    cfg = load_config(VAIHINGEN)
    metric = METRICS.build(dict(cfg.val_evaluator, type='mmseg.DepthMetric'))
    gt = torch.tensor([[1., 2., 0.], [4., 8., 5.]])
    pred = torch.tensor([[1.1, 1.5, 3.], [5., 8., 4.]])
    metric.process({}, [dict(pred_depth_map=dict(data=pred[None]),
                             gt_depth_map=dict(data=gt[None]))])
    out = metric.compute_metrics(metric.results)
    # valid pixels: (1, 1.1), (2, 1.5), (4, 5), (8, 8), (5, 4)
    pairs = [(1., 1.1), (2., 1.5), (4., 5.), (8., 8.), (5., 4.)]
    rel = sum(abs(g - p) / g for g, p in pairs) / 5
    ratios = [max(g / p, p / g) for g, p in pairs]
    rmse = math.sqrt(sum((g - p) ** 2 for g, p in pairs) / 5)
    assert out['abs_rel'] == pytest.approx(rel)  # 0.19
    assert out['d1'] == pytest.approx(sum(r < 1.25 for r in ratios) / 5)
    assert out['d1'] == pytest.approx(0.4)  # 1.1 and 1.0; 1.25 is not < 1.25
    assert out['d2'] == pytest.approx(1.0)
    assert out['d3'] == pytest.approx(1.0)
    assert out['rmse'] == pytest.approx(rmse)


def test_bins_to_depth_centres_monotonic_in_range():
    from mmringmoe.models.depth import bins_to_depth_centres
    torch.manual_seed(0)
    logits = torch.randn(4, 64) * 5
    for norm in ('softmax', 'linear', 'sigmoid'):
        edges, centres = bins_to_depth_centres(logits, 1e-3, 80., norm)
        assert centres.shape == (4, 64) and edges.shape == (4, 65)
        assert (centres.diff(dim=1) > 0).all()
        assert (centres > 1e-3).all() and (centres < 80.).all()
        torch.testing.assert_close(edges[:, 0], torch.full((4, ), 1e-3))
        torch.testing.assert_close(edges[:, -1], torch.full((4, ), 80.))
    with pytest.raises(ValueError, match='max_depth'):
        bins_to_depth_centres(logits, 5., 5.)


def test_dsm_loading(tmp_path):
    import tifffile

    from mmringmoe.datasets.transforms.dsm import LoadDSMFromFile
    dsm = np.array([[250., 252.], [np.nan, 260.]], np.float32)
    tifffile.imwrite(tmp_path / 'dsm.tif', dsm)
    out = LoadDSMFromFile().transform(dict(
        depth_map_path=str(tmp_path / 'dsm.tif'), seg_fields=[],
        img=np.zeros((2, 2, 3), np.uint8)))
    # heights above the tile minimum + 1 cm ground offset; NaN -> 0 (invalid)
    np.testing.assert_allclose(out['gt_depth_map'],
                               [[0.01, 2.01], [0., 10.01]], rtol=1e-6)
    assert 'gt_depth_map' in out['seg_fields']
    with pytest.raises(ValueError, match='is \\(2, 2\\) but its image'):
        LoadDSMFromFile().transform(dict(
            depth_map_path=str(tmp_path / 'dsm.tif'), seg_fields=[],
            img=np.zeros((3, 2, 3), np.uint8)))
    with pytest.raises(FileNotFoundError, match='missing.tif'):
        LoadDSMFromFile().transform(dict(
            depth_map_path=str(tmp_path / 'missing.tif'), seg_fields=[]))


def _write_tiles(root, names, img_dir, dsm_dir, size=(96, 112)):
    import tifffile
    rng = np.random.default_rng(0)
    (root / img_dir).mkdir(parents=True, exist_ok=True)
    (root / dsm_dir).mkdir(parents=True, exist_ok=True)
    for img_name, dsm_name in names:
        img = rng.integers(0, 255, size + (3, ), dtype=np.uint8)
        tifffile.imwrite(root / img_dir / img_name, img, photometric='rgb')
        dsm = 250 + 20 * img[..., 0].astype(np.float32) / 255
        tifffile.imwrite(root / dsm_dir / dsm_name, dsm)


def _tiny(cfg, data_root):
    cfg.model.backbone = tiny_like(cfg.model.backbone)
    head = cfg.model.decode_head
    head.in_channels = TINY_CHANNELS
    head.feat_channels = 32
    head.num_bins = 16
    enc = head.pixel_decoder.encoder
    enc.num_layers = 1
    enc.layer_cfg.self_attn_cfg.embed_dims = 32
    enc.layer_cfg.ffn_cfg.embed_dims = 32
    enc.layer_cfg.ffn_cfg.feedforward_channels = 64
    head.pixel_decoder.positional_encoding.num_feats = 16
    dec = head.transformer_decoder
    dec.num_layers = 3
    for key in ('self_attn_cfg', 'cross_attn_cfg', 'ffn_cfg'):
        dec.layer_cfg[key].embed_dims = 32
    dec.layer_cfg.ffn_cfg.feedforward_channels = 64
    head.aux_loss_layers = (0, 1)
    head.aux_loss_weights = (0.25, 0.5)
    crop = (64, 64)
    cfg.model.data_preprocessor.size = crop
    cfg.model.test_cfg.crop_size = crop
    cfg.model.test_cfg.stride = (48, 48)  # several sliding windows per tile
    for t in cfg.train_dataloader.dataset.pipeline:
        if t.type == 'RandomCrop':
            t.crop_size = crop
    cfg.train_dataloader.batch_size = 2
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(data_root)
    return cfg


def _vaihingen_names(areas):
    return [(f'top_mosaic_09cm_area{a}.tif', f'dsm_09cm_matching_area{a}.tif')
            for a in areas]


def _potsdam_names(tiles):
    out = []
    for t in tiles:
        r, c = (int(v) for v in t.split('_'))
        out.append((f'top_potsdam_{r}_{c}_RGB.tif',
                    f'dsm_potsdam_{r:02d}_{c:02d}.tif'))
    return out


def test_isprs_splits_match_paper():
    from mmringmoe.datasets.depth import (PotsdamDepthDataset,
                                          VaihingenDepthDataset)
    v, p = VaihingenDepthDataset.SPLITS, PotsdamDepthDataset.SPLITS
    assert (len(v['train']), len(v['test'])) == (16, 17)
    assert (len(p['train']), len(p['test'])) == (24, 14)
    assert not set(v['train']) & set(v['test'])
    assert not set(p['train']) & set(p['test'])


@pytest.mark.parametrize('config', [VAIHINGEN, POTSDAM])
def test_binsformer_config_train_and_test(tmp_path, monkeypatch, config):
    cfg = load_config(config)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, tuple(opt.betas), opt.weight_decay) == (
        'AdamW', 1e-4, (0.9, 0.999), 0.01)
    assert cfg.train_cfg.max_iters == 38400
    assert cfg.param_scheduler[0].end == int(0.3 * 38400)
    assert cfg.train_dataloader.batch_size == 8
    metrics = _train_then_test_on_generated(cfg, tmp_path, monkeypatch)
    assert {'abs_rel', 'd1', 'd2', 'd3', 'rmse'} <= set(metrics)


def _train_then_test_on_generated(cfg, tmp_path, monkeypatch):
    from mmringmoe.registry import DATASETS
    data_root = tmp_path / 'data'
    ds_cls = DATASETS.get(cfg.train_dataloader.dataset.type.split('.')[-1])
    if 'Vaihingen' in ds_cls.__name__:
        # two areas per split are enough; the rest of the split is absent
        monkeypatch.setattr(ds_cls, 'SPLITS', dict(train=(1, 3), test=(2, 4)))
        _write_tiles(data_root, _vaihingen_names((1, 2, 3, 4)), 'top', 'dsm')
    else:
        monkeypatch.setattr(ds_cls, 'SPLITS', dict(train=('2_10', '2_11'),
                                                   test=('2_13', '7_13')))
        _write_tiles(data_root, _potsdam_names(('2_10', '2_11', '2_13',
                                                '7_13')),
                     '2_Ortho_RGB', '1_DSM')
    return train_then_test(_tiny(cfg, data_root), tmp_path)


@pytest.mark.parametrize('variant', ['ep', 'ks', 'ka'])
def test_binsformer_variant_configs(variant):
    assert_variant_of(
        f'depth/binsformer_ringmoe-opt-{variant}_1xb8-38.4k_'
        'vaihingen-512x512.py', VAIHINGEN, f'ringmoe-opt-{variant}.py')


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['ep', 'ks', 'ka'])
def test_binsformer_variant_config_train_and_test(tmp_path, monkeypatch, variant):
    """Every variant config end to end (its sparse or dense backbone, tiny)."""
    cfg = load_config(VAIHINGEN.replace('-kc_', f'-{variant}_'))
    metrics = _train_then_test_on_generated(cfg, tmp_path, monkeypatch)
    assert {'abs_rel', 'd1', 'd2', 'd3', 'rmse'} <= set(metrics)


def test_slide_mode_uses_sliding_windows(monkeypatch):
    """mmseg 1.2.2 DepthEstimator runs whole-image inference for 'slide';
    MoEDepthEstimator routes it to slide_inference."""
    from mmengine.registry import init_default_scope

    from mmringmoe.registry import MODELS
    init_default_scope('mmseg')
    cfg = _tiny(load_config(VAIHINGEN), '/nonexistent')
    cfg.model.test_cfg = dict(mode='slide', crop_size=(64, 64),
                              stride=(48, 48))
    model = MODELS.build(cfg.model).eval()
    calls = []
    real = model.encode_decode

    def counting(inputs, metas):
        calls.append(tuple(inputs.shape[-2:]))
        return real(inputs, metas)

    monkeypatch.setattr(model, 'encode_decode', counting)
    meta = dict(ori_shape=(80, 112), img_shape=(80, 112),
                pad_shape=(80, 112), padding_size=[0, 0, 0, 0])
    with torch.no_grad():
        depth = model.inference(torch.randn(1, 3, 80, 112), [meta])
    assert depth.shape == (1, 1, 80, 112)
    assert len(calls) == 2 * 2 and set(calls) == {(64, 64)}
    assert (depth > 0).all()
