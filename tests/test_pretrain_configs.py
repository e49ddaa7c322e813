"""Every pretraining config builds: its model (backbone swapped to tiny), its
per-modality pipelines, sampler settings and optimizer."""
import glob
import json
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from helpers import ROOT
from mmringmoe.registry import MODELS, TRANSFORMS

CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'pretrain', '*.py')))


def test_all_paper_variants_present():
    names = {osp.basename(c) for c in CONFIGS}
    for tag in ('1b', 'base', 'tiny', 'unimodal-opt', 'unimodal-sar',
                'nosarl1', 'sarl1pixel', 'nospecialized', 'nocollaborative',
                'noshared', 'fsdp'):
        assert any(f'ringmoe-{tag}' in n or f'-{tag}_' in n for n in names), tag
    assert 'simmim_ringmoe-tiny_4xb2-30iter_builtin-192px.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    model_cfg = cfg.model.to_dict()
    mods = tuple(model_cfg['backbone']['modalities'])
    model_cfg['backbone'].update(arch='tiny', window_size=None)
    model_cfg['data_preprocessor'].update(stats_file=None)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(model_cfg)
        pipes = cfg.train_dataloader.dataset.pipeline
        assert tuple(pipes) == mods == tuple(
            cfg.train_dataloader.dataset.modalities)
        for m, pipe in pipes.items():
            for step in pipe:
                TRANSFORMS.build(step)
    assert model.modalities == mods
    counts = cfg.train_dataloader.sampler.samples_per_modality
    assert set(counts) == set(mods)
    assert sum(counts.values()) == cfg.train_dataloader.batch_size
    assert cfg.train_dataloader.collate_fn.type == 'pseudo_collate'
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW' and opt.weight_decay == 0.05
    if 'tiny' not in path:
        assert opt.lr == 2e-4
        for m in mods:
            crop, = [s for s in pipes[m] if 'RandomResizedCrop' in s.type]
            assert crop.scale == 192 and tuple(
                crop.crop_ratio_range) == (0.2, 1.0)
    name = osp.basename(path)
    bb = cfg.model.backbone
    if 'nospecialized' in name:
        assert tuple(bb.expert_types) == ('collaborative', 'shared')
    if 'sarl1pixel' in name:
        assert model.target_channels['sar_l1'] == 8
    elif 'sar_l1' in mods:
        assert model.target_channels['sar_l1'] == 1
    if 'fsdp' in name:
        assert cfg.runner_type == 'FlexibleRunner'
        assert cfg.strategy.type == 'mmringmoe.ShardedMetaInitFSDPStrategy'


def test_fsdp_strategy_builds_on_meta_and_wrap_policy(tmp_path):
    from mmpretrain.models.backbones.swin_transformer_v2 import SwinBlockV2

    from mmringmoe.engine.fsdp import (MetaInitFSDPStrategy,
                                       ringmoe_block_wrap_policy)
    from mmringmoe.models.layers.rmoe import GroupedExperts
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'pretrain',
        'simmim_ringmoe-1b-fsdp_512xb8-100e_ringmoss-192px.py'))
    # work_dir: the strategy's logger writes there (default ./work_dirs)
    strategy = MetaInitFSDPStrategy(
        model_wrapper=cfg.strategy.model_wrapper.to_dict(), work_dir=str(tmp_path))
    model = strategy.build_model(cfg.model.to_dict())  # the real 14.7B
    n = sum(p.numel() for p in model.parameters())
    assert 14.7e9 < n < 14.8e9
    assert all(p.is_meta for p in model.parameters())
    units = [m for m in model.modules()
             if ringmoe_block_wrap_policy(m, False, 0)]
    assert len([u for u in units if isinstance(u, SwinBlockV2)]) == 24
    experts = [u for u in units if isinstance(u, GroupedExperts)]
    assert len(experts) == 24 * 5  # collaborative + 4 modalities' specialized
    assert max(sum(p.numel() for p in u.parameters())
               for u in experts) < 0.42e9


@pytest.mark.slow
@pytest.mark.parametrize(
    'path', [c for c in CONFIGS if 'fsdp' not in c and 'tiny' not in c],
    ids=osp.basename)
def test_paper_config_trains_one_epoch_on_generated_ringmoss(path, tmp_path,
                                                            monkeypatch):
    """The paper-scale configs train for real (backbone swapped to tiny) on
    generated tiles in the RingMOSS layout they read (./data/ringmoss). The
    FSDP config needs GPUs; its model is built on the meta device above."""
    from helpers import run_train
    from mmringmoe.datasets.builtin_pretrain import make_builtin_pretrain_data
    make_builtin_pretrain_data(str(tmp_path / 'data' / 'ringmoss'),
                               num_per_modality=8, size=192)
    monkeypatch.chdir(tmp_path)
    work = tmp_path / 'work'
    run_train(path, work, cfg_options={
        'model.backbone.arch': 'tiny',
        'model.backbone.window_size': None,
        'train_cfg.max_epochs': 1,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
    })
    logs = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))
    assert logs, 'no training log written'
    rows = [json.loads(line) for line in open(logs[0])]
    losses = [r['loss'] for r in rows if 'loss' in r]
    assert losses and all(v == v for v in losses)  # finite, not NaN
    assert (work / 'epoch_1.pth').exists()
