"""Scene inference refuses input of another sample dtype than the model was
trained on (8-bit vs 16-bit integers vs floats), warns when it cannot tell,
and reads a band GDAL flags alpha the way the training loader does."""
import json
import os.path as osp
import warnings

import numpy as np
import pytest

from helpers import run_tool_main
from inference_models import (build, file_digest, pixel_seg_config,
                              save_checkpoint, write_geotiff)

TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('dtype')
    cfg = pixel_seg_config()
    net = build(cfg)
    cfg_path = str(tmp / 'cfg.py')
    cfg.dump(cfg_path)
    ckpts = {}
    for dt in ('uint8', 'uint16', None):
        info = None if dt is None else dict(dtype=dict(opt=dt))
        ckpts[dt] = save_checkpoint(net, str(tmp / f'{dt}.pth'),
                                    inference=info)
    return cfg, cfg_path, ckpts


def _scene(tmp_path, dtype, name=None):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 250, (40, 48, 3)).astype(dtype)
    if np.dtype(dtype).kind == 'f':
        img = img / np.float32(250)  # reflectance 0-1
    return write_geotiff(tmp_path / (name or f'{np.dtype(dtype).name}.tif'),
                         img)


def test_sample_kind_against_hand_values():
    from mmringmoe.apis.model_spec import sample_kind
    assert sample_kind('uint8') == sample_kind('int8') == '8-bit integer'
    assert sample_kind('uint16') == sample_kind('int16') == '16-bit integer'
    assert sample_kind('complex_int16') == '16-bit integer'  # GDAL CInt16
    assert sample_kind('float32') == sample_kind('float64') == 'float'
    assert sample_kind('complex64') == 'float'
    assert sample_kind('uint32') == '32-bit integer'


@pytest.mark.parametrize('model_dt,scene_dt', [('uint8', 'uint16'),
                                               ('uint16', 'uint8'),
                                               ('uint16', 'float32')])
def test_other_dtype_is_refused_in_one_line(model, tmp_path, model_dt,
                                            scene_dt):
    from mmringmoe.apis import RSInferencer
    cfg, _, ckpts = model
    path = _scene(tmp_path, scene_dt)
    out = tmp_path / 'o.tif'
    with pytest.raises(ValueError) as err:
        RSInferencer(cfg, ckpts[model_dt])(path, out=str(out), crop=32)
    msg = str(err.value)
    assert '\n' not in msg
    assert msg.startswith(f"'{path}' holds {scene_dt} values but the model "
                          f'was trained on {model_dt} samples')
    assert "meta['inference']['dtype']" in msg
    assert not out.exists() and not list(tmp_path.glob('*.part'))


def test_same_dtype_runs_without_warning(model, tmp_path):
    """uint8 model, uint8 scene; int16 scene for a uint16 model (same
    kind and depth, signedness not compared)."""
    from mmringmoe.apis import RSInferencer
    cfg, _, ckpts = model
    from mmringmoe.apis.model_spec import InferenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter('error', InferenceWarning)
        a = RSInferencer(cfg, ckpts['uint8'])(_scene(tmp_path, np.uint8),
                                             crop=32, overlap=8)
        b = RSInferencer(cfg, ckpts['uint16'])(_scene(tmp_path, np.int16),
                                              crop=32, overlap=8)
    # same values, same weights: the dtype check changes no prediction
    np.testing.assert_array_equal(a.pred, b.pred)


def test_unknown_model_dtype_warns_once_and_runs(model, tmp_path, capsys):
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.model_spec import InferenceWarning
    cfg, cfg_path, ckpts = model
    path = _scene(tmp_path, np.uint16)
    with pytest.warns(InferenceWarning, match='could not be checked') as rec:
        res = RSInferencer(cfg, ckpts[None])(path, crop=32, overlap=8)
    assert len([r for r in rec if r.category is InferenceWarning]) == 1
    assert res.pred.shape == (40, 48)
    # the CLI: one 'warning:' line on stderr, the map is written
    out = str(tmp_path / 'o.tif')
    assert run_tool_main('infer', [cfg_path, ckpts[None], path, '--out', out,
                                   '--crop', 32, '--quiet']).task == \
        'segmentation'
    err = [line for line in capsys.readouterr().err.splitlines()
           if 'could not be checked' in line]
    assert len(err) == 1 and err[0].startswith('warning: ') and \
        'uint16' in err[0]


def test_stats_file_dtype_counts(model, tmp_path, capsys):
    """A --stats file (compute_rs_stats.py layout) with a dtype is checked
    like the checkpoint's; it names the file."""
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.model_spec import InferenceWarning
    stats_path = tmp_path / 'rs_stats.json'
    stats_path.write_text(json.dumps(dict(opt=dict(
        mean=[100., 110., 120.], std=[50., 55., 60.], num_bands=3,
        dtype='uint16'))))
    cfg = pixel_seg_config(stats_file=str(stats_path))
    ckpt = save_checkpoint(build(cfg), str(tmp_path / 'n.pth'))
    u8 = _scene(tmp_path, np.uint8)
    with pytest.raises(ValueError, match=(
            f"holds uint8 values but the model was trained on uint16 samples "
            f"\\(statistics file '{stats_path}', --stats\\)")):
        RSInferencer(cfg, ckpt, stats=str(stats_path))(u8)
    # the config's own statistics file says the dtype too (no --stats)
    with pytest.raises(ValueError, match=f"statistics file '{stats_path}'"):
        RSInferencer(cfg, ckpt)(u8)
    before = file_digest(u8)
    argv = [tmp_path / 'c.py', ckpt, u8, '--out', tmp_path / 'o.tif',
            '--stats', stats_path]
    cfg.dump(str(tmp_path / 'c.py'))
    assert run_tool_main('infer', argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('error: ') and 'holds uint8' in err[-1]
    assert file_digest(u8) == before
    with warnings.catch_warnings():
        warnings.simplefilter('error', InferenceWarning)
        RSInferencer(cfg, ckpt)(_scene(tmp_path, np.uint16), crop=32)


def test_cv2_pipeline_is_8_bit_by_the_same_check(model, tmp_path):
    """LoadImageFromFile decodes 8-bit images: that is the model's dtype
    whatever the checkpoint says, for single images and change pairs."""
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.model_spec import ModelDtype, model_dtypes
    _, _, ckpts = model
    cv2_cfg = pixel_seg_config(cv2_loader=True)
    with pytest.raises(ValueError, match="holds uint16 values but the "
                       "model's test pipeline reads 8-bit images"):
        RSInferencer(cv2_cfg, ckpts[None])(_scene(tmp_path, np.uint16))
    from mmringmoe.apis.model_spec import InputRole
    roles = (InputRole('date1', 'opt', 3), InputRole('date2', 'opt', 3))
    got = model_dtypes(dict(type='LoadImageFromFile'), roles,
                       dict(inference=dict(dtype=dict(opt='uint16'))))
    assert got['opt'].dtype == 'uint8' and isinstance(got['opt'], ModelDtype)
    assert model_dtypes(dict(type='LoadImageFromFile',
                             color_type='unchanged'), roles, {}) == {}
    assert model_dtypes(dict(type='LoadImageFromFile',
                             imdecode_backend='tifffile'), roles, {}) == {}


def test_inference_meta_and_hook_carry_the_dtype(tmp_path):
    """meta['inference']['dtype'] from the statistics file's dtype; else the
    hook reads the first training raster's header; else absent."""
    from types import SimpleNamespace
    from mmringmoe.apis import inference_meta
    from mmringmoe.engine.hooks.inference_meta_hook import InferenceMetaHook
    stats_path = tmp_path / 's.json'
    stats_path.write_text(json.dumps(dict(opt=dict(
        mean=[1., 2., 3.], std=[4., 5., 6.], dtype='uint16'))))
    cfg = pixel_seg_config(stats_file=str(stats_path))
    meta = inference_meta(cfg)
    assert meta['dtype'] == {'opt': 'uint16'}
    assert meta['stats'] == {'opt': dict(mean=[1., 2., 3.], std=[4., 5., 6.])}
    assert 'dtype' not in inference_meta(pixel_seg_config())
    assert inference_meta(pixel_seg_config(cv2_loader=True))['dtype'] == \
        {'opt': 'uint8'}

    first = write_geotiff(tmp_path / 'first.tif',
                          np.zeros((8, 8, 3), np.float32))

    class DS:
        def get_data_info(self, i):
            return dict(img_path=first)

    class Repeat:  # a RepeatDataset-like wrapper
        dataset = DS()

    runner = SimpleNamespace(cfg=pixel_seg_config(), model=None,
                             _train_dataloader=dict(batch_size=2),
                             _train_loop=SimpleNamespace(
                                 dataloader=SimpleNamespace(dataset=Repeat())))
    ckpt = dict(meta=dict(dataset_meta=dict(classes=('a', 'b', 'c', 'd'))))
    InferenceMetaHook().before_save_checkpoint(runner, ckpt)
    assert ckpt['meta']['inference']['dtype'] == {'opt': 'float32'}
    runner._train_loop = dict(type='IterBasedTrainLoop')  # not built: absent
    ckpt = dict(meta={})
    InferenceMetaHook().before_save_checkpoint(runner, ckpt)
    assert 'dtype' not in ckpt['meta']['inference']


def test_a_real_training_run_writes_the_first_samples_dtype(tmp_path):
    """mmengine's Runner (toy regressor, 2 iterations): the checkpoint's
    meta['inference']['dtype'] is the dtype of the training set's first
    raster (uint16), read by InferenceMetaHook from the built train loop."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner
    import toy_engine
    from mmringmoe.registry import DATASETS
    first = write_geotiff(tmp_path / 'first.tif',
                          np.zeros((8, 8, 1), np.uint16))

    @DATASETS.register_module(force=True)
    class ToyRasterDataset(toy_engine.ToyDataset):
        def get_data_info(self, idx):
            return dict(img_path=first)

    cfg = Config.fromfile(osp.join(osp.dirname(__file__), 'toy_config.py'))
    cfg.train_dataloader.dataset.type = 'ToyRasterDataset'
    cfg.train_cfg.max_iters = 2
    cfg.custom_hooks = [dict(type='mmringmoe.InferenceMetaHook')]
    cfg.test_pipeline = [dict(type='mmringmoe.LoadRSImageFromFile',
                              modality='sar_l2')]
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = f'dtype_{tmp_path.name}'
    Runner.from_cfg(cfg).train()
    ckpt = torch.load(osp.join(cfg.work_dir, 'iter_2.pth'),
                      weights_only=False)
    assert ckpt['meta']['inference']['dtype'] == {'sar_l2': 'uint16'}


# ----------------------------------------------------------- alpha bands
def _alpha_flagged(path, alpha_band):
    """A 4-band uint8 GeoTIFF whose 4th band GDAL flags alpha."""
    import rasterio
    from rasterio.transform import Affine
    arr = np.random.default_rng(3).integers(0, 250, (4, 40, 48),
                                            dtype=np.uint8)
    arr[3] = alpha_band
    with rasterio.open(path, 'w', driver='GTiff', width=48, height=40,
                       count=4, dtype='uint8', crs='EPSG:32633',
                       transform=Affine(*TRANSFORM), photometric='RGB',
                       alpha='YES') as ds:
        ds.write(arr)
    with rasterio.open(path) as ds:
        assert ds.colorinterp[3].name == 'alpha'
    return str(path), np.moveaxis(arr, 0, 2)


def test_alpha_flagged_band_is_data_for_a_4_band_model(tmp_path):
    """An ms model reads the alpha-flagged 4th band (NIR) as data, like its
    training loader: same map as the same values without the flag (was: 'has
    3 band(s) but the model expects 4')."""
    from mmringmoe.apis import RSInferencer
    cfg = pixel_seg_config(modality='ms', mean=(1., 2., 3., 4.),
                           std=(50., 50., 50., 50.))
    ckpt = save_checkpoint(build(cfg), str(tmp_path / 'ms.pth'),
                           inference=dict(dtype=dict(ms='uint8')))
    nir = np.random.default_rng(4).integers(1, 250, (40, 48))
    flagged, arr = _alpha_flagged(tmp_path / 'bgrn.tif', nir)
    plain = write_geotiff(tmp_path / 'plain.tif', arr)
    a = RSInferencer(cfg, ckpt)(flagged, crop=32, overlap=8)
    b = RSInferencer(cfg, ckpt)(plain, crop=32, overlap=8)
    np.testing.assert_array_equal(a.pred, b.pred)
    assert (a.pred != 255).all()  # no pixel masked by the 'alpha'


def test_alpha_holding_data_is_refused_before_running(tmp_path, capsys):
    """A 3-band model and a 4-band file whose alpha-flagged band holds data:
    one line, before any output exists, naming no option infer.py lacks
    (was a mid-run error pointing to the tiler's --bands); an alpha band of
    0/255 transparency masks as before."""
    from mmringmoe.apis import RSInferencer
    cfg = pixel_seg_config()
    cfg.dump(str(tmp_path / 'c.py'))
    ckpt = save_checkpoint(build(cfg), str(tmp_path / 'o.pth'),
                           inference=dict(dtype=dict(opt='uint8')))
    data = np.random.default_rng(5).integers(1, 250, (40, 48))
    bad, _ = _alpha_flagged(tmp_path / 'rgbn.tif', data)
    out = tmp_path / 'o.tif'
    assert run_tool_main('infer', [tmp_path / 'c.py', ckpt, bad, '--out',
                                   out]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: '{bad}' has 4 band(s) (band 4, flagged "
                           'alpha, holds data such as')
    assert "expects 3 for modality 'opt'" in line and '--bands' not in line
    assert not out.exists() and not list(tmp_path.glob('*.part'))
    # described Red, Green, Blue, NIR (a second trial): the line names the
    # description and the --bands that selects the model's bands
    import rasterio
    with rasterio.open(bad, 'r+') as ds:
        for i, d in enumerate(('Red', 'Green', 'Blue', 'NIR'), start=1):
            ds.set_band_description(i, d)
    assert run_tool_main('infer', [tmp_path / 'c.py', ckpt, bad, '--out',
                                   out]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: '{bad}' has 4 band(s) (band 4, "
                           "described 'NIR', flagged alpha, holds data")
    assert line.endswith('; select them with --bands 1,2,3 (bands=[1, 2, '
                         '3]) or write them to a new file')
    assert run_tool_main('infer', [tmp_path / 'c.py', ckpt, bad, '--out',
                                   out, '--bands', '1,2,3']) is not None
    assert out.exists()
    mask = np.where(np.random.default_rng(6).random((40, 48)) > 0.5, 255, 0)
    ok, _ = _alpha_flagged(tmp_path / 'rgba.tif', mask)
    res = RSInferencer(cfg, ckpt)(ok, crop=32, overlap=8)
    np.testing.assert_array_equal(res.pred == 255, mask == 0)


# ------------------------------------------- statistics of one sample dtype
def test_stats_over_mixed_sample_dtypes_are_refused(tmp_path):
    """compute_band_stats writes one dtype into the statistics: files of
    another kind or depth (a uint16 file after uint8 ones, float reflectance
    after uint16 DN) are refused instead of averaged in; int16 after uint16
    is the same kind and passes."""
    from mmringmoe.datasets.transforms.normalize import compute_band_stats
    from mmringmoe.datasets.transforms.raster_io import write_raster
    rng = np.random.default_rng(9)
    for first, second, ok in (('uint8', 'uint16', False),
                              ('uint16', 'float32', False),
                              ('uint16', 'int16', True)):
        a, b = (str(tmp_path / f'{k}_{first}{second}.tif') for k in 'ab')
        write_raster(a, rng.integers(1, 200, (8, 8, 1)).astype(first))
        write_raster(b, rng.integers(1, 200, (8, 8, 1)).astype(second))
        if ok:
            assert compute_band_stats([a, b], 'sar_l2')['dtype'] == first
        else:
            with pytest.raises(ValueError, match=(
                    f"b_{first}{second}.tif' holds {second} values, the "
                    f'files before it {first}')):
                compute_band_stats([a, b], 'sar_l2')


def test_ambiguous_npy_refusal_names_no_missing_option(tmp_path):
    """A cube-like .npy (bands first or last?) is refused with a way out
    the inferencer has (was: 'pass npy_layout=...', a loader argument)."""
    from mmringmoe.apis import build_scene
    path = str(tmp_path / 'cube.npy')
    np.save(path, np.zeros((16, 16, 16), np.uint8))
    with pytest.raises(ValueError, match=r'cube\.npy.*\(16, 16, 16\) is '
                       r'ambiguous.*save it as \(H, W, C\).*RasterArray') as e:
        build_scene(path)
    assert 'npy_layout' not in str(e.value)


@pytest.mark.parametrize('model_dt,scene_dt,value', [
    ('uint8', 'int8', -3), ('uint16', 'int16', -1), ('uint8', 'int8', None)])
def test_other_signedness_is_checked_on_the_values(model, tmp_path, model_dt,
                                                   scene_dt, value):
    """Same width, other signedness: the values decide. An int8 / int16
    scene whose valid pixels are all >= 0 holds what a uint8 / uint16 model
    saw and runs (same map as the unsigned scene); one negative valid value
    (in the window at row 0, col 16) is refused in one line naming the file, the
    window and the value, and no output is left. A negative nodata value is
    not data and is not counted."""
    from mmringmoe.apis import RSInferencer
    cfg, _, ckpts = model
    rng = np.random.default_rng(1)
    img = rng.integers(0, 120, (40, 48, 3))
    img[:2, :2] = -100  # nodata
    if value is not None:
        img[30, 40, 1] = value
    path = write_geotiff(tmp_path / f'{scene_dt}.tif', img.astype(scene_dt),
                         nodata=-100)
    out = tmp_path / 'o.tif'
    run = RSInferencer(cfg, ckpts[model_dt])
    if value is None:
        got = run(path, crop=32, overlap=8)
        ref = run(write_geotiff(tmp_path / 'u.tif', np.where(
            img < 0, 0, img).astype(model_dt), nodata=0), crop=32, overlap=8)
        ok = img[..., 0] >= 0
        np.testing.assert_array_equal(got.pred[ok], ref.pred[ok])
        return
    with pytest.raises(ValueError) as err:
        run(path, out=str(out), crop=32, overlap=8)
    msg = str(err.value)
    assert '\n' not in msg
    assert msg.startswith(
        f"'{path}' holds {scene_dt} values down to {value} and up to ")
    assert 'in window (row 0, col 16, 32 x 32)' in msg
    assert f'was trained on {model_dt} samples' in msg
    assert f'({value} does not)' in msg
    assert not out.exists() and not list(tmp_path.glob('*.part'))


def test_other_signedness_hand_cases():
    from mmringmoe.apis.model_spec import _other_signedness
    assert _other_signedness('int8', 'uint8')
    assert _other_signedness('uint16', 'int16')
    assert not _other_signedness('int16', 'int16')
    assert not _other_signedness('int8', 'uint16')
    assert not _other_signedness('float32', 'int32')
    assert not _other_signedness('complex_int16', 'int16')
