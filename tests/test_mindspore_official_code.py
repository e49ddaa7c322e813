"""The converted model against the authors' own MindSpore cells (optional).

Runs only where a Python with MindSpore and a clone of HanboBizl/RingMoE are
given (MindSpore is an 800 MB wheel, not a dependency of this project)::

    MMRINGMOE_MINDSPORE_PYTHON=/path/to/venv/bin/python \
    MMRINGMOE_OFFICIAL_RINGMOE=/path/to/RingMoE \
    python -m pytest tests/test_mindspore_official_code.py

The official ``SimMIM_Moe`` of a small architecture is built, given weights,
saved by ``mindspore.save_checkpoint`` and run on a four-modality batch
(``tests/mindspore_official_run.py``); the file is converted with our tool and
the converted ``RingMoEMindSpore`` must give the same final features.
"""
import importlib.util
import os
import os.path as osp
import subprocess

import numpy as np
import pytest
import torch

import mindspore_official as off
from mmringmoe.models.backbones.ringmoe_mindspore import RingMoEMindSpore
from mmringmoe.models.converters import read_mindspore_ckpt

PYTHON = os.environ.get('MMRINGMOE_MINDSPORE_PYTHON')
REPO = os.environ.get('MMRINGMOE_OFFICIAL_RINGMOE')
HERE = osp.dirname(osp.abspath(__file__))

pytestmark = pytest.mark.skipif(
    not (PYTHON and REPO), reason='set MMRINGMOE_MINDSPORE_PYTHON and MMRINGMOE_OFFICIAL_RINGMOE')


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        f'_mmringmoe_official_{name}',
        osp.join(osp.dirname(HERE), 'tools', 'model_converters', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def official_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('official')
    subprocess.run([PYTHON, osp.join(HERE, 'mindspore_official_run.py'), '--repo', REPO,
                    '--out', str(out), '--fp32'], check=True, timeout=900)
    return out


def test_official_checkpoint_names_and_shapes(official_run):
    real = read_mindspore_ckpt(official_run / 'official.ckpt')
    fixture = off.official_params(seed=7, with_training_state=False)
    alias = {k.replace('attention_mask', 'attn_mask'): k for k in fixture}
    assert sorted(alias.get(k, k) for k in real) == sorted(fixture)
    for k, t in real.items():
        ref = fixture[alias.get(k, k)]
        assert t.data.shape == ref.shape and t.data.tobytes() == ref.tobytes(), k
    assert list(np.load(official_run / 'io.npz')['not_loaded']) == []


def test_converted_model_matches_official_features(official_run, tmp_path):
    out = tmp_path / 'converted.pth'
    assert _tool('mindspore_to_mmringmoe').main([str(official_run / 'official.ckpt'), str(out)]) == 0
    ckpt = torch.load(out, weights_only=True)
    cfg = dict(ckpt['meta']['backbone'])
    cfg.pop('type')
    model = RingMoEMindSpore(**cfg).eval()
    model.load_state_dict(ckpt['state_dict'], strict=False)
    io = np.load(official_run / 'io.npz')
    order = ('opt', 'sar_l1', 'sar_l2', 'ms')   # the official batch order
    with torch.no_grad():
        feats = model({m: torch.from_numpy(io[m]) for m in order})
    for i, m in enumerate(order):
        np.testing.assert_allclose(feats[m][-1].numpy(), io['z'][i:i + 1], atol=1e-4, rtol=0,
                                   err_msg=m)
