"""KS / KA / KC merging, export to mmpretrain Swin V2, sparse upcycling."""
import pytest
import torch
from mmpretrain.models import SwinTransformerV2
from pruning_common import (converter, load_into_upstream_swin, read,
                            rebuild)

from mmringmoe.models import RingMoE
from mmringmoe.models.pruning import (describe, load_checkpoint,
                                      merge_experts, to_mmpretrain)


def _sparse(modalities=('opt', )):
    torch.manual_seed(0)
    model = RingMoE('tiny', modalities=modalities).eval()
    with torch.no_grad():  # random biases too, so their merge is checked
        for layer in model.rmoe_layers().values():
            for p in layer.parameters():
                p.normal_(0, 0.05)
    return model


def _experts(layer, modalities):
    """(w1, b1, w2, b2) per type, nn.Linear layout (out, in) for weights."""
    def unpack(g):
        return [(g.w1[k].t(), g.b1[k], g.w2[k].t(), g.b2[k])
                for k in range(g.num_experts)]
    spec = [e for m in modalities for e in unpack(layer.specialized_experts[m])]
    fc1, fc2 = layer.shared_expert.layers[0][0], layer.shared_expert.layers[1]
    return dict(specialized=spec, collaborative=unpack(layer.collab_experts),
                shared=[(fc1.weight, fc1.bias, fc2.weight, fc2.bias)])


def _merged(sd, block):
    p = f'{block}.ffn.'
    return [sd[p + k] for k in ('layers.0.0.weight', 'layers.0.0.bias',
                                'layers.1.weight', 'layers.1.bias')]


@pytest.mark.parametrize('modalities', [('opt', ), ('opt', 'sar_l2')])
def test_ks_and_ka_are_hand_sum_and_mean(modalities):
    model = _sparse(modalities)
    sd = model.state_dict()
    _, ks = merge_experts(sd, 'ks')
    meta, ka = merge_experts(sd, 'ka')
    assert meta['moe_mode'] == 'dense'
    for block, layer in model.rmoe_layers().items():
        every = [e for group in _experts(layer, modalities).values()
                 for e in group]
        assert len(every) == 4 * len(modalities) + 4 + 1
        for i in range(4):
            total = sum(e[i] for e in every)
            torch.testing.assert_close(_merged(ks, block)[i], total,
                                       atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(_merged(ka, block)[i],
                                       total / len(every), atol=1e-6,
                                       rtol=1e-6)
    rebuild(meta, ka)  # loads as a dense RingMoE


def _truncated(w, k):
    u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)
    return (u[:, :k] @ torch.diag(s[:k]) @ vh[:k]).float()


def test_kc_is_sum_of_rank_k_truncations_plus_shared():
    model = _sparse()
    sd = model.state_dict()
    _, kc = merge_experts(sd, 'kc')
    _, ks = merge_experts(sd, 'ks')
    _, full = merge_experts(sd, 'kc', full_rank=True)
    for block, layer in model.rmoe_layers().items():
        groups = _experts(layer, ('opt', ))
        width = layer.embed_dims
        for i in (0, 2):  # W1 and W2
            want = groups['shared'][0][i].clone()
            for etype in ('specialized', 'collaborative'):
                k = width // len(groups[etype])  # K = C / N (Eq. 18-19)
                for e in groups[etype]:
                    low = _truncated(e[i], k)
                    if block == 'stages.0.blocks.0':
                        assert torch.linalg.matrix_rank(low) == k
                    want += low
            got = _merged(kc, block)[i]
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
            assert not torch.allclose(got, _merged(ks, block)[i], atol=1e-3)
        for i in (1, 3):  # biases are summed
            torch.testing.assert_close(_merged(kc, block)[i],
                                       _merged(ks, block)[i])
        for a, b in zip(_merged(full, block), _merged(ks, block)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('method', ['ks', 'kc'])
def test_export_loads_into_mmpretrain_with_same_features(tmp_path, method):
    model = _sparse(('opt', 'sar_l2'))
    src = tmp_path / 'sparse.pth'
    torch.save({'meta': describe(model.state_dict()),
                'state_dict': model.state_dict()}, src)
    dense_path, swin_path = tmp_path / 'dense.pth', tmp_path / 'swin.pth'
    converter('merge_experts').main([
        str(src), str(dense_path), '--method', method, '--modalities',
        'sar_l2', '--to-mmpretrain', str(swin_path)])
    dense = rebuild(*load_checkpoint(str(dense_path)))
    assert dense.moe_mode == 'dense' and dense.modalities == ('sar_l2', )
    swin_ckpt = read(swin_path)
    cfg = dict(swin_ckpt['meta']['mmpretrain_cfg'])
    assert cfg.pop('type') == 'mmpretrain.SwinTransformerV2'
    assert cfg['in_channels'] == 1
    swin = SwinTransformerV2(**cfg)
    expected = set(k for k in swin.state_dict() if 'relative_' not in k)
    assert set(swin_ckpt['state_dict']) == expected
    load_into_upstream_swin(swin, swin_ckpt['state_dict']).eval()
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        for a, b in zip(dense(x), swin(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_merge_refuses_bad_input(tmp_path):
    tool = converter('merge_experts')
    dense = RingMoE('tiny', modalities=('opt', ), moe_mode='dense')
    path = tmp_path / 'dense.pth'
    torch.save(dense.state_dict(), path)
    with pytest.raises(ValueError, match='already dense'):
        tool.main([str(path), str(tmp_path / 'o.pth'), '--method', 'ks'])
    sparse = tmp_path / 'sparse.pth'
    torch.save(_sparse(('opt', 'ms')).state_dict(), sparse)
    with pytest.raises(ValueError, match='is the input file'):
        tool.main([str(sparse), str(sparse), '--method', 'ka'])
    with pytest.raises(ValueError, match="unknown modality.*'sar_l1'"):
        tool.main([str(sparse), str(tmp_path / 'o.pth'), '--method', 'ka',
                   '--modalities', 'sar_l1'])
    with pytest.raises(ValueError, match='name the one'):
        tool.main([str(sparse), str(tmp_path / 'o.pth'), '--method', 'ka',
                   '--to-mmpretrain', str(tmp_path / 's.pth')])
    assert not (tmp_path / 'o.pth').exists()


def test_upcycle_then_ka_gives_the_dense_swin_back(tmp_path):
    torch.manual_seed(0)
    arch = dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8],
                extra_norm_every_n_blocks=0)
    swin = SwinTransformerV2(arch=arch, in_channels=3, window_size=8,
                             pad_small_map=True, out_indices=(0, 1, 2, 3))
    swin.eval()
    src = tmp_path / 'swin.pth'
    # a whole-classifier checkpoint, as mmpretrain writes them
    torch.save({'state_dict': {'backbone.' + k: v
                               for k, v in swin.state_dict().items()}}, src)
    up = tmp_path / 'up.pth'
    converter('swinv2_to_ringmoe').main(
        [str(src), str(up), '--modalities', 'opt', 'sar_l2'])
    meta, sd = load_checkpoint(str(up))
    sparse = rebuild(meta, sd)
    for layer in sparse.rmoe_layers().values():
        assert not layer.collab_router.gate.weight.any()
        assert not layer.specialized_routers['sar_l2'].gate.weight.any()
    # sar_l2 (1 channel) got the channel mean of the RGB kernel, x 3
    torch.testing.assert_close(
        sd['patch_embed.sar_l2.projection.weight'],
        swin.patch_embed.projection.weight.sum(1, keepdim=True))

    dense_path, back = tmp_path / 'ka.pth', tmp_path / 'back.pth'
    converter('merge_experts').main([
        str(up), str(dense_path), '--method', 'ka', '--modalities', 'opt',
        '--to-mmpretrain', str(back)])
    swin_sd = swin.state_dict()
    _, merged = load_checkpoint(str(dense_path))
    for k, v in swin_sd.items():
        if '.ffn.' in k:
            torch.testing.assert_close(merged[k], v, atol=1e-6, rtol=1e-6)
    again = SwinTransformerV2(arch=arch, in_channels=3, window_size=8,
                              pad_small_map=True, out_indices=(0, 1, 2, 3))
    load_into_upstream_swin(again, read(back)['state_dict']).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(swin(x), again(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
