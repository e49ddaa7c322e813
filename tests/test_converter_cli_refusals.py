"""The model converters as commands: a refused input is one ``error:`` line
(exit 1, no traceback), and no output lands inside an input directory (a
sharded checkpoint's ``extra.pth`` was overwritten by ``dcp_to_backbone.py
DIR DIR/extra.pth --force`` before; found by the new-user trial)."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from mmringmoe.models.pruning.checkpoint import check_output_path

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _sharded(tmp_path):
    from mmringmoe.engine.dist_checkpoint import save_sharded
    from mmringmoe.models import RingMoE
    holder = nn.Module()
    holder.backbone = RingMoE(
        arch=dict(base='tiny', embed_dims=16, depths=(1, 1), num_heads=(1, 2),
                  window_size=4, num_specialized_experts=2, num_collab_experts=2),
        modalities=('opt', ), out_indices=(1, ), drop_path_rate=0.)
    path = tmp_path / 'iter_1.pth'
    save_sharded(str(path), holder, None, extra={'meta': {'iter': 1}})
    return path


def _run(tool, *args, env=None):
    return subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'model_converters', f'{tool}.py'),
         *map(str, args)], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, 'MMRINGMOE_DEBUG': '0', **(env or {})})


def test_output_inside_an_input_directory_is_refused(tmp_path):
    (tmp_path / 'ckpt').mkdir()
    (tmp_path / 'ckpt' / 'sub').mkdir()
    for out in ('ckpt/extra.pth', 'ckpt/sub/new.pth', 'ckpt/../ckpt/x.pth'):
        with pytest.raises(ValueError, match='inside the input directory'):
            check_output_path(str(tmp_path / out), str(tmp_path / 'ckpt'), force=True)
    # a sibling whose name starts like the directory is not inside it
    check_output_path(str(tmp_path / 'ckpt2' / 'x.pth'), str(tmp_path / 'ckpt'))
    check_output_path(str(tmp_path / 'ckpt.pth'), str(tmp_path / 'ckpt'))


def test_dcp_to_backbone_never_writes_into_its_input(tmp_path):
    ckpt = _sharded(tmp_path)
    extra = ckpt / 'extra.pth'
    before = extra.read_bytes()
    r = _run('dcp_to_backbone', ckpt, extra, '--force')
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), r.stderr
    assert 'inside the input directory' in lines[0] and str(ckpt) in lines[0]
    assert extra.read_bytes() == before
    # and the same input to a new file works
    out = tmp_path / 'backbone.pth'
    r = _run('dcp_to_backbone', ckpt, out)
    assert r.returncode == 0, r.stderr
    assert 'patch_embed.opt.projection.weight' in torch.load(
        out, weights_only=True)['state_dict']


@pytest.mark.parametrize('tool,args,expect', [
    ('dcp_to_backbone', ('{tmp}/missing.pth', '{tmp}/out.pth'), 'found nothing'),
    ('dcp_to_backbone', ('{tmp}/ckpt', '{tmp}/ckpt'), 'is the input file'),
    ('extract_modality', ('{tmp}/ckpt', '{tmp}/out.pth', '--modalities', 'opt'),
     'sharded checkpoint directory'),
    ('prune_experts', ('{tmp}/notes.txt', '{tmp}/usage.json', '{tmp}/out.pth'),
     'notes.txt'),
    ('merge_experts', ('{tmp}/notes.txt', '{tmp}/out.pth', '--method', 'ks'), 'notes.txt'),
    ('swinv2_to_ringmoe', ('{tmp}/notes.txt', '{tmp}/out.pth'), 'notes.txt'),
])
def test_converter_refusals_are_one_line(tmp_path, capsys, tool, args, expect):
    """In-process through the same ``run`` wrapper as each tool's
    ``__main__`` (checked to call it)."""
    from pruning_common import converter

    from mmringmoe.models.pruning.cli import run
    (tmp_path / 'ckpt').mkdir()
    (tmp_path / 'ckpt' / '.metadata').write_bytes(b'not a pickle')
    (tmp_path / 'notes.txt').write_text('not a checkpoint')
    (tmp_path / 'usage.json').write_text('{}')
    capsys.readouterr()
    code = run(converter(tool).main, [a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert code == 1, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    assert expect in lines[0], lines[0]
    with open(osp.join(ROOT, 'tools', 'model_converters', f'{tool}.py')) as f:
        assert 'sys.exit(run(main))' in f.read()


@pytest.mark.slow
def test_debug_shows_the_traceback(tmp_path):
    r = _run('dcp_to_backbone', tmp_path / 'missing.pth', tmp_path / 'out.pth',
             env={'MMRINGMOE_DEBUG': '1'})
    assert r.returncode != 0 and 'Traceback' in r.stderr
