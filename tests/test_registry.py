"""The mmringmoe scope and the toolbox scopes reach each other by prefix."""
import importlib

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

from helpers import TINY_CHANNELS, tiny_backbone
from mmringmoe import registry as ours
from mmringmoe.engine import cli

TOOLBOXES = ['mmpretrain', 'mmseg', 'mmdet', 'mmrotate']


@ours.MODELS.register_module(force=True)
class ScopeProbe(nn.Module):
    """Registered only in the mmringmoe scope."""

    def __init__(self, width=3):
        super().__init__()
        self.fc = nn.Linear(width, width)


def _toolbox_registry(scope, name):
    # what tools/train.py does for a config of that scope (mmrotate's
    # registries have no lazy-import locations)
    importlib.import_module(f'{scope}.utils').register_all_modules(
        init_default_scope=False)
    return getattr(importlib.import_module(f'{scope}.registry'), name)


@pytest.mark.parametrize('scope', TOOLBOXES)
def test_toolbox_scope_builds_mmringmoe_module(scope):
    models = _toolbox_registry(scope, 'MODELS')
    with DefaultScope.overwrite_default_scope(scope):
        probe = models.build(dict(type='mmringmoe.ScopeProbe', width=5))
        assert type(probe) is ScopeProbe and probe.fc.in_features == 5
        # unprefixed, the name is looked up in the toolbox's scope only
        with pytest.raises(KeyError):
            models.build(dict(type='ScopeProbe'))


@pytest.mark.parametrize('scope', TOOLBOXES)
def test_toolbox_scope_builds_tiny_ringmoe(scope):
    if 'RingMoE' not in ours.MODELS.module_dict:
        pytest.skip('mmringmoe.RingMoE is not registered yet')
    models = _toolbox_registry(scope, 'MODELS')
    with DefaultScope.overwrite_default_scope(scope):
        backbone = models.build(tiny_backbone())
    assert type(backbone) is ours.MODELS.get('RingMoE')
    assert list(backbone.num_out_channels) == TINY_CHANNELS


CASES = [
    ('mmpretrain', 'MODELS', dict(type='LinearClsHead', num_classes=3, in_channels=4)),
    ('mmpretrain', 'TRANSFORMS', dict(type='PackInputs')),
    ('mmseg', 'MODELS', dict(type='FCNHead', in_channels=4, channels=4,
                             num_classes=2, num_convs=1)),
    ('mmseg', 'METRICS', dict(type='IoUMetric')),
    ('mmdet', 'MODELS', dict(type='ChannelMapper', in_channels=[4], out_channels=2)),
    ('mmdet', 'MODELS', dict(type='ByteTracker')),
    ('mmrotate', 'MODELS', dict(type='RotatedIoULoss')),
    ('mmrotate', 'TRANSFORMS', dict(type='ConvertBoxType',
                                    box_type_mapping=dict(gt_bboxes='rbox'))),
]


def _as_mmringmoe_config(scope, cfg):
    """``cfg`` prefixed, in an mmringmoe-scoped config as tools/train.py
    prepares it."""
    config = Config(dict(default_scope='mmringmoe',
                         part=dict(cfg, type=f"{scope}.{cfg['type']}")))
    cli.scope_prefixed_types(config)
    return config.part.to_dict()


@pytest.mark.parametrize('scope,kind,cfg', CASES,
                         ids=[f'{s}-{k}-{c["type"]}' for s, k, c in CASES])
def test_mmringmoe_scope_builds_toolbox_module(scope, kind, cfg):
    theirs = _toolbox_registry(scope, kind)
    expected = theirs.get(cfg['type'])
    assert expected is not None and expected.__module__.startswith(scope)
    with DefaultScope.overwrite_default_scope('mmringmoe'):
        built = getattr(ours, kind).build(_as_mmringmoe_config(scope, cfg))
        assert type(built) is expected
        assert DefaultScope.get_current_instance().scope_name == 'mmringmoe'
        if cfg['type'] not in getattr(ours, kind).module_dict:
            with pytest.raises(KeyError):  # the prefix is what finds it
                getattr(ours, kind).build(dict(cfg))


def test_nested_toolbox_parts_need_the_toolbox_scope():
    # LinearClsHead builds its unprefixed CrossEntropyLoss in the current
    # scope: without the _scope_ that tools/train.py adds, mmringmoe's scope
    # is searched and the loss is not found.
    _toolbox_registry('mmpretrain', 'MODELS')
    head = dict(type='mmpretrain.LinearClsHead', num_classes=3, in_channels=4)
    with DefaultScope.overwrite_default_scope('mmringmoe'):
        with pytest.raises(KeyError, match='CrossEntropyLoss'):
            ours.MODELS.build(dict(head))
        built = ours.MODELS.build(_as_mmringmoe_config(
            'mmpretrain', dict(head, type='LinearClsHead')))
    assert type(built.loss_module).__module__.startswith('mmpretrain')


def test_toolbox_config_is_not_rescoped():
    # mmrotate configs use type='mmdet.X' with unprefixed mmrotate parts inside
    config = Config(dict(default_scope='mmrotate', model=dict(
        type='mmdet.FasterRCNN', rpn_head=dict(type='OrientedRPNHead'),
        backbone=dict(type='mmringmoe.RingMoE'))))
    cli.scope_prefixed_types(config)
    assert '_scope_' not in config.model
    assert '_scope_' not in config.model.backbone
