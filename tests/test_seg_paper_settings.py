"""The classification and segmentation configs carry Appendix B.5.1-B.5.3's
hyper-parameters: optimizer, learning rate, weight decay, warm-up,
schedule, total batch (GPUs x per-GPU batch in the name), crop, augmentation
and backbone variant."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLS = sorted(glob.glob(osp.join(ROOT, 'configs', 'classification', '*.py')))
SEG = sorted(p for p in glob.glob(
    osp.join(ROOT, 'configs', 'segmentation', '*.py'))
    if '_builtin-' not in p)  # the demo config is not a paper experiment

# data set fragment -> (total batch, crop, max iterations), Appendix B.5.2-3
SEG_PAPER = {
    'isaid': (8, 896, 80000),
    'potsdam': (8, 512, 80000),
    'air-polsar-seg': (8, 512, 80000),
    'dynamicearthnet': (8, 1024, 16000),
    'sarsegl1': (4, 500, 20000),
    'whu-opt-sar': (16, 256, 80000),
    'dfc23': (12, 512, 80000),
}
MODALITY = {'opt': ('opt', ), 'ms': ('ms', ), 'sarl1': ('sar_l1', ),
            'sarl2': ('sar_l2', )}


def _by_type(pipeline, name):
    found = [t for t in pipeline if t['type'] == name]
    assert found, f'{name} missing from {pipeline}'
    return found[0]


def _variant(name):
    m = re.match(r'(?:upernet_)?ringmoe-([a-z0-9-]+?)_', osp.basename(name))
    parts = m.group(1).split('-')
    return parts


def _check_backbone(backbone, variant):
    sparse = variant in ('', 'ep')
    assert backbone['moe_mode'] == ('sparse' if sparse else 'dense')
    if variant == 'ep':
        assert backbone['arch']['num_collab_experts'] == 1
    ckpt = backbone['init_cfg']['checkpoint']
    if variant:
        assert f'-{variant}' in ckpt, ckpt


@pytest.mark.parametrize('path', CLS, ids=osp.basename)
def test_classification_follows_b51(path):
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', 5e-5, 0.05)
    warm, cos = cfg.param_scheduler
    assert (warm.type, warm.start_factor, warm.end, warm.by_epoch) == (
        'LinearLR', 0.01, 10, True)
    assert (cos.type, cos.eta_min, cos.begin, cos.end) == (
        'CosineAnnealingLR', 5e-6, 10, 200)
    assert cfg.train_cfg.max_epochs == 200
    crop = 224 if 'nwpu' in name else 512
    pipe = cfg.train_dataloader.dataset.pipeline
    assert _by_type(pipe, 'RandomCrop').crop_size == crop
    _by_type(pipe, 'RandomFlip')
    _by_type(pipe, 'RandomErasing')
    pct = re.search(r'tr(\d+)', name).group(1)
    assert f'_tr{pct}/' in cfg.train_dataloader.dataset.ann_file
    assert f'_tr{pct}/' in cfg.test_dataloader.dataset.ann_file
    assert cfg.model.head.type == 'LinearClsHead'
    assert cfg.model.head.num_classes == (45 if 'nwpu' in name else 30)
    assert len(cfg.train_dataloader.dataset.classes) == \
        cfg.model.head.num_classes
    gpus, per_gpu = map(int, re.search(r'_(\d+)xb(\d+)', name).groups())
    assert per_gpu == cfg.train_dataloader.batch_size
    assert cfg.test_evaluator.type == 'mmringmoe.SceneOA'
    parts = _variant(name)
    assert parts[0] == 'opt'
    variant = parts[1] if len(parts) > 1 and parts[1] in (
        'ep', 'ks', 'ka', 'kc') else ''
    _check_backbone(cfg.model.backbone, variant)
    if 'frozen' in name:
        assert cfg.model.backbone.frozen_stages == 3
    if 'convpass' in name:
        assert cfg.model.backbone.type == 'mmringmoe.ConvpassRingMoE'
    if '-base_' in name:
        assert cfg.model.backbone.arch == 'base'
        assert cfg.model.head.in_channels == 1024
    else:
        assert cfg.model.head.in_channels == 3584


@pytest.mark.parametrize('path', SEG, ids=osp.basename)
def test_segmentation_follows_b52_b53(path):
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    ds = [k for k in SEG_PAPER if k in name]
    assert len(ds) == 1, name
    batch, crop, iters = SEG_PAPER[ds[0]]
    multimodal = ds[0] in ('whu-opt-sar', 'dfc23')
    opt = cfg.optim_wrapper.optimizer
    lr, wd = (6e-5, 0.01) if multimodal else (1e-4, 0.05)
    assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', lr, wd)
    warm, poly = cfg.param_scheduler
    assert (warm.type, warm.start_factor, warm.begin, warm.end) == (
        'LinearLR', 0.1, 0, 1500)
    assert (poly.type, poly.eta_min, poly.begin, poly.end) == (
        'PolyLR', 1e-6, 1500, iters)
    assert cfg.train_cfg.max_iters == iters
    gpus, per_gpu = map(int, re.search(r'_(\d+)xb(\d+)-', name).groups())
    assert per_gpu == cfg.train_dataloader.batch_size
    assert gpus * per_gpu == batch
    assert f'-{iters // 1000}k_' in name
    pipe = cfg.train_dataloader.dataset.pipeline
    assert _by_type(pipe, 'RandomResize').ratio_range == (0.5, 2.0)
    assert tuple(_by_type(pipe, 'RandomCrop').crop_size) == (crop, crop)
    _by_type(pipe, 'RandomFlip')
    assert f'{crop}x{crop}' in name
    assert cfg.model.decode_head.type == 'UPerHead'
    assert cfg.test_evaluator.type == 'mmringmoe.RSSegMetric'
    parts = _variant(name)
    variant = [p for p in parts if p in ('ep', 'ks', 'ka', 'kc')]
    assert len(variant) == 1, name  # segmentation uses pruned variants
    _check_backbone(cfg.model.backbone, variant[0])
    if multimodal:
        assert cfg.model.type == 'mmringmoe.DualModalityEncoderDecoder'
        assert tuple(cfg.model.backbone.modalities) == ('opt', )
        assert tuple(cfg.model.sar_backbone.modalities) == ('sar_l2', )
        _check_backbone(cfg.model.sar_backbone, variant[0])
        assert 'sarl2' in cfg.model.sar_backbone.init_cfg.checkpoint
        _by_type(pipe, 'mmringmoe.LoadOptSARPair')
    else:
        assert cfg.model.type == 'mmringmoe.RingMoEEncoderDecoder'
        assert tuple(cfg.model.backbone.modalities) == MODALITY[parts[0]]
    if 'frozen' in name:
        assert cfg.model.backbone.frozen_stages == 3
    if 'convpass' in name:
        assert cfg.model.backbone.type == 'mmringmoe.ConvpassRingMoE'
    if 'wo-' in name:
        wo = re.search(r'wo-([a-z]+)', name).group(1)
        assert cfg.model.backbone.init_cfg.checkpoint.endswith(
            f'_wo-{wo}.pth')
