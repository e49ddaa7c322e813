"""mmengine's per-parameter ``paramwise_options`` INFO lines stay out of the
console at the default log level (issue 13 item 9); other INFO lines stay."""
import logging
import os.path as osp
import uuid

import pytest
from mmengine.logging import print_log

from mmringmoe.engine import cli

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = osp.join(ROOT, 'configs', 'pretrain',
                'simmim_ringmoe-tiny_4xb2-30iter_builtin-192px.py')


def _console_lines(tmp_path, capsys, log_level):
    cfg = cli.load_config(TINY, {
        'work_dir': str(tmp_path / log_level),
        'experiment_name': f'noise_{uuid.uuid4().hex[:8]}',
        'log_level': log_level})
    cli.import_scope(cfg)
    cli.scope_prefixed_types(cfg)
    runner = cli.build_runner(cfg)
    try:
        capsys.readouterr()
        # the optimizer-building path of runner.train()
        runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
        print_log('an ordinary INFO line', logger='current', level=logging.INFO)
        out = capsys.readouterr()
    finally:
        cli.release(runner)
    return (out.out + out.err).splitlines()


@pytest.mark.parametrize('log_level', ['INFO', 'DEBUG'])
def test_paramwise_options_lines_only_at_debug(tmp_path, capsys, log_level):
    lines = _console_lines(tmp_path, capsys, log_level)
    noise = [ln for ln in lines if 'paramwise_options --' in ln]
    assert any('an ordinary INFO line' in ln for ln in lines)
    if log_level == 'INFO':  # the configs' default
        assert noise == []
    else:  # still there for whoever asks for DEBUG
        assert len(noise) > 100


def test_filter_keeps_other_records():
    f = cli.DemoteParamwiseOptions()
    rec = logging.LogRecord('x', logging.INFO, __file__, 1,
                            'paramwise_options -- a.b:lr=1', None, None)
    assert f.filter(rec) and rec.levelno == logging.DEBUG
    other = logging.LogRecord('x', logging.INFO, __file__, 1, 'Epoch(train)',
                              None, None)
    assert f.filter(other) and other.levelno == logging.INFO
    warn = logging.LogRecord('x', logging.WARNING, __file__, 1,
                             'paramwise_options -- odd', None, None)
    assert f.filter(warn) and warn.levelno == logging.WARNING
