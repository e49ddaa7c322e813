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
router noise as an uninterrupted one.
"""
import os.path as osp
import pickle
import random
import re
import zipfile
from collections import OrderedDict

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer, print_log
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
    """Cheap check before building a runner: a torch.save zip or a pickle."""
    filename = osp.expanduser(str(filename))
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
# this makes it explicit and turns its errors into one line.
@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename, map_location):
    return load_weights_only(filename, map_location)


def _rng_states():
    states = {'torch': torch.get_rng_state(),
              'numpy': encode(np.random.get_state()),
              'python': random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states):
    torch.set_rng_state(states['torch'])
    np.random.set_state(decode(states['numpy']))
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal), gauss))
    if 'cuda' in states and torch.cuda.is_available():
        if len(states['cuda']) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states['cuda'])


@HOOKS.register_module()
class WeightsOnlyCheckpointHook(Hook):
    """Writes checkpoints that ``torch.load(weights_only=True)`` accepts.

    Runs last before saving so that entries added by other hooks (EMA, ...)
    are converted too. On ``--resume`` of a single-process run it restores
    the random number generators where the interrupted run stood: after the
    batches an iteration-based loop skips, or at the start of the epoch.
    """
    priority = 'LOWEST'

    def __init__(self, restore_rng=True):
        self.restore_rng = restore_rng
        self._pending_rng = None

    def before_save_checkpoint(self, runner, checkpoint):
        if self.restore_rng:
            checkpoint.setdefault('meta', {})['rng_state'] = _rng_states()
        for key in list(checkpoint):
            checkpoint[key] = encode(checkpoint[key], key)

    def after_load_checkpoint(self, runner, checkpoint):
        # our loader decodes already; this covers files loaded another way
        for key in list(checkpoint):
            checkpoint[key] = decode(checkpoint[key])
        rng = checkpoint.get('meta', {}).get('rng_state')
        if (self.restore_rng and rng is not None
                and getattr(runner, '_resume', False)
                and get_world_size() == 1):
            self._pending_rng = rng

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
