"""What ``tools/train.py`` and ``tools/test.py`` share: config loading, the
toolbox scope, input checks, one-line errors and cleanup after a run."""
import contextlib
import difflib
import importlib
import logging
import os
import os.path as osp
import sys

import argparse
import ast

from mmengine.config import Config, ConfigDict, DictAction

TOOLBOX_SCOPES = ('mmpretrain', 'mmseg', 'mmdet', 'mmrotate')
CHECKPOINT_HOOK = 'mmringmoe.WeightsOnlyCheckpointHook'


class UserError(Exception):
    """Bad input from the command line or the config: reported in one line."""


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` for ``--cfg-options KEY=VALUE ...`` that
    also reads ``dict(...)`` values and reports a value it cannot parse in
    argparse's one line (``error: argument --cfg-options: ...``, exit code 2)
    instead of a traceback.

    Values: mmengine's forms (``1``, ``a``, ``[1,2]``, ``(a,b)``, ``True``)
    and ``dict(type='Pretrained', checkpoint='x.pth')`` with keyword
    arguments that are Python literals or nested ``dict(...)``.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        options = dict(getattr(namespace, self.dest, None) or {})
        for kv in values or ():
            if '=' not in kv:
                raise argparse.ArgumentError(
                    self, f'{kv!r} is not KEY=VALUE')
            key, val = kv.split('=', maxsplit=1)
            try:
                if val.strip().startswith('dict('):
                    options[key] = _literal_dict_call(val.strip())
                else:
                    options[key] = self._parse_iterable(val)
            except (AssertionError, RecursionError, SyntaxError,
                    ValueError) as e:
                raise argparse.ArgumentError(
                    self, f'cannot read the value of {key}: {val!r} '
                    f'({type(e).__name__}{": " + str(e) if str(e) else ""}'
                    '); give numbers, strings, [lists], (tuples) or '
                    "dict(key=value, ...) with quoted strings, e.g. "
                    "\"model.backbone.init_cfg=dict(type='Pretrained', "
                    "checkpoint='x.pth')\"") from None
        setattr(namespace, self.dest, options)


def _literal_dict_call(text: str) -> dict:
    """``dict(a=1, b=dict(c='x'))`` -> ``{'a': 1, 'b': {'c': 'x'}}``;
    keyword arguments only, values Python literals or ``dict(...)``."""
    def convert(node):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == 'dict':
            if node.args or any(k.arg is None for k in node.keywords):
                raise ValueError('dict(...) takes key=value arguments only')
            return {k.arg: convert(k.value) for k in node.keywords}
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [convert(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        return ast.literal_eval(node)
    return convert(ast.parse(text, mode='eval').body)


def load_config(path, cfg_options=None):
    """A config read with mmengine's ``Config.fromfile``, with
    ``cfg_options`` (``--cfg-options``) merged in.

    A dotted key below a setting that is None in the config (``init_cfg=
    None``, then ``model.backbone.init_cfg.type=Pretrained`` or ``...
    init_cfg=dict(...)``) makes that setting a dict first: mmengine refuses
    to merge into None.

    Raises:
        UserError: the file is missing or unreadable, a custom import
            fails, or an option cannot be merged (one line).
    """
    if not osp.isfile(path):
        raise UserError(f'config file {path} does not exist')
    try:
        cfg = Config.fromfile(path)
    except ImportError as e:
        cause = e.__cause__ or e  # mmengine's message lists sys.path instead
        raise UserError(f'config {path}: custom_imports failed: '
                        f'{type(cause).__name__}: {_one_line(cause)}') from e
    except (SyntaxError, KeyError, FileNotFoundError) as e:
        raise UserError(f'cannot read config {path}: {_one_line(e)}') from e
    for key, value in (cfg_options or {}).items():  # in the given order
        _dicts_for_none(cfg, key, value)
        try:
            cfg.merge_from_dict({key: value})
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise UserError(f'--cfg-options {key}={value!r} cannot merge '
                            f'into {path}: {_one_line(e)}') from e
    return cfg


def _dicts_for_none(cfg, key: str, value):
    """Turn the None settings that ``key`` (dotted) goes through, or that
    a dict ``value`` replaces, into empty dicts (a list index is left to
    mmengine)."""
    node, parts = cfg._cfg_dict, key.split('.')
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            return
        last = i == len(parts) - 1
        if node[part] is None and (not last or isinstance(value, dict)):
            node[part] = ConfigDict()
        node = node[part]


def import_scope(cfg):
    """Register the modules of the config's toolbox and of mmringmoe.

    mmrotate's registries have no ``locations``, so the toolboxes are imported
    through their ``register_all_modules`` rather than left to lazy import.
    """
    scope = cfg.get('default_scope', None) or 'mmengine'
    importlib.import_module('mmringmoe')
    # toolboxes named by prefix (type='mmdet.X') are registered too
    prefixes = {name.split('.', 1)[0] for _, name in _types(cfg._cfg_dict, '')
                if isinstance(name, str) and '.' in name}
    for toolbox in TOOLBOX_SCOPES:
        if toolbox == scope or toolbox in prefixes:
            utils = importlib.import_module(f'{toolbox}.utils')
            utils.register_all_modules(init_default_scope=False)
    if scope not in TOOLBOX_SCOPES + ('mmringmoe', 'mmengine'):
        try:
            importlib.import_module(scope)
        except ImportError as e:
            raise UserError(f'default_scope {scope!r} names no importable '
                            f'package: {_one_line(e)}') from e
    return scope


def scope_prefixed_types(cfg):
    """In an ``mmringmoe``-scoped config, build ``type='mmseg.X'`` (and the
    other toolboxes) under that toolbox's scope.

    mmengine resolves a prefixed type, but the toolbox class then builds its
    own unprefixed parts (a head's ``CrossEntropyLoss``) in the *default*
    scope, where they do not exist. ``_scope_`` is mmengine's own way to
    switch the scope for one build and everything built inside it. Toolbox
    configs are left alone: there the toolbox classes already run in their
    scope, and mmrotate's ``type='mmdet.X'`` relies on that.
    """
    if cfg.get('default_scope', None) != 'mmringmoe':
        return
    scopes = TOOLBOX_SCOPES + ('mmringmoe', )

    def visit(node, current):
        if isinstance(node, dict):
            kind = node.get('type')
            if isinstance(kind, str) and '.' in kind:
                prefix = kind.split('.', 1)[0]
                if prefix in scopes and prefix != current:
                    node.setdefault('_scope_', prefix)
                    current = node['_scope_']
            for value in node.values():
                visit(value, current)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value, current)

    visit(cfg._cfg_dict, 'mmringmoe')


def check_mmringmoe_types(cfg):
    """Fail early, in one line, on a ``type='mmringmoe.X'`` nobody registered."""
    from mmringmoe import registry
    known = set()
    for value in vars(registry).values():
        if hasattr(value, 'module_dict') and value.scope == 'mmringmoe':
            known.update(value.module_dict)
    for where, name in _types(cfg._cfg_dict, ''):
        if isinstance(name, str) and name.startswith('mmringmoe.'):
            short = name.split('.', 1)[1]
            if short not in known:
                near = difflib.get_close_matches(short, sorted(known), n=1)
                hint = f" (did you mean 'mmringmoe.{near[0]}'?)" if near else ''
                raise UserError(
                    f"unknown type '{name}' at {where} in {cfg.filename}: "
                    f'no such class is registered in the mmringmoe scope{hint}')


def _types(node, where):
    if isinstance(node, dict):
        if 'type' in node:
            yield (f'{where}.type' if where else 'type'), node['type']
        for k, v in node.items():
            yield from _types(v, f'{where}.{k}' if where else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _types(v, f'{where}[{i}]')


def _nodes(node, where):
    """Every dict of a config tree with its dotted place."""
    if isinstance(node, dict):
        yield where, node
        for k, v in node.items():
            yield from _nodes(v, f'{where}.{k}' if where else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _nodes(v, f'{where}[{i}]')


def check_pretrained_paths(cfg):
    """Refuse, before any model is built, an ``init_cfg`` of type
    ``Pretrained`` whose local ``checkpoint`` does not exist (a URL is left
    to the loader): otherwise the run stops only when the model is
    initialised, after the environment and config dump.

    Raises:
        UserError: one line naming the config place and the path.
    """
    # the model only: configs also keep unused top-level variables (the
    # `backbone` of a _base_ backbone file) that a test or user replaced
    for where, node in _nodes(cfg._cfg_dict.get('model') or {}, 'model'):
        if str(node.get('type', '')).split('.')[-1] != 'Pretrained':
            continue
        ckpt = node.get('checkpoint')
        if not ckpt:
            raise UserError(f"{where}: init_cfg=dict(type='Pretrained', ...) "
                            'needs checkpoint= (a file, URL or sharded '
                            'directory)')
        if isinstance(ckpt, str) and '://' not in ckpt and \
                not osp.exists(osp.expanduser(ckpt)):
            raise UserError(f'{where}.checkpoint: {ckpt} does not exist')


def add_checkpoint_hook(cfg):
    hooks = list(cfg.get('custom_hooks', None) or [])
    names = {h.get('type') for h in hooks if isinstance(h, dict)}
    if not names & {CHECKPOINT_HOOK, 'WeightsOnlyCheckpointHook'}:
        hooks.append(ConfigDict(type=CHECKPOINT_HOOK))
    cfg.custom_hooks = hooks


INFERENCE_META_HOOK = 'mmringmoe.InferenceMetaHook'


def add_inference_meta_hook(cfg):
    """Add :class:`mmringmoe.InferenceMetaHook` to a training config that
    has a test pipeline, so every checkpoint it writes carries
    ``meta['inference']`` (modalities, band order, normalisation statistics,
    classes, palette, test crop) and ``tools/infer.py`` needs nothing else.
    Configs without a test pipeline (pretraining: nothing to map; toy
    datasets) are left as they are."""
    test_loader = cfg.get('test_dataloader') or {}
    dataset = test_loader.get('dataset', {}) if hasattr(
        test_loader, 'get') else {}
    if not ((hasattr(dataset, 'get') and dataset.get('pipeline'))
            or cfg.get('test_pipeline')):
        return
    import mmringmoe.apis  # noqa: F401  (registers the hook)
    hooks = list(cfg.get('custom_hooks', None) or [])
    names = {h.get('type') for h in hooks if isinstance(h, dict)}
    if not names & {INFERENCE_META_HOOK, 'InferenceMetaHook'}:
        hooks.append(ConfigDict(type=INFERENCE_META_HOOK))
    cfg.custom_hooks = hooks


class DemoteParamwiseOptions(logging.Filter):
    """Turns mmengine's ``paramwise_options -- <param>:<key>=<value>`` INFO
    records (one per parameter and matching ``custom_keys`` entry, written by
    ``DefaultOptimWrapperConstructor.add_params``: a few hundred before the
    first iteration) into DEBUG records, so that they reach the console and
    the log file only at ``log_level='DEBUG'``. Other records pass as they
    are."""

    PREFIX = 'paramwise_options -- '

    def filter(self, record):
        if record.levelno == logging.INFO and isinstance(record.msg, str) \
                and record.msg.startswith(self.PREFIX):
            record.levelno, record.levelname = logging.DEBUG, 'DEBUG'
        return True


def demote_paramwise_options(logger):
    """Install :class:`DemoteParamwiseOptions` on ``logger`` (once).

    A logger's filters run before its handlers compare the record's level
    with theirs, so the demoted records are dropped by INFO handlers."""
    if not any(isinstance(f, DemoteParamwiseOptions) for f in logger.filters):
        logger.addFilter(DemoteParamwiseOptions())
    return logger


def build_runner(cfg):
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    # the optimizer is built later, in runner.train()
    demote_paramwise_options(runner.logger)
    return runner


def release(runner):
    """Close what a finished run keeps open, so that runs in one process
    (tests, notebooks) do not share log files or visualizer backends."""
    if runner is None:
        return
    from mmengine.logging import MMLogger, MessageHub
    from mmengine.registry import DefaultScope
    from mmengine.visualization import Visualizer
    try:
        runner.visualizer.close()
    except Exception:  # noqa: BLE001 - closing is best effort
        pass
    logger = runner.logger
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)
    name = runner.experiment_name
    for manager in (MMLogger, MessageHub, Visualizer, DefaultScope):
        manager._instance_dict.pop(name, None)
    # The visualizer instance is named after the experiment too, but may have
    # been given its own name in the config.
    Visualizer._instance_dict.pop(getattr(runner.visualizer, 'instance_name',
                                          None), None)


def _one_line(err):
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args \
        else str(err)
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(err).__name__


def run_cli(fn, args):
    """Run ``fn(args)``; bad input ends with ``error: ...`` and exit code 1.

    ``MMRINGMOE_DEBUG=1`` shows the full traceback instead.

    A ``torch.distributed`` process group that ``fn`` opened (``--launcher
    pytorch``: mmengine's ``init_dist``, or a ``custom_imports`` module) is
    destroyed when ``fn`` returns or raises. mmengine never destroys it, and a
    gloo group left to the interpreter's exit can abort the process
    (``terminate called without an active exception``, SIGABRT: its worker
    threads still hold tensors while Python is torn down; pytorch/pytorch
    #190489), so that a finished ``torchrun`` job reports a failed rank. A
    group that was open before ``fn`` ran is left alone.
    """
    with _process_group_closed_after():
        if os.environ.get('MMRINGMOE_DEBUG', '0') == '1':
            return fn(args)
        return _run_one_line_errors(fn, args)


@contextlib.contextmanager
def _process_group_closed_after():
    import torch.distributed as dist
    opened_before = dist.is_available() and dist.is_initialized()
    try:
        yield
    finally:
        if not opened_before and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _run_one_line_errors(fn, args):
    from mmringmoe.engine.checkpoint import CheckpointError
    try:
        return fn(args)
    except (UserError, CheckpointError, FileNotFoundError) as e:
        _fail(_one_line(e))
    except KeyError as e:
        message = _one_line(e)
        if 'registry' in message or 'is not in the' in message:
            _fail(message)
        raise


def _fail(message):
    print(f'error: {message}', file=sys.stderr)
    raise SystemExit(1)
