"""Shared pieces of the tests/test_pruning_*.py files."""
import importlib.util
import os.path as osp

import torch

from mmringmoe.models import RingMoE
from mmringmoe.models.pruning import backbone_kwargs

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def converter(name):
    """``tools/model_converters/<name>.py`` as a module (call ``.main``)."""
    spec = importlib.util.spec_from_file_location(
        f'_mmringmoe_converter_{name}',
        osp.join(ROOT, 'tools', 'model_converters', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_strict(model, state_dict):
    """``load_state_dict(strict=True)``: every key of the converter's
    output fits the rebuilt model (RingMoE supplies its own position
    buffers at load time)."""
    model.load_state_dict(state_dict, strict=True)
    return model


def load_into_upstream_swin(model, state_dict):
    """Load into mmpretrain's ``SwinTransformerV2``: its load hook deletes
    the position buffers, so they (and only they) are reported missing."""
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    assert not unexpected, unexpected
    assert all(k.endswith(('relative_position_index', 'relative_coords_table'))
               for k in missing), missing
    return model


def rebuild(meta, state_dict, **overrides):
    """A RingMoE from a converter's meta, loaded with its state dict, eval."""
    kwargs = backbone_kwargs(meta)
    kwargs.update(overrides)
    return load_strict(RingMoE(**kwargs), state_dict).eval()


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def read(path):
    return torch.load(path, map_location='cpu', weights_only=True)
