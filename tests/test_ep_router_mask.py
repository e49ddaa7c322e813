"""Expert pruning keeps the full collaborative router (issue 13 item 7).

The dropped experts are only excluded from the top-k choice, so a token whose
choice survives gets exactly its old output; ``--renormalise`` keeps the old
sliced router (softmax over the kept experts) as an option."""
import pytest
import torch
import torch.nn.functional as F
from pruning_common import converter, load_strict, read, rebuild

from mmringmoe.models import RingMoE
from mmringmoe.models.pruning import (backbone_kwargs, count_params, describe,
                                      load_checkpoint, prune_collab_experts,
                                      save_usage, usage_from_stats)

MODS = ('opt', 'sar_l2')


def _model():
    torch.manual_seed(0)
    model = RingMoE('tiny', modalities=MODS).eval()
    with torch.no_grad():  # routers far from uniform, as after training
        for layer in model.rmoe_layers().values():
            layer.collab_router.gate.weight.mul_(30.)
    return model


def _kept(meta):
    # one expert in even blocks, two in odd ones
    return {b: [(i + 1) % 4] if i % 2 == 0 else [0, 3]
            for i, b in enumerate(meta['blocks'])}


def _layer_io(layer, ctx, tokens):
    ctx.segments = [('opt', 0, tokens.shape[0])]
    with torch.no_grad():
        return layer(tokens)


def test_surviving_tokens_keep_their_exact_output():
    model = _model()
    sd = model.state_dict()
    meta = describe(sd)
    kept = _kept(meta)
    new_meta, out = prune_collab_experts(sd, kept, meta)
    assert new_meta['arch']['num_collab_experts'] == [1, 2] * 4
    assert new_meta['arch']['num_collab_router_experts'] == 4
    pruned = rebuild(new_meta, out)
    torch.manual_seed(1)
    survivors_total = others_total = 0
    for name, full_layer in model.rmoe_layers().items():
        layer = pruned.rmoe_layers()[name]
        assert layer.collab_router.kept_experts.tolist() == kept[name]
        assert layer.collab_router.gate.weight.shape[0] == 4
        c = full_layer.embed_dims
        x = torch.randn(2, 64, c)
        full = _layer_io(full_layer, model.routing_context, x)
        got = _layer_io(layer, pruned.routing_context, x)
        # the independent reference: the full router's top-1 choice
        choice = F.linear(x.reshape(-1, c),
                          full_layer.collab_router.gate.weight).argmax(-1)
        survive = torch.isin(choice, torch.tensor(kept[name]))
        full, got = full.reshape(-1, c), got.reshape(-1, c)
        assert torch.equal(full[survive], got[survive]), name
        if (~survive).any():  # the others were rerouted: output changed
            assert not torch.allclose(full[~survive], got[~survive])
        survivors_total += int(survive.sum())
        others_total += int((~survive).sum())
    assert survivors_total > 100 and others_total > 100


def test_renormalise_option_slices_the_router():
    model = _model()
    sd = model.state_dict()
    meta = describe(sd)
    kept = {b: [2] for b in meta['blocks']}
    new_meta, out = prune_collab_experts(sd, kept, meta, renormalise=True)
    assert 'num_collab_router_experts' not in new_meta['arch']
    assert not any(k.endswith('kept_experts') for k in out)
    pruned = rebuild(new_meta, out)
    for name, full_layer in model.rmoe_layers().items():
        router = pruned.rmoe_layers()[name].collab_router
        assert router.kept_experts is None
        torch.testing.assert_close(
            router.gate.weight, full_layer.collab_router.gate.weight[[2]],
            rtol=0, atol=0)
        # the old behaviour: one kept expert, every gate 1.0
        _, gates, _ = router(torch.randn(10, full_layer.embed_dims))
        assert torch.equal(gates, torch.ones_like(gates))


def test_features_of_a_model_whose_choices_all_survive_are_unchanged():
    """Every token routed (as argmax, with gate ~0.71, not 1.0) to the one
    kept expert of its block: the masked router gives the very same final
    features; the renormalised one (the old EP) moves them, its gates being
    1.0."""
    from test_pruning_ep import _force_collab_routing
    torch.manual_seed(0)
    model = RingMoE('tiny', modalities=MODS).eval()
    meta = describe(model.state_dict())
    planted = {b: (3 * i + 1) % 4 for i, b in enumerate(meta['blocks'])}
    _force_collab_routing(model, planted)
    with torch.no_grad():  # logits 2 for the planted expert, 0 for the rest
        for i, stage in enumerate(model.stages):
            for j, block in enumerate(stage.blocks):
                gate = block.ffn.collab_router.gate.weight
                gate[:, 0] = 0.
                gate[planted[f'stages.{i}.blocks.{j}'], 0] = 2.
    p = torch.tensor([2., 0., 0., 0.]).softmax(0)[0]
    sd = model.state_dict()
    kept = {b: [k] for b, k in planted.items()}
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model(x, modality='opt')
        masked = rebuild(*prune_collab_experts(sd, kept, meta))
        renorm = rebuild(*prune_collab_experts(sd, kept, meta, True))
        got = masked(x, modality='opt')
        old = renorm(x, modality='opt')
        tokens = torch.randn(5, 32)
        _, g_masked, _ = masked.stages[0].blocks[0].ffn.collab_router(tokens)
        _, g_renorm, _ = renorm.stages[0].blocks[0].ffn.collab_router(tokens)
    for a, b in zip(ref, got):
        assert torch.equal(a, b)
    moved = float((old[-1] - ref[-1]).norm() / ref[-1].norm())
    assert moved > 0.05
    print(f'\nfinal features moved: masked 0.0, renormalised {moved:.1%}; '
          f'gate {float(p):.3f} -> 1.0')
    # what the routers return for any token: the full-softmax gate vs 1.0
    assert torch.equal(g_renorm, torch.ones_like(g_renorm))
    assert (g_masked < 1).all()


def test_tool_writes_the_mask_and_it_rebuilds(tmp_path):
    model = _model()
    meta = describe(model.state_dict())
    model.record_routing_stats(True)
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32), modality='opt')
        model(torch.randn(2, 1, 32, 32), modality='sar_l2')
    usage = usage_from_stats(model.routing_stats(), meta)
    save_usage(usage, str(tmp_path / 'usage.json'))
    src = tmp_path / 'full.pth'
    torch.save({'meta': meta, 'state_dict': model.state_dict()}, src)
    tool = converter('prune_experts')
    tool.main([str(src), str(tmp_path / 'usage.json'), str(tmp_path / 'm.pth')])
    tool.main([str(src), str(tmp_path / 'usage.json'), str(tmp_path / 'r.pth'),
               '--renormalise'])
    masked, renorm = read(tmp_path / 'm.pth'), read(tmp_path / 'r.pth')
    kept = masked['meta']['kept_collab_experts']
    assert masked['meta']['pruning']['router'] == 'full, kept_experts mask'
    for b, idx in kept.items():
        key = f'{b}.ffn.collab_router'
        if len(idx) < 4:
            assert masked['state_dict'][key + '.kept_experts'].tolist() == idx
        assert masked['state_dict'][key + '.gate.weight'].shape[0] == 4
        assert renorm['state_dict'][key + '.gate.weight'].shape[0] == len(idx)
    # the mask rebuilds from meta (no missing/unexpected keys) and loads
    meta_m, sd_m = load_checkpoint(str(tmp_path / 'm.pth'))
    again = load_strict(RingMoE(**backbone_kwargs(meta_m)), sd_m)
    for b, layer in again.rmoe_layers().items():
        if len(kept[b]) < 4:
            assert layer.collab_router.kept_experts.tolist() == kept[b]
    # router rows are counted, the mask buffer is not a parameter
    n_m = count_params(masked['state_dict'])
    n_r = count_params(renorm['state_dict'])
    rows_dropped = sum(4 - len(i) for i in kept.values())
    widths = {b: masked['state_dict'][f'{b}.ffn.collab_router.gate.weight']
              .shape[1] for b in kept}
    assert n_m - n_r == sum(2 * (4 - len(kept[b])) * widths[b] for b in kept)
    assert rows_dropped > 0
    assert n_m == sum(p.numel() for p in again.parameters())


def test_pruning_an_ep_model_again_composes_the_masks():
    model = _model()
    sd = model.state_dict()
    meta = describe(sd)
    first = {b: [0, 2, 3] for b in meta['blocks']}
    meta1, sd1 = prune_collab_experts(sd, first, meta)
    # keep the 2nd and 3rd remaining expert: originals 2 and 3
    meta2, sd2 = prune_collab_experts(sd1, {b: [1, 2] for b in meta['blocks']},
                                      meta1)
    b = meta['blocks'][0]
    assert sd2[f'{b}.ffn.collab_router.kept_experts'].tolist() == [2, 3]
    torch.testing.assert_close(sd2[f'{b}.ffn.collab_experts.w1'],
                               sd[f'{b}.ffn.collab_experts.w1'][[2, 3]])


def test_bad_kept_lists_and_masks_are_refused():
    model = _model()
    sd = model.state_dict()
    meta = describe(sd)
    b = meta['blocks'][0]
    with pytest.raises(ValueError, match='asked to keep'):
        prune_collab_experts(sd, {b: [4]}, meta)
    with pytest.raises(ValueError, match='asked to keep'):
        prune_collab_experts(sd, {b: []}, meta)
    _, out = prune_collab_experts(sd, {b: [1]}, meta)
    del out[f'{b}.ffn.collab_router.kept_experts']
    with pytest.raises(ValueError, match='kept_experts'):
        describe(out)
