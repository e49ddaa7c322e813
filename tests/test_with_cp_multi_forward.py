"""Activation checkpointing with several forwards before one backward
(issue 13 item 5): each recomputation routes with its own forward's modality
layout, so ``with_cp=True`` gives the gradients of ``with_cp=False``."""
import contextlib
import copy

import pytest
import torch

import mmringmoe.models.backbones.ringmoe as ringmoe_module
from mmringmoe.models import RingMoE

MODS = ('opt', 'ms')


def _model():
    torch.manual_seed(0)
    # drop path and noisy gating on: the recomputation must also replay them
    return RingMoE('tiny', modalities=MODS, drop_path_rate=0.2).train()


def _step(model, forwards):
    """Forward each ``(modality, batch)``, then one backward of the sum."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    total = 0.
    for modality, batch in forwards:
        g = torch.Generator().manual_seed(hash((modality, batch)) % 2**31)
        x = torch.randn(batch, model.in_channels[modality], 32, 32,
                        generator=g)
        feats = model(x, modality=modality)
        total = total + sum((f**2).mean() for f in feats) + model.aux_loss()
    total.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()
            if p.grad is not None}


def _compare(ref, got):
    assert set(ref) == set(got)
    bad = [n for n in ref
           if not torch.allclose(ref[n], got[n], rtol=1e-4, atol=1e-7)]
    return bad


@pytest.mark.parametrize('forwards', [
    [('opt', 2), ('ms', 3)],  # different batch layouts
    [('opt', 2), ('ms', 2)],  # equal shapes, different modality layouts
], ids=['opt2-ms3', 'opt2-ms2'])
def test_with_cp_gradients_equal_without_cp(forwards):
    plain = _model()
    cp_model = copy.deepcopy(plain)
    cp_model.with_cp = True
    ref = _step(plain, forwards)
    got = _step(cp_model, forwards)
    # both modalities' specialized experts and patch embeddings got gradients
    for m in MODS:
        assert any(n.startswith(f'patch_embed.{m}.') for n in ref)
        assert any(f'.specialized_experts.{m}.' in n for n in ref)
    assert len(ref) > 200
    assert _compare(ref, got) == []


@pytest.mark.parametrize('forwards', [
    [('opt', 2), ('ms', 3)], [('opt', 2), ('ms', 2)]], ids=['opt2-ms3', 'opt2-ms2'])
def test_without_layout_restore_it_goes_wrong(monkeypatch, forwards):
    """The check above can fail: with the recomputation reading the shared
    context (the old behaviour) torch either notices the different
    recomputation (CheckpointError) or most gradients differ."""
    def last_layout():
        return contextlib.nullcontext(), contextlib.nullcontext()

    monkeypatch.setattr(ringmoe_module, 'layout_context_fn', last_layout)
    plain = _model()
    cp_model = copy.deepcopy(plain)
    cp_model.with_cp = True
    ref = _step(plain, forwards)
    try:
        got = _step(cp_model, forwards)
    except torch.utils.checkpoint.CheckpointError:
        return
    assert len(_compare(ref, got)) > len(ref) // 2


def test_routing_context_of_a_deep_copy_is_restored_too():
    """A deep-copied model (EMA, the tests above) has its own context, which
    the checkpoint context function must know as well."""
    model = _model()
    other = copy.deepcopy(model)
    assert other.routing_context is not model.routing_context
    fwd, recompute = ringmoe_module.layout_context_fn()
    other.routing_context.segments = [('ms', 0, 1)]
    model.routing_context.segments = [('ms', 0, 1)]
    with recompute:
        assert other.routing_context.segments == ()
        assert model.routing_context.segments == ()
    assert other.routing_context.segments == [('ms', 0, 1)]
