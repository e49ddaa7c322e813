"""``--cfg-options`` of tools/train.py, test.py and the analysis tools (found
by a new-user trial): ``dict(...)`` values ended in a 42-line RecursionError
traceback inside mmengine's parser, and a key below a setting that is None
in the config (``init_cfg=None``) in a TypeError traceback."""
import argparse

import pytest

from helpers import ROOT, run_tool_main
from mmringmoe.engine.cli import CfgOptionsAction, UserError, load_config

SEG = (f'{ROOT}/configs/segmentation/'
       'upernet_ringmoe-tiny_1xb4-200iter_builtin-seg-64x64.py')


def _parse(*values):
    p = argparse.ArgumentParser(prog='t')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return p.parse_args(['--cfg-options', *values]).cfg_options


def test_values_against_mmengines_parser():
    """mmengine's own forms give what mmengine's DictAction gives; dict(...)
    gives the dict Python would build."""
    from mmengine.config import DictAction
    plain = ['a=1', 'b=x', 'c=[1,2]', 'd=(a,b)', 'e=True', 'f=1.5']
    ref = argparse.ArgumentParser()
    ref.add_argument('--o', nargs='+', action=DictAction)
    assert _parse(*plain) == ref.parse_args(['--o', *plain]).o
    got = _parse("m.init_cfg=dict(type='Pretrained', checkpoint='/x y.pth', "
                 "prefix=None, size=[1, 2], sub=dict(k=-3, t=(1, 'a')))")
    assert got == {'m.init_cfg': dict(
        type='Pretrained', checkpoint='/x y.pth', prefix=None, size=[1, 2],
        sub=dict(k=-3, t=(1, 'a')))}


@pytest.mark.parametrize('value', [
    "x=dict(type='A', 1)", 'x=dict(**y)', 'x=dict(a=open)',
    "x=dict(type='A'", 'novalue'])
def test_unreadable_values_are_one_argparse_line(value, capsys):
    with pytest.raises(SystemExit) as e:
        _parse(value)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('t: error: argument --cfg-options: ')
    assert len(err) == 2  # usage, then the one line


def test_keys_below_a_none_setting_make_it_a_dict():
    cfg = load_config(SEG)
    assert cfg.model.backbone.init_cfg is None
    cfg = load_config(SEG, {'model.backbone.init_cfg.type': 'Pretrained',
                            'model.backbone.init_cfg.checkpoint': 'a.pth'})
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint='a.pth')
    cfg = load_config(SEG, {'model.backbone.init_cfg': dict(
        type='Pretrained', checkpoint='b.pth')})
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint='b.pth')
    # a None set to a plain value stays mmengine's plain assignment
    cfg = load_config(SEG, {'model.backbone.init_cfg': None})
    assert cfg.model.backbone.init_cfg is None


def test_option_that_cannot_merge_is_one_line():
    # a dict into a list-valued setting: mmengine refuses to merge
    with pytest.raises(UserError, match=r"^--cfg-options model.backbone."
                       r"out_indices=\{'a': 1\} cannot merge into .*builtin"):
        load_config(SEG, {'train_cfg.max_iters': 3,
                          'model.backbone.out_indices': dict(a=1)})
    with pytest.raises(UserError, match=r'^--cfg-options train_cfg.max_iters'
                       r".foo=1 cannot merge .*of type <class 'int'> in base"):
        load_config(SEG, {'train_cfg.max_iters.foo': 1})


def test_train_cli_takes_a_dict_value(tmp_path, capsys):
    """The trial's command: exit 1 with the one-line 'does not exist' of the
    checkpoint it names (the option was read and merged), no traceback."""
    code = run_tool_main('train', [
        SEG, '--work-dir', tmp_path / 'w', '--cfg-options',
        "model.backbone.init_cfg=dict(type='Pretrained', "
        f"checkpoint='{tmp_path}/missing.pth')", 'train_cfg.max_iters=1'])
    err = capsys.readouterr().err
    assert code == 1, err[-2000:]
    assert 'Traceback' not in err
    # refused before the runner is built (no environment dump first)
    assert [ln for ln in err.splitlines() if ln.startswith('error:')] == [
        f'error: model.backbone.init_cfg.checkpoint: {tmp_path}/missing.pth '
        'does not exist']
    assert not (tmp_path / 'w').exists()


def test_pretrained_without_checkpoint_is_one_line(tmp_path, capsys):
    """init_cfg.type=Pretrained alone (the None init_cfg made a dict) ended
    in mmengine's TypeError traceback once the runner initialised."""
    code = run_tool_main('train', [
        SEG, '--work-dir', tmp_path / 'w', '--cfg-options',
        'model.backbone.init_cfg.type=Pretrained', 'train_cfg.max_iters=1'])
    err = capsys.readouterr().err
    assert code == 1 and 'Traceback' not in err
    line = [ln for ln in err.splitlines() if ln.startswith('error:')][0]
    assert "init_cfg=dict(type='Pretrained', ...) needs checkpoint=" in line
