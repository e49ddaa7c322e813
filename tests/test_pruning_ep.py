"""Expert pruning (EP): planted usage, forced routing, bad input."""
import json
import random

import pytest
import torch
from pruning_common import converter, num_params, read, rebuild

from mmringmoe.models import RingMoE
from mmringmoe.models.pruning import (describe, load_checkpoint,
                                      prune_by_usage, save_usage,
                                      select_experts, usage_from_stats)
from mmringmoe.models.pruning.usage import percentile

MODS = ('opt', 'sar_l2')


def _planted_usage(meta, top, rng):
    """Usage with a known long tail: ``top[b][m]`` get the largest f."""
    stats = {}
    n = meta['num_collab_experts']
    for b in meta['blocks']:
        entry = {'tokens': {}, 'collaborative': {}, 'specialized': {}}
        for m in meta['modalities']:
            counts = [rng.randint(0, 30) for _ in range(n)]
            for rank, k in enumerate(top[b][m]):
                counts[k] = 1000 - rank  # distinct, far above the rest
            entry['collaborative'][m] = torch.tensor(counts)
            entry['specialized'][m] = torch.tensor([1, 1, 1, 1])
            entry['tokens'][m] = sum(counts)
        stats[b] = entry
    return usage_from_stats(stats, meta)


def test_percentile_matches_numpy_default():
    np = pytest.importorskip('numpy')
    rng = random.Random(0)
    for _ in range(20):
        v = [rng.random() for _ in range(rng.randint(1, 9))]
        for q in (25, 50, 75, 90):
            assert percentile(v, q) == pytest.approx(np.percentile(v, q))


@pytest.mark.parametrize('ratio,kept_per_mod', [(0.25, 1), (0.5, 2),
                                                 (0.75, 3)])
def test_select_keeps_exactly_the_planted_experts(ratio, kept_per_mod):
    model = RingMoE('tiny', modalities=MODS)
    meta = describe(model.state_dict())
    rng = random.Random(1)
    top = {b: {m: rng.sample(range(4), 4) for m in MODS}
           for b in meta['blocks']}
    usage = _planted_usage(meta, top, rng)
    kept = select_experts(usage, keep_ratio=ratio)
    for b in meta['blocks']:
        want = set(top[b]['opt'][:kept_per_mod]) | set(
            top[b]['sar_l2'][:kept_per_mod])
        assert kept[b] == sorted(want)
    one = select_experts(usage, ['sar_l2'], keep_ratio=ratio)
    assert all(one[b] == sorted(top[b]['sar_l2'][:kept_per_mod])
               for b in meta['blocks'])
    # fixed phi (Tab. A1): f > phi; the planted experts hold f > 0.9
    fixed = select_experts(usage, ['opt'], fixed_threshold=0.5)
    assert all(fixed[b] == [top[b]['opt'][0]] for b in meta['blocks'])


def _force_collab_routing(model, planted):
    """Make channel 0 of every FFN input 1 and route it to ``planted[b]``.

    Norm weights and biases of channel 0 are zeroed (one after the patch
    embedding and each downsample sets it to 1), so the residual stream
    carries a constant 1 there; the collaborative router then sees logits
    +-50 and picks the planted expert with probability exactly 1.0 in fp32.
    """
    with torch.no_grad():
        for pe in model.patch_embed.values():
            pe.norm.weight[0], pe.norm.bias[0] = 0., 1.
        for i, stage in enumerate(model.stages):
            if stage.downsample is not None:
                stage.downsample.norm.weight[0] = 0.
                stage.downsample.norm.bias[0] = 1.
            for j, block in enumerate(stage.blocks):
                for norm in (block.norm1, block.norm2):
                    norm.weight[0], norm.bias[0] = 0., 0.
                gate = block.ffn.collab_router.gate.weight
                gate.zero_()
                gate[:, 0] = -50.
                gate[planted[f'stages.{i}.blocks.{j}'], 0] = 50.


def test_prune_keeps_outputs_for_inputs_routed_to_kept_experts(tmp_path):
    torch.manual_seed(0)
    model = RingMoE('tiny', modalities=MODS).eval()
    meta = describe(model.state_dict())
    planted = {b: (3 * i + 1) % 4 for i, b in enumerate(meta['blocks'])}
    _force_collab_routing(model, planted)
    xs = {'opt': torch.randn(2, 3, 32, 32), 'sar_l2': torch.randn(2, 1, 32, 32)}

    # usage measured through the model's own routing statistics
    model.record_routing_stats(True)
    with torch.no_grad():
        full = {m: model(x, modality=m) for m, x in xs.items()}
    usage = usage_from_stats(model.routing_stats(), meta)
    for b in meta['blocks']:
        for m in MODS:
            f = usage['layers'][b]['collaborative'][m]
            assert f[planted[b]] == 1.0 and sum(f) == 1.0

    usage_path = tmp_path / 'usage.json'
    save_usage(usage, str(usage_path))
    src, dst = tmp_path / 'full.pth', tmp_path / 'ep.pth'
    torch.save({'meta': meta, 'state_dict': model.state_dict()}, src)
    converter('prune_experts').main([str(src), str(usage_path), str(dst)])
    ckpt = read(dst)
    assert ckpt['meta']['arch']['num_collab_experts'] == 1
    assert ckpt['meta']['kept_collab_experts'] == {
        b: [k] for b, k in planted.items()}
    pruned = rebuild(*load_checkpoint(str(dst)))
    for layer in pruned.rmoe_layers().values():
        assert layer.num_collab == 1
    for m, x in xs.items():
        with torch.no_grad():
            for a, b in zip(full[m], pruned(x, modality=m)):
                torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    # 3 of 4 collaborative experts gone in every block; the router keeps
    # its rows and a mask of the kept expert
    removed = sum(num_params(layer.collab_experts)
                  for layer in model.rmoe_layers().values()) * 3 // 4
    assert num_params(model) - num_params(pruned) == removed
    for b, layer in pruned.rmoe_layers().items():
        assert layer.collab_router.kept_experts.tolist() == [planted[b]]


def test_union_over_modalities_gives_per_block_counts(tmp_path):
    torch.manual_seed(0)
    model = RingMoE('tiny', modalities=MODS).eval()
    sd = model.state_dict()
    meta = describe(sd)
    # opt and sar_l2 agree on even blocks and differ on odd ones
    top = {b: {'opt': [0, 1, 2, 3],
               'sar_l2': [0, 1, 2, 3] if i % 2 == 0 else [2, 0, 1, 3]}
           for i, b in enumerate(meta['blocks'])}
    usage = _planted_usage(meta, top, random.Random(2))
    new_meta, out = prune_by_usage(sd, meta, usage)
    counts = new_meta['arch']['num_collab_experts']
    assert counts == [1, 2] * 4
    pruned = rebuild(new_meta, out)
    odd = pruned.rmoe_layers()['stages.0.blocks.1']
    torch.testing.assert_close(
        odd.collab_experts.w1,
        model.rmoe_layers()['stages.0.blocks.1'].collab_experts.w1[[0, 2]])
    # the full router stays, the mask names the kept experts
    torch.testing.assert_close(
        odd.collab_router.gate.weight,
        model.stages[0].blocks[1].ffn.collab_router.gate.weight)
    assert odd.collab_router.kept_experts.tolist() == [0, 2]
    _, sliced = prune_by_usage(sd, meta, usage, renormalise=True)
    torch.testing.assert_close(
        sliced['stages.0.blocks.1.ffn.collab_router.gate.weight'],
        model.stages[0].blocks[1].ffn.collab_router.gate.weight[[0, 2]])
    # single-modality EP of the same usage keeps one expert everywhere
    only, _ = prune_by_usage(sd, meta, usage, modalities=['sar_l2'])
    assert only['arch']['num_collab_experts'] == 1


def test_prune_refuses_bad_input(tmp_path):
    tool = converter('prune_experts')
    sparse = RingMoE('tiny', modalities=MODS)
    meta = describe(sparse.state_dict())
    src = tmp_path / 'sparse.pth'
    torch.save({'meta': meta, 'state_dict': sparse.state_dict()}, src)
    usage = _planted_usage(
        meta, {b: {m: [0, 1, 2, 3] for m in MODS} for b in meta['blocks']},
        random.Random(0))
    good = tmp_path / 'usage.json'
    save_usage(usage, str(good))

    dense = RingMoE('tiny', modalities=MODS, moe_mode='dense')
    dense_path = tmp_path / 'dense.pth'
    torch.save({'state_dict': dense.state_dict()}, dense_path)
    with pytest.raises(ValueError, match='dense'):
        tool.main([str(dense_path), str(good), str(tmp_path / 'a.pth')])

    other = RingMoE(dict(embed_dims=16, depths=(2, 2, 2, 2),
                         num_heads=(1, 2, 4, 8)), modalities=MODS)
    bad = usage_from_stats(
        {b: {'tokens': {'opt': 4}, 'collaborative': {
            'opt': torch.tensor([1, 1, 1, 1])}, 'specialized': {}}
         for b in meta['blocks']}, describe(other.state_dict()))
    bad_path = tmp_path / 'other.json'
    save_usage(bad, str(bad_path))
    with pytest.raises(ValueError, match='another architecture'):
        tool.main([str(src), str(bad_path), str(tmp_path / 'b.pth')])
    fewer = json.loads(good.read_text())
    fewer['num_collab_experts'][3] = 2
    (tmp_path / 'fewer.json').write_text(json.dumps(fewer))
    with pytest.raises(ValueError, match='another architecture'):
        tool.main([str(src), str(tmp_path / 'fewer.json'),
                   str(tmp_path / 'c.pth')])
    with pytest.raises(ValueError, match="unknown modality.*'ms'"):
        tool.main([str(src), str(good), str(tmp_path / 'd.pth'),
                   '--modalities', 'ms'])
    with pytest.raises(ValueError, match='is the input file'):
        tool.main([str(src), str(good), str(src)])
    with pytest.raises(ValueError, match='is the input file'):
        tool.main([str(src), str(good), str(good)])
    (tmp_path / 'junk.json').write_text('{"layers": {}}')
    with pytest.raises(ValueError, match='not an expert usage file'):
        tool.main([str(src), str(tmp_path / 'junk.json'),
                   str(tmp_path / 'e.pth')])
    assert not list(tmp_path.glob('[a-e].pth'))
