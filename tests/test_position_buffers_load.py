"""Loading a RingMoE checkpoint lists no missing keys and passes a strict
load: Swin V2's position buffers (``relative_position_index``,
``relative_coords_table``) come from the model being loaded, as in
mmpretrain, which deletes the checkpoint's copies and so reports them all as
missing (and fails every ``strict=True`` load)."""
import pytest
import torch
import torch.nn as nn
from mmengine.runner.checkpoint import load_state_dict

from helpers import tiny_backbone
from mmringmoe.models import RingMoE

POSITION = ('relative_position_index', 'relative_coords_table')


def _backbone(**kw):
    cfg = tiny_backbone(**kw)
    cfg.pop('type')
    return RingMoE(**cfg)


def _position_buffers(model):
    return {k: v for k, v in model.named_buffers() if k.endswith(POSITION)}


@pytest.mark.parametrize('moe_mode', ['sparse', 'dense'])
def test_own_checkpoint_loads_strictly(moe_mode):
    torch.manual_seed(0)
    src = _backbone(moe_mode=moe_mode)
    dst = _backbone(moe_mode=moe_mode)
    state = src.state_dict()
    blocks = sum(len(stage.blocks) for stage in src.stages)
    assert sum(k.endswith(POSITION) for k in state) == 2 * blocks  # in files
    load_state_dict(dst, state, strict=True)  # mmengine's: raises on mismatch
    for k, v in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[k], v, rtol=0, atol=0)


def test_another_window_size_keeps_the_models_own_buffers():
    """Fine-tuning at another window size (Swin V2's pretrained_window_sizes):
    the weights load, the position buffers are those of the target window,
    as a freshly built model of that window has them."""
    torch.manual_seed(0)
    src = _backbone(window_size=8)
    dst = _backbone(window_size=4, pretrained_window_sizes=(8, 8, 8, 8))
    fresh = _position_buffers(
        _backbone(window_size=4, pretrained_window_sizes=(8, 8, 8, 8)))
    assert any(v.shape != src.state_dict()[k].shape for k, v in fresh.items())
    load_state_dict(dst, src.state_dict(), strict=True)
    for k, v in _position_buffers(dst).items():
        torch.testing.assert_close(v, fresh[k], rtol=0, atol=0)
    weights = {k: v for k, v in src.state_dict().items()
               if not k.endswith(POSITION)}
    for k, v in weights.items():
        torch.testing.assert_close(dst.state_dict()[k], v, rtol=0, atol=0)


def test_checkpoint_without_position_buffers_loads_strictly():
    """E.g. a ``--to-mmpretrain`` export, which leaves them out."""
    src, dst = _backbone(), _backbone()
    state = {k: v for k, v in src.state_dict().items()
             if not k.endswith(POSITION)}
    load_state_dict(dst, state, strict=True)


def test_only_the_backbones_keys_are_touched():
    """mmpretrain's hook deletes every key of the whole checkpoint with those
    names; a head's own buffer named so must still load."""

    class Head(nn.Module):

        def __init__(self):
            super().__init__()
            self.register_buffer('relative_position_index', torch.zeros(3))

    class Model(nn.Module):

        def __init__(self):
            super().__init__()
            self.backbone = _backbone()
            self.head = Head()

    src, dst = Model(), Model()
    src.head.relative_position_index += 7
    load_state_dict(dst, src.state_dict(), strict=True)
    assert (dst.head.relative_position_index == 7).all()
