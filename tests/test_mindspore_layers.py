"""Layer-level fidelity of the MindSpore -> mmringmoe conversion.

For every kind of converted layer a NumPy computation on the official-layout
tensors, in the official op order (``tests/mindspore_official.py``), must
equal the converted mmringmoe module's output. Both run in float64 so that a
layout error (O(1)) cannot hide in float32 rounding.
"""
import numpy as np
import pytest
import torch
import torch.nn as nn

import mindspore_official as off
from mmringmoe.models.backbones.ringmoe_mindspore import RingMoEMindSpore
from mmringmoe.models.converters import convert_official
from mmringmoe.models.converters.mindspore_ckpt import MSTensor
from mmringmoe.models.converters.ringmoe_mindspore import (OFFICIAL_SAR_L2_MEAN,
                                                           OFFICIAL_SAR_L2_STD)

ATOL = 1e-5
OFFICIAL_INDEX = dict(opt=0, sar_l1=1, sar_l2=2, ms=3)


def _as_ms(params):
    return {k: MSTensor(v, off._TYPES[v.dtype.name], tuple(v.shape)) for k, v in params.items()}


@pytest.fixture(scope='module')
def official():
    return off.official_params(seed=1)


def _build(ckpt):
    cfg = dict(ckpt['meta']['backbone'])
    cfg.pop('type')
    model = RingMoEMindSpore(**cfg)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    return model.double().eval()


@pytest.fixture(scope='module')
def converted(official):
    ckpt = convert_official(_as_ms(official))
    return ckpt, _build(ckpt)


def _t(x):
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))


def _close(ours, ref):
    np.testing.assert_allclose(ours.detach().numpy(), ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize('modality', ['opt', 'ms', 'sar_l1', 'sar_l2'])
def test_patch_embedding(official, converted, modality):
    _, model = converted
    k = OFFICIAL_INDEX[modality]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, model.in_channels[modality], 16, 16))
    # SAR-L2: the official dataset feeds the band replicated into 3 channels
    x_off = np.repeat(x, 3, axis=1) if modality == 'sar_l2' else x
    e = f'encoder.patch_embed{k}.'
    ref = off.patch_embed(x_off, official[e + 'projection.weight'], official[e + 'projection.bias'],
                          official[e + 'norm.gamma'], official[e + 'norm.beta'])
    ours, hw = model.patch_embed[modality](_t(x))
    assert tuple(hw) == (4, 4)
    _close(ours, ref)


def test_patch_embedding_sar_l2_normalisation_fold(official):
    """--sar-l2-norm: our (v - M) / S input equals the official (v - mean_c) / std_c channels."""
    mean, std = 60.0, 40.0
    model = _build(convert_official(_as_ms(official), sar_l2_norm=(mean, std)))
    v = np.random.default_rng(3).uniform(0, 255, (2, 1, 16, 16))
    x_off = np.concatenate([(v - m) / s for m, s in zip(OFFICIAL_SAR_L2_MEAN, OFFICIAL_SAR_L2_STD)], 1)
    e = 'encoder.patch_embed2.'
    ref = off.patch_embed(x_off, official[e + 'projection.weight'], official[e + 'projection.bias'],
                          official[e + 'norm.gamma'], official[e + 'norm.beta'])
    ours, _ = model.patch_embed['sar_l2'](_t((v - mean) / std))
    _close(ours, ref)


def test_qkv_and_projection_shifted_window(official, converted):
    """Stage 0 block 1: a shifted block with its official attention mask."""
    _, model = converted
    b = 'encoder.layers.0.blocks.1.'
    mask = official[b + 'attention_mask']           # (1, nW, 1, N, N)
    nw, n = mask.shape[1], mask.shape[-1]
    x = np.random.default_rng(4).standard_normal((2 * nw, n, 16))
    ref = off.window_attention(x, official, b, heads=1, mask=mask)
    w_msa = model.stages[0].blocks[1].attn.w_msa
    ours = w_msa(_t(x), mask=_t(mask[0, :, 0]))
    _close(ours, ref)


def test_qkv_and_projection_multi_head(official, converted):
    _, model = converted
    b = 'encoder.layers.2.blocks.0.'                # 2 heads, window 4, no shift
    x = np.random.default_rng(5).standard_normal((3, 16, 64))
    ref = off.window_attention(x, official, b, heads=2)
    _close(model.stages[2].blocks[0].attn.w_msa(_t(x)), ref)


@pytest.mark.parametrize('which', ['collab', 'sar_l1'])
def test_router(official, converted, which):
    _, model = converted
    b = 'encoder.layers.1.blocks.0.mlp.'
    ffn = model.stages[1].blocks[0].ffn
    if which == 'collab':
        wt, rt = official[b + 'cross_router.dense.weight'], ffn.collab_router
    else:
        wt, rt = official[b + 'special_router.1.dense.weight'], ffn.specialized_routers['sar_l1']
    x = np.random.default_rng(6).standard_normal((50, 32))
    prob, idx, comb = off.router(x, wt)
    probs, gates, ours_idx = rt(_t(x))
    np.testing.assert_allclose(probs.detach().numpy(), prob, atol=ATOL, rtol=0)
    assert np.array_equal(ours_idx[:, 0].numpy(), idx)
    np.testing.assert_allclose(gates[:, 0].detach().numpy(), comb, atol=ATOL, rtol=0)


def test_specialized_expert(official, converted):
    _, model = converted
    b = 'encoder.layers.1.blocks.1.mlp.special_ffn.3.'   # official modality 3 = ms
    experts = model.stages[1].blocks[1].ffn.specialized_experts['ms']
    x = np.random.default_rng(7).standard_normal((2, 9, 32))   # (E, tokens, C)
    ref = off.batched_experts(x, official[b + 'mapping.weight'], official[b + 'mapping.bias'],
                              official[b + 'projection.weight'], official[b + 'projection.bias'])
    for e in range(2):
        _close(experts.expert_forward(e, _t(x[e])), ref[e])


def test_collaborative_expert(official, converted):
    _, model = converted
    b = 'encoder.layers.3.blocks.0.mlp.cross_ffn.'
    experts = model.stages[3].blocks[0].ffn.collab_experts
    x = np.random.default_rng(8).standard_normal((3, 5, 128))
    ref = off.batched_experts(x, official[b + 'mapping.weight'], official[b + 'mapping.bias'],
                              official[b + 'projection.weight'], official[b + 'projection.bias'])
    for e in range(3):
        _close(experts.expert_forward(e, _t(x[e])), ref[e])


def test_shared_expert(official, converted):
    _, model = converted
    b = 'encoder.layers.0.blocks.0.'
    x = np.random.default_rng(9).standard_normal((7, 16))
    ref = off.public_expert(x, official, b)
    _close(model.stages[0].blocks[0].ffn.shared_expert(_t(x)), ref)


@pytest.mark.parametrize('modality', ['opt', 'sar_l2'])
def test_whole_rmoe_layer(official, converted, modality):
    """Moe_modal on one modality's tokens: specialized + collaborative + shared."""
    _, model = converted
    b = 'encoder.layers.1.blocks.1.'
    x = np.random.default_rng(10).standard_normal((2, 16, 32))
    ref = off.moe_modal_one(x.reshape(-1, 32), official, b, OFFICIAL_INDEX[modality])
    model.routing_context.segments = [(modality, 0, 2)]
    _close(model.stages[1].blocks[1].ffn(_t(x)).reshape(-1, 32), ref)


def test_patch_merging(official, converted):
    _, model = converted
    x = np.random.default_rng(11).standard_normal((2, 64, 32))   # stage 1 map 8x8
    ref = off.patch_merging(x, official, 'encoder.layers.1.downsample.', 8, 8)
    ours, hw = model.stages[2].downsample(_t(x), (8, 8))
    assert tuple(hw) == (4, 4)
    _close(ours, ref)


def _decoders(ckpt):
    channels = ckpt['meta']['mim']['target_channels']
    try:
        from mmringmoe.models.selfsup.ringmoe_mim import MultiModalLinearDecoder
        neck = MultiModalLinearDecoder(128, 32, channels)
    except ImportError:  # same module names as RingMoEMIM's default neck
        neck = nn.Module()
        neck.decoders = nn.ModuleDict({m: nn.Module() for m in channels})
        for m, c in channels.items():
            neck.decoders[m].decoder = nn.Sequential(nn.Conv2d(128, 32 * 32 * c, 1), nn.PixelShuffle(32))
    sd = {k[len('neck.'):]: v for k, v in ckpt['mim_decoders'].items()}
    neck.load_state_dict(sd, strict=True)
    return neck.double()


@pytest.mark.parametrize('modality', ['opt', 'ms', 'sar_l1', 'sar_l2'])
def test_decoder(official, converted, modality):
    ckpt, _ = converted
    neck = _decoders(ckpt)
    k = OFFICIAL_INDEX[modality]
    z = np.random.default_rng(12).standard_normal((2, 128, 2, 2))
    ref = off.decoder(z, official[f'decoder_{k}.weight'], official[f'decoder_{k}.bias'])
    ours = neck.decoders[modality].decoder(_t(z))
    if modality == 'sar_l2':  # three predictions of the replicated band -> their mean
        ref = ref.mean(axis=1, keepdims=True)
    _close(ours, ref)


def test_whole_block_shifted(official, converted):
    """Stage 1 block 1 (shifted window, post-norm, RMoE) against the official block order."""
    _, model = converted
    b = 'encoder.layers.1.blocks.1.'
    H = W = 8
    win, shift = 4, 2
    x = np.random.default_rng(13).standard_normal((1, H * W, 32))
    xs = np.roll(x.reshape(1, H, W, 32), (-shift, -shift), axis=(1, 2))
    wins = xs.reshape(1, H // win, win, W // win, win, 32).transpose(0, 1, 3, 2, 4, 5).reshape(-1, win * win, 32)
    att = off.window_attention(wins, official, b, heads=2, mask=official[b + 'attention_mask'])
    att = att.reshape(1, H // win, W // win, win, win, 32).transpose(0, 1, 3, 2, 4, 5).reshape(1, H, W, 32)
    att = np.roll(att, (shift, shift), axis=(1, 2)).reshape(1, H * W, 32)
    h = x + off.layer_norm(att, official[b + 'norm1.gamma'], official[b + 'norm1.beta'], 1e-6)
    mlp = off.moe_modal_one(h.reshape(-1, 32), official, b, OFFICIAL_INDEX['opt']).reshape(h.shape)
    ref = h + off.layer_norm(mlp, official[b + 'norm2.gamma'], official[b + 'norm2.beta'], 1e-6)
    model.routing_context.segments = [('opt', 0, 1)]
    _close(model.stages[1].blocks[1](_t(x), (H, W)), ref)
