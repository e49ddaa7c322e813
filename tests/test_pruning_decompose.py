"""Modality decomposition: same outputs for kept modalities, fewer parameters."""
from collections import OrderedDict

import pytest
import torch
from pruning_common import converter, num_params, read, rebuild

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
