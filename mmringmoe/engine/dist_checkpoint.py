"""Sharded, resumable FSDP checkpoints with ``torch.distributed.checkpoint``.

A checkpoint is a directory (named like mmengine's files, e.g.
``iter_1000.pth/``)::

    iter_1000.pth/
        .metadata         global shapes, dtypes and which file holds which shard
        __0_0.distcp      rank 0's shard of the model and AdamW state
        __1_0.distcp      rank 1's ...
        extra.pth         meta, message hub, parameter schedulers (rank 0;
                          weights-only loadable, see mmringmoe.engine.checkpoint)

Every rank writes only its own shard of the parameters and of the optimizer
state (``torch.distributed.checkpoint.state_dict.get_state_dict``: FSDP's
sharded state dict under the unwrapped parameter names), so no process ever
holds the whole model: for 14.7B parameters, 59 GB of fp32 weights plus
118 GB of AdamW moments that a full state dict would gather to rank 0.
Loading reads, on every rank, the pieces of the global tensors its own
(possibly different) shards cover, so a run saved on N ranks resumes on M
ranks (``dcp.load`` reshards; the planner refuses a checkpoint that lacks a
key of the model or the optimizer). The directory is written as
``<name>.partial`` and renamed once every rank has finished, so an
interrupted save never replaces a complete checkpoint.

``tools/model_converters/dcp_to_backbone.py`` turns such a directory into the
single-file backbone checkpoint the pruning tools take.
"""
import os
import os.path as osp
import shutil
import time
from typing import Callable, Optional

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from mmengine.dist import barrier, get_rank, is_main_process
from torch.distributed.checkpoint.default_planner import (
    DefaultLoadPlanner, create_default_local_load_plan)
from torch.distributed.checkpoint.state_dict import (StateDictOptions,
                                                     get_state_dict,
                                                     set_state_dict)

from mmringmoe.engine.checkpoint import encode, load_weights_only
from mmringmoe.registry import STRATEGIES

from .fsdp import MetaInitFSDPStrategy

METADATA = '.metadata'
EXTRA = 'extra.pth'


def is_sharded_checkpoint(path) -> bool:
    """Whether ``path`` is a directory written by :func:`save_sharded`
    (or any ``torch.distributed.checkpoint`` directory)."""
    return isinstance(path, (str, os.PathLike)) and \
        osp.isfile(osp.join(osp.expanduser(str(path)), METADATA))


def _check_sharded(path):
    if not is_sharded_checkpoint(path):
        what = 'a file' if osp.isfile(path) else \
            'a directory without ' + METADATA if osp.isdir(path) else 'nothing'
        raise FileNotFoundError(
            f'{path}: expected a sharded checkpoint directory (with {METADATA}'
            f', written by torch.distributed.checkpoint), found {what}')


def _optimizers(optimizer):
    if optimizer is None:
        return []
    return getattr(optimizer, 'optimizer', optimizer)  # OptimWrapper


def _options(strict=True):
    # sharded (each rank its own shard), kept where they are
    return StateDictOptions(full_state_dict=False, cpu_offload=False,
                            strict=strict)


def _barrier():
    if dist.is_available() and dist.is_initialized():
        barrier()


def save_sharded(path: str, model: torch.nn.Module, optimizer=None,
                 extra: Optional[dict] = None) -> str:
    """Write ``model``'s and ``optimizer``'s state, each rank its shard.

    Args:
        path (str): the checkpoint directory to create (replaced once the new
            one is complete, if it exists).
        model (nn.Module): FSDP-wrapped (or plain) model; every rank calls.
        optimizer (Optimizer | OptimWrapper, optional): its state is saved
            under the parameters' names (resharding needs names, not ids).
        extra (dict, optional): small plain values (meta, message hub,
            scheduler states) that rank 0 writes to ``extra.pth``; they are
            made weights-only loadable (:func:`~mmringmoe.engine.checkpoint.encode`).

    Returns:
        str: ``path``.
    """
    path = osp.expanduser(str(path))
    partial = path + '.partial'
    if is_main_process() and osp.exists(partial):
        shutil.rmtree(partial)  # a save that died before its rename
    _barrier()
    msd, osd = get_state_dict(model, _optimizers(optimizer), options=_options())
    state = {'model': msd}
    if optimizer is not None:
        state['optimizer'] = osd
    dcp.save(state, checkpoint_id=partial)
    if is_main_process():
        extra = dict(extra or {})
        meta = dict(extra.get('meta') or {})
        meta['sharded'] = dict(
            world_size=dist.get_world_size() if dist.is_initialized() else 1,
            with_optimizer=optimizer is not None,
            format='torch.distributed.checkpoint')
        extra['meta'] = meta
        torch.save(encode(extra), osp.join(partial, EXTRA))
    _barrier()
    if is_main_process():
        old = path + '.old'
        if osp.exists(path):
            os.replace(path, old)
        os.replace(partial, path)
        if osp.exists(old):
            shutil.rmtree(old) if osp.isdir(old) else os.remove(old)
    _barrier()
    return path


class _LoadPlanner(DefaultLoadPlanner):
    """``DefaultLoadPlanner`` without its torch <= 2.3 fallback.

    When the checkpoint has keys this rank's state dict lacks (normal after
    resharding: a rank without a local shard of a parameter has no optimizer
    entries for it), the default planner assumes a checkpoint written by
    torch <= 2.3, re-flattens ``param_groups`` the old way and then fails
    with ``Missing key in checkpoint state_dict: optimizer.param_groups``.
    Ours are written by this code: every key of this rank must be there.
    """

    def create_local_plan(self):
        return create_default_local_load_plan(self.state_dict, self.metadata,
                                              strict=True)


def _local(v):
    """This rank's values of a sharded tensor (DTensor or FSDP's
    ShardedTensor; an empty tensor where the rank holds no shard)."""
    if hasattr(v, 'to_local'):
        return v.to_local()
    if hasattr(v, 'local_shards'):
        shards = v.local_shards()
        return shards[0].tensor if shards else torch.empty(0)
    return v


def load_sharded(path: str, model: torch.nn.Module, optimizer=None,
                 callback: Optional[Callable[[dict], None]] = None) -> dict:
    """Load a checkpoint of :func:`save_sharded` into the current sharding.

    Every key of the model (and of the optimizer, if given) must be in the
    checkpoint; the world size may differ from the saving run's.

    Args:
        path (str): the checkpoint directory.
        model (nn.Module): FSDP-wrapped (or plain) model.
        optimizer (Optimizer | OptimWrapper, optional): restored too.
        callback (callable, optional): called with the loaded checkpoint dict
            (``extra.pth``'s entries plus ``state_dict``: this rank's local
            shards by parameter name) before the values are applied, like
            mmengine's ``after_load_checkpoint`` hooks.

    Returns:
        dict: the contents of ``extra.pth`` (``meta`` etc.).

    Raises:
        FileNotFoundError: ``path`` is not a sharded checkpoint directory.
        RuntimeError: the checkpoint lacks a key of the model/optimizer
            (from ``dcp.load``'s planner), e.g. a model or optimizer-less save.
    """
    path = osp.expanduser(str(path))
    _check_sharded(path)
    extra_file = osp.join(path, EXTRA)
    extra = load_weights_only(extra_file) if osp.isfile(extra_file) else {'meta': {}}
    saved = extra.get('meta', {}).get('sharded', {})
    if optimizer is not None and saved.get('with_optimizer') is False:
        raise RuntimeError(f'{path} was saved without the optimizer state; '
                           'resume needs it (load it as load_from instead)')
    msd, osd = get_state_dict(model, _optimizers(optimizer), options=_options())
    state = {'model': msd}
    if optimizer is not None:
        state['optimizer'] = osd
    dcp.load(state, checkpoint_id=path, planner=_LoadPlanner())
    checkpoint = dict(extra)
    checkpoint['state_dict'] = {k: _local(v) for k, v in msd.items()}
    if callback is not None:
        callback(checkpoint)
    # dcp.load has already refused a checkpoint without one of msd's keys;
    # not strict here because Swin V2 blocks drop their position tables
    # from any state dict they load (mmpretrain rebuilds them from the
    # window size), which a strict load_state_dict reports as missing
    set_state_dict(model, _optimizers(optimizer), model_state_dict=msd,
                   optim_state_dict=osd if optimizer is not None else {},
                   options=_options(strict=False))
    checkpoint.pop('state_dict')
    return checkpoint


class ShardedCheckpointMixin:
    """Strategy mixin: ``save_checkpoint`` writes a sharded DCP directory,
    ``resume`` and ``load_checkpoint`` read one (on any number of ranks).

    ``load_checkpoint`` of a single file (``load_from`` a converted or DDP
    checkpoint) falls back to the strategy's own loader. Hooks'
    ``before_save_checkpoint`` see the checkpoint without ``state_dict``
    (every rank has only its shard); ``after_load_checkpoint`` sees this
    rank's local shards under the parameters' names.
    """

    def save_checkpoint(self, filename: str, *, save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        extra_ckpt: Optional[dict] = None,
                        callback: Optional[Callable] = None) -> None:
        import mmengine
        extra = dict(extra_ckpt or {})
        meta = dict(extra.get('meta') or {})
        meta.update(seed=self.seed, mmengine=mmengine.__version__,
                    time=time.strftime('%Y%m%d_%H%M%S', time.localtime()))
        extra['meta'] = meta
        if save_param_scheduler and hasattr(self, 'param_schedulers'):
            extra['param_schedulers'] = self.scheduler_state_dict()
        if callback is not None:
            callback(extra)
        optim = self.optim_wrapper if save_optimizer and \
            hasattr(self, 'optim_wrapper') else None
        save_sharded(filename, self.model, optim, extra)

    def load_checkpoint(self, filename: str, **kwargs) -> dict:
        if not is_sharded_checkpoint(filename):
            return super().load_checkpoint(filename, **kwargs)
        self.logger.info(f'Load sharded checkpoint from {filename}')
        return load_sharded(filename, self.model, None, kwargs.get('callback'))

    def resume(self, filename: str, *, resume_optimizer: bool = True,
               resume_param_scheduler: bool = True, map_location='default',
               callback: Optional[Callable] = None) -> dict:
        if not is_sharded_checkpoint(filename):
            return super().resume(filename, resume_optimizer=resume_optimizer,
                                  resume_param_scheduler=resume_param_scheduler,
                                  map_location=map_location, callback=callback)
        self.logger.info(f'Resume sharded checkpoint from {filename} '
                         f'(rank {get_rank()})')
        optim = self.optim_wrapper if resume_optimizer and \
            hasattr(self, 'optim_wrapper') else None
        checkpoint = load_sharded(filename, self.model, optim, callback)
        if resume_param_scheduler and hasattr(self, 'param_schedulers'):
            self.load_scheduler_state_dict(checkpoint.pop('param_schedulers'))
        resumed_seed = checkpoint['meta'].get('seed')
        if resumed_seed is not None and resumed_seed != self._randomness.get('seed'):
            self._randomness.update(seed=resumed_seed)
            self._set_randomness(**self._randomness)
        return checkpoint


@STRATEGIES.register_module()
class ShardedMetaInitFSDPStrategy(ShardedCheckpointMixin, MetaInitFSDPStrategy):
    """:class:`~mmringmoe.engine.fsdp.MetaInitFSDPStrategy` whose checkpoints
    are sharded ``torch.distributed.checkpoint`` directories."""


__all__ = ['is_sharded_checkpoint', 'save_sharded', 'load_sharded',
           'ShardedCheckpointMixin', 'ShardedMetaInitFSDPStrategy']
