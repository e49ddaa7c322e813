"""Checkpoints that load with ``torch.load(weights_only=True)``.

Every checkpoint is read with ``weights_only=True``: pretrained weights,
``load_from``, ``init_cfg=dict(type='Pretrained')``, converters and ``--resume``
alike. mmengine 0.10.7 pickles Python objects into the checkpoints it writes
(``HistoryBuffer`` and numpy arrays in the message hub), which such a load
refuses, and allow-listing them would need ``builtins.getattr``, which lets a
file call anything. So instead of trusting some files more than others, the
run's own checkpoints are *written* as plain containers, tensors and numbers
(:class:`WeightsOnlyCheckpointHook`) and turned back into mmengine's objects
after loading (:func:`decode`). ``tools/train.py`` adds the hook to every run.

The hook also stores the random number generator states and restores them on
resume, so that a resumed run continues with the same dropout, drop-path and
router noise as an uninterrupted one: in a multi-process run every rank's
states (gathered when the checkpoint is saved), each rank getting its own back
when the run resumes on as many processes.
"""
import functools
import io
import os.path as osp
import pickle
import random
import re
import zipfile
from collections import OrderedDict

import numpy as np
import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer, print_log
from mmengine.model.weight_init import PretrainedInit
from mmengine.registry import WEIGHT_INITIALIZERS
from mmengine.runner.checkpoint import CheckpointLoader

from mmringmoe.registry import HOOKS

TAG = '__mmringmoe_type__'
_SCALARS = (str, bytes, int, float, bool, complex, type(None))
_TORCH_OBJECTS = (torch.Tensor, torch.Size, torch.dtype, torch.device)


class CheckpointError(ValueError):
    """A file that is not a checkpoint or that weights-only loading refuses."""


def encode(obj, path='checkpoint'):
    """Return ``obj`` made only of values ``weights_only=True`` accepts."""
    if isinstance(obj, np.generic):  # before scalars: np.float64 is a float
        return obj.item()
    if isinstance(obj, _TORCH_OBJECTS) or isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, HistoryBuffer):
        return {TAG: 'HistoryBuffer', 'max_length': int(obj.max_length),
                'log_history': encode(obj._log_history, path),
                'count_history': encode(obj._count_history, path)}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in 'biufc':
            return {TAG: 'ndarray', 'dtype': obj.dtype.str,
                    'data': torch.from_numpy(np.ascontiguousarray(obj).copy())
                    if obj.dtype.kind != 'c' else encode(obj.tolist(), path)}
        return {TAG: 'ndarray', 'dtype': obj.dtype.str,
                'data': encode(obj.tolist(), path)}
    if isinstance(obj, (set, frozenset)):
        return {TAG: type(obj).__name__,
                'items': [encode(v, path) for v in obj]}
    if isinstance(obj, OrderedDict):
        out = OrderedDict((k, encode(v, f'{path}.{k}')) for k, v in obj.items())
        if hasattr(obj, '_metadata'):  # module state dicts carry versions
            out._metadata = obj._metadata
        return out
    if isinstance(obj, dict):
        return {k: encode(v, f'{path}.{k}') for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, '_fields'):  # namedtuple
        return tuple(encode(v, path) for v in obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(encode(v, f'{path}[{i}]') for i, v in enumerate(obj))
    # Kept as it is rather than lost: the file may then be refused by a
    # weights-only load, which says which object is in the way.
    print_log(f'checkpoint entry {path} is a {type(obj).__module__}.'
              f'{type(obj).__qualname__}, which weights-only loading may '
              'refuse', logger='current', level=30)
    return obj


def decode(obj):
    """Inverse of :func:`encode`: builds only HistoryBuffer, ndarray, set."""
    if isinstance(obj, dict):
        kind = obj.get(TAG)
        if kind == 'HistoryBuffer':
            return HistoryBuffer(decode(obj['log_history']),
                                 decode(obj['count_history']),
                                 obj['max_length'])
        if kind == 'ndarray':
            data = obj['data']
            if isinstance(data, torch.Tensor):
                return data.numpy().astype(np.dtype(obj['dtype']), copy=False)
            return np.array(decode(data), dtype=np.dtype(obj['dtype']))
        if kind in ('set', 'frozenset'):
            items = [decode(v) for v in obj['items']]
            return set(items) if kind == 'set' else frozenset(items)
        out = type(obj)((k, decode(v)) for k, v in obj.items())
        if hasattr(obj, '_metadata'):
            out._metadata = obj._metadata
        return out
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if isinstance(obj, tuple) and not hasattr(obj, '_fields'):
        return tuple(decode(v) for v in obj)
    return obj


def load_weights_only(filename, map_location='cpu'):
    """``torch.load(filename, weights_only=True)`` with one-line errors.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a PyTorch checkpoint, or it carries pickled
            objects other than tensors and plain containers.
    """
    filename = osp.expanduser(str(filename))
    check_is_checkpoint(filename)
    try:
        checkpoint = torch.load(filename, map_location=map_location,
                                weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(_explain(filename, str(e))) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError,
            AssertionError, IndexError) as e:
        # a zip or pickle stream that torch cannot read as a checkpoint
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        detail = f' ({type(e).__name__}: {first})' if first else ''
        raise CheckpointError(
            f'{filename} is not a PyTorch checkpoint{detail}') from None
    return decode(checkpoint)


def check_is_checkpoint(filename):
    """Cheap check before building a runner: a torch.save zip or a pickle.

    Raises:
        FileNotFoundError: nothing at ``filename``.
        CheckpointError: a directory (a sharded checkpoint is named as one,
            with the converter to its single-file backbone), or a file that
            is neither a torch.save zip nor a pickle.
    """
    filename = osp.expanduser(str(filename))
    if osp.isdir(filename):
        if osp.isfile(osp.join(filename, '.metadata')):
            raise CheckpointError(
                f'{filename} is a sharded checkpoint directory (torch.'
                'distributed.checkpoint), expected a single-file checkpoint; '
                'convert it with tools/model_converters/dcp_to_backbone.py')
        raise CheckpointError(f'{filename} is a directory, expected a '
                              'single-file checkpoint')
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    if zipfile.is_zipfile(filename):
        return
    with open(filename, 'rb') as f:
        head = f.read(2)
    if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= 5:
        raise CheckpointError(f'{filename} is not a PyTorch checkpoint '
                              '(neither a torch.save zip nor a pickle)')


def _explain(filename, message):
    found = re.search(r'GLOBAL ([\w.]+)', message)
    if found is None:
        if 'load key' in message or 'could not find MARK' in message:
            first = message.strip().splitlines()[-1]
            return f'{filename} is not a PyTorch checkpoint ({first})'
        first = message.strip().splitlines()[0]
        return f'refusing to load {filename}: weights-only loading failed ({first})'
    name = found.group(1)
    hint = ('it was written without mmringmoe.WeightsOnlyCheckpointHook; '
            're-save its state_dict' if name.startswith('mmengine.') else
            'only tensors, numbers, strings and plain containers are loaded')
    return (f'refusing to load {filename}: it carries a pickled non-tensor '
            f'object ({name}) and checkpoints are loaded with '
            f'weights_only=True; {hint}')


# Every local load of mmengine (load_from, resume, Pretrained init_cfg)
# goes through this scheme; torch's default is already weights_only=True,
# this makes it explicit and turns its errors into one line. A sharded
# checkpoint directory gives its model weights at their global shapes
# (mmringmoe.engine.dist_checkpoint.read_model_weights), so load_from and
# init_cfg take it in any runner; resuming one needs the sharded strategy.
@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename, map_location):
    from mmringmoe.engine.dist_checkpoint import (is_sharded_checkpoint,
                                                  read_model_weights)
    if is_sharded_checkpoint(filename):
        return read_model_weights(filename)
    return load_weights_only(filename, map_location)


# --------------------------------------------------------------------------
# Loading pretrained weights into a model: counted, prefix-aware, refusing.

#: Share of a model's parameter values that a load must fill (``min_loaded``
#: of ``init_cfg=dict(type='Pretrained')``, of WeightsOnlyCheckpointHook for
#: ``load_from``/``--resume``, and of the converters). 0.9 admits the usual
#: partial fits (a new head, the patch embedding of a modality the file
#: lacks) and refuses a file of another model, which fills next to nothing.
DEFAULT_MIN_LOADED = 0.9

#: Single wrapping prefixes stripped from a checkpoint's keys when that fits
#: the model better: a DDP/DeepSpeed wrapper (``module.``), other trainers'
#: ``model.``, and a whole-model checkpoint given to its backbone
#: (``backbone.``, as pretraining writes it), also under ``module.``.
WRAP_PREFIXES = ('module.', 'model.', 'backbone.', 'module.backbone.')


class PretrainedLoadError(CheckpointError):
    """A checkpoint that fills too few of a model's parameters."""


class LoadReport:
    """What :func:`fit_state_dict` matched: ``state_dict`` (the model's
    keys, shapes that fit), ``prefix`` stripped, parameter tensors and values
    loaded / in the model, checkpoint keys left unused and shape mismatches."""

    def __init__(self, state_dict, prefix, loaded, total, loaded_numel,
                 total_numel, unused, mismatched, missing, counts_values=True):
        # counts_values=False (FSDP): the numel fields count tensors
        self.counts_values = counts_values
        self.state_dict = state_dict
        self.prefix = prefix
        self.loaded, self.total = loaded, total
        self.loaded_numel, self.total_numel = loaded_numel, total_numel
        self.unused, self.mismatched, self.missing = unused, mismatched, missing

    @property
    def share(self) -> float:
        return self.loaded_numel / self.total_numel if self.total_numel else 1.

    def line(self, source, what):
        strip = f" after stripping '{self.prefix}'" if self.prefix else ''
        share = (f'{self.loaded_numel:,}/{self.total_numel:,} values, '
                 f'{self.share:.1%}' if self.counts_values else
                 f'{self.share:.1%} of the tensors; FSDP shards, values not counted')
        return (f'{source}: loaded {self.loaded}/{self.total} parameter '
                f'tensors of {what} ({share}){strip}; {len(self.unused)} '
                f'checkpoint tensors unused, {len(self.mismatched)} with '
                'another shape')


def _strip(state_dict, prefix):
    if not prefix:
        return OrderedDict(state_dict)
    return OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                       if k.startswith(prefix))


def fit_state_dict(model, state_dict, prefixes=WRAP_PREFIXES,
                   exclude=None) -> LoadReport:
    """Match ``state_dict`` to ``model``'s keys, as is or without one
    wrapping prefix, whichever fills more of the model's parameter values.

    Args:
        model (nn.Module): the model (or backbone) to load into.
        state_dict (dict): checkpoint tensors by name.
        prefixes (Sequence[str]): wrapping prefixes that may be stripped.
        exclude (nn.Module, optional): a submodule loaded separately (e.g.
            the backbone): its parameters are neither matched nor counted.

    Returns:
        LoadReport: ``report.state_dict`` holds the matching tensors (params
        and buffers whose name and shape fit) under the model's names.
    """
    wrapped = _is_fsdp(model)
    if wrapped:
        # FSDP: parameters are flattened shards under wrapper names; match
        # by the original names only and count tensors, not values
        own = _fsdp_state_dict_names(model)
        params = {_unwrapped_name(n): None for n, _ in model.named_parameters()}
    else:
        own = model.state_dict(keep_vars=True)
        params = {}
        for name, p in model.named_parameters():
            params.setdefault(name, p)
    if exclude is not None:
        if wrapped:
            raise ValueError('fit_state_dict: exclude= needs an unwrapped '
                             'model (FSDP names are matched, not tensors)')
        skip = {id(t) for t in exclude.state_dict(keep_vars=True).values()}
        own = {k: v for k, v in own.items() if id(v) not in skip}
        params = {k: v for k, v in params.items() if id(v) not in skip}

    def size(k):
        return 1 if wrapped else params[k].numel()

    total_numel = sum(size(k) for k in params)
    best = None
    for prefix in ('', ) + tuple(prefixes):
        if prefix and not any(k.startswith(prefix) for k in state_dict):
            continue
        cand = _strip(state_dict, prefix)
        fit = OrderedDict((k, v) for k, v in cand.items()
                          if k in own and isinstance(v, torch.Tensor)
                          and (wrapped or tuple(v.shape) == tuple(own[k].shape)))
        numel = sum(size(k) for k in fit if k in params)
        if best is None or numel > best[0]:
            best = (numel, prefix, cand, fit)
    numel, prefix, cand, fit = best
    return LoadReport(
        state_dict=fit, prefix=prefix,
        loaded=sum(k in params for k in fit), total=len(params),
        loaded_numel=numel, total_numel=total_numel, counts_values=not wrapped,
        unused=[k for k in cand if k not in own],
        mismatched=[k for k in cand if k in own and k not in fit],
        missing=[k for k in params if k not in fit])


def _resumed_path(runner) -> str:
    """The checkpoint a runner loads, for messages: ``load_from`` / the
    ``--resume`` path, else (``--resume`` alone) the latest checkpoint of the
    work dir, found as mmengine's ``load_or_resume`` finds it."""
    path = getattr(runner, '_load_from', None)
    if path is None and getattr(runner, '_resume', False):
        from mmengine.runner.checkpoint import find_latest_checkpoint
        path = find_latest_checkpoint(runner.work_dir)
    return path or 'checkpoint'


def _is_fsdp(model):
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
    except ImportError:  # torch without distributed
        return False
    return any(isinstance(m, FullyShardedDataParallel) for m in model.modules())


def _fsdp_state_dict_names(model):
    """The unwrapped names of an FSDP model's state dict (parameters and
    persistent buffers), as keys of a dict of None.

    With ``use_orig_params=True`` they are read from the modules, not from
    ``model.state_dict()``: under ``FULL_STATE_DICT`` that gathers the whole
    model (a collective; with ``rank0_only=True`` it is empty on the other
    ranks, so a ``load_from`` of a single file filled nothing there).
    """
    names = [n for n, _ in model.named_parameters()]
    if any(n.endswith('_flat_param') for n in names):  # use_orig_params=False
        return {_unwrapped_name(k): None for k in model.state_dict(keep_vars=True)}
    for prefix, module in model.named_modules():
        skip = getattr(module, '_non_persistent_buffers_set', ())
        names += [f'{prefix}.{b}' if prefix else b
                  for b, v in module._buffers.items()
                  if v is not None and b not in skip]
    return {_unwrapped_name(k): None for k in names}


def _unwrapped_name(name):
    for token in ('_fsdp_wrapped_module.', '_checkpoint_wrapped_module.'):
        name = name.replace(token, '')
    return name


def check_report(report, source, what, min_loaded=DEFAULT_MIN_LOADED):
    """Log the count line; raise :class:`PretrainedLoadError` (one line)
    when the load filled fewer than ``min_loaded`` of the values."""
    line = report.line(source, what)
    print_log(line, logger='current')
    if min_loaded is None:
        return report
    if report.loaded == 0 or report.share < min_loaded:
        example = ''
        if report.missing:
            example += f"; e.g. the model's {report.missing[0]!r} is not in it"
        if report.unused:
            example += f', the file has {report.unused[0]!r}'
        if report.mismatched:
            example += f', {report.mismatched[0]!r} has another shape'
        raise PretrainedLoadError(
            f'{source} fills only {report.share:.1%} of the parameters of '
            f'{what} ({report.loaded}/{report.total} tensors), below '
            f'min_loaded={min_loaded:g}{example}{_moe_hint(report)}')
    return report


_SPARSE_KEYS = ('.ffn.collab_experts.', '.ffn.specialized_experts.',
                '.ffn.shared_expert.')
_DENSE_KEY = '.ffn.layers.'


def _moe_hint(report) -> str:
    """What to do when a sparse (mixture-of-experts) RingMoE file meets a
    dense model, or the reverse."""
    def has(keys, marks):
        return any(m in k for k in keys for m in marks)
    if has(report.unused, _SPARSE_KEYS) and has(report.missing, (_DENSE_KEY,)):
        return ('; the file is a sparse RingMoE (experts) and the model '
                "dense (moe_mode='dense'): merge the experts first "
                '(tools/model_converters/merge_experts.py --method kc) or '
                "build the model with moe_mode='sparse'")
    if has(report.unused, (_DENSE_KEY,)) and has(report.missing, _SPARSE_KEYS):
        return ('; the file is a dense Swin V2 / RingMoE and the model sparse: '
                "build it with moe_mode='dense', or upcycle the file "
                '(tools/model_converters/swinv2_to_ringmoe.py)')
    return ''


def model_state_dict(checkpoint, source='checkpoint'):
    """The weights of a loaded checkpoint (``state_dict``, ``model`` or the
    file itself), ``module.`` wrapper kept (the fit strips it)."""
    if isinstance(checkpoint, dict):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), dict):
                return checkpoint[key]
        if any(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            return checkpoint
    raise CheckpointError(f'{source} holds no state dict (keys: '
                          f'{sorted(checkpoint)[:5] if isinstance(checkpoint, dict) else type(checkpoint).__name__})')


def load_pretrained(model, filename, prefix=None, map_location='cpu',
                    min_loaded=DEFAULT_MIN_LOADED):
    """Load ``filename`` into ``model`` as far as names and shapes fit,
    report the count and refuse a file that fills too little.

    Args:
        prefix (str, optional): take only the keys under it (mmengine's
            ``PretrainedInit(prefix=...)``), e.g. ``'backbone.'``.
        min_loaded (float, optional): least share of the model's parameter
            values to fill (default :data:`DEFAULT_MIN_LOADED`); ``None``
            only reports.

    Returns:
        LoadReport

    Raises:
        PretrainedLoadError: fewer values filled than ``min_loaded``.
    """
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location)
    state_dict = model_state_dict(checkpoint, filename)
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        if not any(k.startswith(prefix) for k in state_dict):
            raise PretrainedLoadError(f'{filename}: no key starts with the '
                                      f'prefix {prefix!r}')
        state_dict = _strip(state_dict, prefix)
    report = fit_state_dict(model, state_dict)
    check_report(report, filename, type(model).__name__, min_loaded)
    model.load_state_dict(report.state_dict, strict=False)
    return report


@WEIGHT_INITIALIZERS.register_module(name='Pretrained', force=True)
class CountedPretrainedInit(PretrainedInit):
    """mmengine's ``Pretrained`` initialiser that counts and refuses.

    mmengine's version loads with ``strict=False`` and only warns about
    mismatched keys, so a whole-model checkpoint (``backbone.*`` keys) given
    to a backbone loads nothing and training starts from random weights.
    This one (registered under the same name in mmengine's root registry, so
    every toolbox's ``init_cfg=dict(type='Pretrained', ...)`` uses it once
    mmringmoe is imported) strips one wrapping prefix when that fits better,
    logs ``loaded N/M parameter tensors ... (x%)`` and raises when less than
    ``min_loaded`` of the module's parameter values were filled.

    Args:
        checkpoint (str): file or URL.
        prefix (str, optional): load only the keys under this prefix.
        map_location (str): Defaults to 'cpu'.
        min_loaded (float, optional): Defaults to :data:`DEFAULT_MIN_LOADED`;
            ``None`` only reports.
    """

    def __init__(self, checkpoint=None, prefix=None, map_location='cpu',
                 min_loaded=DEFAULT_MIN_LOADED, **kwargs):
        if not checkpoint:
            raise PretrainedLoadError(
                "init_cfg=dict(type='Pretrained', ...) needs checkpoint= (a "
                'file, URL or sharded directory), got '
                f'{dict(checkpoint=checkpoint, prefix=prefix, **kwargs)}')
        if kwargs:
            raise PretrainedLoadError(
                "init_cfg=dict(type='Pretrained', ...) takes checkpoint, "
                f'prefix, map_location and min_loaded, not {sorted(kwargs)}')
        super().__init__(checkpoint, prefix=prefix, map_location=map_location)
        self.min_loaded = min_loaded

    def __call__(self, module):
        self.report = load_pretrained(module, self.checkpoint, self.prefix,
                                      self.map_location, self.min_loaded)

    def _get_init_info(self):
        return f'{self.__class__.__name__}: load from {self.checkpoint}'


def _rng_states():
    """This process's generator states: ``torch`` (CPU), ``numpy``
    (encoded), ``python`` and, where CUDA is initialised, ``cuda`` (one
    state per visible device)."""
    states = {'torch': torch.get_rng_state(),
              'numpy': encode(np.random.get_state()),
              'python': random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def _gather_rng_states():
    """Every rank's :func:`_rng_states`, in rank order.

    Collective (``torch.distributed.all_gather_object`` on the default
    process group): every rank must call it, or the job hangs.

    Returns:
        list[dict]: one entry per rank, ``world_size`` long.
    """
    import torch.distributed as dist
    # gathered as torch.save bytes: all_gather_object's own unpickling of
    # tensors fails in torch 2.14 ('UntypedStorage' has no attribute 'dtype')
    buf = io.BytesIO()
    torch.save(_rng_states(), buf)
    blobs = [None] * dist.get_world_size()
    dist.all_gather_object(blobs, buf.getvalue())
    return [torch.load(io.BytesIO(b), weights_only=True) for b in blobs]


def _set_rng_states(states):
    torch.set_rng_state(states['torch'])
    np.random.set_state(decode(states['numpy']))
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal), gauss))
    if 'cuda' in states and torch.cuda.is_available():
        if len(states['cuda']) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states['cuda'])


def rng_states_for_rank(meta, rank, world_size, source='checkpoint',
                        seed=None):
    """The generator states of ``meta`` that this rank resumes with.

    A checkpoint of a multi-process run holds ``meta['rng_states']``, one
    entry per saving rank; a single-process run (and mmringmoe before the
    per-rank states, which stored rank 0's) holds ``meta['rng_state']``.

    Args:
        meta (dict): the checkpoint's ``meta``.
        rank (int), world_size (int): of the resuming run.
        source (str): the checkpoint, named in the warning.
        seed (int, optional): the run's seed, named in the warning.

    Returns:
        dict | None: the states to restore, or None when the checkpoint
        holds none, or none that fits: saved on another number of processes
        (one warning line; the generators stay as mmengine's seeding left
        them, as mmengine itself resumes).
    """
    per_rank = meta.get('rng_states')
    if per_rank is not None:
        if len(per_rank) == world_size:
            return per_rank[rank]
        found = f'saved on {len(per_rank)} processes'
    else:
        single = meta.get('rng_state')
        if single is None:
            return None
        if world_size == 1:
            return single
        found = ('saved on 1 process (or on rank 0 only, by mmringmoe before '
                 'per-rank states)')
    seeded = 'the seed' if seed is None else f'the seed ({seed})'
    print_log(f'{source}: random number generator states were {found} and '
              f'this run has {world_size}: not restored, the generators go on '
              f'from {seeded} as mmengine seeded them, so dropout, drop path '
              'and router noise after the resume differ from an '
              'uninterrupted run', logger='current', level=30)
    return None


@HOOKS.register_module()
class WeightsOnlyCheckpointHook(Hook):
    """Writes checkpoints that ``torch.load(weights_only=True)`` accepts.

    Runs last before saving so that entries added by other hooks (EMA, ...)
    are converted too. It stores the random number generator states (torch,
    numpy, Python, CUDA where initialised) in ``meta``: ``rng_state`` in a
    single-process run; ``rng_states``, one entry per rank, in a
    multi-process one, gathered from every rank when ``runner.save_checkpoint``
    is called (which every rank must call, as mmengine's ``CheckpointHook``
    does: the gather is collective, also where only rank 0 writes the file).
    On ``--resume`` each rank restores its own states where the interrupted
    run stood: after the batches an iteration-based loop skips, or at the
    start of the epoch. Resumed on another number of processes, nothing is
    restored and one warning line says so (:func:`rng_states_for_rank`).

    On every load (``load_from``, ``--resume``, ``tools/test.py``'s
    checkpoint) it logs how many of the model's parameters the file fills,
    strips one wrapping prefix (``module.``, ``model.``, ``backbone.``) when
    that fits better, and raises :class:`PretrainedLoadError` when less than
    ``min_loaded`` (default :data:`DEFAULT_MIN_LOADED`; ``None`` only
    reports) of the parameter values would be filled.
    """
    priority = 'LOWEST'

    def __init__(self, restore_rng=True, min_loaded=DEFAULT_MIN_LOADED):
        self.restore_rng = restore_rng
        self.min_loaded = min_loaded
        self._pending_rng = None
        self._gathered = None

    def before_run(self, runner):
        if not self.restore_rng or get_world_size() == 1:
            return
        save = runner.save_checkpoint
        if getattr(save, '_gathers_rng_states', False):
            return
        hook = self

        # mmengine's Runner.save_checkpoint (and DDPStrategy's) runs on
        # rank 0 only (master_only), so before_save_checkpoint is not called
        # on the other ranks: gather where every rank still is
        @functools.wraps(save)
        def save_checkpoint(*args, **kwargs):
            hook._gathered = _gather_rng_states()
            try:
                return save(*args, **kwargs)
            finally:
                hook._gathered = None

        save_checkpoint._gathers_rng_states = True
        runner.save_checkpoint = save_checkpoint

    def before_save_checkpoint(self, runner, checkpoint):
        if self.restore_rng:
            meta = checkpoint.setdefault('meta', {})
            if get_world_size() == 1:
                meta['rng_state'] = _rng_states()
            elif self._gathered is not None:
                meta['rng_states'] = self._gathered
            else:
                print_log('checkpoint saved without runner.save_checkpoint: '
                          'the random number generator states of the ranks '
                          'are not stored', logger='current', level=30)
        for key in list(checkpoint):
            checkpoint[key] = encode(checkpoint[key], key)

    def after_load_checkpoint(self, runner, checkpoint):
        # our loader decodes already; this covers files loaded another way
        for key in list(checkpoint):
            checkpoint[key] = decode(checkpoint[key])
        self._fit_model(runner, checkpoint)
        if self.restore_rng and getattr(runner, '_resume', False):
            source = _resumed_path(runner)
            self._pending_rng = rng_states_for_rank(
                checkpoint.get('meta', {}), get_rank(), get_world_size(),
                source, getattr(runner, 'seed', None))

    def _fit_model(self, runner, checkpoint):
        model = runner.model
        if not _is_fsdp(model):
            model = getattr(model, 'module', model)  # DDP-style wrappers
        source = _resumed_path(runner)
        state_dict = model_state_dict(checkpoint, source)
        report = fit_state_dict(model, state_dict)
        check_report(report, source, type(model).__name__, self.min_loaded)
        # mmengine then loads checkpoint.get('state_dict', checkpoint): give
        # it the keys as the model names them
        if state_dict is checkpoint:
            if report.prefix:
                fitted = _strip(state_dict, report.prefix)
                checkpoint.clear()
                checkpoint.update(fitted)
        elif report.prefix or checkpoint.get('state_dict') is not state_dict:
            checkpoint['state_dict'] = _strip(state_dict, report.prefix)

    def before_train_epoch(self, runner):
        if self._pending_rng is None:
            return
        states, self._pending_rng = self._pending_rng, None
        loop = runner.train_loop
        # iteration-based loops (anything with a dataloader_iterator) skip
        skips = getattr(loop, '_iter', 0) \
            if hasattr(loop, 'dataloader_iterator') else 0
        if skips > 0:
            # the loop now re-reads the batches already trained on; the
            # interrupted run stood right after the last of them
            loop.dataloader_iterator = _RestoreAfter(loop, skips, states)
        else:
            _set_rng_states(states)


class _RestoreAfter:
    """Stands in for the loop's data iterator while it skips trained batches,
    and restores the random state once the last of them is read."""

    def __init__(self, loop, skips, states):
        self.loop, self.inner = loop, loop.dataloader_iterator
        self.left, self.states = skips, states

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.inner)
        self.left -= 1
        if self.left == 0:
            _set_rng_states(self.states)
            self.loop.dataloader_iterator = self.inner
        return batch

    def __getattr__(self, name):
        return getattr(self.inner, name)
