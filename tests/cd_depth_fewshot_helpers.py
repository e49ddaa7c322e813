"""Shared by tests/test_cd_*.py, test_depth_*.py, test_fewshot_*.py: load a
paper config, shrink it for the CPU, run one training iteration and one
evaluation through tools/train.py and tools/test.py."""
import copy
import os.path as osp

from mmengine.config import Config

from helpers import ROOT, run_test, run_train, tiny_backbone


def load_config(rel_path):
    return Config.fromfile(osp.join(ROOT, 'configs', rel_path))


def tiny_like(backbone):
    """Tiny RingMoE keeping the config's MoE mode and frozen stages."""
    keep = {k: backbone[k] for k in ('moe_mode', 'frozen_stages')
            if k in backbone}
    return tiny_backbone(**keep)


def single_process_loaders(cfg):
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if loader is not None:
            loader.num_workers = 0
            loader.persistent_workers = False


def train_then_test(cfg, tmp_path, max_iters=1):
    """Dump ``cfg``, train ``max_iters`` iterations (or one epoch), test the
    last checkpoint; returns the test metrics."""
    cfg = copy.deepcopy(cfg)
    single_process_loaders(cfg)
    loop = cfg.train_cfg
    if loop.get('type') == 'EpochBasedTrainLoop':
        loop.max_epochs = 1
    else:
        loop.max_iters = max_iters
    loop.val_interval = 10 ** 6
    cfg.default_hooks.checkpoint.interval = 10 ** 6
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.pop('visualization', None)
    path = tmp_path / 'config.py'
    cfg.dump(str(path))
    work = tmp_path / 'work'
    run_train(path, work)
    with open(work / 'last_checkpoint') as f:
        ckpt = f.read().strip()
    return run_test(path, ckpt, tmp_path / 'test')


def strip_backbone(cfg):
    d = copy.deepcopy(cfg.to_dict())
    d.pop('backbone', None)
    d['model'].pop('backbone', None)
    return d


def assert_variant_of(variant_rel, reference_rel, backbone_rel):
    """``variant`` is ``reference`` with only the backbone replaced by the
    one of ``configs/_base_/backbones/<backbone_rel>`` (the reference config
    is the one that is trained and tested)."""
    variant = load_config(variant_rel)
    reference = load_config(reference_rel)
    backbone = load_config(osp.join('_base_', 'backbones', backbone_rel))
    assert strip_backbone(variant) == strip_backbone(reference)
    for key, value in backbone.backbone.items():
        assert variant.model.backbone[key] == value, key
    extra = set(variant.model.backbone) - set(backbone.backbone)
    assert {k: variant.model.backbone[k] for k in extra} == {
        k: reference.model.backbone[k] for k in extra}
