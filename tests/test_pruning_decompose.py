"""Modality decomposition: same outputs for kept modalities, fewer parameters."""
from collections import OrderedDict

import pytest
import torch
from pruning_common import converter, load_strict, num_params, read, rebuild

from mmringmoe.models import RingMoE
from mmringmoe.models.pruning import (backbone_kwargs, count_params,
                                      extract_modalities, load_checkpoint)


def _model():
    torch.manual_seed(0)
    return RingMoE('tiny', modalities=('opt', 'ms', 'sar_l2')).eval()


def _other_modality_params(model, dropped):
    n = sum(num_params(model.patch_embed[m]) for m in dropped)
    for layer in model.rmoe_layers().values():
        for m in dropped:
            n += num_params(layer.specialized_experts[m])
            n += num_params(layer.specialized_routers[m])
    return n


@pytest.mark.parametrize('keep', [['sar_l2'], ['ms', 'opt']])
def test_extract_keeps_outputs_bit_identical(keep):
    model = _model()
    sd = model.state_dict()
    meta, out = extract_modalities(sd, keep)
    assert meta['modalities'] == keep
    sub = rebuild(meta, out)
    assert sub.modalities == tuple(keep)
    for m in keep:
        x = torch.randn(2, model.in_channels[m], 40, 40)
        with torch.no_grad():
            for a, b in zip(model(x, modality=m), sub(x, modality=m)):
                assert torch.equal(a, b)
    dropped = [m for m in model.modalities if m not in keep]
    expected = num_params(model) - _other_modality_params(model, dropped)
    assert count_params(out) == expected == num_params(sub)
    assert count_params(out) < count_params(sd)


def test_extract_tool_reads_mim_checkpoint_and_refuses_bad_input(
        tmp_path, capsys):
    model = _model()
    # a SimMIM-like whole-model checkpoint: backbone + decoder keys
    whole = OrderedDict(('backbone.' + k, v)
                        for k, v in model.state_dict().items())
    whole['decoders.opt.weight'] = torch.zeros(3)
    src = tmp_path / 'mim.pth'
    torch.save({'meta': {'epoch': 3}, 'state_dict': whole}, src)
    dst = tmp_path / 'opt.pth'
    tool = converter('extract_modality')
    tool.main([str(src), str(dst), '--modalities', 'opt'])
    printed = capsys.readouterr().out
    assert 'parameters before' in printed and 'parameters after' in printed
    ckpt = read(dst)
    assert ckpt['meta']['modalities'] == ['opt']
    assert ckpt['meta']['moe_mode'] == 'sparse'
    assert not any(k.startswith('backbone.') or 'decoders' in k
                   for k in ckpt['state_dict'])
    meta, sd = load_checkpoint(str(dst))
    rebuild(meta, sd)
    # downstream configs load the file through init_cfg
    sub = RingMoE(**backbone_kwargs(meta),
                  init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    sub.init_weights()
    for k, v in sub.state_dict().items():
        assert torch.equal(v, sd[k]), k

    with pytest.raises(ValueError, match='is the input file'):
        tool.main([str(src), str(src), '--modalities', 'opt'])
    with pytest.raises(ValueError, match="unknown modality.*'sar_l1'"):
        tool.main([str(src), str(tmp_path / 'x.pth'), '--modalities',
                   'sar_l1'])
    with pytest.raises(FileExistsError):
        tool.main([str(src), str(dst), '--modalities', 'opt'])
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        tool.main([str(tmp_path / 'missing.pth'), str(tmp_path / 'y.pth'),
                   '--modalities', 'opt'])
    assert not (tmp_path / 'x.pth').exists()


def test_official_layout_checkpoint_keeps_its_backbone_config():
    """Checkpoints of the MindSpore converter (RingMoEMindSpore, Swin V1
    attention, its config in ``meta['backbone']``) go through the same
    tools and rebuild as the same class."""
    from mmringmoe.models.pruning import (backbone_cfg, merge_experts,
                                          prune_collab_experts, to_mmpretrain)
    from mmringmoe.registry import MODELS
    cfg = dict(type='mmringmoe.RingMoEMindSpore',
               arch=dict(embed_dims=32, depths=[2, 2, 2, 2],
                         num_heads=[1, 2, 4, 8], num_specialized_experts=4,
                         num_collab_experts=4),
               modalities=['opt', 'ms', 'sar_l1', 'sar_l2'], img_size=64,
               window_size=[8, 4, 2, 1], use_mask_token=True,
               out_indices=[0, 1, 2, 3])
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    meta, out = extract_modalities(model.state_dict(), ['sar_l1'],
                                   {'backbone': cfg})
    assert meta['backbone']['type'] == 'mmringmoe.RingMoEMindSpore'
    assert meta['backbone']['modalities'] == ['sar_l1']
    assert meta['window_size'] == [8, 4, 2, 1]
    sub = load_strict(MODELS.build(backbone_cfg(meta)), out).eval()
    x = torch.randn(1, 8, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(x, modality='sar_l1'), sub(x, modality='sar_l1')):
            assert torch.equal(a, b)
    ep_meta, ep = prune_collab_experts(
        out, {b: [1] for b in meta['blocks']}, meta)
    assert ep_meta['backbone']['arch']['num_collab_experts'] == 1
    load_strict(MODELS.build(backbone_cfg(ep_meta)), ep)
    ks_meta, ks = merge_experts(ep, 'ks', meta=ep_meta)
    assert ks_meta['backbone']['moe_mode'] == 'dense'
    load_strict(MODELS.build(backbone_cfg(ks_meta)), ks)
    with pytest.raises(ValueError, match='Swin V1'):
        to_mmpretrain(ks, meta=ks_meta)


def test_training_run_checkpoint_meta_does_not_leak_numpy(tmp_path):
    """A run's checkpoint (written by WeightsOnlyCheckpointHook) carries
    numpy values in its meta; converter outputs must stay weights-only."""
    import numpy as np

    from mmringmoe.engine.checkpoint import encode
    model = _model()
    ckpt = {'meta': {'mmengine_version': '0.10.7', 'seed': np.int64(3),
                     'dataset_meta': {'mean': np.array([1.5, 2.0]),
                                      'scale': np.float64(0.5)}},
            'state_dict': {'backbone.' + k: v
                           for k, v in model.state_dict().items()},
            'message_hub': {'log_scalars': {}}}
    src = tmp_path / 'iter_30.pth'
    torch.save(encode(ckpt), src)
    dst = tmp_path / 'opt.pth'
    converter('extract_modality').main([str(src), str(dst),
                                        '--modalities', 'opt'])
    meta = read(dst)['meta']  # weights_only=True
    assert meta['source_meta']['seed'] == 3
    assert meta['source_meta']['dataset_meta']['mean'] == [1.5, 2.0]
    assert meta['modalities'] == ['opt']
