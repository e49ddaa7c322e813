"""Per-rank random number generator states in multi-process checkpoints
(issue 15): ``mmringmoe.WeightsOnlyCheckpointHook`` gathers every rank's
torch, numpy and Python (and CUDA) generator states when a checkpoint is
saved and, on ``--resume`` with the same number of processes, gives each
rank its own back; on another number of processes it says so in one warning
line and leaves the generators as mmengine seeded them.

End to end (slow): ``tools/train.py`` under torchrun with ``FlexibleRunner``
and ``mmringmoe.ShardedMetaInitFSDPStrategy`` on 2 gloo CPU processes, the toy
of tests/fsdp_runner_toy.py with the router noise on (Eq. 14: every forward
draws from the global torch generator) and ``randomness.diff_rank_seed=True``
(rank r is seeded with seed + r, so the ranks' streams differ). After each
iteration :class:`DumpRandomDraws` draws 3 numbers from each generator on
every rank. Run A trains 4 iterations and saves ``iter_2.pth/``; resumed
from it on 2 processes, iterations 3-4 must give A's draws on each rank and
A's losses, bitwise. Before the per-rank states, a 2-process resume restored
nothing (mmengine's seeding at start-up), so the draws differed.
"""
import json
import os.path as osp

import pytest

from test_fsdp_sharded_resume import CONFIG, _rows, _train

NOISY = CONFIG.replace(
    "model = dict(type='ShardedToyRegressor')",
    "model = dict(type='ShardedToyRegressor', noisy_gating=True)").replace(
    "custom_hooks = [dict(type='DumpGlobalLoss')]",
    "custom_hooks = [dict(type='DumpGlobalLoss'), "
    "dict(type='DumpRandomDraws')]").replace(
    'randomness = dict(seed=0)',
    'randomness = dict(seed=0, diff_rank_seed=True)')

WARNING = ('random number generator states were saved on 2 processes and '
           'this run has 1')


def _draws(work_dir, rank):
    with open(osp.join(work_dir, f'draws_rank{rank}.jsonl')) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_each_rank_resumes_its_own_generators(tmp_path):
    assert NOISY.count('noisy_gating=True') == 1
    assert 'DumpRandomDraws' in NOISY and 'diff_rank_seed=True' in NOISY
    (tmp_path / 'toy_fsdp.py').write_text(NOISY)
    ref_dir = tmp_path / 'A'
    _train(tmp_path, 2, ref_dir)
    ref = _rows(ref_dir)
    ref_draws = [_draws(ref_dir, r) for r in (0, 1)]
    assert [d['iter'] for d in ref_draws[1]] == [1, 2, 3, 4]
    for a, b in zip(*ref_draws):
        # the ranks draw different numbers: restoring rank 0's state on
        # rank 1 could not pass
        for key in ('torch', 'numpy', 'python'):
            assert a[key] != b[key], (a, b)

    ckpt = ref_dir / 'iter_2.pth'
    work = tmp_path / 'resume2'
    _train(tmp_path, 2, work, '--resume', str(ckpt))
    got = _rows(work)
    assert [r['iter'] for r in got] == [3, 4]
    for rank in (0, 1):
        # bitwise (float.hex strings), rank by rank
        assert _draws(work, rank) == ref_draws[rank][2:], rank
    # the router noise of iterations 3-4 too
    assert [r['loss'] for r in got] == [r['loss'] for r in ref[2:]]

    # one process: the 2 saved states fit no rank, said once; it trains on
    work = tmp_path / 'resume1'
    proc = _train(tmp_path, 1, work, '--resume', str(ckpt), '--cfg-options',
                  'train_dataloader.batch_size=2')
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines()
             if WARNING in ln]
    assert len(lines) == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'from the seed' in lines[0]
    assert [r['iter'] for r in _rows(work)] == [3, 4]
    # nothing restored: not A's rank-0 draws
    assert _draws(work, 0) != ref_draws[0][2:]


DDP = '''
_base_ = {toy!r}
custom_imports = dict(imports=['toy_engine', 'ddp_cpu_toy', 'fsdp_runner_toy'],
                      allow_failed_imports=False)
model_wrapper_cfg = dict(type='CPUDistributedDataParallel')
custom_hooks = [dict(type='DumpGlobalLoss'), dict(type='DumpRandomDraws')]
randomness = dict(seed=0, diff_rank_seed=True)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
'''


@pytest.mark.slow
def test_ddp_plain_runner_resumes_each_ranks_generators(tmp_path):
    """mmengine's plain ``Runner`` with DDP (2 gloo CPU processes,
    tests/ddp_cpu_toy.py): its ``save_checkpoint`` runs on rank 0 only, so
    the gather happens in the wrapper every rank calls. The toy's dropout
    (0.5) and the data set's jitter draw from the torch generator."""
    from mmringmoe.engine.checkpoint import load_weights_only
    config = tmp_path / 'toy_fsdp.py'  # the name _train runs
    config.write_text(DDP.format(toy=osp.join(osp.dirname(__file__),
                                              'toy_config.py')))
    ref_dir = tmp_path / 'A'
    _train(tmp_path, 2, ref_dir)
    ref = _rows(ref_dir)
    ref_draws = [_draws(ref_dir, r) for r in (0, 1)]
    assert [d['iter'] for d in ref_draws[0]] == [1, 2, 3, 4]
    assert ref_draws[0][2]['torch'] != ref_draws[1][2]['torch']
    # one file (rank 0 writes it) holding both ranks' states
    meta = load_weights_only(ref_dir / 'iter_2.pth')['meta']
    assert 'rng_state' not in meta and len(meta['rng_states']) == 2
    assert not (meta['rng_states'][0]['torch'] ==
                meta['rng_states'][1]['torch']).all()

    work = tmp_path / 'resume2'
    _train(tmp_path, 2, work, '--resume', str(ref_dir / 'iter_2.pth'))
    for rank in (0, 1):
        assert _draws(work, rank) == ref_draws[rank][2:], rank
    # dropout and jitter of iterations 3-4 as in the uninterrupted run
    assert _rows(work) == ref[2:]


# --------------------------------------------------------------------------
# which states a rank resumes with (no process group)

def _states(value):
    return {'torch': value}


@pytest.mark.parametrize('meta,rank,world,want', [
    # per-rank states, as many processes: each rank its own entry
    (dict(rng_states=[_states(0), _states(1)]), 0, 2, 0),
    (dict(rng_states=[_states(0), _states(1)]), 1, 2, 1),
    # a single-process checkpoint (and one of mmringmoe before per-rank
    # states) resumed on one process: as before
    (dict(rng_state=_states(7)), 0, 1, 7),
    (dict(), 0, 1, None),
    (dict(), 1, 2, None),
])
def test_rng_states_for_rank(meta, rank, world, want, monkeypatch):
    from mmringmoe.engine import checkpoint
    logged = []
    monkeypatch.setattr(checkpoint, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    got = checkpoint.rng_states_for_rank(meta, rank, world, 'iter_2.pth', 0)
    assert (got if got is None else got['torch']) == want
    assert logged == []


@pytest.mark.parametrize('meta,world,found', [
    (dict(rng_states=[_states(0), _states(1)]), 1, 'saved on 2 processes'),
    (dict(rng_states=[_states(0), _states(1)]), 4, 'saved on 2 processes'),
    (dict(rng_state=_states(0)), 2, 'saved on 1 process (or on rank 0 only, '
     'by mmringmoe before per-rank states)'),
])
def test_rng_states_of_another_world_size_are_not_restored(
        meta, world, found, monkeypatch):
    from mmringmoe.engine import checkpoint
    logged = []
    monkeypatch.setattr(checkpoint, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw['level'])))
    assert checkpoint.rng_states_for_rank(meta, 0, world, 'iter_2.pth',
                                          5) is None
    assert logged == [(
        f'iter_2.pth: random number generator states were {found} and this '
        f'run has {world}: not restored, the generators go on from the seed '
        '(5) as mmengine seeded them, so dropout, drop path and router noise '
        'after the resume differ from an uninterrupted run', 30)]
