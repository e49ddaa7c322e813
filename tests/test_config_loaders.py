"""Issue 13 item 2: a statistics file and the pipeline that uses it see the
same pixels. Every config under configs/ whose pipeline standardises with a
statistics file reads its images with a loader that keeps the file's dtype
and band count (the reader of compute_rs_stats.py), with the band count of
the modality the statistics are for; and the SAR-L2 detection pipelines,
run on 16-bit files, give standardised pixels of mean 0 and std 1."""
import glob
import os.path as osp

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODALITY_CHANNELS = dict(opt=3, ms=4, sar_l1=8, sar_l2=1)
# loaders that read through mmringmoe's read_raster, the reader of
# tools/dataset_converters/compute_rs_stats.py: dtype and bands kept
KEEPING = {'LoadRSImageFromFile', 'LoadComplexSAR', 'LoadOptSARPair',
           'LoadBitemporalImageFromFile'}
STATS_NORMALISERS = {'NormalizeRS', 'SARPower', 'LoadOptSARPair'}


def _name(t):
    return str(t).split('.')[-1]


def _pipelines(node, found):
    """Every list of transform dicts in a config tree."""
    if isinstance(node, dict):
        for v in node.values():
            _pipelines(v, found)
    elif isinstance(node, (list, tuple)):
        if node and all(isinstance(t, dict) and 'type' in t for t in node) \
                and any('Load' in _name(t['type']) for t in node):
            found.append(node)
        for v in node:
            _pipelines(v, found)
    return found


def _uses_stats_file(t):
    return _name(t['type']) in STATS_NORMALISERS and (
        t.get('stats_file') or t.get('stats'))


def _leaf_configs():
    files = sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                             recursive=True))
    return [osp.relpath(f, ROOT) for f in files
            if '/_base_/' not in f and not osp.basename(f).startswith('_')]


def _check_pipeline(config, pipe):
    """Problems of one pipeline (empty list: fine)."""
    normalisers = [t for t in pipe if _uses_stats_file(t)]
    if not normalisers:
        return []
    loaders = [t for t in pipe if _name(t['type']).startswith('Load')
               and 'Annotation' not in _name(t['type'])
               and 'Label' not in _name(t['type'])
               and 'DSM' not in _name(t['type'])]
    if not loaders:
        return [f'{config}: stats-file pipeline without an image loader']
    loader = loaders[0]
    problems = []
    if _name(loader['type']) not in KEEPING:
        problems.append(f'{config}: {loader} reduces dtype/bands before '
                        f'{normalisers[0]["type"]}')
        return problems
    for norm in normalisers:
        if _name(norm['type']) == 'LoadOptSARPair':
            continue  # normalises each modality with its own loader
        want = norm.get('modality')
        if _name(loader['type']) == 'LoadComplexSAR':
            have = 'sar_l1'
        else:
            have = loader.get('modality')
            ch = loader.get('expected_channels')
            if have is None and ch is not None and want is not None:
                if ch != MODALITY_CHANNELS[want]:
                    problems.append(f'{config}: {loader} reads {ch} bands, '
                                    f'{norm["type"]} is for {want!r}')
                continue
        if want is not None and have != want:
            problems.append(f'{config}: {loader} reads modality {have!r}, '
                            f'{norm["type"]} normalises {want!r}')
    return problems


def _one_per_data_set(configs):
    """One leaf per (task folder, data set): the leaves of a data set
    differ only in their backbone file (``-ep``, ``-ks``, ...)."""
    seen = {}
    for c in configs:
        key = (osp.dirname(c), c.rsplit('_', 1)[-1])
        seen.setdefault(key, c)
    return sorted(seen.values())


@pytest.mark.slow
def test_every_stats_file_pipeline_reads_like_compute_rs_stats():
    """All leaf configs (every data set base is reached through a leaf);
    about 2 minutes on 2 cores."""
    _check_configs(_leaf_configs(), min_configs=140, min_checked=50)


def test_each_data_set_stats_file_pipeline_reads_like_compute_rs_stats():
    """One leaf per data set (the fast subset of the test above), in the
    task folders that read rasters (classification, tracking, oriented
    detection and few-shot classification read 8-bit RGB with their
    toolbox's loader and mean/std, no statistics file)."""
    skip = ('classification', 'tracking', 'rotated_detection', 'relationnet')
    configs = [c for c in _one_per_data_set(_leaf_configs())
               if not any(k in c for k in skip)]
    _check_configs(configs, min_configs=20, min_checked=10)


def _check_configs(configs, min_configs, min_checked):
    from mmengine.config import Config
    assert len(configs) > min_configs
    problems, checked = [], 0
    for config in configs:
        cfg = Config.fromfile(osp.join(ROOT, config))
        for pipe in _pipelines(cfg._cfg_dict.to_dict(), []):
            if any(_uses_stats_file(t) for t in pipe):
                checked += 1
            problems += _check_pipeline(config, pipe)
    assert not problems, '\n'.join(problems)
    assert checked > min_checked  # the check ran on real pipelines


def test_the_check_catches_a_grayscale_loader():
    """Control: the former SAR-L2 detection pipeline is caught."""
    bad = [dict(type='LoadImageFromFile', color_type='grayscale'),
           dict(type='mmringmoe.NormalizeRS', stats_file='x.json',
                modality='sar_l2')]
    assert _check_pipeline('x', bad)
    wrong_band = [dict(type='mmringmoe.LoadRSImageFromFile', modality='opt'),
                  dict(type='mmringmoe.NormalizeRS', stats_file='x.json',
                       modality='sar_l2')]
    assert _check_pipeline('x', wrong_band)
    good = [dict(type='mmringmoe.LoadRSImageFromFile', modality='sar_l2'),
            dict(type='mmringmoe.NormalizeRS', stats_file='x.json',
                 modality='sar_l2')]
    assert _check_pipeline('x', good) == []


DET = 'configs/detection/'
SAR_DET = {
    'hrsid': DET + 'faster-rcnn_ringmoe-sarl2-kc_fpn_8xb2-12e_hrsid-800x800.py',
    'sardet': DET + 'faster-rcnn_ringmoe-sarl2-kc_fpn_8xb2-12e_sardet-100k-'
    '800x800.py',
    'sar_aircraft': DET + 'faster-rcnn_ringmoe-sarl2-kc_fpn_8xb2-12e_'
    'sar-aircraft-800x800.py',
}


@pytest.mark.parametrize('name', sorted(SAR_DET))
def test_sar_detection_pipeline_standardises_to_mean_0_std_1(tmp_path, name):
    """Images on disk (16-bit PNG amplitude for HRSID / SARDet-100k, 8-bit
    JPEG for SAR-AIRcraft), statistics from compute_rs_stats.py, then the
    config's training images through its pipeline up to NormalizeRS: over
    all pixels the result has mean 0 and std 1 (the former grayscale reader
    gave 16-bit files a mean of about -1.4 and a std near 0). The full test
    pipeline (mmdet Resize, PackDetInputs) keeps one band."""
    from mmcv.transforms import Compose
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmringmoe  # noqa: F401
    from det_track_data import make_hrsid, make_sar_aircraft, make_sardet
    root = str(tmp_path / 'data') + '/'
    dict(hrsid=make_hrsid, sardet=make_sardet,
         sar_aircraft=make_sar_aircraft)[name](root)
    cfg = Config.fromfile(osp.join(ROOT, SAR_DET[name]))
    init_default_scope('mmdet')
    stats = osp.join(root, 'rs_stats.json')

    def fix(t):
        t = dict(t)
        if _name(t['type']) == 'NormalizeRS':
            t['stats_file'] = stats
        return t
    ds_cfg = cfg.train_dataloader.dataset
    pipe = [fix(t) for t in ds_cfg.pipeline]
    upto = [i for i, t in enumerate(pipe)
            if _name(t['type']) == 'NormalizeRS'][0]
    ds_cfg = dict(ds_cfg, data_root=root, pipeline=[], test_mode=True)
    from mmdet.registry import DATASETS
    ds = DATASETS.build(ds_cfg)
    # every image under the statistics' folder (what the tool read)
    import json
    with open(stats) as f:
        st = json.load(f)['sar_l2']
    first = Compose(pipe[:upto + 1])
    pixels, raw_dtypes = [], set()
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        loaded = Compose(pipe[:1])(dict(info))
        raw_dtypes.add(loaded['img'].dtype)
        out = first(dict(info))
        assert out['img'].shape[2] == 1
        pixels.append(out['img'].reshape(-1))
    x = np.concatenate(pixels).astype(np.float64)
    if name != 'sar_aircraft':
        assert raw_dtypes == {np.dtype(np.uint16)}
        assert st['dtype'] == 'uint16'
    # the training images are part (HRSID: half) of the statistics'
    # folder; reference: their own raw mean / std against the file's
    raw = np.concatenate([Compose(pipe[:1])(dict(
        ds.get_data_info(i)))['img'].reshape(-1) for i in range(len(ds))]
    ).astype(np.float64)
    assert x.mean() == pytest.approx((raw.mean() - st['mean'][0]) /
                                     st['std'][0], abs=1e-4)
    assert x.std() == pytest.approx(raw.std() / st['std'][0], rel=1e-4)
    assert abs(x.mean()) < 0.5 and 0.5 < x.std() < 2.0
    # the whole test pipeline: one float band through mmdet's transforms
    test_pipe = Compose([fix(t) for t in cfg.test_dataloader.dataset.pipeline])
    out = test_pipe(dict(ds.get_data_info(0)))
    assert out['inputs'].shape[0] == 1
    assert out['inputs'].dtype.is_floating_point
