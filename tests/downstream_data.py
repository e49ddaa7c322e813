"""Tiny data sets in the on-disk layouts of the classification and
segmentation benchmarks (Appendix B.5.1-B.5.3), and the config surgery that
points a paper config at them with a tiny backbone.

Every generator writes random rasters with the real file names, folder
structure, band counts and dtypes; where the paper's preparation goes
through one of our converters (SARSegL1, WHU-OPT-SAR, DFC23, the scene
classification split) the raw release layout is generated and the converter
produces the training layout.
"""
import contextlib
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.append(osp.join(ROOT, 'tools', 'dataset_converters'))

SIZE = 64


def _png(path, arr):
    from PIL import Image
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)


def _tif(path, arr, **kwargs):
    import tifffile
    os.makedirs(osp.dirname(path), exist_ok=True)
    tifffile.imwrite(path, arr, **kwargs)


def _label(rng, num_classes, size=SIZE, offset=0, ignore=None):
    lbl = rng.integers(0, num_classes, (size, size)).astype(np.uint8) + offset
    lbl[: size // 4, : size // 4] = lbl[0, 0]  # some spatial structure
    if ignore is not None:
        lbl[-3:, -3:] = ignore
    return lbl


def write_stats(path, **modalities):
    """``rs_stats.json`` for NormalizeRS: {modality: (mean, std) lists}."""
    with open(path, 'w') as f:
        json.dump({m: dict(mean=list(map(float, mean)),
                           std=list(map(float, std)))
                   for m, (mean, std) in modalities.items()}, f)


# ------------------------------------------------------------- classification
def make_scene_folders(root, classes, per_class=2, size=SIZE, seed=0,
                       ext='.jpg'):
    """``<root>/<class>/<class>_NNN.jpg`` as NWPU-RESISC45 / AID ship them."""
    rng = np.random.default_rng(seed)
    for c in classes:
        for i in range(per_class):
            img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            path = osp.join(root, c, f'{c.lower()}_{i + 1:03d}{ext}')
            os.makedirs(osp.dirname(path), exist_ok=True)
            from PIL import Image
            Image.fromarray(img).save(path)


# ------------------------------------------------------------- segmentation
def make_isaid(root, n=2, seed=0):
    """mmseg iSAID converter output: png patches, 16-class index maps."""
    rng = np.random.default_rng(seed)
    for split in ('train', 'val'):
        for i in range(n):
            name = f'P{i:04d}_0_{SIZE}_0_{SIZE}'
            _png(osp.join(root, 'img_dir', split, name + '.png'),
                 rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8))
            _png(osp.join(root, 'ann_dir', split,
                          name + '_instance_color_RGB.png'),
                 _label(rng, 16))


def make_potsdam(root, n=2, seed=0):
    """mmseg Potsdam converter output: IRRG png, labels 0 (boundary) + 1..6."""
    rng = np.random.default_rng(seed)
    for split, tile in (('train', '2_10'), ('val', '2_13')):
        for i in range(n):
            name = f'{tile}_{i * SIZE}_0_{(i + 1) * SIZE}_{SIZE}'
            _png(osp.join(root, 'img_dir', split, name + '.png'),
                 rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8))
            _png(osp.join(root, 'ann_dir', split, name + '.png'),
                 _label(rng, 7))


def make_dynamicearthnet(root, seed=0):
    """DynamicEarthNet: planet/<..>/PF-SR/<date>.tif (4-band uint16), one-hot
    7-band label rasters, dynnet_training_splits/{train,val,test}.txt."""
    rng = np.random.default_rng(seed)
    splits = dict(train=['1311_3077_13'], val=['1417_3281_13'],
                  test=['1487_3335_13'])
    os.makedirs(osp.join(root, 'dynnet_training_splits'), exist_ok=True)
    for split, cubes in splits.items():
        lines = []
        for cube in cubes:
            planet = f'/planet/18N/24E-187N/{cube}/PF-SR'
            for month in ('2018-01', '2018-02'):
                img = rng.integers(0, 4000, (SIZE, SIZE, 4), dtype=np.uint16)
                _tif(osp.join(root, planet.lstrip('/'), f'{month}-01.tif'),
                     img, photometric='minisblack', planarconfig='contig')
                idx = _label(rng, 7)
                onehot = np.stack([(idx == k) * 255 for k in range(7)],
                                  0).astype(np.uint8)
                onehot[:, -2:, -2:] = 0  # unlabelled corner
                label = (f'/labels/{cube}/Labels/Raster/{cube}/'
                         f'{cube}-{month.replace("-", "_")}_01.tif')
                _tif(osp.join(root, label.lstrip('/')), onehot,
                     photometric='minisblack', planarconfig='separate')
                lines.append(f'{planet} {label} {month}')
        with open(osp.join(root, 'dynnet_training_splits', f'{split}.txt'),
                  'w') as f:
            f.write('\n'.join(lines) + '\n')
    write_stats(osp.join(root, 'rs_stats.json'),
                ms=([2000.] * 4, [1150.] * 4))


def make_sarsegl1_raw(raw, seed=0, shape=(SIZE + 24, SIZE + 48)):
    """Two GF-3 scenes as the tiler takes them: 4 complex64 polarisation
    files (scene a) / one 8-channel int16 file (scene b), index labels with
    0 unlabelled and 1..5 classes."""
    rng = np.random.default_rng(seed)
    scenes = []
    for s, name in enumerate(('guangzhou', 'hangzhou')):
        lbl = rng.integers(0, 6, shape).astype(np.uint8)
        lbl_path = osp.join(raw, name, 'label.png')
        _png(lbl_path, lbl)
        if s == 0:
            paths = []
            for pol in ('HH', 'HV', 'VH', 'VV'):
                z = (rng.normal(0, 300, shape) + 1j * rng.normal(
                    0, 300, shape)).astype(np.complex64)
                p = osp.join(raw, name, f'{pol}.tif')
                _tif(p, z)
                paths.append(p)
        else:
            arr = rng.normal(0, 300, (*shape, 8)).astype(np.int16)
            p = osp.join(raw, name, 'image.tif')
            _tif(p, arr, photometric='minisblack', planarconfig='contig')
            paths = [p]
        scenes.append((name, paths, lbl_path))
    return scenes


def make_sarsegl1(root, raw, seed=0):
    import sarsegl1
    scenes = make_sarsegl1_raw(raw, seed)
    counts = sarsegl1.convert(scenes, root, size=SIZE, overlap=SIZE // 2,
                              seed=seed)
    write_stats(osp.join(root, 'rs_stats.json'),
                sar_l1=([0.] * 8, [300.] * 8))
    return counts


def make_air_polsar_seg(root, n=2, seed=0):
    """{train,test}/images/<id>_<POL>.tiff (uint16 amplitude) and
    {train,test}/labels/<id>.png with class indices 0..5."""
    rng = np.random.default_rng(seed)
    for split in ('train', 'test'):
        for i in range(n):
            sid = f'{i + (0 if split == "train" else 100):05d}'
            for pol in ('HH', 'HV', 'VH', 'VV'):
                _tif(osp.join(root, split, 'images', f'{sid}_{pol}.tiff'),
                     rng.integers(0, 3000, (SIZE, SIZE), dtype=np.uint16))
            _png(osp.join(root, split, 'labels', f'{sid}.png'),
                 _label(rng, 6))
    write_stats(osp.join(root, 'rs_stats.json'), sar_l2=([800.], [600.]))


def make_whu_opt_sar_raw(raw, seed=0, n_scenes=2):
    """Release layout: optical (4-band RGBN uint8), sar (1 band), lbl with
    values 0, 10, ..., 70."""
    rng = np.random.default_rng(seed)
    shape = (SIZE * 2, SIZE)
    for s in range(n_scenes):
        name = f'NH49E00{s + 1}013'
        _tif(osp.join(raw, 'optical', name + '.tif'),
             rng.integers(0, 255, (*shape, 4), dtype=np.uint8),
             photometric='minisblack', planarconfig='contig')
        _tif(osp.join(raw, 'sar', name + '.tif'),
             rng.integers(0, 255, shape, dtype=np.uint8))
        lbl = (rng.integers(0, 8, shape) * 10).astype(np.uint8)
        _tif(osp.join(raw, 'lbl', name + '.tif'), lbl)


def make_whu_opt_sar(root, raw, seed=0):
    import whu_opt_sar
    make_whu_opt_sar_raw(raw, seed)
    counts = whu_opt_sar.convert(raw, root, size=SIZE, seed=seed)
    write_stats(osp.join(root, 'rs_stats.json'),
                opt=([120.] * 3, [70.] * 3), sar_l2=([120.], [70.]))
    return counts


def make_dfc23_raw(raw, n=10, seed=0):
    """Release layout: train/{rgb,sar}/<id>.tif and roof_fine_train.json
    (COCO polygons, 12 roof categories)."""
    rng = np.random.default_rng(seed)
    names = ['flat_roof', 'gable_roof', 'gambrel_roof', 'row_roof',
             'multiple_eave_roof', 'hipped_roof_v1', 'hipped_roof_v2',
             'mansard_roof', 'pyramid_roof', 'arched_roof', 'dome', 'other']
    coco = dict(categories=[dict(id=i + 1, name=n_) for i, n_ in
                            enumerate(names)], images=[], annotations=[])
    for i in range(n):
        fname = f'P{i:04d}.tif'
        _tif(osp.join(raw, 'train', 'rgb', fname),
             rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8),
             photometric='rgb')
        _tif(osp.join(raw, 'train', 'sar', fname),
             rng.integers(0, 255, (SIZE, SIZE), dtype=np.uint8))
        coco['images'].append(dict(id=i, file_name=fname, width=SIZE,
                                   height=SIZE))
        for k in range(3):
            x, y = rng.integers(0, SIZE - 16, 2)
            coco['annotations'].append(dict(
                id=len(coco['annotations']), image_id=i,
                category_id=int(rng.integers(1, 13)),
                segmentation=[[float(x), float(y), float(x + 15), float(y),
                               float(x + 15), float(y + 12), float(x),
                               float(y + 12)]]))
    with open(osp.join(raw, 'roof_fine_train.json'), 'w') as f:
        json.dump(coco, f)
    return coco


def make_dfc23(root, raw, seed=0):
    import dfc23
    make_dfc23_raw(raw, seed=seed)
    counts = dfc23.convert(raw, root, seed=seed)
    write_stats(osp.join(root, 'rs_stats.json'),
                opt=([120.] * 3, [70.] * 3), sar_l2=([120.], [70.]))
    return counts


# ------------------------------------------------------------- configs
def _plain_format(text, style_config=None, **kwargs):
    return text, False


@contextlib.contextmanager
def fast_config_text():
    """mmengine formats every config it logs or dumps with yapf (seconds
    per run on 2 cores); the unformatted text is the same Python."""
    import mmengine.config.config as config_module
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(config_module, 'FormatCode', _plain_format)
        yield


TINY_CHANNELS = [32, 64, 128, 256]


def tiny_version(backbone: dict) -> dict:
    """The tiny RingMoE with the config backbone's type, modalities, MoE mode,
    expert-count overrides, freezing and adapter settings."""
    from helpers import tiny_backbone
    arch = backbone.get('arch', '1b')
    if isinstance(arch, dict):
        arch = {k: v for k, v in arch.items() if k != 'base'}
        arch = dict(base='tiny', **arch) if arch else 'tiny'
    else:
        arch = 'tiny'
    new = tiny_backbone(
        arch=arch,
        modalities=tuple(backbone['modalities']),
        moe_mode=backbone['moe_mode'])
    for key in ('type', 'frozen_stages', 'adapter_dims', 'adapter_scale'):
        if key in backbone:
            new[key] = backbone[key]
    return new


def _shrink_pipeline(pipeline, size=SIZE):
    for t in pipeline:
        if t['type'] in ('RandomResize', 'Resize') and 'scale' in t:
            t['scale'] = (size, size)
        if t['type'] == 'RandomCrop':
            t['crop_size'] = (size, size) if isinstance(
                t['crop_size'], (tuple, list)) else size
        if t['type'] == 'CenterCrop':
            t['crop_size'] = size


def _loader(dl, batch_size, indices=None):
    dl.batch_size = batch_size
    dl.num_workers = 0
    dl.persistent_workers = False
    # mmengine's serialisation runs gc.collect(): seconds per data set
    dl.dataset.serialize_data = False
    if indices is not None:
        dl.dataset.indices = indices
    _shrink_pipeline(dl.dataset.pipeline)


def tiny_config(config_path, data_root, out_path, task):
    """Load a paper config, swap in the tiny backbone and ``data_root``,
    shrink crops to 64 px, one training iteration; write ``out_path``."""
    from mmengine.config import Config
    cfg = Config.fromfile(config_path)
    m = cfg.model
    m.backbone = tiny_version(m.backbone)
    if 'sar_backbone' in m:
        m.sar_backbone = tiny_version(m.sar_backbone)
    dls = [cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader]
    for dl in dls:
        dl.dataset.data_root = data_root
        for t in dl.dataset.pipeline:
            if 'stats_file' in t:
                t['stats_file'] = osp.join(data_root, 'rs_stats.json')
    if task == 'cls':
        m.head.in_channels = TINY_CHANNELS[-1]
        _loader(cfg.train_dataloader, 2, indices=2)
        _loader(cfg.val_dataloader, 4, indices=4)
        _loader(cfg.test_dataloader, 4, indices=4)
        cfg.train_cfg.max_epochs = 1
    else:
        m.decode_head.in_channels = TINY_CHANNELS
        m.decode_head.channels = 16
        if m.get('auxiliary_head'):
            m.auxiliary_head.in_channels = TINY_CHANNELS[2]
            m.auxiliary_head.channels = 16
        m.data_preprocessor = dict(cfg.get('data_preprocessor', {}),
                                   size=(SIZE, SIZE))
        _loader(cfg.train_dataloader, 2)
        _loader(cfg.val_dataloader, 1)
        _loader(cfg.test_dataloader, 1)
        cfg.train_cfg.max_iters = 1
        cfg.train_cfg.val_interval = 10**6
    cfg.default_hooks.checkpoint.save_best = None
    cfg.default_hooks.checkpoint.save_optimizer = False
    cfg.default_hooks.checkpoint.save_param_scheduler = False
    cfg.default_hooks.logger.interval = 1
    if 'visualization' in cfg.default_hooks:
        cfg.default_hooks.visualization.draw = False
    cfg.dump(out_path)
    return out_path
