"""Sharded, resumable FSDP checkpoints with ``torch.distributed.checkpoint``.

A checkpoint is a directory (named like mmengine's files, e.g.
``iter_1000.pth/``)::

    iter_1000.pth/
        .metadata         global shapes, dtypes and which file holds which shard
        __0_0.distcp      rank 0's shard of the model and AdamW state
        __1_0.distcp      rank 1's ...
        extra.pth         meta, message hub, parameter schedulers and the
                          optim wrapper's own state (AMP loss scaler,
                          ``base_param_settings``) (rank 0; weights-only
                          loadable, see mmringmoe.engine.checkpoint)

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

Reading is weights-only like every other load in mmringmoe: ``.metadata``
is unpickled with only torch's checkpoint classes allowed
(:class:`SafeFileSystemReader`; torch's own reader runs a full
``pickle.load``), tensors and the optimizer's other values with
``torch.load(weights_only=True)``. A missing or unreadable ``.metadata``, a
missing or truncated shard, or a checkpoint that does not fit the config's
strategy is refused in one line (:func:`read_metadata`,
:func:`check_checkpoint_for_config`).

``tools/model_converters/dcp_to_backbone.py`` turns such a directory into the
single-file backbone checkpoint the pruning tools take.
"""
import functools
import io
import os
import os.path as osp
import pickle
import shutil
import time
import warnings
from typing import Callable, Optional

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from mmengine.dist import barrier, get_rank, is_main_process
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint.default_planner import (
    DefaultLoadPlanner, create_default_local_load_plan)
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta
from torch.distributed.checkpoint.state_dict import (StateDictOptions,
                                                     get_state_dict,
                                                     set_state_dict)

from mmringmoe.engine.checkpoint import (CheckpointError, encode,
                                        load_weights_only)
from mmringmoe.registry import STRATEGIES

from .fsdp import MetaInitFSDPStrategy

METADATA = '.metadata'
EXTRA = 'extra.pth'


#: What a ``.metadata`` file may name when it is unpickled (torch writes it
#: with ``pickle`` and reads it back with a full ``pickle.load``, which runs
#: whatever the file names; mmringmoe loads every file weights-only).
METADATA_GLOBALS = {
    'torch.distributed.checkpoint.metadata': {
        'Metadata', 'TensorStorageMetadata', 'ChunkStorageMetadata',
        'BytesStorageMetadata', 'MetadataIndex', 'TensorProperties',
        'StorageMeta', '_MEM_FORMAT_ENCODING'},
    'torch.distributed.checkpoint.filesystem': {'_StorageInfo'},
    'torch.serialization': {'_get_layout'},
    'torch': {'Size'},  # and torch's dtypes
    'pathlib': {'PosixPath', 'PurePosixPath', 'WindowsPath', 'PureWindowsPath'},
    'collections': {'OrderedDict'},
}


class _MetadataUnpickler(pickle.Unpickler):

    def find_class(self, module, name):
        if name in METADATA_GLOBALS.get(module, ()) or (
                module == 'torch'
                and isinstance(getattr(torch, name, None), torch.dtype)):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'it names {module}.{name}, which is not part of '
            'torch.distributed.checkpoint metadata')


class SafeFileSystemReader(FileSystemReader):
    """``FileSystemReader`` that unpickles ``.metadata`` with only the
    classes of :data:`METADATA_GLOBALS` (torch's reader runs a full
    ``pickle.load``); tensors are read with ``weights_only=True`` by torch,
    the other values by :class:`_LoadPlanner`."""

    def read_metadata(self, *args, **kwargs) -> Metadata:
        with open(osp.join(str(self.path), METADATA), 'rb') as f:
            metadata = _MetadataUnpickler(f).load()
        if not isinstance(metadata, Metadata):
            raise pickle.UnpicklingError(
                f'it holds a {type(metadata).__name__}, not a Metadata')
        if getattr(metadata, 'storage_meta', None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata


#: Notices torch and mmengine give about their own APIs on every sharded
#: save, load or FSDP wrap (ShardedTensor -> DTensor, FSDP.state_dict_type,
#: a process group's default device, a single-process DCP call): nothing about
#: the run, 40 lines per checkpoint of a 2-process CPU run. Hidden there only.
API_NOTICES = (
    'Please use DTensor instead and we are deprecating ShardedTensor',
    '`_get_pg_default_device` will be deprecated',
    'Multiple backends are registered with this ProcessGroup',
    r'FSDP\.state_dict_type\(\) and FSDP\.set_state_dict_type\(\) are being '
    'deprecated',
    'torch.distributed is disabled, unavailable or uninitialized')


def _api_notices_hidden(fn):
    """``fn`` with :data:`API_NOTICES` ignored while it runs."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with warnings.catch_warnings():
            for message in API_NOTICES:
                warnings.filterwarnings('ignore', message=message)
            return fn(*args, **kwargs)
    return wrapped


def _first_line(e):
    text = str(e).strip()
    return f'{type(e).__name__}: {text.splitlines()[0]}' if text \
        else type(e).__name__


def read_metadata(path) -> Metadata:
    """Check that ``path`` is a complete sharded checkpoint directory and
    return its ``.metadata`` (read as :class:`SafeFileSystemReader` does).

    Cheap (no tensor is read): run before building a runner.

    Raises:
        FileNotFoundError: ``path`` does not exist, or is a directory
            without ``.metadata`` / a file (:func:`_check_sharded`).
        CheckpointError: ``.metadata`` cannot be read (truncated, not a
            pickle, or naming other classes), or a shard file it names is
            missing or shorter than the data it should hold.
    """
    path = osp.expanduser(str(path))
    _check_sharded(path)
    where = osp.join(path, METADATA)
    try:
        metadata = SafeFileSystemReader(path).read_metadata()
    except Exception as e:  # noqa: BLE001 - any unreadable file, one line
        raise CheckpointError(
            f'{where} cannot be read ({_first_line(e)}); expected the '
            'metadata file that torch.distributed.checkpoint writes') from None
    ends = {}
    for info in (metadata.storage_data or {}).values():
        rel = getattr(info, 'relative_path', None)
        if rel is not None:
            ends[rel] = max(ends.get(rel, 0), info.offset + info.length)
    missing = sorted(f for f in ends if not osp.isfile(osp.join(path, f)))
    if missing:
        raise CheckpointError(
            f'{path}: {METADATA} names shard files that are missing '
            f'({", ".join(missing)}); expected all {len(ends)} of them')
    short = sorted(f for f, end in ends.items()
                   if osp.getsize(osp.join(path, f)) < end)
    if short:
        f = short[0]
        raise CheckpointError(
            f'{path}: shard file {f} has {osp.getsize(osp.join(path, f))} '
            f'bytes, {METADATA} expects at least {ends[f]} (truncated copy?)')
    return metadata


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
    from mmengine.optim import OptimWrapperDict
    if isinstance(optimizer, OptimWrapperDict):
        raise NotImplementedError(
            'sharded checkpoints hold one optimizer; the run has an '
            f'OptimWrapperDict with {sorted(optimizer.optim_wrappers)}')
    return getattr(optimizer, 'optimizer', optimizer)  # OptimWrapper


#: Keys of a torch optimizer's own ``state_dict()``; they go through DCP.
OPTIMIZER_KEYS = ('state', 'param_groups')
#: What an mmengine optim wrapper's ``state_dict()`` adds to them, and how
#: :func:`load_sharded` restores it (as the wrapper's ``load_state_dict``
#: does): ``AmpOptimWrapper``'s ``loss_scaler`` (GradScaler /
#: ShardedGradScaler: scale, growth tracker, growth/backoff factors,
#: interval) and ``base_param_settings`` (the base learning rate that the
#: parameter schedulers update when there are several parameter groups).
WRAPPER_KEYS = ('loss_scaler', 'base_param_settings')


def wrapper_state(optimizer) -> dict:
    """The optim wrapper's state besides its torch optimizer's.

    A plain mmengine checkpoint stores ``optim_wrapper.state_dict()``; the
    torch optimizer's part of it (:data:`OPTIMIZER_KEYS`) is sharded by DCP,
    this is the rest (the same on every rank: ``ShardedGradScaler``
    all-reduces its overflow flag).

    Returns:
        dict: entries of :data:`WRAPPER_KEYS` (empty for a bare optimizer).

    Raises:
        NotImplementedError: the wrapper holds another entry (e.g. apex's
            ``amp``), which this module would not restore.
    """
    if optimizer is None or not hasattr(optimizer, 'optimizer'):
        return {}
    state = {k: v for k, v in optimizer.state_dict().items()
             if k not in OPTIMIZER_KEYS}
    unknown = sorted(set(state) - set(WRAPPER_KEYS))
    if unknown:
        raise NotImplementedError(
            f'{type(optimizer).__name__}.state_dict() holds {unknown}, which '
            'sharded checkpoints do not restore (known: '
            f'{list(WRAPPER_KEYS)})')
    return state


def restore_wrapper_state(optimizer, state: dict, path: str = 'checkpoint'):
    """Give ``optimizer`` (an optim wrapper) the entries of
    :func:`wrapper_state` saved in ``path``, as its ``load_state_dict``
    would; a saved loss scaler without a scaler to take it (resumed without
    ``--amp``) and a scaler without a saved state (resumed with ``--amp``
    for the first time: it starts anew) are logged."""
    from mmengine.logging import print_log
    if optimizer is None or not hasattr(optimizer, 'optimizer'):
        return
    scaler = getattr(optimizer, 'loss_scaler', None)
    for key, value in state.items():
        if key == 'base_param_settings':
            optimizer.base_param_settings = value
        elif key == 'loss_scaler':
            if scaler is None:
                print_log(f'{path} holds an AMP loss-scaler state (scale '
                          f'{value.get("scale")}) that the '
                          f'{type(optimizer).__name__} of this run has no '
                          'scaler for: not restored', logger='current',
                          level=30)
            elif value:  # a disabled GradScaler saves {}
                scaler.load_state_dict(value)
    if scaler is not None and 'loss_scaler' not in state:
        print_log(f'{path} holds no AMP loss-scaler state: the loss scaler '
                  'starts anew', logger='current', level=30)


def _options(strict=True):
    # sharded (each rank its own shard), kept where they are
    return StateDictOptions(full_state_dict=False, cpu_offload=False,
                            strict=strict)


def _barrier():
    if dist.is_available() and dist.is_initialized():
        barrier()


@_api_notices_hidden
def save_sharded(path: str, model: torch.nn.Module, optimizer=None,
                 extra: Optional[dict] = None) -> str:
    """Write ``model``'s and ``optimizer``'s state, each rank its shard.

    Args:
        path (str): the checkpoint directory to create (replaced once the new
            one is complete, if it exists).
        model (nn.Module): FSDP-wrapped (or plain) model; every rank calls.
        optimizer (Optimizer | OptimWrapper, optional): its state is saved
            under the parameters' names (resharding needs names, not ids);
            an optim wrapper's own state (:func:`wrapper_state`) goes to
            ``extra.pth`` as ``optim_wrapper``.
        extra (dict, optional): small plain values (meta, message hub,
            scheduler states) that rank 0 writes to ``extra.pth``; they are
            made weights-only loadable (:func:`~mmringmoe.engine.checkpoint.encode`).

    Returns:
        str: ``path``.

    Raises:
        NotImplementedError: an ``OptimWrapperDict``, or a wrapper whose
            state this module would not restore (nothing is written).
    """
    path = osp.expanduser(str(path))
    partial = path + '.partial'
    if is_main_process() and osp.exists(partial):
        shutil.rmtree(partial)  # a save that died before its rename
    _barrier()
    own = wrapper_state(optimizer)  # refuses what it could not restore
    msd, osd = get_state_dict(model, _optimizers(optimizer), options=_options())
    state = {'model': msd}
    if optimizer is not None:
        state['optimizer'] = osd
    dcp.save(state, checkpoint_id=partial)
    if is_main_process():
        extra = dict(extra or {})
        if own:
            extra['optim_wrapper'] = own
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

    def load_bytes(self, read_item, value: io.BytesIO) -> None:
        # the default planner unpickles these (optimizer param_groups:
        # numbers, strings, parameter names) with weights_only=False
        obj = torch.load(value, weights_only=True)
        if self.flatten_state_dict:
            from torch.distributed.checkpoint._traverse import set_element
            set_element(self.original_state_dict,
                        self.mappings[read_item.dest_index.fqn], obj)
        else:
            self.state_dict[read_item.dest_index.fqn] = obj


def _local(v):
    """This rank's values of a sharded tensor (DTensor or FSDP's
    ShardedTensor; an empty tensor where the rank holds no shard)."""
    if hasattr(v, 'to_local'):
        return v.to_local()
    if hasattr(v, 'local_shards'):
        shards = v.local_shards()
        return shards[0].tensor if shards else torch.empty(0)
    return v


def _take_saved_group_keys(osd: dict, metadata: Metadata, path: str):
    """Make room in ``osd['param_groups']`` for every key the checkpoint's
    groups hold: ``dcp.load`` fills only the keys of the state dict it is
    given, and an optimizer built anew lacks what schedulers added to the
    saved one (``initial_lr``, ...), which would be dropped unnoticed.

    Raises:
        CheckpointError: the checkpoint has more parameter groups.
    """
    prefix = 'optimizer.param_groups.'
    groups = osd['param_groups']
    found = set()
    for key in metadata.state_dict_metadata:
        if not key.startswith(prefix):
            continue
        index, _, name = key[len(prefix):].partition('.')
        if not index.isdigit() or not name:
            continue
        found.add(int(index))
        if int(index) < len(groups):
            groups[int(index)].setdefault(name, None)
    if found and max(found) >= len(groups):
        raise CheckpointError(
            f'{path} holds {max(found) + 1} optimizer parameter groups, the '
            f"run's optimizer has {len(groups)}; expected the same "
            'paramwise settings as the run that saved it')


@_api_notices_hidden
def load_sharded(path: str, model: torch.nn.Module, optimizer=None,
                 callback: Optional[Callable[[dict], None]] = None) -> dict:
    """Load a checkpoint of :func:`save_sharded` into the current sharding.

    Every key of the model (and of the optimizer, if given) must be in the
    checkpoint; the world size may differ from the saving run's.

    Args:
        path (str): the checkpoint directory.
        model (nn.Module): FSDP-wrapped (or plain) model.
        optimizer (Optimizer | OptimWrapper, optional): restored too, with
            the wrapper's own state (:func:`restore_wrapper_state`).
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
    metadata = read_metadata(path)
    extra_file = osp.join(path, EXTRA)
    extra = load_weights_only(extra_file) if osp.isfile(extra_file) else {'meta': {}}
    saved = extra.get('meta', {}).get('sharded', {})
    if optimizer is not None and saved.get('with_optimizer') is False:
        raise RuntimeError(f'{path} was saved without the optimizer state; '
                           'resume needs it (load it as load_from instead)')
    msd, osd = get_state_dict(model, _optimizers(optimizer), options=_options())
    state = {'model': msd}
    if optimizer is not None:
        _take_saved_group_keys(osd, metadata, path)
        state['optimizer'] = osd
    dcp.load(state, storage_reader=SafeFileSystemReader(path),
             planner=_LoadPlanner())
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
    restore_wrapper_state(optimizer, checkpoint.get('optim_wrapper', {}), path)
    checkpoint.pop('state_dict')
    return checkpoint


@_api_notices_hidden
def read_model_weights(path) -> dict:
    """The model weights of a sharded checkpoint directory as one
    checkpoint dict, in one process (no process group needed; in a running
    one every rank reads them all): what ``load_from`` and
    ``init_cfg=dict(type='Pretrained')`` of such a directory load in a
    runner without a sharded strategy.

    Returns:
        dict: ``{'meta': extra.pth's meta (or {}), 'state_dict': every
        ``model.*`` tensor under the model's names, at its global shape and
        stored dtype}``; no optimizer state.

    Raises:
        FileNotFoundError, CheckpointError: as :func:`read_metadata`.
        CheckpointError: no ``model.*`` entry, or one that is not a tensor
            (it would be dropped).
    """
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata
    path = osp.expanduser(str(path))
    metadata = read_metadata(path)
    entries = {k[len('model.'):]: md
               for k, md in metadata.state_dict_metadata.items()
               if k.startswith('model.')}
    if not entries:
        raise CheckpointError(f'{path} holds no model weights (no "model.*" '
                              'entry in its .metadata)')
    other = sorted(k for k, md in entries.items()
                   if not isinstance(md, TensorStorageMetadata))
    if other:
        raise CheckpointError(
            f'{path}: model entry model.{other[0]} is not a tensor; expected '
            'only tensors in the model state (load it with the sharded '
            'strategy)')
    state_dict = {k: torch.empty(md.size, dtype=md.properties.dtype)
                  for k, md in entries.items()}
    # dcp.load fills the given tensors in place
    dcp.load({'model': state_dict}, storage_reader=SafeFileSystemReader(path),
             planner=_LoadPlanner(), no_dist=True)
    extra = osp.join(path, EXTRA)
    meta = load_weights_only(extra).get('meta', {}) if osp.isfile(extra) else {}
    return {'meta': meta, 'state_dict': state_dict}


def check_resumable(path, strategy: str = 'ShardedMetaInitFSDPStrategy'):
    """Refuse in one line what a sharded strategy cannot resume from.

    Raises:
        FileNotFoundError: nothing at ``path``, or a directory without
            ``.metadata``.
        CheckpointError: an unreadable ``.metadata``, missing or truncated
            shard files (:func:`read_metadata`), no ``extra.pth`` (iteration,
            message hub, schedulers), or a single-file checkpoint: a sharded
            strategy writes directories, and a DDP/single-device file keys
            the optimizer state by position, not by parameter name.
    """
    path = osp.expanduser(str(path))
    if osp.isfile(path):
        raise CheckpointError(
            f'{path} is a single-file checkpoint, but {strategy} resumes only '
            f'the sharded checkpoint directories it writes ({METADATA}, '
            '*.distcp, extra.pth); start from its weights with load_from, or '
            'resume it with the config that wrote it')
    read_metadata(path)
    if not osp.isfile(osp.join(path, EXTRA)):
        raise CheckpointError(
            f'{path} has no {EXTRA} (iteration, message hub, schedulers, '
            'loss scaler): it can be given as load_from (weights only), '
            'not resumed')


def _config_strategy(cfg):
    """``(sharded, what)``: whether ``cfg`` trains with a strategy whose
    checkpoints are sharded directories, and how the config says so."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import FlexibleRunner

    def resolve(registry, name):
        if not isinstance(name, str):
            return name
        try:
            return registry.get(name)
        except Exception:  # noqa: BLE001 - unknown here: the runner says
            return None

    runner = cfg.get('runner_type', None)
    if runner is None:
        return False, 'uses mmengine.Runner (no runner_type)'
    cls = resolve(RUNNERS, runner)
    if not (isinstance(cls, type) and issubclass(cls, FlexibleRunner)):
        return False, f'uses runner_type={runner!r}'
    kind = (cfg.get('strategy', None) or {}).get('type', None)
    cls = resolve(STRATEGIES, kind)
    if isinstance(cls, type) and issubclass(cls, ShardedCheckpointMixin):
        return True, f'uses strategy {kind!r}'
    return False, f'uses strategy {kind!r}'


def check_checkpoint_for_config(path, cfg, resume: bool) -> None:
    """Before building the runner: refuse in one line a checkpoint that the
    config's runner cannot load (``tools/train.py``'s ``load_from`` and
    ``--resume PATH``).

    A directory must be a complete sharded checkpoint
    (:func:`read_metadata`); any runner takes its weights as ``load_from``
    (:func:`read_model_weights` where the strategy is not sharded), resuming
    it needs a sharded strategy (``runner_type='FlexibleRunner'``,
    ``mmringmoe.ShardedMetaInitFSDPStrategy``). A file must be a PyTorch
    checkpoint, and a sharded strategy takes it as ``load_from`` only
    (:func:`check_resumable`).

    Raises:
        FileNotFoundError, CheckpointError: as above, naming ``path``, what
            was found and what was expected.
    """
    from mmringmoe.engine.checkpoint import check_is_checkpoint
    path = osp.expanduser(str(path))
    sharded, what = _config_strategy(cfg)
    name = getattr(cfg, 'filename', None) or 'the config'
    if osp.isdir(path):
        read_metadata(path)
        if resume and not sharded:
            raise CheckpointError(
                f'{path} is a sharded checkpoint directory (torch.distributed.'
                f'checkpoint), but {name} {what}; resuming it needs '
                "runner_type='FlexibleRunner' with strategy "
                "'mmringmoe.ShardedMetaInitFSDPStrategy' (as load_from, any "
                'runner takes its weights)')
        if resume:
            check_resumable(path)
        return
    check_is_checkpoint(path)
    if resume and sharded:
        check_resumable(path, f'the strategy of {name}')


class ShardedCheckpointMixin:
    """Strategy mixin: ``save_checkpoint`` writes a sharded DCP directory,
    ``resume`` and ``load_checkpoint`` read one (on any number of ranks).

    A checkpoint keeps what a plain mmengine checkpoint keeps: weights and
    optimizer state (sharded), the optim wrapper's own state (AMP loss
    scaler, ``base_param_settings``: :func:`wrapper_state`), parameter
    schedulers, message hub and meta (seed, iteration, epoch) in
    ``extra.pth``; ``resume`` restores them all, re-seeds like mmengine's
    strategies and sets the inner count of gradient accumulation.

    ``load_checkpoint`` of a directory (``load_from``) loads the weights
    only, iteration and optimizer starting anew; of a single file (a whole
    model's state dict, e.g. a DDP checkpoint) it loads it as FSDP's
    ``FULL_STATE_DICT`` whatever ``state_dict_cfg`` says
    (:meth:`_load_single_file`); ``resume`` refuses a file
    (:func:`check_resumable`). Hooks' ``before_save_checkpoint`` see the
    checkpoint without ``state_dict`` (every rank has only its shard);
    ``after_load_checkpoint`` sees this rank's local shards under the
    parameters' names.
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
        if not osp.isdir(osp.expanduser(str(filename))):
            return self._load_single_file(filename, **kwargs)
        self.logger.info(f'Load sharded checkpoint from {filename}')
        return load_sharded(filename, self.model, None, kwargs.get('callback'))

    def _load_single_file(self, filename: str, **kwargs) -> dict:
        """``load_from`` of a single file: a whole model's state dict
        (converted, or written by DDP or a full-state-dict FSDP run), loaded
        as FSDP's ``FULL_STATE_DICT`` whatever ``state_dict_cfg`` says.
        mmengine's ``'local'`` (the default) would look for
        ``<file>/rank<r>.pth``, which its own FSDP strategy writes and a
        sharded strategy never does."""
        from torch.distributed.fsdp import FullStateDictConfig
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp import StateDictType
        if not hasattr(self, 'state_dict_type') or \
                self.state_dict_type == StateDictType.FULL_STATE_DICT:
            return super().load_checkpoint(filename, **kwargs)
        saved = self.state_dict_type
        self.state_dict_type = StateDictType.FULL_STATE_DICT
        try:
            with FSDP.state_dict_type(
                    self.model, StateDictType.FULL_STATE_DICT,
                    FullStateDictConfig(offload_to_cpu=True, rank0_only=False)):
                return super().load_checkpoint(filename, **kwargs)
        finally:
            self.state_dict_type = saved

    def resume(self, filename: str, *, resume_optimizer: bool = True,
               resume_param_scheduler: bool = True, map_location='default',
               callback: Optional[Callable] = None) -> dict:
        check_resumable(filename, type(self).__name__)
        self.logger.info(f'Resume sharded checkpoint from {filename} '
                         f'(rank {get_rank()})')
        optim = self.optim_wrapper if resume_optimizer and \
            hasattr(self, 'optim_wrapper') else None
        checkpoint = load_sharded(filename, self.model, optim, callback)
        if resume_param_scheduler and hasattr(self, 'param_schedulers'):
            self.load_scheduler_state_dict(checkpoint.pop('param_schedulers'))
        # as mmengine's strategies do: the run's seed, and the inner count
        # of gradient accumulation
        resumed_seed = checkpoint['meta'].get('seed')
        current_seed = self._randomness.get('seed')
        if resumed_seed is not None and resumed_seed != current_seed:
            if current_seed is not None:
                self.logger.warning(
                    f'The value of random seed in the checkpoint '
                    f'"{resumed_seed}" is different from the value in '
                    f'`randomness` config "{current_seed}"')
            self._randomness.update(seed=resumed_seed)
            self._set_randomness(**self._randomness)
        wrapper = getattr(self, 'optim_wrapper', None)
        counts = getattr(wrapper, '_accumulative_counts', 1)
        if counts > 1:
            if 'max_iters' not in self.dispatch_kwargs:
                raise ValueError(
                    '"max_iters" must be specified because '
                    f'"accumulative_counts" was set as {counts} which is '
                    'greater than 1.')
            wrapper.initialize_count_status(
                self.model, checkpoint['meta']['iter'],
                self.dispatch_kwargs['max_iters'])
        return checkpoint


@STRATEGIES.register_module()
class ShardedMetaInitFSDPStrategy(ShardedCheckpointMixin, MetaInitFSDPStrategy):
    """:class:`~mmringmoe.engine.fsdp.MetaInitFSDPStrategy` whose checkpoints
    are sharded ``torch.distributed.checkpoint`` directories.

    Without a visible GPU (tests, CPU clusters) ``--launcher pytorch`` opens
    a gloo process group from the torchrun environment (mmengine's
    ``init_dist`` calls ``torch.cuda.set_device`` whatever the backend) and
    FSDP gets ``device_id=cpu`` unless the config's ``model_wrapper`` names
    one; with a GPU nothing changes.
    """

    def _setup_distributed(self, launcher='pytorch', backend='nccl', **kwargs):
        if launcher == 'pytorch' and not torch.cuda.is_available() \
                and not dist.is_initialized():
            dist.init_process_group(
                backend='gloo' if backend == 'nccl' else backend, **kwargs)
            return
        super()._setup_distributed(launcher, backend, **kwargs)

    @_api_notices_hidden
    def _wrap_model(self, model):
        if not torch.cuda.is_available():
            self.model_wrapper = dict(self.model_wrapper or dict(
                type='MMFullyShardedDataParallel'))
            self.model_wrapper.setdefault('device_id', torch.device('cpu'))
        return super()._wrap_model(model)


__all__ = ['is_sharded_checkpoint', 'read_metadata', 'read_model_weights',
           'save_sharded',
           'load_sharded', 'wrapper_state', 'restore_wrapper_state',
           'check_resumable', 'check_checkpoint_for_config',
           'SafeFileSystemReader', 'ShardedCheckpointMixin',
           'ShardedMetaInitFSDPStrategy']
