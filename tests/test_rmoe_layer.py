"""RMoE layer against a naive per-token reference written from Eq. 1-3, 12-14."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmringmoe.models.layers import RMoE, RoutingContext, balance_loss

C, H = 8, 16


def _layer(top_k=1, capacity_factor=None, modalities=('opt', 'ms'), seed=0, **kw):
    torch.manual_seed(seed)
    ctx = RoutingContext()
    layer = RMoE(C, H, modalities, ctx, num_specialized=4, num_collab=4, top_k=top_k,
                 capacity_factor=capacity_factor, **kw)
    layer.eval()  # noise off
    return layer, ctx


def _expert(x, w1, b1, w2, b2):
    return F.gelu(x @ w1 + b1) @ w2 + b2


def _naive_router_group(xs, gate_w, experts, top_k, capacity_factor):
    """Loop over tokens: TopK(softmax(x W_g)) weighted expert outputs, with capacity."""
    n_tok = xs.shape[0]
    n_exp = gate_w.shape[0]
    choices = []  # (rank, token, expert, gate)
    for t in range(n_tok):
        p = torch.softmax(xs[t] @ gate_w.t(), dim=-1)
        vals, ids = torch.topk(p, top_k)
        for r in range(top_k):
            choices.append((r, t, int(ids[r]), vals[r]))
    cap = None if capacity_factor is None else math.ceil(capacity_factor * n_tok * top_k / n_exp)
    load = [0] * n_exp
    out = [torch.zeros(C) for _ in range(n_tok)]
    dropped = 0
    for r, t, e, g in sorted(choices, key=lambda c: (c[0], c[1])):
        if cap is not None and load[e] >= cap:
            dropped += 1
            continue
        load[e] += 1
        out[t] = out[t] + g * _expert(xs[t], experts.w1[e], experts.b1[e],
                                       experts.w2[e], experts.b2[e])
    return torch.stack(out), dropped


def _naive(layer, x, segments, top_k, capacity_factor):
    flat = x.reshape(-1, C)
    per = flat.shape[0] // x.shape[0]
    sh = layer.shared_expert.layers
    out = F.linear(F.gelu(F.linear(flat, sh[0][0].weight, sh[0][0].bias)), sh[1].weight, sh[1].bias)
    y, dropped = _naive_router_group(flat, layer.collab_router.gate.weight, layer.collab_experts,
                                     top_k, capacity_factor)
    out = out + y
    for m, s, e in segments:
        xs = flat[s * per:e * per]
        y, d = _naive_router_group(xs, layer.specialized_routers[m].gate.weight,
                                   layer.specialized_experts[m], top_k, capacity_factor)
        out = torch.cat([out[:s * per], out[s * per:e * per] + y, out[e * per:]])
        dropped += d
    return out.view_as(x), dropped


@pytest.mark.parametrize('top_k', [1, 2])
@pytest.mark.parametrize('capacity_factor', [None, 0.5, 1.0])
def test_rmoe_matches_naive_reference_and_gradients(top_k, capacity_factor):
    layer, ctx = _layer(top_k, capacity_factor)
    x = torch.randn(3, 10, C, requires_grad=True)
    segments = [('opt', 0, 2), ('ms', 2, 3)]
    ctx.segments = segments
    y = layer(x)
    x_ref = x.detach().clone().requires_grad_(True)
    y_ref, dropped = _naive(layer, x_ref, segments, top_k, capacity_factor)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    assert layer.last_dropped == dropped
    if capacity_factor == 0.5:
        assert dropped > 0  # the capacity case really drops something

    probe = torch.randn_like(y)
    params = [layer.collab_experts.w1, layer.specialized_experts['ms'].w2,
              layer.shared_expert.layers[0][0].weight, layer.collab_router.gate.weight]
    g = torch.autograd.grad((y * probe).sum(), [x] + params)
    g_ref = torch.autograd.grad((y_ref * probe).sum(), [x_ref] + params)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_balance_loss_hand_case():
    probs = torch.tensor([[.7, .3], [.6, .4], [.2, .8], [.9, .1]])
    idx = torch.tensor([[0], [0], [1], [0]])
    # f = (3/4, 1/4), P = (0.6, 0.4): 2 * (0.75 * 0.6 + 0.25 * 0.4) = 1.1
    assert balance_loss(probs, idx).item() == pytest.approx(1.1)
    # perfectly balanced uniform router gives the minimum 1.0
    uniform = torch.full((4, 2), .5)
    assert balance_loss(uniform, torch.tensor([[0], [1], [0], [1]])).item() == pytest.approx(1.0)


def test_layer_aux_loss_sums_collab_and_each_modality_router():
    layer, ctx = _layer()
    x = torch.randn(2, 6, C)
    ctx.segments = [('opt', 0, 1), ('ms', 1, 2)]
    layer(x)
    flat = x.reshape(-1, C)

    def router_loss(w, xs):
        p = torch.softmax(xs @ w.t(), -1)
        return balance_loss(p, p.argmax(-1, keepdim=True))

    expected = router_loss(layer.collab_router.gate.weight, flat) \
        + router_loss(layer.specialized_routers['opt'].gate.weight, flat[:6]) \
        + router_loss(layer.specialized_routers['ms'].gate.weight, flat[6:])
    torch.testing.assert_close(layer.last_aux_loss, expected, atol=1e-6, rtol=1e-6)


def test_noise_only_while_training_and_router_fp32_under_autocast():
    layer, ctx = _layer()
    x = torch.randn(2, 6, C)
    ctx.segments = [('opt', 0, 2)]
    torch.testing.assert_close(layer(x), layer(x))  # eval: deterministic
    layer.train()
    torch.manual_seed(1)
    a = layer(x)
    torch.manual_seed(2)
    b = layer(x)
    assert not torch.allclose(a, b)  # training: noisy gating changes routing
    with torch.autocast('cpu', dtype=torch.bfloat16):
        probs, gates, _ = layer.collab_router(x.reshape(-1, C).bfloat16())
    assert probs.dtype == torch.float32 and gates.dtype == torch.float32


def test_routing_stats_count_tokens_per_expert_and_modality():
    layer, ctx = _layer()
    layer.record_stats = True
    x = torch.randn(3, 5, C)
    ctx.segments = [('opt', 0, 2), ('ms', 2, 3)]
    layer(x)
    flat = x.reshape(-1, C)
    ids = (flat @ layer.collab_router.gate.weight.t()).argmax(-1)
    assert layer.stats['collaborative']['opt'].tolist() == torch.bincount(ids[:10], minlength=4).tolist()
    assert layer.stats['collaborative']['ms'].tolist() == torch.bincount(ids[10:], minlength=4).tolist()
    assert layer.stats['tokens'] == {'opt': 10, 'ms': 5}
    assert int(layer.stats['specialized']['ms'].sum()) == 5


def test_expert_type_subsets_and_bad_types():
    layer, ctx = _layer(expert_types=('shared',))
    assert not hasattr(layer, 'collab_experts') and not hasattr(layer, 'specialized_experts')
    x = torch.randn(1, 4, C)
    sh = layer.shared_expert.layers
    ref = F.linear(F.gelu(F.linear(x, sh[0][0].weight, sh[0][0].bias)), sh[1].weight, sh[1].bias)
    torch.testing.assert_close(layer(x), ref)
    with pytest.raises(ValueError, match='expert_types'):
        _layer(expert_types=('routed',))
