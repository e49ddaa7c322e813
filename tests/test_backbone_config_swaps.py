"""RingMoE dropped into stock mmseg / mmdet / mmpretrain configs from their own scope.

Each config inherits the toolbox's own base model file, names the backbone
``mmringmoe.RingMoE`` through ``custom_imports`` and keeps the toolbox's
``default_scope``; the model is built by that toolbox's registry and trained
for one optimizer step.
"""
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData

from mmringmoe.models import RingMoE

HEADER = """
custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)
default_scope = '{scope}'
tiny = dict(_delete_=True, type='mmringmoe.RingMoE', arch='tiny', modalities=('opt', ),
            window_size=4, drop_path_rate=0.1, out_indices={out})
"""

CONFIGS = {
    'mmseg': ("""
_base_ = ['mmseg::_base_/models/upernet_swin.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=tiny,
    decode_head=dict(in_channels=[32, 64, 128, 256], channels=32, num_classes=4),
    auxiliary_head=dict(in_channels=128, channels=16, num_classes=4))
""", (0, 1, 2, 3)),
    'mmdet': ("""
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py']
model = dict(backbone=tiny, neck=dict(in_channels=[32, 64, 128, 256], out_channels=32),
             rpn_head=dict(in_channels=32, feat_channels=32),
             roi_head=dict(bbox_roi_extractor=dict(out_channels=32),
                           bbox_head=dict(in_channels=32, fc_out_channels=64, num_classes=3)))
""", (0, 1, 2, 3)),
    'mmpretrain': ("""
_base_ = ['mmpretrain::_base_/models/swin_transformer_v2/tiny_256.py']
model = dict(backbone=tiny, head=dict(in_channels=256, num_classes=5),
             data_preprocessor=dict(num_classes=5))
""", (3, )),
}


def _samples(scope):
    torch.manual_seed(0)
    imgs = [torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8) for _ in range(2)]
    if scope == 'mmseg':
        from mmseg.structures import SegDataSample
        samples = []
        for _ in imgs:
            s = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                            pad_shape=(64, 64)))
            s.gt_sem_seg = PixelData(data=torch.randint(0, 4, (1, 64, 64)))
            samples.append(s)
    elif scope == 'mmdet':
        from mmdet.structures import DetDataSample
        samples = []
        for _ in imgs:
            s = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                            scale_factor=(1., 1.), pad_shape=(64, 64)))
            s.gt_instances = InstanceData(bboxes=torch.tensor([[8., 8., 40., 36.]]),
                                          labels=torch.tensor([1]))
            samples.append(s)
    else:
        from mmpretrain.structures import DataSample
        samples = [DataSample().set_gt_label(i) for i in range(2)]
    return dict(inputs=imgs, data_samples=samples)


@pytest.mark.parametrize('scope', sorted(CONFIGS))
def test_ringmoe_trains_inside_toolbox_config(scope, tmp_path):
    body, out = CONFIGS[scope]
    path = tmp_path / f'{scope}_ringmoe.py'
    path.write_text(textwrap.dedent(HEADER.format(scope=scope, out=out) + body))
    cfg = Config.fromfile(str(path))
    assert cfg.model.backbone.type == 'mmringmoe.RingMoE'

    registry = {
        'mmseg': 'mmseg.registry', 'mmdet': 'mmdet.registry',
        'mmpretrain': 'mmpretrain.registry'}[scope]
    models = __import__(registry, fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = models.build(cfg.model)
    assert isinstance(model.backbone, RingMoE)
    model.init_weights()
    model.train()

    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = model.backbone.stages[0].blocks[0].ffn.shared_expert.layers[0][0].weight.clone()
    log_vars = model.train_step(_samples(scope), optim)
    loss = sum(v for k, v in log_vars.items() if 'loss' in k)
    assert torch.isfinite(loss)
    after = model.backbone.stages[0].blocks[0].ffn.shared_expert.layers[0][0].weight
    assert not torch.equal(before, after)  # the backbone itself was updated
