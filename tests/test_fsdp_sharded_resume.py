"""``tools/train.py --resume`` (no value: the latest checkpoint of the work
directory) with ``runner_type='FlexibleRunner'`` and
``mmringmoe.ShardedMetaInitFSDPStrategy``, end to end on CPU (gloo), and what
a sharded checkpoint keeps besides the weights and AdamW moments: the optim
wrapper's own state (AMP loss scaler, ``base_param_settings``), parameter
schedulers, message hub and iteration (issue 15).

The end-to-end runs (tests/fsdp_runner_toy.py: tiny 2-modality RingMoE
regressor, AdamW with one parameter group per parameter, LinearLR):

- A: 2 processes, 4 iterations, uninterrupted (the reference);
- B: 2 processes, the same config stopped after 2 iterations: a sharded
  checkpoint ``iter_2.pth/`` and ``last_checkpoint`` naming it;
- then ``tools/train.py CONFIG --resume`` in a copy of B's work directory on 1
  process and on 2: iterations 3 and 4 (B and the resumed runs keep one
  checkpoint: ``iter_2.pth/`` is removed when ``iter_4.pth/`` is saved).

Every iteration uses the same global batch of 2 samples (DefaultSampler:
rank r takes the r-th of each pair; one rank with batch 2 takes both in the
same order). The model runs each sample by itself and averages: on 2 ranks
FSDP averages the ranks' gradients (g0/2 + g1/2, each halved before the
reduce-scatter), on 1 rank the loss (l0 + l1)/2 gives g0/2 + g1/2 too (the
factor 1/2 is exact in floating point and each sample's gradient is summed
alone, see fsdp_runner_toy.py), and nothing draws random numbers after
initialisation. So the losses of iterations 3-4 must be bitwise equal to A's,
which only holds if weights, AdamW moments and step counts, the learning
rates of the scheduler and the data position were all restored.
"""
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys

import pytest
import torch

from helpers import ROOT
from mmringmoe.engine.checkpoint import load_weights_only

TESTS = osp.dirname(osp.abspath(__file__))

CONFIG = '''
default_scope = 'mmringmoe'
custom_imports = dict(imports=['mmringmoe', 'fsdp_runner_toy'],
                      allow_failed_imports=False)
model = dict(type='ShardedToyRegressor')
train_dataloader = dict(
    batch_size=1, num_workers=0, dataset=dict(type='ShardedToyData', length=16),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4)
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05, foreach=False),
    paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                        begin=0, end=4)]
runner_type = 'FlexibleRunner'
strategy = dict(
    type='mmringmoe.ShardedMetaInitFSDPStrategy',
    model_wrapper=dict(auto_wrap_policy='toy_wrap_policy',
                       use_orig_params=True))
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False))
custom_hooks = [dict(type='DumpGlobalLoss')]
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
log_level = 'WARNING'
'''


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _train(tmp_path, nproc, work_dir, *extra, config=None):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(
                   [TESTS, ROOT, os.environ.get('PYTHONPATH', '')]))
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
           str(nproc), '--master_addr', '127.0.0.1', '--master_port',
           str(_free_port()), osp.join(ROOT, 'tools', 'train.py'),
           config or str(tmp_path / 'toy_fsdp.py'), '--launcher', 'pytorch',
           '--work-dir', str(work_dir), *extra]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _rows(work_dir):
    with open(osp.join(work_dir, 'losses.jsonl')) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_resume_without_a_path_continues_exactly_on_1_and_2_processes(
        tmp_path):
    (tmp_path / 'toy_fsdp.py').write_text(CONFIG)
    ref_dir, stop_dir = tmp_path / 'A', tmp_path / 'B'
    _train(tmp_path, 2, ref_dir)
    ref = _rows(ref_dir)
    assert [r['iter'] for r in ref] == [1, 2, 3, 4]
    assert len({r['loss'] for r in ref}) == 4
    assert ref[0]['base_lr'] is not None  # one group per parameter
    ref_final = _model_tensors(ref_dir / 'iter_4.pth')
    ref_hub = load_weights_only(ref_dir / 'iter_4.pth' / 'extra.pth')[
        'message_hub']['log_scalars']
    assert len(ref_final) > 50
    assert not torch.equal(ref_final['sample.head.weight'], _model_tensors(
        ref_dir / 'iter_2.pth')['sample.head.weight'])

    keep1 = 'default_hooks.checkpoint.max_keep_ckpts=1'
    _train(tmp_path, 2, stop_dir, '--cfg-options', 'train_cfg.max_iters=2',
           keep1)
    ckpt = stop_dir / 'iter_2.pth'
    assert sorted(os.listdir(ckpt)) == [
        '.metadata', '__0_0.distcp', '__1_0.distcp', 'extra.pth']
    assert (stop_dir / 'last_checkpoint').read_text().strip() == str(ckpt)
    assert _rows(stop_dir) == ref[:2]

    for nproc in (1, 2):
        # a copy of the interrupted work directory; its last_checkpoint
        # names the copy's own iter_2.pth, as mmengine would have written it
        work = tmp_path / f'resume{nproc}'
        shutil.copytree(stop_dir, work)
        (work / 'last_checkpoint').write_text(str(work / 'iter_2.pth'))
        os.remove(work / 'losses.jsonl')
        extra = ['--resume', '--cfg-options', keep1]
        if nproc == 1:
            extra += ['train_dataloader.batch_size=2']
        _train(tmp_path, nproc, work, *extra)
        got = _rows(work)
        # the iteration counter continues at 3
        assert [r['iter'] for r in got] == [3, 4], (nproc, got)
        for r, want in zip(got, ref[2:]):
            assert r['world_size'] == nproc
            for key in ('loss', 'lr', 'base_lr'):
                assert r[key] == want[key], (nproc, key, got, ref[2:])
        # and the resumed run saves iter_4.pth, sharded on its own ranks,
        # holding the reference's final weights
        names = sorted(os.listdir(work / 'iter_4.pth'))
        assert names == ['.metadata', *[f'__{i}_0.distcp' for i in range(nproc)],
                         'extra.pth']
        assert (work / 'last_checkpoint').read_text().strip() == \
            str(work / 'iter_4.pth')
        # max_keep_ckpts=1: the checkpoint ids kept went on from the
        # restored message hub, and the directory iter_2.pth was removed
        assert not (work / 'iter_2.pth').exists()
        final = _model_tensors(work / 'iter_4.pth')
        assert final.keys() == ref_final.keys()
        for k, v in ref_final.items():
            assert torch.equal(final[k], v), (nproc, k)
        # the message hub went on from the restored one: iterations 1-2 of
        # the interrupted run, then 3-4 ('train/loss' is rank 0's own loss,
        # the mean of both samples on 1 process)
        hub = load_weights_only(work / 'iter_4.pth' / 'extra.pth')[
            'message_hub']['log_scalars']
        assert list(hub['train/base_lr']._log_history) == \
            list(ref_hub['train/base_lr']._log_history)
        losses = list(hub['train/loss']._log_history)
        want = list(ref_hub['train/loss']._log_history)
        assert len(losses) == 4 and losses[:2] == want[:2]
        if nproc == 2:
            assert losses == want
        else:
            assert losses[2:] == [r['loss'] for r in ref[2:]]


@pytest.mark.slow
def test_load_from_a_sharded_directory_loads_the_weights_only(tmp_path):
    """``load_from`` of a sharded directory (written by 2 processes after
    iteration 2) with the sharded strategy on 1 and on 2 processes, and with
    mmengine's plain ``Runner`` (one process, no runner_type): the weights
    only, so the iteration count, the optimizer and the schedulers start
    anew. Reference: runs given the same weights as one file (every
    ``model.*`` tensor of the directory, read by ``torch.distributed.
    checkpoint`` in this process), with ``state_dict_cfg`` 'local' (the
    default; mmengine would look for ``<file>/rank<r>.pth``) and 'full'.
    Losses, learning rates and the weights after 2 iterations must be
    bitwise equal (the toy gives the same numbers on 1 and 2 processes)."""
    (tmp_path / 'toy_fsdp.py').write_text(CONFIG)
    stop = ['--cfg-options', 'train_cfg.max_iters=2']
    _train(tmp_path, 2, tmp_path / 'A', *stop)
    saved = tmp_path / 'A' / 'iter_2.pth'
    fresh = _rows(tmp_path / 'A')
    single = tmp_path / 'weights.pth'
    torch.save({'state_dict': _model_tensors(saved)}, single)

    runs = {
        'dir2': (2, [f'load_from={saved}']),
        'dir1': (1, [f'load_from={saved}', 'train_dataloader.batch_size=2']),
        'file2': (2, [f'load_from={single}']),
        'file2_full': (2, [f'load_from={single}',
                           'strategy.state_dict_cfg=full']),
    }
    for name, (nproc, options) in runs.items():
        _train(tmp_path, nproc, tmp_path / name, *stop, *options)
    # mmengine's plain Runner, one process, no torchrun
    plain = tmp_path / 'plain.py'
    plain.write_text(CONFIG.replace("runner_type = 'FlexibleRunner'", '').split(
        'strategy = dict(')[0] + 'default_hooks' + CONFIG.split(
        'default_hooks', 1)[1])
    assert 'strategy' not in plain.read_text().replace('DumpGlobalLoss', '')
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(
                   [TESTS, ROOT, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'train.py'), str(plain),
         '--work-dir', str(tmp_path / 'plain'), *stop, f'load_from={saved}',
         'train_dataloader.batch_size=2'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    want = [{k: v for k, v in r.items() if k != 'world_size'}
            for r in _rows(tmp_path / 'file2')]
    assert [r['iter'] for r in want] == [1, 2]  # the count starts at 0
    # the weights were loaded: not the run from its own initialisation
    assert want[0]['loss'] != fresh[0]['loss']
    # ... and the schedulers started anew
    assert [r['lr'] for r in want] == [r['lr'] for r in fresh]
    ref_final = _model_tensors(tmp_path / 'file2' / 'iter_2.pth')
    for name in ('dir2', 'dir1', 'file2_full', 'plain'):
        got = [{k: v for k, v in r.items() if k != 'world_size'}
               for r in _rows(tmp_path / name)]
        assert got == want, (name, got, want)
        if name == 'plain':
            final = {k: v for k, v in load_weights_only(
                tmp_path / name / 'iter_2.pth')['state_dict'].items()
                if k in ref_final}
        else:
            final = _model_tensors(tmp_path / name / 'iter_2.pth')
        assert final.keys() == ref_final.keys(), name
        for k, v in ref_final.items():
            assert torch.equal(final[k], v), (name, k)
    # the optimizer was not loaded: AdamW counted this run's 2 steps only
    # (4 had the saved state of iterations 1-2 been restored)
    steps = _optimizer_steps(tmp_path / 'dir2' / 'iter_2.pth')
    assert steps and set(steps) == {2.0}, steps


def _optimizer_steps(path):
    """AdamW's step counts in a sharded checkpoint (one process)."""
    import torch.distributed.checkpoint as dcp

    from mmringmoe.engine.dist_checkpoint import (SafeFileSystemReader,
                                                  read_metadata)
    md = read_metadata(path).state_dict_metadata
    keys = [k for k in md if k.startswith('optimizer.state.')
            and k.endswith('.step')]
    out = {k: torch.empty(md[k].size, dtype=md[k].properties.dtype)
           for k in keys}
    dcp.load(out, storage_reader=SafeFileSystemReader(str(path)),
             no_dist=True)
    return [float(v) for v in out.values()]


def _model_tensors(path):
    """Every ``model.*`` tensor of a sharded checkpoint at its global shape
    (one process, no process group)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    from mmringmoe.engine.dist_checkpoint import (SafeFileSystemReader,
                                                  read_metadata)
    md = read_metadata(path)
    out = {k[len('model.'):]: torch.empty(v.size, dtype=v.properties.dtype)
           for k, v in md.state_dict_metadata.items()
           if k.startswith('model.') and isinstance(v, TensorStorageMetadata)}
    dcp.load({'model': out}, storage_reader=SafeFileSystemReader(str(path)),
             no_dist=True)
    return out


# --------------------------------------------------------------------------
# the optim wrapper's own state (one process, no process group)

def _amp_wrapper(monkeypatch, model, **loss_scale):
    """mmengine's ``AmpOptimWrapper`` as the FSDP strategy builds it
    (``use_fsdp=True``: a ``ShardedGradScaler``), on the CPU. mmengine
    refuses to build it without a GPU (an assert on
    ``is_cuda_available``), so that check is patched; the scaler itself is
    torch's and is given ``device='cpu'`` (torch >= 2.3 scales on the CPU)."""
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp
    from mmengine.optim import AmpOptimWrapper
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    return AmpOptimWrapper(optimizer=_adamw(model), use_fsdp=True,
                           loss_scale=dict(device='cpu', **loss_scale))


def _adamw(model):
    """AdamW with two parameter groups (mmengine then keeps
    ``base_param_settings``)."""
    groups = [dict(params=[model.weight]),
              dict(params=[model.bias], weight_decay=0.)]
    return torch.optim.AdamW(groups, lr=1e-3, weight_decay=0.05)


def _same(a, b, where='state'):
    """Deep equality of two state dicts (tensors bitwise)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (where, a, b)
        for k in a:
            _same(a[k], b[k], f'{where}.{k}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f'{where}[{i}]')
    elif torch.is_tensor(a):
        assert torch.equal(a, b), where
    else:
        assert a == b, (where, a, b)


def test_amp_loss_scaler_and_base_lr_round_trip(tmp_path, monkeypatch):
    """What a plain mmengine checkpoint keeps of an ``AmpOptimWrapper``
    (its ``state_dict()``: AdamW state and param_groups, ``loss_scaler``,
    ``base_param_settings``) comes back from a sharded checkpoint: the
    reference is the saved wrapper's own ``state_dict()``."""
    from mmringmoe.engine.dist_checkpoint import load_sharded, save_sharded
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    saved = _amp_wrapper(monkeypatch, model, init_scale=2.**10)
    # explicit values, none of them a default
    scaler = {'scale': 2.**13, 'growth_factor': 3.0, 'backoff_factor': 0.25,
              'growth_interval': 7, '_growth_tracker': 5}
    saved.loss_scaler.load_state_dict(scaler)
    assert saved.base_param_settings is not None  # two parameter groups
    saved.base_param_settings.update(lr=4.2e-4, initial_lr=1e-3)
    for group, lr in zip(saved.optimizer.param_groups, (3e-4, 2e-4)):
        group.update(lr=lr, initial_lr=1e-3)
    model(torch.randn(5, 4)).sum().backward()
    saved.optimizer.step()  # AdamW moments and step counts
    want = saved.state_dict()
    assert want['loss_scaler'] == scaler

    ckpt = tmp_path / 'iter_1.pth'
    save_sharded(str(ckpt), model, saved, extra={'meta': {'iter': 1}})
    assert load_weights_only(ckpt / 'extra.pth')['optim_wrapper'] == {
        'loss_scaler': scaler,
        'base_param_settings': want['base_param_settings']}

    torch.manual_seed(1)
    model2 = torch.nn.Linear(4, 3)
    fresh = _amp_wrapper(monkeypatch, model2)  # scale 2**16, tracker 0
    assert fresh.state_dict()['loss_scaler'] != scaler
    load_sharded(str(ckpt), model2, fresh)
    got = fresh.state_dict()
    _same(got, want)
    assert fresh.get_lr() == {'base_lr': [4.2e-4], 'lr': [3e-4, 2e-4]}
    for k, v in model.state_dict().items():
        assert torch.equal(model2.state_dict()[k], v), k


def test_loss_scaler_state_without_amp_and_amp_without_state(tmp_path,
                                                             monkeypatch):
    """An AMP checkpoint resumed without AMP (plain ``OptimWrapper``: no
    scaler to take the state) loads the rest and says what it left; a
    checkpoint without scaler state leaves a new run's scaler as built."""
    from mmengine.logging import MMLogger
    from mmengine.optim import OptimWrapper

    from mmringmoe.engine.dist_checkpoint import load_sharded, save_sharded
    model = torch.nn.Linear(4, 3)
    amp = _amp_wrapper(monkeypatch, model, init_scale=2.**5)
    save_sharded(str(tmp_path / 'amp'), model, amp)
    save_sharded(str(tmp_path / 'plain'), model, OptimWrapper(_adamw(model)))

    logged = []
    logger = MMLogger.get_current_instance()
    monkeypatch.setattr(logger, 'warning', logged.append)
    monkeypatch.setattr(logger, 'log', lambda level, msg, *a, **k:
                        logged.append(msg))
    load_sharded(str(tmp_path / 'amp'), model, OptimWrapper(_adamw(model)))
    assert any('loss-scaler state (scale 32.0)' in m and 'not restored' in m
               for m in logged), logged
    fresh = _amp_wrapper(monkeypatch, model, init_scale=2.**7)
    logged.clear()
    load_sharded(str(tmp_path / 'plain'), model, fresh)
    assert fresh.loss_scaler.state_dict()['scale'] == 2.**7
    assert any('no AMP loss-scaler state' in m for m in logged), logged


def test_wrapper_state_it_cannot_restore_is_refused_at_save(tmp_path):
    from mmengine.optim import OptimWrapper, OptimWrapperDict

    from mmringmoe.engine.dist_checkpoint import save_sharded

    class ApexLike(OptimWrapper):
        def state_dict(self):
            return dict(super().state_dict(), amp={'loss_scaler0': 1.0})

    model = torch.nn.Linear(2, 2)
    opt = ApexLike(torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(NotImplementedError, match=r"ApexLike.state_dict\(\) "
                       r"holds \['amp'\]"):
        save_sharded(str(tmp_path / 'a'), model, opt)
    both = OptimWrapperDict(a=OptimWrapper(torch.optim.SGD(
        model.parameters(), lr=0.1)))
    with pytest.raises(NotImplementedError, match='one optimizer'):
        save_sharded(str(tmp_path / 'b'), model, both)
    assert not (tmp_path / 'a').exists() and not (tmp_path / 'b').exists()


# --------------------------------------------------------------------------
# refusals in one line: the checkpoint directory, and checkpoint vs config

def _sharded(tmp_path, name='iter_1.pth'):
    from mmengine.optim import OptimWrapper

    from mmringmoe.engine.dist_checkpoint import save_sharded
    model = torch.nn.Linear(4, 3)
    path = tmp_path / name
    save_sharded(str(path), model, OptimWrapper(_adamw(model)),
                 extra={'meta': {'iter': 1, 'epoch': 0}})
    return path


class _Mkdir:
    """Unpickling this calls os.mkdir(path): what a crafted .metadata could
    run under torch's own reader (a full pickle.load)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path, ))


def test_bad_sharded_directories_are_refused_in_one_line(tmp_path):
    import pickle

    from mmringmoe.engine.checkpoint import CheckpointError
    from mmringmoe.engine.dist_checkpoint import read_metadata
    good = _sharded(tmp_path)
    assert len(read_metadata(good).state_dict_metadata) > 4

    def broken(name, change):
        path = tmp_path / name
        shutil.copytree(good, path)
        change(path)
        return str(path)

    path = broken('no_meta', lambda p: os.remove(p / '.metadata'))
    with pytest.raises(FileNotFoundError,
                       match=f'{path}: expected a sharded checkpoint directory '
                       r'\(with \.metadata.*found a directory without'):
        read_metadata(path)

    def truncate(p, name, keep):
        data = (p / name).read_bytes()
        (p / name).write_bytes(data[:keep])

    for name, change in [
            ('cut_meta', lambda p: truncate(p, '.metadata', 40)),
            ('text_meta', lambda p: (p / '.metadata').write_text('hello'))]:
        path = broken(name, change)
        with pytest.raises(CheckpointError,
                           match=rf'{path}/\.metadata cannot be read \(\w+'
                           r'.*\); expected the metadata file that torch'):
            read_metadata(path)

    marker = tmp_path / 'ran'
    path = broken('evil_meta', lambda p: (p / '.metadata').write_bytes(
        pickle.dumps(_Mkdir(str(marker)))))
    with pytest.raises(CheckpointError, match=r'names posix\.mkdir, which is '
                       'not part of torch.distributed.checkpoint metadata'):
        read_metadata(path)
    assert not marker.exists()  # nothing in the file ran

    path = broken('no_shard', lambda p: os.remove(p / '__0_0.distcp'))
    with pytest.raises(CheckpointError, match=r'names shard files that are '
                       r'missing \(__0_0\.distcp\); expected all 1'):
        read_metadata(path)
    size = os.path.getsize(good / '__0_0.distcp')
    path = broken('cut_shard', lambda p: truncate(p, '__0_0.distcp', 100))
    with pytest.raises(CheckpointError, match=r'shard file __0_0\.distcp has '
                       rf'100 bytes, \.metadata expects at least {size}'):
        read_metadata(path)


def _cli_error(capsys, argv):
    from helpers import _tool
    with pytest.raises(SystemExit) as e:
        _tool('train').main([str(a) for a in argv])
    assert e.value.code == 1
    lines = [ln for ln in capsys.readouterr().err.splitlines()
             if ln.startswith('error: ')]
    assert len(lines) == 1, lines
    return lines[0]


def test_checkpoint_and_strategy_must_match(tmp_path, capsys):
    """``--resume PATH`` / ``load_from``: a sharded directory needs a
    sharded strategy, a sharded strategy resumes only directories, and a
    broken directory is named before any runner is built."""
    sharded_cfg = tmp_path / 'toy_fsdp.py'
    sharded_cfg.write_text(CONFIG)
    plain_cfg = osp.join(TESTS, 'toy_config.py')
    good = _sharded(tmp_path)
    single = tmp_path / 'single.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}}, single)
    work = ['--work-dir', tmp_path / 'work']

    line = _cli_error(capsys, [plain_cfg, '--resume', good, *work])
    assert line == (
        f'error: {good} is a sharded checkpoint directory (torch.distributed.'
        f'checkpoint), but {plain_cfg} uses mmengine.Runner (no runner_type);'
        " resuming it needs runner_type='FlexibleRunner' with strategy "
        "'mmringmoe.ShardedMetaInitFSDPStrategy' (as load_from, any runner "
        'takes its weights)')
    # as load_from it gets past the check to the runner, whose load counts
    # what it fills: the Linear(4, 3) saved here fits nothing of the toy
    line = _cli_error(capsys, [plain_cfg, '--cfg-options',
                               f'load_from={good}', *work])
    assert line.startswith(f'error: {good} fills only 0.0% of the parameters'
                           ' of ToyRegressor'), line
    shutil.rmtree(tmp_path / 'work')

    line = _cli_error(capsys, [sharded_cfg, '--resume', single, *work])
    assert line == (
        f'error: {single} is a single-file checkpoint, but the strategy of '
        f'{sharded_cfg} resumes only the sharded checkpoint directories it '
        'writes (.metadata, *.distcp, extra.pth); start from its weights '
        'with load_from, or resume it with the config that wrote it')

    empty = tmp_path / 'iter_9.pth'
    empty.mkdir()
    line = _cli_error(capsys, [sharded_cfg, '--resume', empty, *work])
    assert line == (f'error: {empty}: expected a sharded checkpoint directory'
                    ' (with .metadata, written by torch.distributed.'
                    'checkpoint), found a directory without .metadata')
    (empty / '.metadata').write_bytes(b'\x80\x04not a pickle')
    line = _cli_error(capsys, [sharded_cfg, '--resume', empty, *work])
    assert line.startswith(f'error: {empty}/.metadata cannot be read (')

    no_extra = tmp_path / 'no_extra'
    shutil.copytree(good, no_extra)
    os.remove(no_extra / 'extra.pth')
    line = _cli_error(capsys, [sharded_cfg, '--resume', no_extra, *work])
    assert line.startswith(f'error: {no_extra} has no extra.pth (')
    assert not (tmp_path / 'work').exists()  # refused before the runner

    # what is accepted: a sharded directory or a file as load_from, and a
    # complete directory for --resume
    from mmengine.config import Config

    from mmringmoe.engine.dist_checkpoint import check_checkpoint_for_config
    cfg = Config.fromfile(str(sharded_cfg))
    check_checkpoint_for_config(str(good), cfg, resume=True)
    check_checkpoint_for_config(str(single), cfg, resume=False)
    check_checkpoint_for_config(str(no_extra), cfg, resume=False)
    plain = Config.fromfile(plain_cfg)
    check_checkpoint_for_config(str(good), plain, resume=False)
    check_checkpoint_for_config(str(no_extra), plain, resume=False)


def test_sharded_directory_as_load_from_of_a_plain_runner(tmp_path, capsys):
    """``load_from`` of a sharded directory with mmengine's plain ``Runner``
    (tests/toy_config.py, one process) loads the weights that were saved:
    the run trains exactly as one given the same weights in a single file
    (its ``iter_2.pth`` holds the same tensors), and unlike one from its own
    initialisation. Tools that take a single file name the converter."""
    from helpers import run_train

    from mmringmoe.engine.checkpoint import CheckpointError
    from mmringmoe.engine.dist_checkpoint import (read_model_weights,
                                                  save_sharded)
    from toy_engine import ToyRegressor
    config = osp.join(TESTS, 'toy_config.py')
    torch.manual_seed(3)
    model = ToyRegressor(in_dim=8, hidden=16)
    want = {k: v.clone() for k, v in model.state_dict().items()}
    sharded = tmp_path / 'iter_7.pth'
    save_sharded(str(sharded), model, extra={'meta': {'iter': 7}})
    read = read_model_weights(sharded)
    assert read['meta']['iter'] == 7
    assert read['state_dict'].keys() == want.keys()
    for k, v in want.items():
        assert torch.equal(read['state_dict'][k], v), k
    single = tmp_path / 'weights.pth'
    torch.save({'state_dict': want}, single)

    runs = {}
    for name, load_from in (('dir', sharded), ('file', single), ('none', None)):
        options = {'train_cfg.max_iters': 2}
        if load_from is not None:
            options['load_from'] = str(load_from)
        run_train(config, tmp_path / name, cfg_options=options)
        runs[name] = load_weights_only(tmp_path / name / 'iter_2.pth')
    assert runs['dir']['meta']['iter'] == 2  # started at 0
    for k, v in runs['file']['state_dict'].items():
        assert torch.equal(runs['dir']['state_dict'][k], v), k
    assert not torch.equal(runs['dir']['state_dict']['net.0.weight'],
                           runs['none']['state_dict']['net.0.weight'])
    # the optimizer started anew: AdamW's step count is that of this run
    assert all(float(s['step']) == 2
               for s in runs['dir']['optimizer']['state'].values())

    # tools/test.py and init_cfg=dict(type='Pretrained') take it too
    from helpers import run_test

    from mmringmoe.engine.checkpoint import load_pretrained
    assert run_test(config, sharded, tmp_path / 't1') == \
        run_test(config, single, tmp_path / 't2')
    torch.manual_seed(4)
    other = ToyRegressor(in_dim=8, hidden=16)
    assert load_pretrained(other, str(sharded)).share == 1.0
    for k, v in want.items():
        assert torch.equal(other.state_dict()[k], v), k

    with pytest.raises(CheckpointError, match=(
            f'^{sharded} is a sharded checkpoint directory .*expected a '
            'single-file checkpoint; convert it with tools/model_converters/'
            'dcp_to_backbone.py$')):
        load_weights_only(sharded)
    with pytest.raises(CheckpointError, match=f'^{tmp_path} is a directory, '
                       'expected a single-file checkpoint$'):
        load_weights_only(tmp_path)


def test_resume_restores_schedulers_seed_and_accumulation(tmp_path):
    """The mixin's ``resume`` on a one-process strategy (mmengine's
    ``SingleDeviceStrategy``, no process group): weights, optimizer,
    LinearLR state, the seed (as mmengine's strategies: the checkpoint's
    wins) and the inner count of gradient accumulation (``iter`` 3 of
    ``max_iters`` 5, accumulating 2)."""
    from mmengine._strategy import SingleDeviceStrategy

    from mmringmoe.engine.dist_checkpoint import ShardedCheckpointMixin

    class Strategy(ShardedCheckpointMixin, SingleDeviceStrategy):
        pass

    def build(seed):
        s = Strategy(work_dir=str(tmp_path / f'w{seed}'),
                     env_kwargs=dict(randomness=dict(seed=seed)))
        s.prepare(torch.nn.Linear(4, 3),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1,
                                                    momentum=0.9),
                                     accumulative_counts=2),
                  param_scheduler=dict(type='LinearLR', start_factor=0.5,
                                       by_epoch=False, begin=0, end=4),
                  dispatch_kwargs=dict(max_iters=5))
        return s

    a = build(seed=7)
    for _ in range(3):
        a.optim_wrapper.update_params(a.model(torch.randn(2, 4)).sum())
        for sched in a.param_schedulers:
            sched.step()
    ckpt = tmp_path / 'iter_3.pth'
    a.save_checkpoint(str(ckpt), extra_ckpt={'meta': {'iter': 3, 'epoch': 0}})

    b = build(seed=8)
    meta = b.resume(str(ckpt))['meta']
    assert meta['iter'] == 3 and meta['seed'] == 7 and b.seed == 7
    assert (b.optim_wrapper._inner_count, b.optim_wrapper._max_counts) == (3, 5)
    assert [s.state_dict() for s in b.param_schedulers] == \
        [s.state_dict() for s in a.param_schedulers]
    assert b.optim_wrapper.get_lr() == a.optim_wrapper.get_lr()
    _same(b.optim_wrapper.state_dict(), a.optim_wrapper.state_dict())
    for k, v in a.model.state_dict().items():
        assert torch.equal(b.model.state_dict()[k], v), k


@pytest.mark.slow
def test_shipped_cpu_fsdp_config_trains_resumes_and_converts(tmp_path):
    """configs/pretrain/simmim_ringmoe-tiny-fsdp_2x4xb2-30iter_builtin-192px.py
    as the README runs it, shortened to 4 iterations: 2 gloo processes write
    sharded checkpoints (one shard per rank), 1 process resumes the
    2-process checkpoint, and dcp_to_backbone makes a single-file backbone
    that loads strictly into the RingMoE its meta describes."""
    from mmringmoe.models import RingMoE
    from mmringmoe.models.pruning import backbone_kwargs
    config = osp.join(ROOT, 'configs', 'pretrain',
                      'simmim_ringmoe-tiny-fsdp_2x4xb2-30iter_builtin-192px.py')
    short = ['--cfg-options', 'train_cfg.max_iters=4',
             'default_hooks.checkpoint.interval=2']
    work = tmp_path / 'two'
    proc = _train(tmp_path, 2, work, *short, config=config)
    assert 'Iter(train) [4/4]' in proc.stdout + proc.stderr
    for it in (2, 4):
        assert sorted(os.listdir(work / f'iter_{it}.pth')) == [
            '.metadata', '__0_0.distcp', '__1_0.distcp', 'extra.pth']
    one = tmp_path / 'one'
    proc = _train(tmp_path, 1, one, '--resume', str(work / 'iter_2.pth'),
                  *short, config=config)
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'Iter(train) [3/4]' in log and 'Iter(train) [1/4]' not in log
    assert sorted(os.listdir(one / 'iter_4.pth')) == [
        '.metadata', '__0_0.distcp', 'extra.pth']
    out = tmp_path / 'tiny.pth'
    subprocess.run([sys.executable, osp.join(
        ROOT, 'tools', 'model_converters', 'dcp_to_backbone.py'),
        str(work / 'iter_4.pth'), str(out)], check=True, cwd=tmp_path,
        capture_output=True)
    ckpt = load_weights_only(out)
    assert ckpt['meta']['modalities'] == ['opt', 'ms', 'sar_l1', 'sar_l2']
    model = RingMoE(**backbone_kwargs(ckpt['meta']))
    model.load_state_dict(ckpt['state_dict'], strict=True)
    assert sum(p.numel() for p in model.parameters()) == 30_297_406


def test_sharded_save_and_load_give_no_api_notices(tmp_path):
    """torch's ShardedTensor / process-group / single-process DCP notices
    (dist_checkpoint.API_NOTICES) are not shown by a save and a load; the
    caller's warning filters are unchanged afterwards."""
    import warnings
    from mmringmoe.engine import dist_checkpoint as dc
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        dc.save_sharded(str(tmp_path / 'c'), model, extra={'meta': {}})
        dc.load_sharded(str(tmp_path / 'c'), torch.nn.Linear(4, 3))
        dc.read_model_weights(str(tmp_path / 'c'))
        warnings.warn('torch.distributed is disabled, unavailable or '
                      'uninitialized: outside, still shown')
    assert [str(w.message) for w in caught] == [
        'torch.distributed is disabled, unavailable or uninitialized: '
        'outside, still shown']
    assert warnings.filters == before
