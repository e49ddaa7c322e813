"""tools/train.py on the tiny pretraining config: all four modalities in every
batch, the loss goes down, checkpoints resume, reconstruction PNGs appear.

The run uses the README config unchanged except for a 64 px crop (instead of
192) so that 40 iterations fit the CPU test budget; the built-in data is
generated into ``data/builtin_pretrain`` of the test's working directory,
exactly as the README command does it. The 30-iteration run (about 2 min on
2 busy cores) is marked slow; ``test_tiny_config_smoke`` runs 2 iterations.
"""
import glob
import json
import os.path as osp

import numpy as np
import pytest

from helpers import ROOT, run_train

TINY = osp.join(ROOT, 'configs', 'pretrain',
                'simmim_ringmoe-tiny_4xb2-30iter_builtin-192px.py')

SMALL = f'''
_base_ = [{TINY!r}]
size = 64
mask_generator = dict(type='SimMIMMaskGenerator', input_size=size,
                      mask_patch_size=32, model_patch_size=4, mask_ratio=0.6)
crop = [dict(type='mmringmoe.RSRandomResizedCrop', scale=size,
             crop_ratio_range=(0.2, 1.0)),
        dict(type='RandomFlip', prob=0.5, direction='horizontal')]
pack = {{{{_base_.pack}}}}
stats = {{{{_base_.stats_file}}}}
train_dataloader = dict(dataset=dict(pipeline=dict(
    opt=[dict(type='mmringmoe.LoadRSImageFromFile', modality='opt'),
         *crop, mask_generator, pack],
    ms=[dict(type='mmringmoe.LoadRSImageFromFile', modality='ms'),
        *crop, mask_generator, pack],
    sar_l1=[dict(type='mmringmoe.LoadComplexSAR'), *crop,
            dict(type='mmringmoe.SARPower', scale='db', stats_file=stats),
            mask_generator, pack],
    sar_l2=[dict(type='mmringmoe.LoadRSImageFromFile', modality='sar_l2'),
            *crop, mask_generator, pack])))
'''


def test_tiny_config_smoke(tmp_path, monkeypatch):
    """Fast (not slow-marked) check of the README config: 2 iterations, data
    generated into ./data/builtin_pretrain, PNGs and a checkpoint written."""
    cfg = tmp_path / 'tiny_small.py'
    cfg.write_text(SMALL)
    monkeypatch.chdir(tmp_path)
    run_train(cfg, tmp_path / 'work', cfg_options={
        'train_cfg.max_iters': 2,
        'custom_hooks': [dict(type='mmringmoe.MIMVisualizationHook',
                              interval=1)]})
    log = _scalars(tmp_path / 'work')
    assert sorted(log) == [1, 2]
    for m in ('opt', 'ms', 'sar_l1', 'sar_l2'):
        assert np.isfinite(log[2][f'loss_rec_{m}'])
    assert (tmp_path / 'work' / 'iter_2.pth').exists()
    assert (tmp_path / 'work' / 'vis_mim' / 'iter_2' /
            'sar_l1_input_pauli.png').exists()


def _scalars(work_dir):
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert files, f'no scalars.json under {work_dir}'
    rows = [json.loads(line) for f in sorted(files) for line in open(f)]
    return {r['iter']: r for r in rows if 'loss' in r}


@pytest.fixture(scope='module')
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('pretrain')
    cfg = root / 'tiny_small.py'
    cfg.write_text(SMALL)
    work = root / 'work'
    mp = pytest.MonkeyPatch()
    mp.chdir(root)  # data/builtin_pretrain is generated here
    try:
        run_train(cfg, work)
    finally:
        mp.undo()
    return root, cfg, work


@pytest.mark.slow
def test_all_modalities_loss_decreases(first_run):
    root, _, work = first_run
    for m in ('opt', 'ms', 'sar_l1', 'sar_l2'):
        assert glob.glob(str(root / 'data' / 'builtin_pretrain' / m / '*.tif'))
    log = _scalars(work)
    assert sorted(log) == list(range(1, 31))
    for row in log.values():  # every batch held every modality
        for m in ('opt', 'ms', 'sar_l1', 'sar_l2'):
            assert np.isfinite(row[f'loss_rec_{m}'])
    loss = np.array([log[i]['loss'] for i in range(1, 31)])
    first, last = loss[:5].mean(), loss[-5:].mean()
    assert last < 0.8 * first, f'loss {first:.3f} -> {last:.3f}'


@pytest.mark.slow
def test_reconstruction_pngs(first_run):
    _, _, work = first_run
    from PIL import Image
    for it in (10, 20, 30):
        folder = work / 'vis_mim' / f'iter_{it}'
        names = {osp.basename(p) for p in glob.glob(str(folder / '*.png'))}
        for m in ('opt', 'ms', 'sar_l2'):
            assert {f'{m}_input.png', f'{m}_mask.png', f'{m}_recon.png',
                    f'{m}_recon_pasted.png'} <= names
        assert {'sar_l1_input_pauli.png', 'sar_l1_input_power.png',
                'sar_l1_target_power.png', 'sar_l1_recon_power.png',
                'sar_l1_mask.png'} <= names
    pauli = np.asarray(Image.open(work / 'vis_mim' / 'iter_30' /
                                  'sar_l1_input_pauli.png'))
    assert pauli.shape == (64, 64, 3) and pauli.std() > 0
    mask = np.asarray(Image.open(work / 'vis_mim' / 'iter_30' /
                                 'opt_mask.png'))
    assert set(np.unique(mask)) == {0, 255}
    assert abs((mask > 0).mean() - 0.75) < 1e-6  # ceil(4 * 0.6) of 4 patches


@pytest.mark.slow
def test_resume_continues_like_uninterrupted_run(first_run):
    root, cfg, work = first_run
    ckpt = work / 'iter_20.pth'
    assert ckpt.exists() and (work / 'iter_30.pth').exists()
    resumed = root / 'resumed'
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    try:
        run_train(cfg, resumed, extra_args=['--resume', ckpt])
    finally:
        mp.undo()
    before, after = _scalars(work), _scalars(resumed)
    assert sorted(after) == list(range(21, 31))
    for it in range(21, 31):
        np.testing.assert_allclose(after[it]['loss'], before[it]['loss'],
                                   rtol=1e-4, err_msg=f'iter {it}')
