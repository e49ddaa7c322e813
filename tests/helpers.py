"""Run tools/train.py and tools/test.py in-process from tests.

Each run gets a unique experiment name (so loggers, message hubs and
visualizers of earlier runs in the same process are not reused) and its
loggers and visualizer are closed afterwards. tests/conftest.py hides GPUs, so
runs are on the CPU.
"""
import importlib.util
import os.path as osp
import uuid

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_CHANNELS = [32, 64, 128, 256]


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        f'_mmringmoe_tools_{name}', osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _options(config, cfg_options):
    stem = osp.splitext(osp.basename(str(config)))[0]
    options = dict(cfg_options or {})
    options.setdefault('experiment_name', f'{stem}_{uuid.uuid4().hex[:8]}')
    return options


def run_train(config, work_dir, cfg_options=None, extra_args=()):
    """``tools/train.py CONFIG --work-dir WORK_DIR *extra_args`` in-process.

    ``cfg_options`` maps dotted keys to values, merged like ``--cfg-options``.
    Errors propagate as exceptions (not ``SystemExit``) for readable failures.
    """
    tool = _tool('train')
    args = tool.parse_args([str(config), '--work-dir', str(work_dir),
                            *map(str, extra_args)])
    args.cfg_options = _options(config, cfg_options)
    tool.train(args)


def run_test(config, checkpoint, work_dir, cfg_options=None):
    """``tools/test.py CONFIG CHECKPOINT --work-dir WORK_DIR``; the metrics."""
    tool = _tool('test')
    args = tool.parse_args([str(config), str(checkpoint),
                            '--work-dir', str(work_dir)])
    args.cfg_options = _options(config, cfg_options)
    return tool.test(args)


def run_tool_main(name, argv):
    """``tools/<name>.py`` ``main(argv)``: its return value, or its exit code
    when it stops with ``error: ...``."""
    try:
        return _tool(name).main([str(a) for a in argv])
    except SystemExit as e:
        return e.code


def tiny_backbone(**overrides):
    """A CPU-sized ``mmringmoe.RingMoE`` config (stage widths TINY_CHANNELS)."""
    backbone = dict(
        type='mmringmoe.RingMoE',
        arch='tiny',
        modalities=('opt', ),
        moe_mode='sparse',
        pad_small_map=True,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.0,
        init_cfg=None)
    backbone.update(overrides)
    return backbone
