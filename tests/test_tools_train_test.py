"""tools/train.py and tools/test.py on a toy regression config: resume
bit-identity, weights-only checkpoints, one-line errors for bad input."""
import os.path as osp
import zipfile

import pytest
import torch

import toy_engine
from helpers import run_test, run_tool_main, run_train

CONFIG = osp.join(osp.dirname(__file__), 'toy_config.py')


class NotATensor:
    """Any pickled Python object that is not a tensor or a plain value."""

    def __init__(self, value=1):
        self.value = value


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    run_train(CONFIG, work_dir)
    return work_dir


def test_resume_is_bit_identical(uninterrupted, tmp_path):
    run_train(CONFIG, tmp_path, cfg_options={'train_cfg.max_iters': 2})
    assert osp.isfile(tmp_path / 'iter_2.pth')
    assert not osp.isfile(tmp_path / 'iter_4.pth')
    run_train(CONFIG, tmp_path, extra_args=['--resume'])
    resumed = _load(tmp_path / 'iter_4.pth')
    full = _load(uninterrupted / 'iter_4.pth')
    assert resumed['meta']['iter'] == full['meta']['iter'] == 4
    _assert_identical(resumed['state_dict'], full['state_dict'])
    for p, q in zip(resumed['optimizer']['state'].values(),
                    full['optimizer']['state'].values()):
        _assert_identical(p, q)
    # the weights did move between iteration 2 and 4
    half = _load(tmp_path / 'iter_2.pth')['state_dict']
    assert not torch.equal(half['net.0.weight'], full['state_dict']['net.0.weight'])


def test_resume_from_named_checkpoint(uninterrupted, tmp_path):
    run_train(CONFIG, tmp_path / 'a', cfg_options={'train_cfg.max_iters': 2})
    run_train(CONFIG, tmp_path / 'b',
              extra_args=['--resume', tmp_path / 'a' / 'iter_2.pth'])
    _assert_identical(_load(tmp_path / 'b' / 'iter_4.pth')['state_dict'],
                      _load(uninterrupted / 'iter_4.pth')['state_dict'])


def test_epoch_based_resume_is_bit_identical(tmp_path):
    cfg = tmp_path / 'epochs.py'
    cfg.write_text(
        f"_base_ = [{CONFIG!r}]\n"
        "train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', "
        "max_epochs=2, val_interval=1000)\n"
        "default_hooks = dict(checkpoint=dict(interval=1, by_epoch=True))\n")
    run_train(cfg, tmp_path / 'full')
    run_train(cfg, tmp_path / 'cut', cfg_options={'train_cfg.max_epochs': 1})
    run_train(cfg, tmp_path / 'cut', extra_args=['--resume'])
    _assert_identical(_load(tmp_path / 'cut' / 'epoch_2.pth')['state_dict'],
                      _load(tmp_path / 'full' / 'epoch_2.pth')['state_dict'])


def test_resume_without_rng_state_differs(uninterrupted, tmp_path):
    # The toy model has dropout: without the saved random state the resumed
    # run draws other masks, so the bit-identity test above can fail.
    hooks = [dict(type='mmringmoe.WeightsOnlyCheckpointHook', restore_rng=False)]
    run_train(CONFIG, tmp_path, cfg_options={'train_cfg.max_iters': 2,
                                             'custom_hooks': hooks})
    run_train(CONFIG, tmp_path, cfg_options={'custom_hooks': hooks},
              extra_args=['--resume'])
    a = _load(tmp_path / 'iter_4.pth')['state_dict']['net.0.weight']
    b = _load(uninterrupted / 'iter_4.pth')['state_dict']['net.0.weight']
    assert not torch.equal(a, b)


def test_own_checkpoints_are_weights_only(uninterrupted):
    path = str(uninterrupted / 'iter_2.pth')
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    ckpt = _load(path)
    assert set(ckpt) >= {'meta', 'state_dict', 'message_hub', 'optimizer',
                         'param_schedulers'}


def test_test_tool_returns_metrics(uninterrupted, tmp_path):
    ckpt = uninterrupted / 'iter_4.pth'
    metrics = run_test(CONFIG, ckpt, tmp_path)
    model = toy_engine.ToyRegressor()
    model.load_state_dict(_load(ckpt)['state_dict'])
    model.eval()
    data = toy_engine.ToyDataset()
    with torch.no_grad():
        expected = ((model(data.x) - data.y)**2).mean().item()
    assert metrics['mse'] == pytest.approx(expected, rel=1e-5)


def test_main_in_process_twice_keeps_logs_apart(tmp_path):
    opts = ['--cfg-options', 'train_cfg.max_iters=1', 'log_level=INFO']
    for name in ('a', 'b'):
        model = run_tool_main('train', [CONFIG, '--work-dir', tmp_path / name,
                                        *opts])
        assert isinstance(model, toy_engine.ToyRegressor)
    logs = {n: list((tmp_path / n).glob('*/*.log')) for n in ('a', 'b')}
    assert len(logs['a']) == len(logs['b']) == 1
    assert str(tmp_path / 'b') not in logs['a'][0].read_text()


def test_load_from_plain_weights(uninterrupted, tmp_path):
    weights = tmp_path / 'weights.pth'
    torch.save({'state_dict': _load(uninterrupted / 'iter_4.pth')['state_dict']},
               weights)
    run_train(CONFIG, tmp_path / 'run', cfg_options={
        'load_from': str(weights), 'train_cfg.max_iters': 1})


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err, 'no error printed'
    assert 'Traceback' not in '\n'.join(err)
    assert err[-1].startswith('error: ')
    return err[-1]


def test_load_from_pickled_object_is_refused(uninterrupted, tmp_path, capsys):
    bad = tmp_path / 'bad.pth'
    state = _load(uninterrupted / 'iter_4.pth')['state_dict']
    torch.save({'state_dict': state, 'meta': {'note': NotATensor()}}, bad)
    code = run_tool_main('train', [CONFIG, '--work-dir', tmp_path / 'run',
                                   '--cfg-options', f'load_from={bad}'])
    line = _error_line(capsys)
    assert code == 1
    assert 'refusing to load' in line and str(bad) in line
    assert 'NotATensor' in line and 'weights_only=True' in line


def test_unknown_mmringmoe_type(tmp_path, capsys):
    cfg = tmp_path / 'typo.py'
    cfg.write_text(f"_base_ = [{CONFIG!r}]\n"
                   "model = dict(type='mmringmoe.ToyRegresor')\n")
    code = run_tool_main('train', [cfg, '--work-dir', tmp_path / 'run'])
    line = _error_line(capsys)
    assert code == 1
    assert "unknown type 'mmringmoe.ToyRegresor' at model.type" in line
    assert "did you mean 'mmringmoe.ToyRegressor'" in line


def test_missing_config(tmp_path, capsys):
    missing = tmp_path / 'nope.py'
    for tool, argv in (('train', [missing]),
                       ('test', [missing, tmp_path / 'x.pth'])):
        assert run_tool_main(tool, argv) == 1
        line = _error_line(capsys)
        assert line == f'error: config file {missing} does not exist'


@pytest.mark.parametrize('kind', ['text', 'zip'])
def test_not_a_checkpoint(tmp_path, capsys, kind):
    fake = tmp_path / 'fake.pth'
    if kind == 'text':
        fake.write_text('these are not weights\n')
    else:
        with zipfile.ZipFile(fake, 'w') as z:
            z.writestr('readme.txt', 'not a torch archive')
    runs = [('test', [CONFIG, fake, '--work-dir', tmp_path / 't']),
            ('train', [CONFIG, '--work-dir', tmp_path / 'r', '--resume', fake]),
            ('train', [CONFIG, '--work-dir', tmp_path / 'l', '--cfg-options',
                       f'load_from={fake}'])]
    for tool, argv in runs:
        assert run_tool_main(tool, argv) == 1
        line = _error_line(capsys)
        assert f'{fake} is not a PyTorch checkpoint' in line, line


def test_unknown_unprefixed_type_and_amp_on_cpu(tmp_path, capsys):
    cfg = tmp_path / 'unknown.py'
    cfg.write_text(f"_base_ = [{CONFIG!r}]\nmodel = dict(type='NoSuchModel')\n")
    assert run_tool_main('train', [cfg, '--work-dir', tmp_path / 'run']) == 1
    assert 'NoSuchModel is not in the mmringmoe::model registry' in _error_line(capsys)
    if not torch.cuda.is_available():
        assert run_tool_main('train', [CONFIG, '--work-dir', tmp_path / 'amp',
                                       '--amp']) == 1
        assert _error_line(capsys) == 'error: --amp needs a GPU; none is visible'
