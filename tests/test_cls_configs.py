"""Every scene classification config (Appendix B.5.1, Tab. 2/5/6/A13,
Fig. 12a-b) trains one iteration and evaluates once with the tiny backbone
on generated NWPU-RESISC45 / AID class folders split by our split tool,
through tools/train.py and tools/test.py; the metric is OA."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

import downstream_data as dd
from helpers import run_test, run_train

CONFIG_DIR = osp.join(dd.ROOT, 'configs', 'classification')
CONFIGS = sorted(
    osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))


@pytest.fixture(scope='module', autouse=True)
def _fast_config_text():
    with dd.fast_config_text():
        yield


def _classes(base):
    return Config.fromfile(osp.join(CONFIG_DIR, '_base_', base)).classes


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """``data/NWPU-RESISC45/<class>/...`` and ``data/AID/<class>/...``,
    split into ``data/splits/<name>_tr<pct>`` by the split tool's CLI."""
    from mmringmoe.datasets import cls_split
    root = tmp_path_factory.mktemp('data')
    for name, base, ratios in (
            ('NWPU-RESISC45', 'nwpu-resisc45_tr10_224px.py', (0.1, 0.2)),
            ('AID', 'aid_tr20_512px.py', (0.2, ))):
        dd.make_scene_folders(str(root / name), _classes(base))
        for r in ratios:
            cls_split.main([str(root / name), '--train-ratio', str(r)])
    return str(root)


def test_every_classification_config_is_covered():
    assert len(CONFIGS) == 18


@pytest.mark.parametrize('config', CONFIGS)
def test_cls_config_trains_and_evaluates(config, data_root, tmp_path):
    cfg = dd.tiny_config(
        osp.join(CONFIG_DIR, config), data_root, str(tmp_path / config),
        task='cls')
    run_train(cfg, tmp_path / 'work')
    ckpts = sorted(glob.glob(str(tmp_path / 'work' / 'epoch_*.pth')))
    assert ckpts, 'training wrote no checkpoint'
    metrics = run_test(cfg, ckpts[-1], tmp_path / 'test')
    assert set(metrics) == {'OA'}, metrics
    assert 0.0 <= metrics['OA'] <= 100.0
