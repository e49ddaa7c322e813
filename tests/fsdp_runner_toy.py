"""A tiny two-modality RingMoE regressor, its data set and a loss-dumping hook
for end-to-end runs of ``tools/train.py`` with ``runner_type='FlexibleRunner'``
and ``mmringmoe.ShardedMetaInitFSDPStrategy`` (tests/test_fsdp_sharded_resume.py).

By default everything is deterministic after initialisation (no router
noise, no drop path, data drawn from per-index generators), and the model runs
each sample of its batch by itself, so that a batch of 2 on one rank gives the
same per-sample losses and gradients as one sample on each of 2 ranks (see the
test's docstring). ``ShardedToyRegressor(noisy_gating=True)`` turns the router
noise (Eq. 14, the global torch generator) on, and :class:`DumpRandomDraws`
records what each rank's torch, numpy and Python generators give after every
iteration (tests/test_fsdp_sharded_rng.py).
"""
import json
import os.path as osp
import random

import numpy as np

import torch
import torch.distributed as dist
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch import nn
from torch.utils.data import Dataset

from mmringmoe.registry import DATASETS, HOOKS, MODELS

MODS = ('opt', 'ms')
CHANNELS = {'opt': 3, 'ms': 4}


class _OneSample(nn.Module):
    """Backbone + head on one sample: its own FSDP unit (see
    :func:`toy_wrap_policy`), so each call re-creates its parameter views
    and a sample's gradient reaches the flat parameter as one sum."""

    def __init__(self, noisy_gating=False):
        super().__init__()
        from mmringmoe.models import RingMoE
        self.backbone = RingMoE(
            arch=dict(base='tiny', embed_dims=16, depths=(1, 1),
                      num_heads=(1, 2), window_size=4,
                      num_specialized_experts=2, num_collab_experts=2),
            modalities=MODS, out_indices=(1, ), drop_path_rate=0.,
            noisy_gating=noisy_gating)
        self.head = nn.Linear(32, 1)

    def forward(self, inputs, target):
        feats = self.backbone(inputs)
        pred = sum(self.head(feats[m][0].mean((2, 3))) for m in inputs)
        return ((pred - target) ** 2).mean() + 0.01 * self.backbone.aux_loss()


@MODELS.register_module(force=True)
class ShardedToyRegressor(BaseModel):

    def __init__(self, noisy_gating=False, data_preprocessor=None,
                 init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.sample = _OneSample(noisy_gating)

    def forward(self, inputs, target=None, mode='loss'):
        n = len(target)
        losses = [self.sample({m: x[i:i + 1] for m, x in inputs.items()},
                              target[i:i + 1]) for i in range(n)]
        # (l0 + l1) / 2 on one rank; l_r on each of two (FSDP averages)
        return dict(loss=sum(losses) / n)


def toy_wrap_policy(module, recurse, nonwrapped_numel):
    """``ringmoe_block_wrap_policy`` plus one unit for the per-sample part."""
    from mmringmoe.engine.fsdp import ringmoe_block_wrap_policy
    if recurse:
        return True
    return isinstance(module, _OneSample) or \
        ringmoe_block_wrap_policy(module, recurse, nonwrapped_numel)


def _register_policy():
    from mmengine.registry import FUNCTIONS
    FUNCTIONS.register_module(name='toy_wrap_policy', module=toy_wrap_policy,
                              force=True)


_register_policy()


@DATASETS.register_module(force=True)
class ShardedToyData(Dataset):
    metainfo = dict(classes=('value', ))

    def __init__(self, length=16):
        self.length = length

    def __len__(self):
        return self.length

    def __getitem__(self, idx):
        g = torch.Generator().manual_seed(1000 + idx)
        inputs = {m: torch.randn(c, 32, 32, generator=g)
                  for m, c in CHANNELS.items()}
        return dict(inputs=inputs, target=torch.randn(1, generator=g))


@HOOKS.register_module(force=True)
class DumpGlobalLoss(Hook):
    """Rank 0 appends ``{iter, loss, lr, base_lr, world_size}`` per iteration
    to ``<work_dir>/losses.jsonl``: ``loss`` is the mean of the ranks' losses
    (an all-reduce of the rank-local values)."""

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        loss = outputs['loss']
        loss = loss.detach().clone() if torch.is_tensor(loss) \
            else torch.tensor(float(loss))
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(loss)
        loss = loss / get_world_size()
        if get_rank() != 0:
            return
        lrs = runner.optim_wrapper.get_lr()
        row = dict(iter=runner.iter + 1, loss=float(loss),
                   lr=lrs['lr'][0], base_lr=lrs.get('base_lr', [None])[0],
                   world_size=get_world_size())
        with open(osp.join(runner.work_dir, 'losses.jsonl'), 'a') as f:
            f.write(json.dumps(row) + '\n')


@HOOKS.register_module(force=True)
class DumpRandomDraws(Hook):
    """Every rank draws from its torch, numpy and Python generators after each
    iteration and appends ``{iter, rank, torch, numpy, python}`` to
    ``<work_dir>/draws_rank<r>.jsonl`` (floats as ``float.hex``, so equal
    strings mean bitwise equal draws)."""

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        row = dict(iter=runner.iter + 1, rank=get_rank(),
                   torch=[float(v).hex() for v in torch.rand(3, dtype=torch.float64)],
                   numpy=[float(v).hex() for v in np.random.rand(3)],
                   python=[random.random().hex() for _ in range(3)])
        name = osp.join(runner.work_dir, f'draws_rank{get_rank()}.jsonl')
        with open(name, 'a') as f:
            f.write(json.dumps(row) + '\n')
