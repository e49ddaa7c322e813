"""Flip test-time augmentation of scene inference (``tta='flip'`` /
``'flip4'``, ``tools/infer.py --tta``): against mmseg's ``SegTTAModel`` and
``DepthEstimator.slide_flip_inference``, hand-computed averages of a model
that is not flip-equivariant, tiling, nodata, refusals."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from helpers import run_tool_main
from inference_models import (blob_det_config, build, file_digest,
                              paper_config, pixel_seg_config, save_checkpoint,
                              sync_to_bn, tiny_upernet_config, write_geotiff)

MEAN, STD = np.array([100., 110., 120.]), np.array([50., 55., 60.])


def _register_ramp():
    from mmengine.model import BaseModule
    from mmseg.registry import MODELS

    class ColumnRampBackbone(BaseModule):
        """1 x 1 convolution plus ``col_slope * j + row_slope * i`` (pixel
        column j, row i of the window): not flip-equivariant, in a way the
        test computes by hand."""

        def __init__(self, in_channels=3, channels=8, init_cfg=None):
            super().__init__(init_cfg)
            self.conv = nn.Conv2d(in_channels, channels, 1)
            g = torch.Generator().manual_seed(11)
            self.col_slope = nn.Parameter(torch.randn(channels, generator=g)
                                          * 0.3)
            self.row_slope = nn.Parameter(torch.randn(channels, generator=g)
                                          * 0.3)

        def forward(self, x):
            h, w = x.shape[-2:]
            j = torch.arange(w, dtype=x.dtype, device=x.device)
            i = torch.arange(h, dtype=x.dtype, device=x.device)
            ramp = (self.col_slope[:, None, None] * j[None, None, :]
                    + self.row_slope[:, None, None] * i[None, :, None])
            return [self.conv(x) + ramp[None]]

    MODELS.register_module('ColumnRampBackbone', module=ColumnRampBackbone,
                           force=True)


def ramp_config(binary=False):
    cfg = pixel_seg_config()
    _register_ramp()
    cfg.model.backbone.type = 'ColumnRampBackbone'
    if binary:
        cfg.model.decode_head.update(
            num_classes=2, out_channels=1, threshold=0.5,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True))
    return cfg


def _hand_logits(model, patch):
    """The ramp model's logits ``(C, h, w)`` of an image patch ``(h, w, 3)``,
    in numpy from its weights: W_c (W_b x_n + b_b + s_c j + s_r i) + b_c."""
    bb, head = model.backbone, model.decode_head
    wb = bb.conv.weight.detach().numpy()[:, :, 0, 0].astype(np.float64)
    b_b = bb.conv.bias.detach().numpy().astype(np.float64)
    sc = bb.col_slope.detach().numpy().astype(np.float64)
    sr = bb.row_slope.detach().numpy().astype(np.float64)
    wc = head.conv_seg.weight.detach().numpy()[:, :, 0, 0].astype(np.float64)
    b_c = head.conv_seg.bias.detach().numpy().astype(np.float64)
    h, w = patch.shape[:2]
    xn = (patch.astype(np.float64) - MEAN) / STD
    f = xn @ wb.T + b_b + sc * np.arange(w)[None, :, None] \
        + sr * np.arange(h)[:, None, None]
    return (f @ wc.T + b_c).transpose(2, 0, 1)


FLIPS = dict(flip=[(), (1, )], flip4=[(), (1, ), (0, ), (0, 1)])


def _softmax(x):
    e = np.exp(x - x.max(0, keepdims=True))
    return e / e.sum(0, keepdims=True)


def _hand_tta_probs(model, patch, tta, binary=False):
    """Mean over the flips of the probabilities of the flipped patch,
    flipped back (numpy; axes of (h, w, 3): 0 rows, 1 columns)."""
    ps = []
    for axes in FLIPS[tta]:
        lg = _hand_logits(model, np.flip(patch, axes) if axes else patch)
        lg = np.flip(lg, tuple(a + 1 for a in axes)) if axes else lg
        ps.append(1 / (1 + np.exp(-lg)) if binary else _softmax(lg))
    return np.mean(ps, 0)


def _binary_model(seed, img):
    """Binary ramp model whose logit bias puts the median pixel of ``img``
    at probability 0.5, so both classes occur."""
    cfg = ramp_config(binary=True)
    model = build(cfg, seed=seed)
    with torch.no_grad():
        model.decode_head.conv_seg.bias.zero_()
        model.decode_head.conv_seg.bias -= float(np.median(
            _hand_logits(model, img)))
    return cfg, model


@pytest.fixture(scope='module')
def ramp_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('ramp')
    cfg = ramp_config()
    model = build(cfg, seed=5)
    return cfg, model, save_checkpoint(model, str(tmp / 'ramp.pth'))


# ----------------------------------------------- hand-computed, one window
@pytest.mark.parametrize('tta', ['flip', 'flip4'])
def test_one_window_tta_is_the_hand_computed_mean_of_probabilities(
        ramp_model, tmp_path, tta):
    from mmringmoe.apis import RSInferencer
    cfg, model, ckpt = ramp_model
    img = np.random.default_rng(0).integers(0, 255, (12, 16, 3),
                                            dtype=np.uint8)
    path = write_geotiff(tmp_path / 'one.tif', img)
    inf = RSInferencer(cfg, ckpt)
    res = inf(path, crop=(12, 16), overlap=0, probs=True, tta=tta)
    want = _hand_tta_probs(model, img, tta)
    np.testing.assert_allclose(res.probs, want, atol=2e-6)
    assert (res.pred == want.argmax(0)).all()
    # the flips change this model's output (else the test could not fail)
    plain = inf(path, crop=(12, 16), overlap=0, probs=True)
    np.testing.assert_allclose(plain.probs, _softmax(_hand_logits(model, img)),
                               atol=2e-6)
    assert np.abs(plain.probs - want).max() > 0.05


def test_binary_sigmoid_head_averages_sigmoids(tmp_path):
    """One output channel: mean sigmoid over the flips (SegTTAModel), class
    = mean > threshold; the probabilities GeoTIFF gets [1 - p, p]."""
    from mmringmoe.apis import RSInferencer
    img = np.random.default_rng(1).integers(0, 255, (12, 16, 3),
                                            dtype=np.uint8)
    cfg, model = _binary_model(6, img)
    ckpt = save_checkpoint(model, str(tmp_path / 'bin.pth'),
                           classes=('no', 'yes'), palette=[[0] * 3, [255] * 3])
    path = write_geotiff(tmp_path / 'one.tif', img)
    res = RSInferencer(cfg, ckpt)(path, crop=(12, 16), overlap=0, probs=True,
                                  tta='flip4')
    p = _hand_tta_probs(model, img, 'flip4', binary=True)[0]
    np.testing.assert_allclose(res.probs[1], p, atol=2e-6)
    np.testing.assert_allclose(res.probs[0], 1 - p, atol=2e-6)
    assert (res.pred == (p > 0.5)).all()
    assert 0 < (res.pred == 1).mean() < 1


# ----------------------------------------------- against mmseg's SegTTAModel
def _seg_tta_reference(model, path, loader, monkeypatch, directions):
    """mmseg's SegTTAModel around ``model`` with a TTA pipeline built as
    mmseg's configs build it (TestTimeAug, RandomFlip prob 0 / prob 1);
    returns (class map, the mean probabilities it takes the argmax of / for
    a sigmoid head compares with the threshold: merge_preds' last such
    call, recorded by a spy)."""
    from mmengine.dataset import Compose, pseudo_collate
    from mmseg.models.segmentors.seg_tta import SegTTAModel
    flips = [dict(type='RandomFlip', prob=0., direction='horizontal')] + [
        dict(type='RandomFlip', prob=1., direction=d) for d in directions]
    pipeline = Compose([loader, dict(type='TestTimeAug', transforms=[
        flips, [dict(type='PackSegInputs')]])])
    data = pseudo_collate([pipeline(dict(img_path=path))])
    assert len(data['inputs']) == 1 + len(directions)
    tta = SegTTAModel(module=model)
    seen = []
    name = 'argmax' if model.out_channels > 1 else '__gt__'
    real = getattr(torch.Tensor, name)

    def spy(self, *args, **kwargs):  # merge_preds' call is the last one
        seen.append(self.detach().clone())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, name, spy)
    with torch.no_grad():
        out = tta.test_step(data)[0]
    monkeypatch.undo()
    return out.pred_sem_seg.data.numpy(), seen[-1].numpy(), data, tta


def test_tiny_ringmoe_upernet_flip_equals_mmseg_seg_tta_model(tmp_path,
                                                              monkeypatch):
    """An image the size of one window: tta='flip' gives mmseg's
    SegTTAModel (horizontal flip and without) on the same weights."""
    from mmengine.registry import init_default_scope
    from mmringmoe.apis import RSInferencer
    loader = dict(type='mmringmoe.LoadRSImageFromFile', modality='opt')
    cfg = tiny_upernet_config(loader)
    model = build(cfg, seed=3)
    ckpt = save_checkpoint(model, str(tmp_path / 'upernet.pth'))
    img = np.random.default_rng(2).integers(0, 255, (64, 64, 3),
                                            dtype=np.uint8)
    path = write_geotiff(tmp_path / 'scene.tif', img)
    inf = RSInferencer(cfg, ckpt)
    res = inf(path, crop=64, overlap=0, probs=True, tta='flip')
    init_default_scope('mmseg')
    cls, probs, _, _ = _seg_tta_reference(model, path, loader, monkeypatch,
                                    ['horizontal'])
    np.testing.assert_allclose(res.probs, probs, atol=1e-5)
    assert (res.pred == cls).all()
    plain = inf(path, crop=64, overlap=0, probs=True)
    assert np.abs(plain.probs - probs).max() > 1e-3  # the flip matters


def test_binary_head_equals_mmseg_per_flip_sigmoids(tmp_path, monkeypatch):
    """Sigmoid head (out_channels 1), tta='flip': the mean of the sigmoids
    of mmseg's own flipped-back outputs (EncoderDecoder.postprocess_result,
    one per TestTimeAug variant), class = mean > threshold. mmseg 1.2.2's
    SegTTAModel.merge_preds itself is not the reference here: it applies
    .sigmoid() to seg_logits that postprocess_result already passed through
    a sigmoid, so it averages sigmoid(sigmoid(l)) (>= 0.5 everywhere; with
    threshold 0.5 every pixel is class 1), which this test shows."""
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.tta import TTA_MODES
    img = np.random.default_rng(3).integers(0, 255, (12, 16, 3),
                                            dtype=np.uint8)
    cfg, model = _binary_model(7, img)
    ckpt = save_checkpoint(model, str(tmp_path / 'bin.pth'),
                           classes=('no', 'yes'), palette=[[0] * 3, [255] * 3])
    path = write_geotiff(tmp_path / 'one.tif', img)
    res = RSInferencer(cfg, ckpt)(path, crop=(12, 16), overlap=0, probs=True,
                                  tta='flip')
    assert TTA_MODES['flip'] == (None, 'horizontal')
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    loader = dict(type='mmringmoe.LoadRSImageFromFile', modality='opt')
    cls, merged, data, tta = _seg_tta_reference(model, path, loader,
                                                monkeypatch, ['horizontal'])
    with torch.no_grad():  # what BaseTTAModel.test_step runs per variant
        per_flip = [tta.module.test_step({k: v[i] for k, v in data.items()})
                    [0].seg_logits.data[0].numpy() for i in range(2)]
    p = np.mean(per_flip, 0)  # postprocess_result's sigmoids, flipped back
    assert per_flip[1].min() > 0 and per_flip[1].max() < 1
    np.testing.assert_allclose(res.probs[1], p, atol=1e-5)
    assert (res.pred == (p > 0.5)).all() and 0 < res.pred.mean() < 1
    # mmseg's merge: the double sigmoid
    np.testing.assert_allclose(
        merged[0], np.mean([1 / (1 + np.exp(-q)) for q in per_flip], 0),
        atol=1e-6)
    assert (cls == 1).all()


# --------------------------------------------------------- depth: mmseg
def test_depth_flip_uniform_equals_mmseg_slide_flip_inference(tmp_path):
    """Depth: mean metres over (as is, horizontal flip) per window, blended
    uniformly = mmseg's DepthEstimator.slide_flip_inference, same crop and
    stride."""
    from mmengine.config import ConfigDict
    from mmseg.structures import SegDataSample
    from mmringmoe.apis import RSInferencer
    from helpers import TINY_CHANNELS
    cfg = paper_config('depth/'
                       'binsformer_ringmoe-opt-kc_1xb8-38.4k_vaihingen-512x512.py')
    cfg.model.decode_head.in_channels = TINY_CHANNELS
    cfg.model.decode_head.transformer_decoder.num_layers = 3
    cfg.model.decode_head.pixel_decoder.encoder.num_layers = 1
    cfg.model.decode_head.aux_loss_layers = ()
    cfg.model.decode_head.aux_loss_weights = ()
    model = build(cfg)
    ckpt = save_checkpoint(model, str(tmp_path / 'depth.pth'), classes=(),
                           palette=[])
    img = np.random.default_rng(4).integers(0, 255, (64, 80, 3),
                                            dtype=np.uint8)
    path = write_geotiff(tmp_path / 'rgb.tif', img)
    inf = RSInferencer(cfg, ckpt)
    res = inf(path, crop=64, overlap=16, blend='uniform', batch_size=2,
              tta='flip')
    model.test_cfg = ConfigDict(mode='slide_flip', crop_size=(64, 64),
                                stride=(48, 48))
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    s = SegDataSample(metainfo=dict(img_shape=(64, 80), ori_shape=(64, 80)))
    data = model.data_preprocessor(dict(inputs=[x], data_samples=[s]))
    with torch.no_grad():
        ref = model.inference(data['inputs'],
                              [d.metainfo for d in data['data_samples']])
    ref = ref[0, 0].numpy()
    np.testing.assert_allclose(res.pred, ref, rtol=1e-5, atol=1e-4)
    plain = inf(path, crop=64, overlap=16, blend='uniform')
    assert np.abs(plain.pred - ref).max() > 1e-3  # the flip matters


# ------------------------------------------------------ many windows, nodata
@pytest.mark.parametrize('tta', ['flip', 'flip4'])
def test_tiled_tta_equals_per_window_tta_blended(ramp_model, tmp_path, tta):
    """Windows of a scene: each window's hand-computed TTA probabilities
    (its own row/column index), log taken, blended with the cosine weights
    (floor 0.1), softmax."""
    from mmringmoe.apis import RSInferencer
    from mmringmoe.datasets.windows import window_grid
    cfg, model, ckpt = ramp_model
    H, W, size, overlap = 30, 40, 16, 6
    img = np.random.default_rng(5).integers(0, 255, (H, W, 3),
                                            dtype=np.uint8)
    path = write_geotiff(tmp_path / 'scene.tif', img)
    res = RSInferencer(cfg, ckpt)(path, crop=size, overlap=overlap,
                                  batch_size=3, probs=True, tta=tta)
    g = np.maximum(np.sin(np.pi * (np.arange(size) + 0.5) / size), 0.1)
    wt = np.outer(g, g)
    num, den = np.zeros((4, H, W)), np.zeros((H, W))
    wins = window_grid(H, W, size, size - overlap)
    assert len(wins) == 3 * 4 and res.num_windows == 12
    for w in wins:
        r, c = w.row_off, w.col_off
        p = _hand_tta_probs(model, img[r:r + size, c:c + size], tta)
        num[:, r:r + size, c:c + size] += np.log(p) * wt
        den[r:r + size, c:c + size] += wt
    want = _softmax(num / den)
    np.testing.assert_allclose(res.probs, want, atol=2e-6)
    assert (res.pred == want.argmax(0)).all()


@pytest.mark.parametrize('tta', ['flip', 'flip4'])
def test_flip_equivariant_model_unchanged_by_tta_with_nodata(tmp_path, tta):
    """The 1 x 1 convolution model is flip-equivariant: tiled with TTA it
    equals one whole-image pass, nodata pixels are nodata, the all-nodata
    windows are skipped as without TTA, and the progress callback counts
    windows."""
    from mmringmoe.apis import RSInferencer
    cfg = pixel_seg_config()
    model = build(cfg)
    ckpt = save_checkpoint(model, str(tmp_path / 'pixel.pth'))
    img = np.random.default_rng(6).integers(0, 250, (64, 96, 3),
                                            dtype=np.uint8)
    img[:, 64:] = 255  # right third nodata: 2 windows skipped
    img[10, 20] = 255
    path = write_geotiff(tmp_path / 's.tif', img, nodata=255)
    calls = []
    res = RSInferencer(cfg, ckpt)(path, crop=32, overlap=0, probs=True,
                                  tta=tta, progress=lambda d, t:
                                  calls.append((d, t)))
    assert res.num_windows == 6 and res.num_skipped == 2
    assert calls[-1] == (6, 6) and all(t == 6 for _, t in calls)
    valid = np.ones((64, 96), bool)
    valid[:, 64:] = False
    valid[10, 20] = False
    assert (res.pred[~valid] == 255).all()
    assert np.isnan(res.probs[:, ~valid]).all()
    x = (img.astype(np.float64) - MEAN) / STD
    with torch.no_grad():
        xt = torch.from_numpy(x.transpose(2, 0, 1)[None]).float()
        ref = torch.softmax(model.decode_head(model.backbone(xt)), 1)[0]
    ref = ref.numpy()
    np.testing.assert_allclose(res.probs[:, valid], ref[:, valid], atol=2e-6)
    assert (res.pred[valid] == ref.argmax(0)[valid]).all()


# ------------------------------------------------------------- refusals, CLI
def test_tta_refused_for_detection_and_unknown_modes(tmp_path):
    from mmringmoe.apis import RSInferencer
    cfg = blob_det_config()
    ckpt = save_checkpoint(build(cfg), str(tmp_path / 'det.pth'),
                           classes=('ship', ), palette=[[255, 0, 0]])
    path = write_geotiff(tmp_path / 'sar.tif', np.zeros((40, 40, 1),
                                                        np.uint8))
    out = tmp_path / 'ships.geojson'
    with pytest.raises(ValueError, match='^--tta flip is for segmentation, '
                       'change detection and depth models; this is a '
                       'detection model$'):
        RSInferencer(cfg, ckpt)(path, out=str(out), tta='flip')
    assert not out.exists()
    from mmringmoe.apis.rs_inferencer import DENSE_TASKS
    from mmringmoe.apis.tta import check_tta
    with pytest.raises(ValueError, match='this is a classification model$'):
        check_tta('flip4', 'classification', DENSE_TASKS)
    assert check_tta(None, 'classification', DENSE_TASKS) == (None, )
    pcfg = pixel_seg_config()
    pckpt = save_checkpoint(build(pcfg), str(tmp_path / 'p.pth'))
    with pytest.raises(ValueError, match="tta must be one of .*'rot90'"):
        RSInferencer(pcfg, pckpt)(write_geotiff(
            tmp_path / 'rgb.tif', np.zeros((8, 8, 3), np.uint8)), tta='rot90')


@pytest.mark.parametrize('task', ['detection', 'tracking'])
def test_cli_tta_on_detection_or_tracking_is_one_line(tmp_path, capsys,
                                                     task):
    cfg = blob_det_config()
    ckpt = save_checkpoint(build(cfg), str(tmp_path / 'det.pth'),
                           classes=('ship', ), palette=[[255, 0, 0]])
    if task == 'tracking':  # an mmdet MOT model: a model with a tracker
        cfg.model.tracker = dict(type='ByteTracker')
    cfg_path = str(tmp_path / 'det_cfg.py')
    cfg.dump(cfg_path)
    scene = write_geotiff(tmp_path / 'sar.tif', np.zeros((40, 40, 1),
                                                         np.uint8))
    before = file_digest(scene)
    out = tmp_path / 'ships.geojson'
    assert run_tool_main('infer', [cfg_path, ckpt, scene, '--out', out,
                                   '--tta', 'flip', '--quiet']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith('error: ')]
    assert errors == [err[-1]]
    assert errors[0] == ('error: --tta flip is for segmentation, change '
                         f'detection and depth models; this is a {task} '
                         'model')
    assert not out.exists() and file_digest(scene) == before


def test_cli_tta_flip4_equals_the_api(ramp_model, tmp_path):
    import rasterio
    from mmringmoe.apis import RSInferencer
    cfg, model, ckpt = ramp_model
    cfg_path = str(tmp_path / 'ramp_cfg.py')
    cfg.dump(cfg_path)
    img = np.random.default_rng(7).integers(0, 255, (30, 40, 3),
                                            dtype=np.uint8)
    scene = write_geotiff(tmp_path / 'scene.tif', img)
    out = str(tmp_path / 'pred.tif')
    res = run_tool_main('infer', [cfg_path, ckpt, scene, '--out', out,
                                  '--crop', 16, '--overlap', 6, '--tta',
                                  'flip4', '--quiet'])
    assert res.task == 'segmentation'
    want = RSInferencer(cfg, ckpt)(scene, crop=16, overlap=6, tta='flip4')
    plain = RSInferencer(cfg, ckpt)(scene, crop=16, overlap=6)
    with rasterio.open(out) as d:
        got = d.read(1)
    assert (got == want.pred).all() and (got != plain.pred).any()


# ------------------------------------------------ change detection, merging
def test_change_pair_flip_equals_mean_of_mmseg_flipped_predictions(
        tmp_path):
    """Tiny BIT (sigmoid head) on a pair the size of one window: tta='flip'
    = the mean of the probabilities mmseg's own predict gives for the pair
    as is and for both dates flipped horizontally (flip / flip_direction
    in the metainfo: postprocess_result flips back and takes the
    sigmoid)."""
    from mmseg.structures import SegDataSample
    from mmringmoe.apis import RSInferencer
    from helpers import TINY_CHANNELS
    cfg = paper_config('change_detection/'
                       'bit_ringmoe-opt-kc_1xb8-200e_levircd-256x256.py')
    cfg.model.decode_head.in_channels = TINY_CHANNELS
    sync_to_bn(cfg.model)
    model = build(cfg, seed=1)
    ckpt = save_checkpoint(model, str(tmp_path / 'bit.pth'),
                           classes=('unchanged', 'changed'),
                           palette=[[0, 0, 0], [255, 255, 255]])
    rng = np.random.default_rng(8)
    a = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    b = a.copy()
    b[10:30, 5:25] = 255  # a change off the vertical axis of the window
    pa = write_geotiff(tmp_path / 'a.tif', a)
    pb = write_geotiff(tmp_path / 'b.tif', b)
    res = RSInferencer(cfg, ckpt)((pa, pb), crop=64, overlap=0, probs=True,
                                  tta='flip')
    assert model.decode_head.out_channels == 1
    x = torch.from_numpy(np.concatenate([a, b], 2).transpose(2, 0, 1).copy())
    refs = []
    for flip in (False, True):
        s = SegDataSample(metainfo=dict(
            img_shape=(64, 64), ori_shape=(64, 64), flip=flip,
            flip_direction='horizontal' if flip else None))
        data = model.data_preprocessor(dict(
            inputs=[x.flip(-1) if flip else x], data_samples=[s]))
        with torch.no_grad():
            out = model.predict(data['inputs'], data['data_samples'])[0]
        refs.append(out.seg_logits.data[0].numpy())  # sigmoid, flipped back
    p = np.mean(refs, 0)
    assert np.abs(refs[0] - refs[1]).max() > 1e-3  # the flip matters
    np.testing.assert_allclose(res.probs[1], p, atol=1e-5)
    thr = model.decode_head.threshold
    assert (res.pred == (p > thr)).all()


def test_merge_flips_against_float64_and_extreme_logits():
    """log of the mean softmax (float64 numpy) and log-odds of the mean
    sigmoid; logits 200 apart (float32 softmax underflows to 0, a naive
    log would be -inf) stay finite and give the mean back."""
    from mmringmoe.apis.tta import merge_flips
    rng = np.random.default_rng(9)
    lg = rng.normal(size=(4, 2, 5, 3, 3)) * 3
    got = merge_flips(torch.from_numpy(lg).float(), 'softmax').numpy()
    e = np.exp(lg - lg.max(2, keepdims=True))
    mean_p = (e / e.sum(2, keepdims=True)).mean(0)
    np.testing.assert_allclose(got, np.log(mean_p), atol=1e-5)
    one = lg[:, :, :1]
    got = merge_flips(torch.from_numpy(one).float(), 'sigmoid').numpy()
    q = (1 / (1 + np.exp(-one))).mean(0)
    np.testing.assert_allclose(got, np.log(q / (1 - q)), atol=1e-4)
    np.testing.assert_allclose(
        merge_flips(torch.from_numpy(lg).float(), 'mean').numpy(),
        lg.mean(0), atol=1e-6)
    ext = torch.zeros(2, 1, 2, 1, 1)
    ext[0, 0, 0] = 200.  # flip 1: class 0 sure; flip 2: both 0.5
    m = merge_flips(ext, 'softmax')
    assert torch.isfinite(m).all()
    np.testing.assert_allclose(torch.softmax(m, 1).flatten().numpy(),
                               [0.75, 0.25], atol=1e-6)
    s = merge_flips(torch.tensor([[[[[200.]]]], [[[[-200.]]]]]), 'sigmoid')
    assert torch.isfinite(s).all() and abs(float(s)) < 1e-5  # mean 0.5
