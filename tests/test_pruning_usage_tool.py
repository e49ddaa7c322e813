"""collect_expert_usage.py on a tiny classification config and image folder."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from pruning_common import converter

from mmringmoe.models import RingMoE
from mmringmoe.models.pruning import describe

CONFIG = '''
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor',
                           mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True),
    backbone=dict(type='mmringmoe.RingMoE', arch='tiny', modalities=('opt', ),
                  out_indices=(3, ), init_cfg=None),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=256,
              loss=dict(type='CrossEntropyLoss')))
test_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root='{root}',
                 pipeline=[dict(type='LoadImageFromFile'),
                           dict(type='PackInputs')]))
'''


@pytest.fixture
def setup(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ('farmland', 'harbor'):
        (tmp_path / 'data' / cls).mkdir(parents=True)
        for i in range(3):
            img = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / 'data' / cls / f'{i}.png')
    cfg = tmp_path / 'cls_tiny.py'
    cfg.write_text(CONFIG.format(root=tmp_path / 'data'))
    torch.manual_seed(0)
    model = RingMoE('tiny', modalities=('sar_l2', 'opt'))
    ckpt = tmp_path / 'ringmoe.pth'
    torch.save({'meta': describe(model.state_dict()),
                'state_dict': model.state_dict()}, ckpt)
    return tmp_path, cfg, ckpt


def test_collect_usage_writes_frequencies_and_heatmap(setup):
    tmp_path, cfg, ckpt = setup
    out = tmp_path / 'usage.json'
    converter('collect_expert_usage').main(
        [str(cfg), str(ckpt), '--out', str(out), '--max-samples', '4'])
    usage = json.loads(out.read_text())
    assert usage['source']['num_samples'] == 4
    assert usage['source']['split'] == 'test'
    assert len(usage['blocks']) == 8 and usage['num_collab_experts'] == [4] * 8
    first = usage['layers']['stages.0.blocks.0']
    assert first['tokens'] == {'opt': 4 * 8 * 8}  # 32 px / patch 4
    for b in usage['blocks']:
        layer = usage['layers'][b]
        assert set(layer['collaborative']) == {'opt'}  # sar_l2 saw no data
        for etype in ('collaborative', 'specialized'):
            f = layer[etype]['opt']
            assert len(f) == 4 and sum(f) == pytest.approx(1.0)
            # frequencies are counts over the block's opt tokens
            n = layer['tokens']['opt']
            assert all(abs(v * n - round(v * n)) < 1e-6 for v in f)
    png = tmp_path / 'usage.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

    # the usage file drives EP of the same checkpoint
    ep = tmp_path / 'ep.pth'
    converter('prune_experts').main(
        [str(ckpt), str(out), str(ep), '--modalities', 'opt'])
    assert ep.exists()


def test_collect_usage_refuses_dense_model_and_own_input(setup):
    tmp_path, cfg, ckpt = setup
    tool = converter('collect_expert_usage')
    dense = tmp_path / 'dense.pth'
    torch.save(RingMoE('tiny', modalities=('opt', ),
                       moe_mode='dense').state_dict(), dense)
    with pytest.raises(ValueError, match='dense model'):
        tool.main([str(cfg), str(dense), '--out', str(tmp_path / 'u.json')])
    with pytest.raises(ValueError, match='is the input file'):
        tool.main([str(cfg), str(ckpt), '--out', str(ckpt)])
    with pytest.raises(ValueError, match="unknown modality 'ms'"):
        tool.main([str(cfg), str(ckpt), '--out', str(tmp_path / 'u.json'),
                   '--modality', 'ms'])


def test_collect_usage_on_the_multimodal_mim_config(tmp_path, monkeypatch):
    """The tiny MIM config's 4-modality batches and a whole-model (MIM)
    checkpoint; its built-in data set is generated in the working dir."""
    import os.path as osp
    from pruning_common import ROOT
    config = osp.join(ROOT, 'configs', 'pretrain',
                      'simmim_ringmoe-tiny_4xb2-30iter_builtin-192px.py')
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = RingMoE('tiny', use_mask_token=True)
    whole = {'backbone.' + k: v for k, v in model.state_dict().items()}
    torch.save({'meta': {'iter': 30}, 'state_dict': whole}, 'mim.pth')
    converter('collect_expert_usage').main(
        [config, 'mim.pth', '--out', 'usage.json', '--max-samples', '8'])
    usage = json.loads((tmp_path / 'usage.json').read_text())
    assert usage['source']['num_samples'] == 8  # one batch: 2 per modality
    tokens = usage['layers']['stages.0.blocks.0']['tokens']
    assert tokens == {m: 2 * 48 * 48 for m in ('opt', 'ms', 'sar_l1',
                                               'sar_l2')}
    converter('prune_experts').main(['mim.pth', 'usage.json', 'ep.pth'])
    assert (tmp_path / 'ep.pth').exists()
