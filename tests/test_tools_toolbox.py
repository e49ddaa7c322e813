"""tools/train.py and tools/test.py on an mmpretrain-scoped config with the
tiny RingMoE backbone, on generated images in ImageNet-style folders."""
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import TINY_CHANNELS, run_test, run_tool_main, run_train, tiny_backbone

CONFIG = '''
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone={backbone!r},
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels={channels},
              loss=dict(type='CrossEntropyLoss'), topk=(1, )),
    data_preprocessor=dict(num_classes=2, mean=[127.5] * 3, std=[127.5] * 3))
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=2, num_workers=0,
    dataset=dict(type='CustomDataset', data_root={root!r}, data_prefix='train',
                 pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=2, num_workers=0,
    dataset=dict(type='CustomDataset', data_root={root!r}, data_prefix='val',
                 pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
train_cfg = dict(by_epoch=False, max_iters=2, val_interval=1000)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3))
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False))
visualizer = dict(type='UniversalVisualizer', vis_backends=[dict(type='LocalVisBackend')])
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
log_level = 'WARNING'
'''


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    root = tmp_path_factory.mktemp('imagenet_like')
    rng = np.random.default_rng(0)
    for split in ('train', 'val'):
        for cls in ('field', 'water'):
            osp.isdir(root / split / cls) or (root / split / cls).mkdir(parents=True)
            for i in range(2):
                img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
                Image.fromarray(img).save(root / split / cls / f'{cls}_{i}.png')
    path = root / 'cls_tiny.py'
    path.write_text(CONFIG.format(backbone=tiny_backbone(out_indices=(3, )),
                                  channels=TINY_CHANNELS[-1], root=str(root)))
    return path


def test_train_resume_and_test_mmpretrain_config(config, tmp_path):
    run_train(config, tmp_path, cfg_options={'train_cfg.max_iters': 1})
    run_train(config, tmp_path, extra_args=['--resume'])
    ckpt = torch.load(tmp_path / 'iter_2.pth', weights_only=True)
    assert ckpt['meta']['iter'] == 2
    assert ckpt['meta']['dataset_meta']['classes'] == ('field', 'water')
    assert any(k.startswith('backbone.') for k in ckpt['state_dict'])
    metrics = run_test(config, tmp_path / 'iter_2.pth', tmp_path / 'test')
    assert set(metrics) == {'accuracy/top1'}
    assert metrics['accuracy/top1'] in (0.0, 25.0, 50.0, 75.0, 100.0)
    show = tmp_path / 'painted'
    again = run_tool_main('test', [config, tmp_path / 'iter_2.pth', '--work-dir',
                                   tmp_path / 'show', '--show-dir', show])
    assert again == metrics
    assert len(list(show.glob('*.png'))) == 4  # every test image


def test_unknown_type_in_toolbox_config(config, tmp_path, capsys):
    bad = tmp_path / 'typo.py'
    bad.write_text(f"_base_ = [{str(config)!r}]\n"
                   "model = dict(backbone=dict(type='mmringmoe.RingMoe'))\n")
    assert run_tool_main('train', [bad, '--work-dir', tmp_path / 'run']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert 'Traceback' not in '\n'.join(err)
    assert err[-1].startswith(
        "error: unknown type 'mmringmoe.RingMoe' at model.backbone.type")
    assert "did you mean 'mmringmoe.RingMoE'" in err[-1]
