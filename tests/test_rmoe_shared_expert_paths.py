"""The shared expert (:class:`SharedExpertFFN`) in the settings a user trains
in: activation checkpointing, frozen parameters, autocast bf16, a bf16 or
float64 model, ``torch.compile``. Its fused path (one-expert
``_GatedExpertLoop`` on transposed views of the ``nn.Linear`` weights) must
give the gradients of mmcv's ``FFN`` forward with the same weights: each
model-level check compares against the same model with
``SharedExpertFFN.fused_wanted`` patched to ``False`` (mmcv's
Linear/GELU/Linear), layer-level checks against mmcv's ``FFN`` itself."""
import copy

import pytest
import torch
from mmcv.cnn.bricks.transformer import FFN

from mmringmoe.models import RingMoE
from mmringmoe.models.layers.rmoe import SharedExpertFFN

MODS = ('opt', 'ms')
CFG = dict(embed_dims=6, feedforward_channels=10, num_fcs=2, ffn_drop=0.,
           act_cfg=dict(type='GELU'), add_identity=False)


def _record_fused(monkeypatch):
    """Patch ``fused_wanted`` to note every decision it makes."""
    seen = []
    original = SharedExpertFFN.fused_wanted

    def recording(self, x):
        wanted = original(self, x)
        seen.append(wanted)
        return wanted

    monkeypatch.setattr(SharedExpertFFN, 'fused_wanted', recording)
    return seen


def _mmcv_only(monkeypatch):
    monkeypatch.setattr(SharedExpertFFN, 'fused_wanted', lambda self, x: False)


def _model(**kw):
    torch.manual_seed(0)
    # drop path and noisy gating on: both runs must draw the same numbers
    return RingMoE('tiny', modalities=MODS, drop_path_rate=0.2, **kw).train()


def _grads(model, dtype=None, autocast=False):
    """One step on an opt and an ms batch; ``{name: grad}``."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(2)
    x = {'opt': torch.randn(2, 3, 32, 32, generator=g),
         'ms': torch.randn(1, 4, 32, 32, generator=g)}
    if dtype is not None:
        x = {k: v.to(dtype) for k, v in x.items()}
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        out = model(x)
        loss = sum(f.float().pow(2).mean() for v in out.values() for f in v) + \
            model.aux_loss()
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()
            if p.grad is not None}


def _differ(ref, got, rtol=1e-4, atol=1e-6):
    assert set(ref) == set(got)
    return [n for n in ref if not torch.allclose(ref[n].float(), got[n].float(),
                                                 rtol=rtol, atol=atol)]


def _shared_weights(model):
    return [n for n, _ in model.named_parameters() if '.shared_expert.' in n]


@pytest.mark.parametrize('with_cp', [False, True], ids=['plain', 'with_cp'])
def test_fused_shared_expert_gradients_equal_mmcv_path(with_cp, monkeypatch):
    """Training mode (drop path, noisy gating), float32, eager: the fused
    path runs for every RMoE layer (and again in the non-reentrant
    recomputation with ``with_cp``) and every parameter gradient equals
    the mmcv path's without checkpointing."""
    plain = _model()
    fused = copy.deepcopy(plain)
    fused.with_cp = with_cp
    seen = _record_fused(monkeypatch)
    got = _grads(fused)
    layers = len(fused.rmoe_layers())
    # two forwards of every layer with checkpointing: forward + recomputation
    assert seen == [True] * layers * (2 if with_cp else 1)
    _mmcv_only(monkeypatch)
    ref = _grads(plain)
    shared = _shared_weights(plain)
    assert len(shared) == 4 * layers and set(shared) <= set(ref)
    assert _differ(ref, got) == []


def test_frozen_stages_and_frozen_shared_expert(monkeypatch):
    """``frozen_stages=1`` plus user-frozen shared experts: ``fc2`` of
    stage 2's first block, all of stage 3's first block; with
    checkpointing. Frozen weights get no gradient, the others (upstream of
    the frozen ones too, so the input gradient through the fused node is
    right) equal the mmcv path's."""
    plain = _model(frozen_stages=1)
    frozen = plain.stages[2].blocks[0].ffn.shared_expert.layers[1]
    frozen.weight.requires_grad_(False)
    frozen.bias.requires_grad_(False)
    plain.stages[3].blocks[0].ffn.shared_expert.requires_grad_(False)
    fused = copy.deepcopy(plain)
    fused.with_cp = True
    seen = _record_fused(monkeypatch)
    got = _grads(fused)
    assert seen and all(seen)
    _mmcv_only(monkeypatch)
    ref = _grads(plain)
    assert _differ(ref, got) == []
    names = {n for n, p in plain.named_parameters() if not p.requires_grad}
    assert 'stages.2.blocks.0.ffn.shared_expert.layers.1.weight' in names
    assert 'stages.0.blocks.0.ffn.shared_expert.layers.0.0.weight' in names
    assert 'stages.3.blocks.0.ffn.shared_expert.layers.0.0.bias' in names
    assert not names & set(got)
    # the frozen fc2's own layer still trains fc1, stage 2's blocks before it
    assert 'stages.2.blocks.0.ffn.shared_expert.layers.0.0.weight' in got
    assert 'stages.2.blocks.0.attn.w_msa.qkv.weight' in got
    assert 'stages.3.blocks.0.attn.w_msa.qkv.weight' in got


@pytest.mark.parametrize('frozen', [('fc1', 'b1', 'fc2', 'b2'), ('fc1', ),
                                    ('b2', ), ('fc2', 'b1')])
def test_frozen_parameters_of_the_layer(frozen):
    """Any subset of the four parameters frozen: no gradient for them, the
    others and the input gradient equal mmcv FFN's."""
    torch.manual_seed(0)
    ref, ours = FFN(**CFG).double(), SharedExpertFFN(**CFG).double()
    ours.load_state_dict(ref.state_dict())
    for m in (ref, ours):
        params = dict(fc1=m.layers[0][0].weight, b1=m.layers[0][0].bias,
                      fc2=m.layers[1].weight, b2=m.layers[1].bias)
        for k in frozen:
            params[k].requires_grad_(False)
    x = torch.randn(3, 5, 6, dtype=torch.float64, requires_grad=True)
    assert ours.fused_wanted(x)
    probe = torch.randn(3, 5, 6, dtype=torch.float64)
    grads = []
    for m in (ref, ours):
        for p in m.parameters():
            p.grad = None
        x.grad = None
        (m(x) * probe).sum().backward()
        grads.append([x.grad.clone()] + [p.grad for p in m.parameters()])
    for a, b in zip(grads[1], grads[0]):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)
    assert sum(g is None for g in grads[1]) == len(frozen)


def test_fused_node_skips_weight_gradients_of_a_frozen_expert(monkeypatch):
    """All four weights frozen: the node computes only the input gradient
    (no weight-gradient buffers are filled)."""
    from mmringmoe.models.layers import rmoe
    torch.manual_seed(0)
    ours = SharedExpertFFN(**CFG).double().requires_grad_(False)
    made = []
    real = torch.empty_like
    monkeypatch.setattr(rmoe.torch, 'empty_like',
                        lambda t, *a, **k: made.append(tuple(t.shape)) or real(t, *a, **k))
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    ours(x).sum().backward()
    assert made == [(4, 6)]  # the input gradient only
    assert x.grad is not None


def test_autocast_bf16_takes_mmcv_path_and_trains(monkeypatch):
    """Under CPU autocast bf16 the shared expert runs mmcv's forward (bf16
    matmuls, like mmcv FFN), the routed experts their autograd loop; forward
    and backward of the model work, every parameter of the float32 run gets
    a finite gradient, the same as with the mmcv path forced. (The float32
    and bf16 gradients of this tiny random model are NOT close: bf16 flips
    some top-1 routes, up to all tokens of stage 3's single-token maps; a
    lone RMoE layer agrees to bf16 precision.)"""
    model = _model()
    ref32 = _grads(copy.deepcopy(model))
    forced = copy.deepcopy(model)
    seen = _record_fused(monkeypatch)
    got = _grads(model, autocast=True)
    assert seen == [False] * len(model.rmoe_layers())
    assert set(got) == set(ref32)
    assert all(torch.isfinite(g).all() for g in got.values())
    _mmcv_only(monkeypatch)
    ref = _grads(forced, autocast=True)
    assert _differ(ref, got, rtol=0, atol=0) == []


def test_autocast_bf16_layer_is_mmcv_ffn():
    """Float32 input and weights under autocast (the dtype check alone
    would allow the fused node): mmcv FFN's bf16 output exactly."""
    torch.manual_seed(0)
    mm, ours = FFN(**CFG), SharedExpertFFN(**CFG)
    ours.load_state_dict(mm.state_dict())
    x = torch.randn(2, 5, 6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y, y_ref = ours(x), mm(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)


def test_bf16_model_without_autocast_uses_fused_path():
    """A model cast to bf16 (no autocast): input and weights are bf16, the
    fused path runs in bf16 and matches mmcv FFN in bf16 (bf16 tolerance,
    float64 reference for scale)."""
    torch.manual_seed(0)
    ref, ours = FFN(**CFG).bfloat16(), SharedExpertFFN(**CFG).bfloat16()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 50, 6).bfloat16().requires_grad_()
    assert ours.fused_wanted(x)
    probe = torch.randn(2, 50, 6).bfloat16()
    out = []
    for m in (ref, ours):
        y = m(x)
        out.append((y, torch.autograd.grad((y * probe).sum(), [x, *m.parameters()])))
    assert out[1][0].dtype == torch.bfloat16
    torch.testing.assert_close(out[1][0], out[0][0], rtol=2e-2, atol=2e-2)
    for a, b in zip(out[1][1], out[0][1]):
        assert a.dtype == b.dtype == torch.bfloat16
        torch.testing.assert_close(a.float(), b.float(), rtol=3e-2,
                                   atol=3e-2 * b.float().abs().max().item())


def test_float64_input_with_float32_weights_fails_like_mmcv():
    """The fused path needs ``x`` in the weights' dtype; otherwise mmcv's
    forward runs and raises torch's own dtype error, exactly as mmcv FFN."""
    torch.manual_seed(0)
    ref, ours = FFN(**CFG), SharedExpertFFN(**CFG)
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    assert not ours.fused_wanted(x)
    with pytest.raises(RuntimeError) as mm_error:
        ref(x)
    with pytest.raises(RuntimeError) as our_error:
        ours(x)
    assert str(our_error.value) == str(mm_error.value)
    # a float64 model with float64 input runs fused and equals mmcv
    ref, ours = ref.double(), ours.double()
    ours.load_state_dict(ref.state_dict())
    assert ours.fused_wanted(x)
    torch.testing.assert_close(ours(x), ref(x))


def _record_apply(monkeypatch):
    """Note, for every ``_GatedExpertLoop`` call, whether it is the shared
    expert's (no token index)."""
    from mmringmoe.models.layers import rmoe
    calls = []
    real = rmoe._GatedExpertLoop.apply
    monkeypatch.setattr(rmoe._GatedExpertLoop, 'apply', staticmethod(
        lambda *a: calls.append(a[1] is None) or real(*a)))
    return calls


def test_compiled_shared_expert_equals_eager(monkeypatch):
    """``torch.compile`` (eager backend) of the shared expert traces mmcv's
    Linear/GELU/Linear, not the fused node, and gives the eager fused
    path's output and gradients."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    ffn = SharedExpertFFN(**CFG)
    x = torch.randn(2, 7, 6, requires_grad=True)
    probe = torch.randn(2, 7, 6)
    calls = _record_apply(monkeypatch)
    results = []
    for m in (ffn, torch.compile(ffn, backend='eager')):
        y = m(x)
        results.append((y, torch.autograd.grad((y * probe).sum(), [x, *ffn.parameters()])))
    torch._dynamo.reset()
    assert calls == [True]  # the eager call only
    torch.testing.assert_close(results[1][0], results[0][0])
    for a, b in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_compiled_ringmoe_equals_eager(monkeypatch):
    """``torch.compile`` of a whole tiny RingMoE (eval, eager backend; about
    3 min on 2 busy cores: 20 graphs, a recompilation per stage):
    the compiled graphs trace mmcv's path of the shared expert (the fused
    node is never called while compiling) and give the eager outputs and
    gradients."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = RingMoE(dict(base='tiny', depths=(1, 1, 1, 1)), modalities=('opt', ),
                    drop_path_rate=0.).eval()
    x = torch.randn(2, 3, 32, 32)

    def step(m):
        model.zero_grad(set_to_none=True)
        feats = m(x)
        sum(f.pow(2).mean() for f in feats).backward()
        return feats, {n: p.grad.clone() for n, p in model.named_parameters()
                       if p.grad is not None}

    feats_ref, ref = step(model)
    shared_calls = _record_apply(monkeypatch)
    compiled = torch.compile(model, backend='eager')
    feats, got = step(compiled)
    torch._dynamo.reset()
    assert not any(shared_calls)  # routed experts may run eager, not the shared one
    for a, b in zip(feats, feats_ref):
        torch.testing.assert_close(a, b)
    assert _shared_weights(model) and set(_shared_weights(model)) <= set(ref)
    assert _differ(ref, got) == []
