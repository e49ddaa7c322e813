"""Every segmentation config (Appendix B.5.2-B.5.3) trains one iteration and
evaluates once on a few generated samples in its data set's real layout,
with the tiny backbone, through tools/train.py and tools/test.py; the
metrics carry the keys the paper's tables report."""
import glob
import os.path as osp

import pytest

import downstream_data as dd
from helpers import run_test, run_train

CONFIG_DIR = osp.join(dd.ROOT, 'configs', 'segmentation')
# the paper's experiments; the built-in demo config (README's third command)
# is run by tests/test_inference_tasks.py
CONFIGS = sorted(
    osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py'))
    if '_builtin-' not in p)

# config name fragment -> (data fixture, keys the paper reports)
DATASETS = {
    'isaid': ('isaid_root', ['mIoU']),
    'potsdam': ('potsdam_root', ['mF1']),
    'dynamicearthnet': ('dyna_root', ['mIoU']),
    'sarsegl1': ('sarsegl1_root',
                 ['mIoU', 'mAcc', 'OA', 'IoU.water', 'IoU.vegetation',
                  'IoU.bare_land', 'IoU.road', 'IoU.building']),
    'air-polsar-seg': ('air_polsar_root',
                       ['mIoU', 'IoU.industrial_area', 'IoU.natural_area',
                        'IoU.water', 'IoU.housing_area']),
    'whu-opt-sar': ('whu_root',
                    ['OA', 'mIoU', 'mF1'] + [
                        f'Acc.{c}' for c in ('farmland', 'city', 'village',
                                             'water', 'forest', 'road',
                                             'others')]),
    'dfc23': ('dfc23_root', ['OA', 'mIoU', 'IoU.background',
                             'IoU.flat_roof', 'IoU.other']),
}


@pytest.fixture(scope='module', autouse=True)
def _fast_config_text():
    with dd.fast_config_text():
        yield


def _dataset(config):
    for frag, spec in DATASETS.items():
        if frag in config:
            return spec
    raise KeyError(config)


@pytest.fixture(scope='module')
def isaid_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('iSAID'))
    dd.make_isaid(root)
    return root


@pytest.fixture(scope='module')
def potsdam_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('potsdam'))
    dd.make_potsdam(root)
    return root


@pytest.fixture(scope='module')
def dyna_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('dynamicearthnet'))
    dd.make_dynamicearthnet(root)
    return root


@pytest.fixture(scope='module')
def sarsegl1_root(tmp_path_factory):
    base = tmp_path_factory.mktemp('sarsegl1')
    root = str(base / 'SARSegL1')
    dd.make_sarsegl1(root, str(base / 'raw'))
    return root


@pytest.fixture(scope='module')
def air_polsar_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('AIR-PolSAR-Seg'))
    dd.make_air_polsar_seg(root)
    return root


@pytest.fixture(scope='module')
def whu_root(tmp_path_factory):
    base = tmp_path_factory.mktemp('whu')
    root = str(base / 'WHU-OPT-SAR')
    dd.make_whu_opt_sar(root, str(base / 'raw'))
    return root


@pytest.fixture(scope='module')
def dfc23_root(tmp_path_factory):
    base = tmp_path_factory.mktemp('dfc23')
    root = str(base / 'DFC23')
    dd.make_dfc23(root, str(base / 'raw'))
    return root


def test_every_segmentation_config_is_covered():
    assert len(CONFIGS) == 30
    for c in CONFIGS:
        _dataset(c)


@pytest.mark.parametrize('config', CONFIGS)
def test_seg_config_trains_and_evaluates(config, request, tmp_path):
    fixture, keys = _dataset(config)
    data_root = request.getfixturevalue(fixture)
    cfg = dd.tiny_config(
        osp.join(CONFIG_DIR, config), data_root, str(tmp_path / config),
        task='seg')
    run_train(cfg, tmp_path / 'work')
    ckpts = sorted(glob.glob(str(tmp_path / 'work' / 'iter_*.pth')))
    assert ckpts, 'training wrote no checkpoint'
    metrics = run_test(cfg, ckpts[-1], tmp_path / 'test')
    for key in ['mIoU', 'mAcc', 'OA', 'mF1'] + keys:
        assert key in metrics, (key, sorted(metrics))
    for key in ('mIoU', 'OA', 'mF1'):
        assert 0.0 <= metrics[key] <= 100.0 or metrics[key] != metrics[key]
    if 'potsdam' in config:
        assert 'IoU.clutter' not in metrics  # left out as in the paper
    if 'air-polsar' in config:
        assert 'IoU.land_use_area' not in metrics
        assert 'IoU.other_area' not in metrics
