"""SAR-L1 power target (Eq. 5) and resampling (issue 13 item 1, issue 12).

- The power |HH|^2+|HV|^2+|VH|^2+|VV|^2 is computed from the raw complex
  values BEFORE any crop/resize/flip; the power map then moves with the
  image. Interpolating complex speckle mixes phases: bilinear 2x upsampling
  weights neighbours 0.75/0.25 per axis, so the expected power of an
  interpolated pixel is (0.75^2 + 0.25^2)^2 = 0.390625 of the original,
  -4.08 dB (the control reproduces it).
- Non-positive power is excluded (valid_mask False), never -100 dB; the dB
  statistics are those of the positive power only.

Reference values are computed here with numpy from the generated complex
values, independently of the transforms.
"""
import glob
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from helpers import ROOT
from mmringmoe.datasets.transforms.raster_io import write_complex_int16_tiff
from mmringmoe.datasets.transforms.sar import SARPower, power_db_values

SIZE = 192
#: the crop side that makes RSRandomResizedCrop(scale=192) upsample 2x
CROP = 96
GAINS = (1.0, 0.35, 0.35, 0.9)  # HH, HV, VH, VV reflectivity
AMP = 600.0  # int16 scale, as the built-in GF-3-like tiles
#: resampling steps: none of them may come before SARPower
GEOMETRIC = ('Resize', 'Crop', 'Flip', 'Rotate', 'Scale', 'Affine', 'Pad',
             'Shear', 'Translate', 'Mosaic', 'Expand')

PRETRAIN = sorted(glob.glob(osp.join(ROOT, 'configs', 'pretrain', '*.py')))
SAR_L1_CONFIGS = PRETRAIN + sorted(
    glob.glob(osp.join(ROOT, 'configs', 'segmentation', '*sarsegl1*.py')))


def speckle_pairs(rng, size=SIZE):
    """Fully developed speckle: per polarisation a circular complex Gaussian
    z = sqrt(R/2) (n1 + i n2), E|z|^2 = R; int16 (re, im) pairs
    ``(size, size, 4, 2)`` as GF-3 L1A stores them."""
    pairs = np.empty((size, size, 4, 2), np.int16)
    for p, g in enumerate(GAINS):
        n = rng.standard_normal((size, size, 2)) * np.sqrt(g / 2)
        pairs[:, :, p] = np.clip(np.rint(AMP * n), -32768, 32767)
    return pairs


def hand_power(pairs):
    x = pairs.astype(np.float64)
    return (x * x).sum((-1, -2))


def db(x):
    return 10 * np.log10(x)


def _steps(cfg):
    """Every pipeline (list of transform dicts) anywhere in a config."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, (list, tuple)):
            if node and all(isinstance(s, dict) and 'type' in s for s in node):
                found.append(list(node))
            for v in node:
                walk(v)

    walk(cfg.to_dict())
    return found


def _sar_l1_pipelines(path):
    cfg = Config.fromfile(path)
    return cfg, [p for p in _steps(cfg)
                 if any('LoadComplexSAR' in s['type'] for s in p)]


def _is_geometric(step):
    return any(k in step['type'] for k in GEOMETRIC)


@pytest.mark.parametrize('path', SAR_L1_CONFIGS, ids=osp.basename)
def test_every_sar_l1_pipeline_computes_power_before_resampling(path):
    """The kind: in every SAR-L1 pipeline (pretraining and downstream), a
    power target is computed before any geometric step, and the pretraining
    crops resample the complex channels with nearest neighbour."""
    # every pipeline anywhere in the config, also the base's train_pipeline
    # variable that the SAR-less variants inherit without using
    _, pipes = _sar_l1_pipelines(path)
    assert pipes, f'{osp.basename(path)} has no SAR-L1 pipeline'
    for pipe in pipes:
        types = [s['type'] for s in pipe]
        first_geo = next((i for i, s in enumerate(pipe) if _is_geometric(s)),
                         len(pipe))
        for i, t in enumerate(types):
            if 'SARPower' in t:
                assert i < first_geo, f'SARPower after resampling: {types}'
        for s in pipe:
            # the complex channels themselves: any resampling is nearest
            # (bilinear mixes speckle phases: -4 dB at 2x upsampling)
            if 'Resize' in s['type']:
                assert s.get('interpolation') == 'nearest', (
                    osp.basename(path), s)
        if 'pretrain' in path:
            assert any('SARPower' in t for t in types)
            for s in pipe:
                if 'ResizedCrop' in s['type'] or 'RSResize' in s['type']:
                    assert s.get('interpolation') == 'nearest', types
                if 'Flip' in s['type']:
                    # moves gt_power and valid_mask (mmcv's flips neither)
                    assert s['type'] == 'mmringmoe.RSRandomFlip', types
                if s['type'] == 'PackInputs':
                    assert {'gt_power', 'valid_mask'} <= set(
                        s['algorithm_keys'])


def _configured_sar_l1_pipeline(stats_file, old_order=False):
    """The built-in config's SAR-L1 pipeline with a crop forced to 96 px of
    the 192 px tile (2x upsampling). ``old_order``: the pipeline as it was
    before the fix (bilinear crop and flip first, SARPower after)."""
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'pretrain',
        'simmim_ringmoe-tiny_4xb2-30iter_builtin-192px.py'))
    pipe = [dict(s) for s in cfg.train_dataloader.dataset.pipeline['sar_l1']]
    for s in pipe:
        if 'SARPower' in s['type']:
            s['stats_file'] = str(stats_file)
        if 'ResizedCrop' in s['type']:
            s['crop_ratio_range'] = ((CROP / SIZE)**2, ) * 2
            s['aspect_ratio_range'] = (1.0, 1.0)
    if old_order:
        power = next(s for s in pipe if 'SARPower' in s['type'])
        pipe.remove(power)
        for s in pipe:
            if 'ResizedCrop' in s['type']:
                s['interpolation'] = 'bilinear'
            if 'Flip' in s['type']:
                s['type'] = 'RandomFlip'
        last_geo = max(i for i, s in enumerate(pipe) if _is_geometric(s))
        pipe.insert(last_geo + 1, power)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return Compose(pipe)


def _write_tile_and_stats(tmp_path, pairs):
    write_complex_int16_tiff(tmp_path / 'tile.tif', pairs)
    p = hand_power(pairs)
    d = db(p[p > 0])
    stats = dict(sar_l1=dict(mean=[0.0] * 8, std=[1.0] * 8,
                             power_db_mean=float(d.mean()),
                             power_db_std=float(d.std()),
                             power_db_num_pixels=int(d.size)))
    (tmp_path / 'rs_stats.json').write_text(json.dumps(stats))
    return stats['sar_l1']


def _run(pipe, path, seed=0):
    np.random.seed(seed)
    out = pipe(dict(img_path=str(path), modality='sar_l1'))
    ds = out['data_samples']
    return (out['inputs'].numpy(), ds.gt_power.numpy()
            if hasattr(ds.gt_power, 'numpy') else np.asarray(ds.gt_power),
            np.asarray(ds.valid_mask))


def test_2x_upsampling_crop_keeps_mean_power(tmp_path):
    """Issue 13.1: the configured pipeline with a 2x upsampling crop keeps
    the mean power of a speckle tile within 0.2 dB, in the target and in the
    input channels; the old order (bilinear crop, then SARPower) loses about
    4 dB."""
    pairs = speckle_pairs(np.random.default_rng(0))
    st = _write_tile_and_stats(tmp_path, pairs)
    ref = db(hand_power(pairs).mean())

    def target_power_db(target):
        return db(np.mean(10**((target * st['power_db_std'] +
                                st['power_db_mean']) / 10)))

    new_pipe = _configured_sar_l1_pipeline(tmp_path / 'rs_stats.json')
    old_pipe = _configured_sar_l1_pipeline(tmp_path / 'rs_stats.json',
                                           old_order=True)
    new_changes, old_changes, input_changes = [], [], []
    for seed in range(3):  # three crop positions / flips
        x, target, valid = _run(new_pipe, tmp_path / 'tile.tif', seed)
        assert x.shape == (8, SIZE, SIZE) and target.shape == (SIZE, SIZE)
        assert valid.all()
        new_changes.append(target_power_db(target) - ref)
        xf = x.astype(np.float64)
        input_changes.append(db((xf * xf).sum(0).mean()) - ref)
        # pixel-wise Eq. 5 between the packed input and the packed target
        np.testing.assert_allclose(
            target * st['power_db_std'] + st['power_db_mean'],
            db((xf * xf).sum(0)), atol=1e-4)
        _, old_target, _ = _run(old_pipe, tmp_path / 'tile.tif', seed)
        old_changes.append(target_power_db(old_target) - ref)
    print('mean power change (dB) new', np.round(new_changes, 3), 'input',
          np.round(input_changes, 3), 'old order', np.round(old_changes, 3))
    assert np.abs(new_changes).max() < 0.2
    assert np.abs(input_changes).max() < 0.2
    # control: the old order fails, by about the predicted -4.08 dB
    assert all(-4.6 < c < -3.5 for c in old_changes)


def test_power_map_follows_crop_and_flip_pixel_for_pixel():
    """SARPower before the geometry: the target of the cropped, resized and
    flipped tile equals the hand-computed power of the same source pixels
    (nearest neighbour); valid_mask travels the same way."""
    from mmringmoe.datasets.transforms.geometric import (RSRandomFlip,
                                                         RSRandomResizedCrop)
    rng = np.random.default_rng(1)
    pairs = speckle_pairs(rng, 40)
    pairs[:5] = 0  # zero-power rows: excluded
    img = pairs.reshape(40, 40, 8)
    res = SARPower()(dict(img=img))
    assert not res['valid_mask'][:5].any() and res['valid_mask'][5:].all()
    res['probe'] = np.arange(40 * 40, dtype=np.float64).reshape(40, 40)
    crop = RSRandomResizedCrop(scale=80, interpolation='nearest',
                               seg_keys=('gt_power', 'valid_mask', 'probe'))
    flip = RSRandomFlip(prob=1.0, direction='horizontal',
                        map_keys=('gt_power', 'valid_mask', 'probe'))
    np.random.seed(3)
    res = flip(crop(res))
    src = res['probe'].astype(int)  # source pixel index of every output
    hand = hand_power(pairs).ravel()[src]
    np.testing.assert_array_equal(res['gt_power'], hand.astype(np.float32))
    np.testing.assert_array_equal(res['valid_mask'], hand > 0)
    x = res['img'].astype(np.float64)
    np.testing.assert_array_equal((x * x).sum(-1), hand)


def _standardised_targets(tiles, stats_tiles):
    d = np.concatenate([power_db_values(t.reshape(*t.shape[:2], 8))
                        for t in stats_tiles])
    t = SARPower(scale='db', mean=d.mean(), std=d.std())
    return [t(dict(img=x.reshape(*x.shape[:2], 8))) for x in tiles]


def test_zero_border_is_excluded_not_minus_100_db():
    """Issue 12: a speckle tile with a 20 % zero border gives the same
    standardised valid-pixel target as the tile without the border
    (statistics from the valid pixels); the border is masked, not -100 dB."""
    rng = np.random.default_rng(2)
    clean = speckle_pairs(rng, 100)
    bordered = clean.copy()
    bordered[:, :20] = 0  # 20 % of the pixels: a zero (fill) border
    assert (hand_power(bordered) == 0).mean() == pytest.approx(0.2)
    valid = hand_power(bordered) > 0
    # each tile standardised with the statistics of its own valid pixels
    a, = _standardised_targets([clean], [clean])
    b, = _standardised_targets([bordered], [bordered])
    own = a['gt_power']
    np.testing.assert_array_equal(b['valid_mask'], valid)
    assert a['valid_mask'].all()
    assert not b['gt_power'][~valid].any()  # fill 0, not counted
    diff = np.abs(b['gt_power'][valid] - a['gt_power'][valid]).max()
    print(f'max |target(bordered) - target(clean)| on valid pixels {diff:.4f}')
    assert diff < 0.1  # the two sets of statistics differ by sampling only
    # with the same statistics the valid pixels' targets are identical
    b2, = _standardised_targets([bordered], [clean])
    np.testing.assert_array_equal(b2['gt_power'][valid], a['gt_power'][valid])
    # hand reference: standardised 10 log10 of the hand power
    d = db(hand_power(clean))
    np.testing.assert_allclose(a['gt_power'], (d - d.mean()) / d.std(),
                               rtol=1e-5, atol=1e-5)
    # a data set where half the tiles carry the border: the valid pixels
    # keep mean 0 and std 1
    a, b = _standardised_targets([clean, bordered], [clean, bordered])
    v = np.concatenate([a['gt_power'].ravel(), b['gt_power'][valid]])
    assert abs(v.mean()) < 1e-5 and abs(v.std() - 1) < 1e-5
    # control, the old convention (10 log10(P + 1e-10): zero -> -100 dB) on
    # the same data set: the valid pixels are squashed, the border dominates
    old = [10 * np.log10(hand_power(t) + 1e-10) for t in (clean, bordered)]
    flat = np.concatenate([o.ravel() for o in old])
    z = [(o - flat.mean()) / flat.std() for o in old]
    old_valid = np.concatenate([z[0].ravel(), z[1][valid]])
    share = (z[1][~valid]**2).sum() / sum((o**2).sum() for o in z)
    print(f'old convention: valid std {old_valid.std():.3f}, border share '
          f'of the squared target {share:.2f}')
    assert old_valid.std() < 0.1 and share > 0.8
    old_b = (old[1] - old[1].mean()) / old[1].std()  # bordered tile alone
    assert np.abs(old_b[valid] - own[valid]).max() > 0.5


def test_sar_power_respects_loader_mask_and_stats_file(tmp_path):
    rng = np.random.default_rng(4)
    pairs = speckle_pairs(rng, 8).reshape(8, 8, 8)
    nodata = np.ones((8, 8), bool)
    nodata[0, 0] = False  # e.g. the file's declared nodata
    out = SARPower(scale='db')(dict(img=pairs, valid_mask=nodata))
    assert not out['valid_mask'][0, 0] and out['valid_mask'].sum() == 63
    np.testing.assert_allclose(out['gt_power'][1:],
                               db(hand_power(pairs.reshape(8, 8, 4, 2)))[1:],
                               rtol=1e-6)
    assert out['gt_power'][0, 0] == 0
    # statistics files of the old convention (no positive-only marker) are
    # refused instead of silently standardising with biased statistics
    (tmp_path / 'old.json').write_text(json.dumps(dict(sar_l1=dict(
        mean=[0] * 8, std=[1] * 8, power_db_mean=60.0, power_db_std=9.0))))
    with pytest.raises(ValueError, match='power_db_num_pixels'):
        SARPower(scale='db', stats_file=str(tmp_path / 'old.json'))(
            dict(img=pairs))
    with pytest.raises(ValueError, match=r'valid_mask of shape \(2, 2\)'):
        SARPower()(dict(img=pairs, valid_mask=np.ones((2, 2), bool)))
