"""RMoE dispatch (issue 15): one ``torch.compile`` graph break per layer,
expert offsets on the device, and the grouped-GEMM path equal to the loop.

The reference for the grouped path is the per-expert loop (itself checked
against the naive per-token reference in ``test_rmoe_layer.py``)."""
import pytest
import torch

from mmringmoe.models.layers import GroupedExperts, RMoE, RoutingContext
from mmringmoe.models.layers.rmoe import DispatchPlan, _GatedExpertLoop

C, H = 8, 16


def _layer(top_k=1, capacity_factor=None, **kw):
    torch.manual_seed(0)
    ctx = RoutingContext()
    ctx.segments = [('opt', 0, 2), ('ms', 2, 3)]
    layer = RMoE(C, H, ('opt', 'ms'), ctx, num_specialized=4, num_collab=4,
                 top_k=top_k, capacity_factor=capacity_factor, **kw).eval()
    return layer


@pytest.mark.parametrize('capacity_factor', [None, 0.5])
@pytest.mark.parametrize('top_k', [1, 2])
def test_explain_finds_at_most_one_graph_break(top_k, capacity_factor):
    torch._dynamo.reset()
    layer = _layer(top_k, capacity_factor)
    x = torch.randn(3, 10, C)
    explanation = torch._dynamo.explain(layer)(x)
    reasons = [str(b.reason) for b in explanation.break_reasons]
    assert explanation.graph_break_count <= 1, reasons
    assert explanation.graph_count <= 2, reasons
    # and the compiled layer computes the eager values
    torch._dynamo.reset()
    compiled = torch.compile(layer, backend='eager')
    torch.testing.assert_close(compiled(x), layer(x))


def test_plan_offsets_hand_case():
    # tokens 0..4, top-2; choice-major pairs: first choices 0..4, then seconds
    idx = torch.tensor([[2, 0], [0, 1], [2, 1], [1, 0], [2, 3]])
    plan = DispatchPlan(idx, 4, capacity=None)
    assert plan.kept.tolist() == [3, 3, 3, 1]
    assert plan.ends.tolist() == [3, 6, 9, 10]
    # expert 0: token 1 (1st choice), tokens 0, 3 (2nd choices) in that order
    assert plan.order[:3].tolist() == [1, 5, 8]
    capped = DispatchPlan(idx, 4, capacity=2)
    assert capped.kept.tolist() == [2, 2, 2, 1]
    # expert 2 keeps tokens 0 and 2 (first choices) and drops token 4
    assert capped.order[4:6].tolist() == [0, 2]
    # dropped: pair 8 (token 3 -> e0), 7 (token 2 -> e1), 4 (token 4 -> e2)
    assert sorted(capped.order[7:].tolist()) == [4, 7, 8]


@pytest.mark.parametrize('top_k', [1, 2])
def test_grouped_gemm_path_equals_the_loop(top_k, monkeypatch):
    if not hasattr(torch, '_grouped_mm'):
        pytest.skip('torch._grouped_mm not in this torch')
    layer = _layer(top_k)
    x = torch.randn(3, 10, C, requires_grad=True)
    probe = torch.randn(3, 10, C)
    params = [x, layer.collab_experts.w1, layer.collab_experts.b2,
              layer.specialized_experts['ms'].w2, layer.collab_router.gate.weight]
    results = []
    for grouped in (False, True):
        monkeypatch.setattr(GroupedExperts, 'use_grouped_mm', grouped)
        y = layer(x)
        results.append((y, torch.autograd.grad((y * probe).sum(), params)))
    (y0, g0), (y1, g1) = results
    torch.testing.assert_close(y1, y0, atol=1e-5, rtol=1e-5)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_auto_uses_grouped_gemm_only_on_cuda_bf16():
    experts = GroupedExperts(2, C, H)
    assert not experts.grouped_wanted(torch.zeros(1, C))
    assert not experts.grouped_wanted(torch.zeros(1, C, dtype=torch.bfloat16))


def test_absent_modality_still_reaches_its_experts():
    """FSDP mode: a modality without tokens runs its router and experts on
    zero rows, and their weights get (zero) gradients."""
    layer = _layer()
    layer.dispatch_absent_modalities = True
    layer.context.segments = [('opt', 0, 3)]
    x = torch.randn(3, 10, C)
    layer(x).sum().backward()
    ms = layer.specialized_experts['ms']
    assert all(p.grad is not None and not p.grad.any() for p in ms.parameters())
    assert layer.specialized_routers['ms'].gate.weight.grad is not None
    assert layer.specialized_experts['opt'].w1.grad.any()


def _loop_inputs(counts, tokens):
    """float64 inputs of :class:`_GatedExpertLoop` for 4 experts (C=3, H=5):
    pair token rows, token rows, gates and (w1, b1, w2, b2)."""
    torch.manual_seed(0)
    n = sum(counts)
    token = torch.randint(tokens, (n, ))
    x = torch.randn(tokens, 3, dtype=torch.float64, requires_grad=True)
    gate = torch.rand(n, dtype=torch.float64, requires_grad=True)
    weights = [torch.randn(*s, dtype=torch.float64, requires_grad=True)
               for s in ((4, 3, 5), (4, 5), (4, 5, 3), (4, 3))]
    return token, x, gate, weights


@pytest.mark.parametrize('counts', [(3, 0, 5, 2), (4, 4, 4, 4), (0, 0, 0, 0)])
@pytest.mark.parametrize('approximate', ['none', 'tanh'])
def test_fused_expert_loop_gradcheck(counts, approximate):
    """The one-node expert loop (hand-written backward, gradients written
    into the stacked (E, ...) tensors, ``baddbmm`` when the counts are equal)
    against finite differences, in float64; zero-row experts get zero
    gradients."""
    token, x, gate, weights = _loop_inputs(counts, tokens=7)

    def fn(x, gate, w1, b1, w2, b2):
        return _GatedExpertLoop.apply(x, token, gate, w1, b1, w2, b2, counts,
                                      approximate, False)

    assert torch.autograd.gradcheck(fn, (x, gate, *weights))
    fn(x, gate, *weights).sum().backward()
    for e, c in enumerate(counts):
        if c == 0:
            assert all(not w.grad[e].any() for w in weights)


@pytest.mark.parametrize('top_k', [1, 2])
@pytest.mark.parametrize('capacity_factor', [None, 0.5])
@pytest.mark.parametrize('act', ['none', 'tanh'])
def test_fused_expert_loop_equals_autograd_loop(top_k, capacity_factor, act, monkeypatch):
    """Layer outputs and gradients with the fused loop equal the per-expert
    autograd loop (the permutation shortcut of top-1 included)."""
    layer = _layer(top_k, capacity_factor)
    for experts in [layer.collab_experts, *layer.specialized_experts.values()]:
        experts.act = torch.nn.GELU(approximate=act)
    x = torch.randn(3, 10, C, requires_grad=True)
    probe = torch.randn(3, 10, C)
    params = [x, *layer.collab_experts.parameters(),
              *layer.specialized_experts['opt'].parameters(),
              layer.collab_router.gate.weight, layer.specialized_routers['ms'].gate.weight]
    results = []
    for fused in (True, False):
        monkeypatch.setattr(GroupedExperts, 'fused_wanted', lambda self, x, f=fused: f)
        y = layer(x)
        results.append((y, torch.autograd.grad((y * probe).sum(), params)))
    (y0, g0), (y1, g1) = results
    torch.testing.assert_close(y0, y1, atol=1e-6, rtol=1e-5)
    for a, b in zip(g0, g1):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_fused_loop_used_in_eager_only_for_gelu_without_autocast():
    experts = GroupedExperts(2, C, H)
    x = torch.zeros(1, C)
    assert experts.fused_wanted(x)
    assert not experts.fused_wanted(x.double())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert not experts.fused_wanted(x)
    experts.act = torch.nn.ReLU()
    assert not experts.fused_wanted(x)


@pytest.mark.parametrize('block_rows', [1, 2, 3, 64])
def test_fused_expert_loop_in_row_blocks_gradcheck(block_rows):
    """Expert slices cut into row blocks (the weight gradients of an expert
    accumulated over its blocks, the GELU buffers reused across blocks)
    against finite differences, and equal to the loop without blocks."""
    counts = (5, 0, 3, 1)
    n = sum(counts)
    token, x, gate, weights = _loop_inputs(counts, tokens=6)

    def fn(x, gate, *w, rows=block_rows):
        return _GatedExpertLoop.apply(x, token, gate, *w, counts, 'none', False, rows)

    assert torch.autograd.gradcheck(fn, (x, gate, *weights))
    probe = torch.randn(n, 3, dtype=torch.float64)
    results = []
    for rows in (block_rows, 10**6):
        y = fn(x, gate, *weights, rows=rows)
        results.append((y, torch.autograd.grad((y * probe).sum(), (x, gate, *weights))))
    torch.testing.assert_close(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b)
    assert not results[0][1][2][1].any()  # expert 1 has no rows: zero gradient


def test_row_blocks_hand_case():
    from mmringmoe.models.layers.rmoe import _bounds
    assert _bounds((5, 0, 3), 2) == [(0, 0, 2), (0, 2, 4), (0, 4, 5), (2, 5, 7), (2, 7, 8)]
    assert _bounds((5, 0, 3)) == [(0, 0, 5), (2, 5, 8)]
    assert _bounds((0, 0)) == []


@pytest.mark.parametrize('approximate', ['none', 'tanh'])
@pytest.mark.parametrize('rows', [7, 3000])
def test_shared_expert_equals_mmcv_ffn(approximate, rows, monkeypatch):
    """The shared expert (one-expert fused loop, in row blocks, GELU
    recomputed in backward) gives mmcv FFN's outputs and gradients for the
    same parameters; row blocks of 1024 cut the 2 x 3000 rows into six."""
    from mmcv.cnn.bricks.transformer import FFN

    from mmringmoe.models.layers import rmoe
    from mmringmoe.models.layers.rmoe import SharedExpertFFN
    monkeypatch.setattr(rmoe, 'BLOCK_BYTES', 1)
    torch.manual_seed(0)
    cfg = dict(embed_dims=6, feedforward_channels=10, num_fcs=2, ffn_drop=0.,
               act_cfg=dict(type='GELU', approximate=approximate), add_identity=False)
    ref, ours = FFN(**cfg).double(), SharedExpertFFN(**cfg).double()
    ours.load_state_dict(ref.state_dict())
    assert list(ours.state_dict()) == list(ref.state_dict())
    x = torch.randn(2, rows, 6, dtype=torch.float64, requires_grad=True)
    assert ours.fused_wanted(x)
    probe = torch.randn(2, rows, 6, dtype=torch.float64)
    results = []
    for m in (ref, ours):
        y = m(x)
        results.append((y, torch.autograd.grad((y * probe).sum(), [x, *m.parameters()])))
    torch.testing.assert_close(results[1][0], results[0][0])
    for a, b in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(a, b)
        assert a.shape == b.shape and a.is_contiguous()


def test_shared_expert_falls_back_to_mmcv_where_the_maths_differs():
    """Dropout in training, an identity connection, layer scale, another
    activation or autocast: mmcv's own forward runs (same module class)."""
    from mmringmoe.models.layers.rmoe import SharedExpertFFN
    x = torch.randn(1, 4, 6)
    base = dict(embed_dims=6, feedforward_channels=10, num_fcs=2, ffn_drop=0.,
                act_cfg=dict(type='GELU'), add_identity=False)
    assert SharedExpertFFN(**base).fused_wanted(x)
    dropped = SharedExpertFFN(**{**base, 'ffn_drop': 0.1})
    assert not dropped.fused_wanted(x)
    assert dropped.eval().fused_wanted(x)  # no dropout in effect
    assert not SharedExpertFFN(**{**base, 'add_identity': True}).fused_wanted(x)
    assert not SharedExpertFFN(**{**base, 'layer_scale_init_value': 0.1}).fused_wanted(x)
    assert not SharedExpertFFN(**{**base, 'act_cfg': dict(type='ReLU')}).fused_wanted(x)
    assert not SharedExpertFFN(**{**base, 'num_fcs': 3}).fused_wanted(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert not SharedExpertFFN(**base).fused_wanted(x)
    ffn = SharedExpertFFN(**{**base, 'add_identity': True})
    torch.testing.assert_close(ffn(x), x + ffn.layers(x))
