"""MindSpore .ckpt reading / writing and the whole-model conversion round trip."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch

import mindspore_official as off
from mmringmoe.models.backbones.ringmoe_mindspore import RingMoEMindSpore
from mmringmoe.models.converters import (CheckpointFormatError, read_mindspore_ckpt,
                                         write_mindspore_ckpt)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        f'_mmringmoe_converter_{name}', osp.join(ROOT, 'tools', 'model_converters', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mindspore_to_mmringmoe = _tool('mindspore_to_mmringmoe')
mmringmoe_to_mindspore = _tool('mmringmoe_to_mindspore')

SMALL_ARCH = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4], mlp_ratio=4,
                  num_specialized_experts=2, num_collab_experts=3, window_size=4)


def _save(path, params):
    """A real .ckpt: by MindSpore when it is installed, else by the test's own writer."""
    try:
        import mindspore as ms
    except ImportError:
        off.write_ckpt(path, params)
        return
    ms.save_checkpoint([{'name': k, 'data': ms.Tensor(v)} for k, v in params.items()], str(path))


# --------------------------------------------------------------- reader/writer
def test_reader_parses_records_slices_and_scalars(tmp_path):
    rng = np.random.default_rng(0)
    params = {'a.weight': rng.standard_normal((3, 5, 7)).astype(np.float32),
              'b.idx': np.arange(10, dtype=np.int32),
              'c.half': rng.standard_normal(33).astype(np.float16),
              'd.scalar': np.array(1.5, np.float32)}
    path = tmp_path / 'x.ckpt'
    off.write_ckpt(path, params, slice_bytes=64)      # a.weight spans several records
    got = read_mindspore_ckpt(path)
    assert list(got) == list(params)
    for k, v in params.items():
        assert got[k].data.dtype == v.dtype and got[k].data.shape == v.shape
        assert got[k].data.tobytes() == v.tobytes()
    assert got['d.scalar'].dims == (0,)
    # our writer, same slicing, gives the same bytes
    write_mindspore_ckpt(tmp_path / 'y.ckpt', got, slice_bytes=64)
    assert (tmp_path / 'y.ckpt').read_bytes() == path.read_bytes()
    with pytest.raises(FileExistsError):
        write_mindspore_ckpt(tmp_path / 'y.ckpt', got)


def test_reader_rejects_non_checkpoints(tmp_path):
    bad = tmp_path / 'bad.ckpt'
    bad.write_bytes(b'\x89PNG not a checkpoint')
    with pytest.raises(CheckpointFormatError, match='bad.ckpt'):
        read_mindspore_ckpt(bad)
    trunc = tmp_path / 'trunc.ckpt'
    off.write_ckpt(trunc, {'w': np.ones(100, np.float32)})
    trunc.write_bytes(trunc.read_bytes()[:-10])
    with pytest.raises(CheckpointFormatError, match='trunc.ckpt'):
        read_mindspore_ckpt(trunc)
    with pytest.raises(FileNotFoundError, match='missing.ckpt'):
        read_mindspore_ckpt(tmp_path / 'missing.ckpt')


# ------------------------------------------------------------ whole model
@pytest.fixture(scope='module')
def official_ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp('ms')
    params = off.official_params(seed=0)
    path = d / 'simmim-ringmoe-small.ckpt'
    _save(path, params)
    return path, params


def _convert(tmp_path, src, *extra):
    out = tmp_path / 'converted.pth'
    rc = mindspore_to_mmringmoe.main([str(src), str(out), *extra])
    return rc, out


@pytest.mark.parametrize('arch,options', [
    ('auto', []), (json.dumps(SMALL_ARCH), ['--img-size', '64']),
    ('auto', ['--sar-l2-norm', '60', '40']), ('auto', ['--keep-sar-l2-rgb'])])
def test_round_trip_bit_exact(tmp_path, official_ckpt, arch, options, capsys):
    src, params = official_ckpt
    rc, out = _convert(tmp_path, src, '--arch', arch, *options)
    assert rc == 0, capsys.readouterr().err
    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    rep = ckpt['meta']['report']
    assert rep['unmapped'] == [] and rep['missing'] == []
    model_params = [k for k in params if not k.startswith(('adam_', 'global_step', 'learning_rate'))]
    # every official tensor is used, recomputed (masks) or kept aside (the unused embedding)
    assert rep['mapped'] + len(rep['ignored']) == len(model_params)
    assert rep['training_state_dropped'] == 4
    assert set(rep['filled']) == {f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias')}

    # the state dict is exactly the one of the backbone it names
    cfg = dict(ckpt['meta']['backbone'])
    assert cfg.pop('type') == 'mmringmoe.RingMoEMindSpore'
    assert cfg['window_size'] == [4, 4, 4, 2]
    model = RingMoEMindSpore(**cfg)
    # strict: the position buffers the converter writes (checked against the
    # Swin index) are replaced by the model's own at load time
    model.load_state_dict(ckpt['state_dict'], strict=True)
    sar_l2_channels = 3 if '--keep-sar-l2-rgb' in options else 1
    assert model.in_channels['sar_l2'] == sar_l2_channels
    feats = model(torch.randn(1, sar_l2_channels, 64, 64), modality='sar_l2')
    assert [f.shape[1] for f in feats] == [16, 32, 64, 128]

    back = tmp_path / 'back.ckpt'
    assert mmringmoe_to_mindspore.main([str(out), str(back)]) == 0
    again = read_mindspore_ckpt(back)
    assert list(again) == model_params                        # same names, same order
    for k in model_params:
        assert again[k].data.dtype == params[k].dtype, k
        assert again[k].data.shape == params[k].shape, k
        assert again[k].data.tobytes() == params[k].tobytes(), k


def test_missing_and_unmapped_parameters_are_listed(tmp_path, official_ckpt, capsys):
    _, params = official_ckpt
    broken = dict(params)
    del broken['encoder.layers.2.blocks.1.mlp.cross_router.dense.weight']
    broken['encoder.layers.0.blocks.0.mlp.gate_bias'] = np.zeros(4, np.float32)
    src = tmp_path / 'broken.ckpt'
    off.write_ckpt(src, broken)
    rc, out = _convert(tmp_path, src)
    err = capsys.readouterr().err
    assert rc == 1 and not out.exists()
    assert 'encoder.layers.0.blocks.0.mlp.gate_bias' in err and 'not mapped' in err
    assert 'stages.2.blocks.1.ffn.collab_router.gate.weight' in err and 'uninitialised' in err
    assert 'encoder.layers.2.blocks.1.mlp.cross_router.dense.weight' in err
    rc, out = _convert(tmp_path, src, '--allow-partial')
    assert rc == 0 and out.exists()
    rep = torch.load(out, weights_only=True)['meta']['report']
    assert rep['unmapped'] == ['encoder.layers.0.blocks.0.mlp.gate_bias']
    assert len(rep['missing']) == 1


def test_shape_mismatch_names_first_parameter(tmp_path, official_ckpt, capsys):
    src, _ = official_ckpt
    wrong = dict(SMALL_ARCH, embed_dims=24)
    rc, out = _convert(tmp_path, src, '--arch', json.dumps(wrong), '--img-size', '64')
    err = capsys.readouterr().err
    assert rc == 1 and not out.exists()
    # the mask token is the first tensor of the RingMoE state dict
    assert "official parameter 'encoder.mask_token' has shape (1, 1, 16)" in err
    assert 'the arch expects (1, 1, 24)' in err
    # the expert count too
    wrong = dict(SMALL_ARCH, num_collab_experts=4)
    rc, _ = _convert(tmp_path, src, '--arch', json.dumps(wrong), '--img-size', '64')
    err = capsys.readouterr().err
    assert rc == 1 and 'mlp.cross_ffn.mapping.weight' in err
    assert '(3, 16, 64)' in err and '(4, 16, 64)' in err


def test_tool_refuses_to_overwrite(tmp_path, official_ckpt, capsys):
    src, _ = official_ckpt
    out = tmp_path / 'o.pth'
    out.write_bytes(b'keep')
    with pytest.raises(SystemExit, match='exists'):
        mindspore_to_mmringmoe.main([str(src), str(out)])
    assert out.read_bytes() == b'keep'


def test_masks_under_attribute_names(tmp_path, official_ckpt, capsys):
    """MindSpore 2.x stores the official ``self.attn_mask`` under that attribute name."""
    _, params = official_ckpt
    renamed = {k.replace('attention_mask', 'attn_mask'): v for k, v in params.items()}
    src = tmp_path / 'attr-names.ckpt'
    off.write_ckpt(src, renamed)
    rc, out = _convert(tmp_path, src)
    assert rc == 0, capsys.readouterr().err
    back = tmp_path / 'back.ckpt'
    assert mmringmoe_to_mindspore.main([str(out), str(back)]) == 0
    again = read_mindspore_ckpt(back)
    assert 'encoder.layers.0.blocks.1.attn_mask' in again
    for k, t in again.items():
        assert t.data.tobytes() == renamed[k].tobytes(), k


def test_named_arch_1b_rejects_small_checkpoint(tmp_path, official_ckpt, capsys):
    src, _ = official_ckpt
    rc, _ = _convert(tmp_path, src, '--arch', '1b')
    err = capsys.readouterr().err
    assert rc == 1
    assert "'encoder.mask_token' has shape (1, 1, 16), the arch expects (1, 1, 448)" in err


def test_downstream_pretrained_init_loads_converted_weights(tmp_path, official_ckpt, capsys):
    """The registered backbone with init_cfg=Pretrained (the downstream path) gets the weights."""
    from mmringmoe.registry import MODELS
    src, _ = official_ckpt
    rc, out = _convert(tmp_path, src)
    assert rc == 0, capsys.readouterr().err
    ckpt = torch.load(out, weights_only=True)
    cfg = dict(ckpt['meta']['backbone'], init_cfg=dict(type='Pretrained', checkpoint=str(out)))
    model = MODELS.build(cfg)
    assert type(model).__name__ == 'RingMoEMindSpore'
    model.init_weights()
    own = model.state_dict()
    for k, v in ckpt['state_dict'].items():
        assert torch.equal(own[k], v), k


def test_mim_layout_loads_into_ringmoe_mim(tmp_path, official_ckpt, capsys):
    ringmoe_mim = pytest.importorskip('mmringmoe.models.selfsup.ringmoe_mim')
    src, params = official_ckpt
    rc, out = _convert(tmp_path, src, '--mim-layout')
    assert rc == 0, capsys.readouterr().err
    ckpt = torch.load(out, weights_only=True)
    mim_cfg = dict(ckpt['meta']['mim'])
    mim_cfg.pop('type')
    mim_cfg.pop('target_channels')
    mim = ringmoe_mim.RingMoEMIM(backbone=dict(ckpt['meta']['backbone']), **mim_cfg)
    mim.load_state_dict(ckpt['state_dict'], strict=True)
    assert mim.target_channels == ckpt['meta']['mim']['target_channels']
    back = tmp_path / 'back.ckpt'
    assert mmringmoe_to_mindspore.main([str(out), str(back)]) == 0
    again = read_mindspore_ckpt(back)
    for k, t in again.items():
        assert t.data.tobytes() == params[k].tobytes(), k


def test_bfloat16_checkpoint_round_trip(tmp_path, official_ckpt, capsys):
    _, params = official_ckpt
    bf16 = off.to_bfloat16_bits(params)
    src = tmp_path / 'bf16.ckpt'
    off.write_ckpt(src, bf16)
    rc, out = _convert(tmp_path, src, '--sar-l2-norm', '60', '40')
    assert rc == 0, capsys.readouterr().err
    ckpt = torch.load(out, weights_only=True)
    w = ckpt['state_dict']['stages.0.blocks.0.attn.w_msa.proj.weight']
    assert w.dtype == torch.bfloat16
    ref = torch.from_numpy(bf16['encoder.layers.0.blocks.0.attn.proj.weight'].view(np.int16)).view(torch.bfloat16)
    assert torch.equal(w, ref)
    back = tmp_path / 'back.ckpt'
    assert mmringmoe_to_mindspore.main([str(out), str(back)]) == 0
    for k, t in read_mindspore_ckpt(back).items():
        assert t.tensor_type == ('BFloat16' if bf16[k].dtype == np.uint16 else 'Int32'), k
        assert t.data.tobytes() == bf16[k].tobytes(), k


def test_wrapper_prefix(tmp_path, official_ckpt, capsys):
    """Names saved through a wrapper cell with its own prefix convert and come back unchanged."""
    _, params = official_ckpt
    wrapped = {('adam_m.network.' + k[len('adam_m.'):] if k.startswith('adam_m.') else
                k if k.startswith(('adam_v.', 'global_step', 'learning_rate')) else 'network.' + k): v
               for k, v in params.items()}
    src = tmp_path / 'wrapped.ckpt'
    off.write_ckpt(src, wrapped)
    rc, out = _convert(tmp_path, src)
    assert rc == 0, capsys.readouterr().err
    back = tmp_path / 'back.ckpt'
    assert mmringmoe_to_mindspore.main([str(out), str(back)]) == 0
    again = read_mindspore_ckpt(back)
    assert 'network.decoder_3.bias' in again and 'network.encoder.norm.gamma' in again
    for k, t in again.items():
        assert t.data.tobytes() == wrapped[k].tobytes(), k


def test_official_1b_config_is_the_papers_14_7b():
    """The official pretraining config (embed 448, depths 2-2-18-2, 4 specialized experts per
    modality, 4 collaborative, 1 shared, window 12 at 192 px) as converted: 14.7B parameters."""
    import math
    from mmringmoe.models.converters.ringmoe_mindspore import (backbone_config, resolve_arch,
                                                               target_shapes)
    cfg = backbone_config(resolve_arch('1b'), 192)
    assert cfg['window_size'] == [12, 12, 12, 6]
    shapes = target_shapes(cfg)          # built on the meta device
    n = sum(math.prod(s) for k, (s, _) in shapes.items() if not k.endswith('relative_position_index'))
    assert 14.70e9 < n < 14.80e9, n


def test_tools_bad_input_one_line_errors(tmp_path, official_ckpt, capsys):
    src, _ = official_ckpt
    rc, _ = _convert(tmp_path, src, '--arch', 'huge')
    assert rc == 1 and "unknown RingMoE arch 'huge'" in capsys.readouterr().err
    rc, _ = _convert(tmp_path, src, '--arch', '{"embed_dims": 16,')
    assert rc == 1 and 'error:' in capsys.readouterr().err
    notes = tmp_path / 'notes.txt'
    notes.write_text('hello')
    rc, _ = _convert(tmp_path, notes)
    assert rc == 1 and 'notes.txt' in capsys.readouterr().err
    assert mmringmoe_to_mindspore.main([str(notes), str(tmp_path / 'x.ckpt')]) == 1
    assert 'notes.txt' in capsys.readouterr().err
    assert mmringmoe_to_mindspore.main([str(tmp_path / 'none.pth'), str(tmp_path / 'x.ckpt')]) == 1
    assert 'none.pth' in capsys.readouterr().err


def test_encoder_only_checkpoint(tmp_path, official_ckpt, capsys):
    """Without decoder_i (an encoder saved alone, no 'encoder.' prefix) only the backbone is written."""
    _, params = official_ckpt
    bare = {k[len('encoder.'):]: v for k, v in params.items() if k.startswith('encoder.')}
    src = tmp_path / 'encoder.ckpt'
    off.write_ckpt(src, bare)
    rc, out = _convert(tmp_path, src)
    assert rc == 0, capsys.readouterr().err
    ckpt = torch.load(out, weights_only=True)
    assert 'mim_decoders' not in ckpt and ckpt['meta']['report']['unmapped'] == []
    back = tmp_path / 'back.ckpt'
    assert mmringmoe_to_mindspore.main([str(out), str(back)]) == 0
    again = read_mindspore_ckpt(back)
    assert sorted(again) == sorted(bare)
    for k, t in again.items():
        assert t.data.tobytes() == bare[k].tobytes(), k


def test_converted_checkpoint_goes_through_pruning_tools(tmp_path, official_ckpt, capsys):
    """README step 2b: extract one modality, merge its experts (KC), build what the meta names."""
    from mmringmoe.registry import MODELS
    src, _ = official_ckpt
    rc, out = _convert(tmp_path, src)
    assert rc == 0, capsys.readouterr().err
    extract, merge = _tool('extract_modality'), _tool('merge_experts')
    opt, kc = tmp_path / 'opt.pth', tmp_path / 'opt-kc.pth'
    assert extract.main([str(out), str(opt), '--modalities', 'opt']) in (0, None)
    assert merge.main([str(opt), str(kc), '--method', 'kc']) in (0, None)
    ckpt = torch.load(kc, weights_only=True)
    cfg = dict(ckpt['meta']['backbone'])
    assert cfg['type'] == 'mmringmoe.RingMoEMindSpore' and cfg['moe_mode'] == 'dense'
    model = MODELS.build(cfg)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    feats = model(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [16, 32, 64, 128]
