"""Every horizontal and oriented detection config: tiny backbone, a few
generated images in the data set's real layout, one training iteration through
tools/train.py and one evaluation through tools/test.py, with the metric keys
of the paper's tables (mAP50)."""
import copy
import functools
import os.path as osp

import pytest
import torch

from det_track_data import (make_dior, make_hrsc, make_hrsid,
                            make_sar_aircraft, make_sardet)
from helpers import TINY_CHANNELS, run_test, run_train, tiny_backbone

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DET = 'configs/detection/'
ROT = 'configs/rotated_detection/'

VOC_KEYS = ('pascal_voc/mAP', 'pascal_voc/AP50')
COCO_KEYS = VOC_KEYS + ('coco/bbox_mAP_50', )
DOTA_KEYS = ('dota/mAP', 'dota/AP50')
# Tab. A10 also reports AP50 per aircraft type
SAR_AIRCRAFT_KEYS = VOC_KEYS + tuple(
    f'pascal_voc/AP50_{c}' for c in ('A330', 'A320/321', 'A220', 'ARJ21',
                                     'Boeing737', 'Boeing787', 'other'))

# config -> (data maker, data root key in the config, metric keys)
CONFIGS = {
    DET + 'faster-rcnn_ringmoe-opt-kc_fpn_8xb2-12e_dior-800x800.py':
    ('dior', VOC_KEYS),
    DET + 'faster-rcnn_ringmoe-sarl2-kc_fpn_8xb2-12e_hrsid-800x800.py':
    ('hrsid', COCO_KEYS),
    DET + 'faster-rcnn_ringmoe-sarl2-kc_fpn_8xb2-12e_sar-aircraft-800x800.py':
    ('sar_aircraft', SAR_AIRCRAFT_KEYS),
    DET + 'faster-rcnn_ringmoe-sarl2-kc_fpn_8xb2-12e_sardet-100k-800x800.py':
    ('sardet', COCO_KEYS),
    ROT + 'oriented-rcnn-le90_ringmoe-opt-kc_fpn_8xb2-12e_dior-r-800x800.py':
    ('dior', DOTA_KEYS),
    ROT + 'oriented-rcnn-le90_ringmoe-opt-kc_fpn_8xb2-12e_hrsc2016-800x800.py':
    ('hrsc', DOTA_KEYS),
}
# Backbone variants (Tab. 6, Tab. A16): same detector and data as a config
# above, another backbone file or checkpoint.
VARIANTS = {
    DET + f'faster-rcnn_ringmoe-opt-{v}_fpn_8xb2-12e_dior-800x800.py':
    ('dior', VOC_KEYS) for v in ('ep', 'ks', 'ka')
}
VARIANTS.update({
    DET + f'faster-rcnn_ringmoe-sarl2-{v}_fpn_8xb2-12e_sar-aircraft-800x800.py':
    ('sar_aircraft', SAR_AIRCRAFT_KEYS) for v in ('ep', 'ks', 'ka')
})
VARIANTS.update({
    DET + f'faster-rcnn_ringmoe-sarl2-kc-wo-{e}_fpn_8xb2-12e_hrsid-800x800.py':
    ('hrsid', COCO_KEYS)
    for e in ('specialized', 'collaborative', 'shared')
})


@pytest.fixture(autouse=True)
def _plain_config_text(monkeypatch):
    """mmengine formats every logged / dumped config with yapf, about 1.5 s
    a time on 2 busy cores and 9 times per train + test run; the text does
    not matter here."""
    import mmengine.config.config as mm_config
    monkeypatch.setattr(mm_config, 'FormatCode',
                        lambda text, **kwargs: (text, False))


@pytest.fixture
def _thread_pool_dota_metric(monkeypatch):
    """mmrotate's DOTAMetric computes TP/FP in a 'spawn' process pool of 4,
    each child re-importing torch and mmrotate (a minute on 2 busy cores).
    Threads give the same numbers: the pool only maps a pure function."""
    import multiprocessing.dummy

    import mmrotate.evaluation.functional.mean_ap as mean_ap
    monkeypatch.setattr(mean_ap, 'get_context',
                        lambda method=None: multiprocessing.dummy)


@functools.lru_cache(maxsize=None)
def _load(config):
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, config))


def load_config(config):
    """Parsed config (cached: mmdet::/mmrotate:: bases take seconds)."""
    return copy.deepcopy(_load(config))


MAKERS = dict(dior=make_dior, hrsid=make_hrsid, sar_aircraft=make_sar_aircraft,
              sardet=make_sardet, hrsc=make_hrsc)


def _walk(node, fn):
    if isinstance(node, dict):
        fn(node)
        for v in node.values():
            _walk(v, fn)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _walk(v, fn)


def tiny_config(config, data_root, out_file):
    """Load ``config`` and shrink it for a CPU test; returns the Config."""
    from mmengine.config import ConfigDict
    cfg = load_config(config)
    model = cfg.model
    bb = model.backbone
    assert bb.type == 'mmringmoe.RingMoE' and bb.arch != 'tiny'
    arch = bb.arch
    if isinstance(arch, dict):  # e.g. EP: dict(base='1b', num_collab_experts=1)
        arch = dict(arch, base='tiny')
    else:
        arch = 'tiny'
    model.backbone = ConfigDict(tiny_backbone(
        arch=arch, modalities=tuple(bb.modalities), moe_mode=bb.moe_mode,
        out_indices=tuple(bb.out_indices), drop_path_rate=0.1))
    model.neck.in_channels = [TINY_CHANNELS[i] for i in bb.out_indices]
    # small heads and sample counts: one iteration in seconds
    model.neck.out_channels = 32
    model.rpn_head.in_channels = model.rpn_head.feat_channels = 32
    model.roi_head.bbox_roi_extractor.out_channels = 32
    model.roi_head.bbox_head.in_channels = 32
    model.roi_head.bbox_head.fc_out_channels = 64
    tr, te = model.train_cfg, model.test_cfg
    tr.rpn.sampler.num = 64
    tr.rcnn.sampler.num = 64
    tr.rpn_proposal.update(nms_pre=200, max_per_img=100)
    te.rpn.update(nms_pre=200, max_per_img=100)
    te.rcnn.update(max_per_img=50, score_thr=0.0)

    def shrink(d):
        if d.get('type') in ('Resize', 'mmdet.Resize'):
            d['scale'] = (96, 96)
        if 'data_root' in d:
            d['data_root'] = data_root
        if 'num_workers' in d:
            d.update(num_workers=0, persistent_workers=False)
        if d.get('type') == 'mmringmoe.NormalizeRS':
            d['stats_file'] = osp.join(data_root, 'rs_stats.json')
        if d.get('type') == 'CocoMetric':
            d['ann_file'] = osp.join(data_root, osp.relpath(
                d['ann_file'], cfg.data_root))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'val_evaluator', 'test_evaluator'):
        _walk(cfg[key], shrink)
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_begin = 2  # no validation inside the training run
    cfg.default_hooks.logger.interval = 1
    cfg.dump(out_file)
    return cfg


def _run(config, maker, keys, tmp_path):
    data_root = str(tmp_path / 'data') + '/'
    MAKERS[maker](data_root)
    cfg_file = str(tmp_path / 'tiny_config.py')
    cfg = tiny_config(config, data_root, cfg_file)
    run_train(cfg_file, tmp_path / 'train')
    ckpt = tmp_path / 'train' / 'epoch_1.pth'
    assert ckpt.is_file()
    metrics = run_test(cfg_file, ckpt, tmp_path / 'test')
    for key in keys:
        assert key in metrics, (key, sorted(metrics))
        assert 0.0 <= float(metrics[key]) <= 1.0
    return cfg, torch.load(ckpt, map_location='cpu', weights_only=True)


@pytest.mark.usefixtures('_thread_pool_dota_metric')
@pytest.mark.parametrize('config', sorted(CONFIGS))
def test_detection_config_trains_and_evaluates(config, tmp_path):
    maker, keys = CONFIGS[config]
    cfg, ckpt = _run(config, maker, keys, tmp_path)
    state = ckpt['state_dict']
    if 'sarl2' in config:
        # the single SAR-L2 band goes through the 1-channel sar_l2 patch
        # embedding; there is no optical (3-channel) embedding at all
        assert list(cfg.model.backbone.modalities) == ['sar_l2']
        # standardised in the pipeline with the data set's statistics
        assert cfg.model.data_preprocessor.mean is None
        for loader in ('train_dataloader', 'test_dataloader'):
            pipe = cfg[loader].dataset.pipeline
            # the reader of compute_rs_stats.py: dtype and band count kept
            assert pipe[0].type == 'mmringmoe.LoadRSImageFromFile'
            assert pipe[0].modality == 'sar_l2'
            assert pipe[1].type == 'mmringmoe.NormalizeRS'
            assert pipe[1].modality == 'sar_l2'
            assert pipe[1].stats_file.startswith(cfg[loader].dataset.data_root)
        w = state['backbone.patch_embed.sar_l2.projection.weight']
        assert w.shape[1] == 1
        assert not any('patch_embed.opt' in k for k in state)


@pytest.mark.slow
@pytest.mark.parametrize('config', sorted(VARIANTS))
def test_variant_config_trains_and_evaluates(config, tmp_path):
    maker, keys = VARIANTS[config]
    _run(config, maker, keys, tmp_path)


@pytest.mark.parametrize('config', sorted(VARIANTS))
def test_variant_configs_differ_from_kc_only_in_backbone(config):
    cfg = load_config(config)
    if '-wo-' in config:
        kc = config.split('-wo-')[0] + '_fpn' + config.split('_fpn', 1)[1]
    else:
        v = config.split('ringmoe-')[1].split('_')[0].split('-')[1]
        kc = config.replace(f'-{v}_fpn', '-kc_fpn')
    ref = load_config(kc)
    for key in ('train_dataloader', 'test_dataloader', 'test_evaluator',
                'optim_wrapper', 'param_scheduler'):
        assert cfg[key] == ref[key], key
    a, b = dict(cfg.model), dict(ref.model)
    bb, ref_bb = a.pop('backbone'), b.pop('backbone')
    assert a == b
    assert bb != ref_bb and bb.drop_path_rate == 0.3
    if '-wo-' in config:
        expert = config.split('-wo-')[1].split('_')[0]
        assert bb.init_cfg.checkpoint.endswith(f'_wo-{expert}.pth')
        assert {k: v for k, v in bb.items() if k != 'init_cfg'} == {
            k: v for k, v in ref_bb.items() if k != 'init_cfg'}


def test_paper_schedule_in_every_detection_config():
    """Paper B.5.4: 12 epochs, SGD lr 0.01, wd 0.05, warm-up ratio 1e-3,
    drop path 0.3, 800x800, RandomFlip, no multi-scale training."""
    for config in sorted(CONFIGS) + sorted(VARIANTS):
        cfg = load_config(config)
        opt = cfg.optim_wrapper.optimizer
        assert (opt.type, opt.lr, opt.weight_decay) == ('SGD', 0.01, 0.05)
        assert cfg.train_cfg.max_epochs == 12
        warm = cfg.param_scheduler[0]
        assert warm.type == 'LinearLR' and warm.start_factor == 1e-3
        assert cfg.model.backbone.drop_path_rate == 0.3
        pipes = []
        _walk(cfg.train_dataloader, lambda d: pipes.append(d['pipeline'])
              if 'pipeline' in d else None)
        if 'sarl2' in config:  # the set's own statistics, not another's
            for loader in ('train_dataloader', 'test_dataloader'):
                ds = cfg[loader].dataset
                assert ds.pipeline[1].stats_file == ds.data_root + \
                    'rs_stats.json'
        for pipe in pipes:
            types = [t['type'].split('.')[-1] for t in pipe]
            assert 'RandomFlip' in types
            resize = [t for t in pipe if t['type'].endswith('Resize')]
            assert len(resize) == 1 and resize[0]['scale'] == (800, 800)
            assert not any('RandomChoiceResize' in t or 'MultiScale' in t
                           for t in types)


@pytest.mark.parametrize('config,sparse', [
    (DET + 'faster-rcnn_ringmoe-opt-ep_fpn_8xb2-12e_dior-800x800.py', True),
    (DET + 'faster-rcnn_ringmoe-opt-kc_fpn_8xb2-12e_dior-800x800.py', False),
])
def test_sparse_backbone_adds_the_balance_loss(config, sparse, tmp_path):
    """EP keeps routers: loss_moe_balance = 0.001 * backbone.aux_loss();
    a dense KC backbone leaves mmdet's losses unchanged."""
    import mmringmoe  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.registry import DefaultScope
    cfg = tiny_config(config, str(tmp_path), str(tmp_path / 'c.py'))
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    data = demo_mm_inputs(2, [[3, 96, 96]] * 2, num_classes=20)
    data = model.data_preprocessor(data, True)
    torch.manual_seed(0)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert ('loss_moe_balance' in losses) == sparse
    if sparse:
        aux = model.backbone.aux_loss()
        assert float(aux) > 0
        torch.testing.assert_close(losses['loss_moe_balance'], 0.001 * aux)


def full_size_backbone(bb_cfg):
    """The config's own (1B / EP) backbone on the meta device: no memory,
    no checkpoint."""
    import mmringmoe.models  # noqa: F401
    from mmringmoe.models import RingMoE
    kwargs = dict(bb_cfg)
    assert kwargs.pop('type') == 'mmringmoe.RingMoE'
    kwargs['init_cfg'] = None
    with torch.device('meta'):
        return RingMoE(**kwargs)


@pytest.mark.parametrize('config', sorted(CONFIGS) + sorted(VARIANTS))
def test_full_size_backbone_widths_match_the_neck(config):
    cfg = load_config(config)
    bb = full_size_backbone(cfg.model.backbone)
    widths = [bb.num_out_channels[i] for i in cfg.model.backbone.out_indices]
    assert widths == [448, 896, 1792, 3584] == cfg.model.neck.in_channels
    n = sum(p.numel() for p in bb.parameters()) / 1e9
    # paper: 1B dense (KS/KA/KC), 4.3B EP
    assert 1.0 < n < 1.2 if bb.moe_mode == 'dense' else 4.2 < n < 4.6
