"""MIM loss (paper Eq. 6) over masked AND valid pixels, per modality
(issue 12): valid_mask from the loaders and SARPower travels through the
crop/flip into the data sample; nodata pixels neither count in the loss nor
reach the encoder."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from helpers import ROOT
from mmringmoe.registry import MODELS

MODS = ('opt', 'ms', 'sar_l1', 'sar_l2')
CHANNELS = dict(opt=3, ms=4, sar_l1=8, sar_l2=1)
SIZE = 64
PATCH = 4  # head patch size: the SimMIM mask is on a 16 x 16 grid


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    m = MODELS.build(dict(
        type='mmringmoe.RingMoEMIM',
        backbone=dict(type='mmringmoe.RingMoE', arch='tiny', modalities=MODS,
                      out_indices=(3, ), drop_path_rate=0.,
                      use_mask_token=True),
        data_preprocessor=dict(
            type='mmringmoe.RingMoEMIMDataPreprocessor',
            norm_cfg={m: dict(mean=[5.] * c, std=[3.] * c)
                      for m, c in CHANNELS.items()})))
    return m.eval()  # no gating noise: repeated forwards agree


def hand_loss(pred, target, mask, valid):
    """Eq. 6 by loops: mean squared error over the channels of the pixels
    that are masked (mask upsampled by PATCH) and valid."""
    pred, target, mask, valid = (torch.as_tensor(t).detach().double().numpy()
                                 for t in (pred, target, mask, valid))
    total, count = 0.0, 0
    b, c, h, w = pred.shape
    for i in range(b):
        for y in range(h):
            for x in range(w):
                if mask[i, y // PATCH, x // PATCH] and valid[i, y, x]:
                    for k in range(c):
                        total += float(pred[i, k, y, x] - target[i, k, y, x])**2
                        count += 1
    return total / count if count else 0.0


def test_loss_is_hand_mean_over_masked_valid_pixels(model):
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 3, 8, 8, generator=g)
    target = torch.randn(2, 3, 8, 8, generator=g)
    mask = torch.tensor([[[1, 0], [1, 1]], [[0, 1], [0, 0]]])
    valid = torch.ones(2, 8, 8, dtype=torch.bool)
    valid[0, :3] = False  # nodata rows in a masked patch
    valid[1, 5:, 5:] = False  # nodata in an unmasked patch
    loss = model.reconstruction_loss('opt', pred, target, mask, valid)
    ref = hand_loss(pred, target, mask, valid)
    assert loss.item() == pytest.approx(ref, rel=1e-6)
    # counted pixels: 3 masked patches of sample 0 minus 3 nodata rows of
    # the two top patches (2 x 3 x 4 = 24) + 1 patch of sample 1
    assert ref != pytest.approx(hand_loss(pred, target, mask,
                                          torch.ones_like(valid)))
    # all valid: exactly mmpretrain's SimMIMHead loss (upstream reference)
    torch.testing.assert_close(
        model.reconstruction_loss('opt', pred, target, mask,
                                  torch.ones_like(valid)),
        model.head['opt'].loss(pred, target, mask))


def test_nodata_values_and_predictions_do_not_change_loss(model):
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(2, 1, 8, 8, generator=g, requires_grad=True)
    target = torch.randn(2, 1, 8, 8, generator=g)
    mask = torch.ones(2, 2, 2, dtype=torch.long)
    valid = torch.rand(2, 8, 8, generator=g) > 0.3
    base = model.reconstruction_loss('sar_l1', pred, target, mask, valid)
    base.backward()
    assert (pred.grad[~valid.unsqueeze(1)] == 0).all()
    assert (pred.grad[valid.unsqueeze(1)] != 0).all()
    bad = ~valid.unsqueeze(1)
    t2 = target.clone()
    t2[bad] = float('nan')  # any fill value, even NaN / -100 dB / inf
    p2 = pred.detach().clone()
    p2[bad] = 1e6
    p2.requires_grad_(True)
    for t in (t2, torch.where(bad, torch.full_like(target, -100.), target)):
        loss = model.reconstruction_loss('sar_l1', p2, t, mask, valid)
        assert loss.item() == base.item()
        loss.backward()
        assert torch.isfinite(p2.grad).all()
        p2.grad = None


def test_modality_without_valid_masked_pixel_contributes_zero(model):
    pred = torch.randn(2, 4, 8, 8, requires_grad=True)
    target = torch.randn(2, 4, 8, 8)
    mask = torch.ones(2, 2, 2, dtype=torch.long)
    loss = model.reconstruction_loss('ms', pred, target, mask,
                                     torch.zeros(2, 8, 8, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))
    # valid pixels only under visible (unmasked) patches: also 0
    valid = torch.zeros(2, 8, 8, dtype=torch.bool)
    valid[:, :4, :4] = True
    mask = torch.tensor([[[0, 1], [1, 1]]] * 2)
    assert model.reconstruction_loss('ms', pred, target, mask,
                                     valid).item() == 0.0


def make_batch(seed=0, fill=None):
    """Mixed batch, 2 samples per modality; sample 0 of every modality has a
    nodata left border (columns < 20) whose raw values are ``fill``
    (random when None)."""
    rng = np.random.default_rng(seed)
    fill_rng = np.random.default_rng(99 if fill is None else 0)
    items = []
    for m in MODS:
        for j in range(2):
            if m == 'sar_l1':
                img = rng.integers(-900, 900, (SIZE, SIZE, 8)).astype(np.int16)
            else:
                img = rng.integers(0, 200, (SIZE, SIZE, CHANNELS[m])).astype(
                    np.uint8)
            valid = np.ones((SIZE, SIZE), bool)
            if j == 0:
                valid[:, :20] = False
                img[:, :20] = fill if fill is not None else fill_rng.integers(
                    0, 100, img[:, :20].shape)
            ds = DataSample(metainfo=dict(modality=m))
            mask = np.zeros((2, 2), int)
            mask.flat[rng.permutation(4)[:3]] = 1
            ds.set_mask(np.kron(mask, np.ones((8, 8), int)))
            # sample 1: views with negative strides, as RSRandomFlip leaves them
            ds.set_field(valid if j == 0 else valid[:, ::-1], 'valid_mask')
            if m == 'sar_l1':
                x = img.astype(np.float64)
                power = np.log10((x * x).sum(-1) + 1).astype(np.float32)
                if j == 0:
                    power[:, :20] = fill_rng.normal(0, 50, (SIZE, 20))
                ds.set_field(power if j == 0 else power[:, ::-1], 'gt_power')
            items.append(dict(inputs=torch.from_numpy(img).permute(2, 0, 1),
                              data_samples=ds))
    return pseudo_collate(items)


def test_model_loss_per_modality_ignores_nodata(model):
    """End to end: every modality's loss is the hand mean over its masked
    valid pixels, and changing the nodata pixels' raw values and targets
    changes no loss (the preprocessor sets their normalised input to 0)."""
    data = model.data_preprocessor(make_batch(fill=None))
    for m in MODS:
        assert (data['inputs'][m][0, :, :, :20] == 0).all()
    with torch.no_grad():
        losses = model(data['inputs'], data['data_samples'], mode='loss')
        out = model(data['inputs'], data['data_samples'], mode='predict')
    for m in MODS:
        o = out[m]
        ref = hand_loss(o['pred'], o['target'], o['mask'], o['valid'])
        assert losses[f'loss_rec_{m}'].item() == pytest.approx(ref, rel=1e-5)
        assert not o['valid'][0, :, :20].any() and o['valid'][1].all()
    for fill in (255, 0):
        other = model.data_preprocessor(make_batch(fill=fill))
        with torch.no_grad():
            again = model(other['inputs'], other['data_samples'], mode='loss')
        for m in MODS:
            assert again[f'loss_rec_{m}'].item() == pytest.approx(
                losses[f'loss_rec_{m}'].item(), rel=1e-6, abs=1e-7), m


def test_power_target_requires_valid_mask(model):
    batch = make_batch()
    for ds in batch['data_samples']:
        if ds.modality == 'sar_l1':
            del ds.valid_mask
    data = model.data_preprocessor(batch)
    with pytest.raises(ValueError, match="valid_mask.*'valid_mask'"):
        model(data['inputs'], data['data_samples'], mode='loss')
    batch = make_batch()
    batch['data_samples'][0].valid_mask = np.ones((3, 3), bool)
    with pytest.raises(ValueError, match=r'valid_mask.*\(3, 3\)'):
        model.data_preprocessor(batch)


def test_valid_mask_travels_through_configured_pipeline():
    """The configured pretraining pipeline (after its loader) crops, resizes
    (nearest) and flips valid_mask with the image, and packs it."""
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'pretrain',
        'simmim_ringmoe-tiny_4xb2-30iter_builtin-192px.py'))
    rng = np.random.default_rng(5)
    for m in ('opt', 'sar_l1'):
        steps = [dict(s) for s in cfg.train_dataloader.dataset.pipeline[m]][1:]
        for s in steps:
            if 'SARPower' in s['type']:
                s.update(stats_file=None, mean=60.0, std=5.0)
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            pipe = Compose(steps)
        crop = next(t for t in pipe.transforms
                    if type(t).__name__ == 'RSRandomResizedCrop')
        flip = next(t for t in pipe.transforms
                    if type(t).__name__ == 'RSRandomFlip')
        crop.seg_keys += ('probe', )
        flip.map_keys += ('probe', )
        flip.prob = 1.0
        h, w = 150, 170
        img = rng.integers(1, 200, (h, w, CHANNELS[m])).astype(
            np.int16 if m == 'sar_l1' else np.uint8)
        valid = rng.random((h, w)) > 0.2
        res = dict(img=img, valid_mask=valid, modality=m,
                   probe=np.arange(h * w, dtype=np.float64).reshape(h, w))
        np.random.seed(0)
        for t in pipe.transforms[:-1]:
            res = t(res)
        src = res['probe'].astype(int)  # source pixel of every output pixel
        # the image went the same way (nearest for both modalities' crops
        # here: the probe is exact only where the image is not interpolated)
        if m == 'sar_l1':
            np.testing.assert_array_equal(
                res['img'], img.reshape(-1, img.shape[-1])[src])
        expected = valid.ravel()[src]
        assert res['valid_mask'].dtype == bool
        np.testing.assert_array_equal(res['valid_mask'], expected)
        assert res['flip'] and res['img'].shape[:2] == (192, 192)
        ds = pipe.transforms[-1](res)['data_samples']
        np.testing.assert_array_equal(np.asarray(ds.valid_mask), expected)
