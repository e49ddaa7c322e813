"""Band selection for scene inference (``RSInferencer(..., bands=[4, 2, 1])``,
``tools/infer.py --bands 4,2,1``: 1-based file band indexes, GDAL's ``-b``
convention, in the order the model reads them).

References: the same model on a 3-band file holding exactly the selected
bands (written by rasterio, read back), hand-built nodata patterns, and
cv2.imread's pixels for the model's own decoder (mmcv LoadImageFromFile)."""
import numpy as np
import pytest

from helpers import run_tool_main
from inference_models import (build, file_digest, pixel_seg_checkpoint,
                              pixel_seg_config, save_checkpoint, whole_probs)

H, W = 40, 48
CRS = 'EPSG:32633'
TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)


def _rgb(seed=0):
    """``(H, W, 3)`` uint8 R, G, B with values 1..250 (0 is the nodata
    value) and every band 0 in a 5 x 6 block (nodata pixels)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(1, 251, (H, W, 3)).astype(np.uint8)
    rgb[3:8, 10:16] = 0
    return rgb


def _write(path, arr, nodata=0, colours=None, **profile):
    import rasterio
    from rasterio.enums import ColorInterp
    prof = dict(driver='GTiff', height=arr.shape[0], width=arr.shape[1],
                count=arr.shape[2], dtype=str(arr.dtype), crs=CRS,
                transform=rasterio.Affine(*TRANSFORM), nodata=nodata)
    prof.update(profile)
    with rasterio.open(str(path), 'w', **prof) as ds:
        ds.write(np.moveaxis(arr, 2, 0))
        if colours:
            ds.colorinterp = [getattr(ColorInterp, c) for c in colours]
    return str(path)


def _five(rgb, seed=1):
    """5 bands: 4, 2, 1 = R, G, B; bands 3 and 5 other data (1..250),
    also where R, G, B are nodata; band 3 is 0 (the nodata value) in a
    block where R, G, B hold data."""
    rng = np.random.default_rng(seed)
    five = rng.integers(1, 251, (H, W, 5)).astype(np.uint8)
    five[..., 3], five[..., 1], five[..., 0] = rgb[..., 0], rgb[..., 1], \
        rgb[..., 2]
    five[20:26, 30:40, 2] = 0  # nodata value in an unselected band only
    return five


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return pixel_seg_checkpoint(
        tmp_path_factory.mktemp('bands'), inference=dict(
            dtype=dict(opt='uint8'),
            band_order=dict(opt=['red', 'green', 'blue'])))


def _read(path):
    import rasterio
    with rasterio.open(path) as ds:
        return ds.read(), ds.crs, ds.transform, ds.nodata


def test_selected_bands_give_the_map_and_probs_of_the_3_band_scene(
        model, tmp_path):
    from mmringmoe.apis import RSInferencer
    cfg, _, ckpt = model
    rgb = _rgb()
    ref = _write(tmp_path / 'rgb.tif', rgb)
    five = _write(tmp_path / 'five.tif', _five(rgb))
    digest = file_digest(five)
    inf = RSInferencer(cfg, ckpt)
    inf(ref, out=str(tmp_path / 'ref.tif'), crop=32, probs=True)
    inf(five, out=str(tmp_path / 'sel.tif'), crop=32, probs=True,
        bands=[4, 2, 1])
    assert file_digest(five) == digest
    for name in ('', '_probs'):
        a, a_crs, a_tr, a_nd = _read(str(tmp_path / f'ref{name}.tif'))
        b, b_crs, b_tr, b_nd = _read(str(tmp_path / f'sel{name}.tif'))
        np.testing.assert_array_equal(a, b)
        assert (a_crs, a_tr) == (b_crs, b_tr)
        assert a_crs.to_epsg() == 32633 and tuple(b_tr)[:6] == TRANSFORM
        assert a_nd == b_nd or (np.isnan(a_nd) and np.isnan(b_nd))
    pred = _read(str(tmp_path / 'sel.tif'))[0][0]
    nd = _read(str(tmp_path / 'sel.tif'))[3]
    assert (pred[3:8, 10:16] == nd).all()       # nodata of R, G, B kept
    assert (pred[20:26, 30:40] != nd).all()     # band 3's 0 masks nothing
    # without a selection the 5-band file is refused (the model reads 3)
    with pytest.raises(ValueError, match='has 5 band'):
        inf(five, crop=32)


def test_valid_mask_is_the_selected_bands_per_band_masks(tmp_path):
    """Hand-built: invalid only where every SELECTED band holds nodata; a
    nodata value in an unselected band masks nothing, and data in an
    unselected band does not make an all-nodata selected pixel valid
    (GDAL's dataset mask over all 5 bands would)."""
    from mmringmoe.apis.scene import build_scene
    from mmringmoe.datasets.transforms.raster_io import read_raster_with_meta
    rgb = _rgb()
    five = _five(rgb)
    path = _write(tmp_path / 'five.tif', five)
    want = (rgb != 0).any(-1)
    assert want[20:26, 30:40].all() and not want[3:8, 10:16].any()
    arr, meta = read_raster_with_meta(path, indexes=[4, 2, 1])
    np.testing.assert_array_equal(arr, rgb)
    np.testing.assert_array_equal(meta.valid_mask, want)
    # a window reaching past the scene: outside is invalid
    arr, meta = read_raster_with_meta(path, window=(30, 40, 16, 16),
                                      boundless=True, indexes=[4, 2, 1])
    np.testing.assert_array_equal(arr[:10, :8], rgb[30:, 40:])
    assert not meta.valid_mask[10:].any() and not meta.valid_mask[:, 8:].any()
    np.testing.assert_array_equal(meta.valid_mask[:10, :8], want[30:, 40:])
    # the default read is unchanged: every band, GDAL's dataset mask
    arr, meta = read_raster_with_meta(path)
    np.testing.assert_array_equal(arr, five)
    assert meta.valid_mask.all()
    # windows of the scene
    scene = build_scene(path, bands=[4, 2, 1])
    a, v = scene.read((0, 0, H, W))
    np.testing.assert_array_equal(a['img'], rgb)
    np.testing.assert_array_equal(v, want)


def test_bgr_tagged_file_runs_with_bands_3_2_1(model, tmp_path):
    from mmringmoe.apis import RSInferencer
    cfg, cfg_path, ckpt = model
    rgb = _rgb(2)
    plain = _write(tmp_path / 'rgb.tif', rgb, photometric='RGB')
    bgr = _write(tmp_path / 'bgr.tif', rgb[..., ::-1].copy(),
                 colours=('blue', 'green', 'red'))
    inf = RSInferencer(cfg, ckpt)
    with pytest.raises(ValueError) as err:
        inf(bgr, crop=32)
    assert '--bands 3,2,1 (tools/infer.py) or bands=[3, 2, 1]' in \
        str(err.value)
    want = inf(plain, crop=32).pred
    np.testing.assert_array_equal(inf(bgr, crop=32, bands=[3, 2, 1]).pred,
                                  want)
    # the declared-order check sees the names of the selected bands
    with pytest.raises(ValueError, match='declared green, red, blue .*'
                       r'--bands 3,2,1'):  # file indexes
        inf(bgr, crop=32, bands=[2, 3, 1])
    out = tmp_path / 'o.tif'
    assert run_tool_main('infer', [cfg_path, ckpt, bgr, '--out', out,
                                   '--bands', '3,2,1', '--quiet']) is not None
    np.testing.assert_array_equal(_read(str(out))[0][0], want)


@pytest.mark.parametrize('bands,cli,msg', [
    ([0, 1, 2], '0,1,2', 'band 0 does not exist (the file has 5 band(s)'),
    ([1, 2, 6], '1,2,6', 'band 6 does not exist (the file has 5 band(s)'),
    ([4, 2, 4], '4,2,4', 'band 4 is selected more than once'),
    ([4, 2.0, 1], '4,x,1', 'is not an integer'),
    ([4, 2], '4,2', "bands 4,2 select 2 band(s) but the model reads 3 for "
     "modality 'opt' (red, green, blue)"),
])
def test_refusals_are_one_line(model, tmp_path, capsys, bands, cli, msg):
    from mmringmoe.apis import RSInferencer
    cfg, cfg_path, ckpt = model
    five = _write(tmp_path / 'five.tif', _five(_rgb()))
    digest = file_digest(five)
    out = tmp_path / 'o.tif'
    with pytest.raises(ValueError) as err:
        RSInferencer(cfg, ckpt)(five, out=str(out), crop=32, probs=True,
                                bands=bands)
    assert '\n' not in str(err.value) and msg in str(err.value)
    capsys.readouterr()
    assert run_tool_main('infer', [cfg_path, ckpt, five, '--out', out,
                                   '--probs', '--bands', cli,
                                   '--quiet']) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith('error: ')
    assert (msg if cli != '4,x,1' else "'x' is not an integer") in errors[0]
    assert file_digest(five) == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ['five.tif']


def test_bands_refused_for_opt_sar_and_multimodal_input(model, tmp_path,
                                                        capsys):
    from mmringmoe.apis.scene import build_scene
    cfg, cfg_path, ckpt = model
    five = _write(tmp_path / 'five.tif', _five(_rgb()))
    sar = _write(tmp_path / 'sar.tif', _rgb()[..., :1])
    with pytest.raises(ValueError, match='not a multi-modal input'):
        build_scene({'opt': five, 'sar_l2': sar}, bands=[4, 2, 1])
    assert run_tool_main('infer', [cfg_path, ckpt, five, '--sar', sar,
                                   '--out', tmp_path / 'o.tif', '--bands',
                                   '4,2,1', '--quiet']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and '--bands selects the bands of INPUT' in err[0]
    assert not (tmp_path / 'o.tif').exists()


def test_cli_bands_end_to_end_with_probs_and_quicklook(model, tmp_path,
                                                       capsys):
    from PIL import Image
    cfg, cfg_path, ckpt = model
    rgb = _rgb()
    ref = _write(tmp_path / 'rgb.tif', rgb)
    five = _write(tmp_path / 'five.tif', _five(rgb))
    digest = file_digest(five)
    assert run_tool_main('infer', [cfg_path, ckpt, ref, '--out',
                                   tmp_path / 'r.tif', '--probs', '--show',
                                   tmp_path / 'r.png', '--quiet']) is not None
    assert run_tool_main('infer', [cfg_path, ckpt, five, '--out',
                                   tmp_path / 's.tif', '--probs', '--show',
                                   tmp_path / 's.png', '--bands', '4,2,1',
                                   '--quiet']) is not None
    assert 'segmentation: ' in capsys.readouterr().out
    for a, b in [('r.tif', 's.tif'), ('r_probs.tif', 's_probs.tif')]:
        ra, sa = _read(str(tmp_path / a)), _read(str(tmp_path / b))
        np.testing.assert_array_equal(ra[0], sa[0])
        assert ra[1:3] == sa[1:3]
    # the quick look shows the selected bands (and their mask): the same
    # picture as the 3-band scene's
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'r.png')),
                                  np.asarray(Image.open(tmp_path / 's.png')))
    assert file_digest(five) == digest


def test_change_pair_reads_the_same_bands_of_both_dates(model, tmp_path):
    from mmringmoe.apis.scene import build_scene
    rgb1, rgb2 = _rgb(3), _rgb(4)
    d1 = _write(tmp_path / 'd1.tif', _five(rgb1))
    d2 = _write(tmp_path / 'd2.tif', _five(rgb2, seed=5))
    scene = build_scene((d1, d2), bands=[4, 2, 1])
    arrays, valid = scene.read((0, 0, H, W))
    np.testing.assert_array_equal(arrays['date1'], rgb1)
    np.testing.assert_array_equal(arrays['date2'], rgb2)
    np.testing.assert_array_equal(valid, (rgb1 != 0).any(-1)
                                  & (rgb2 != 0).any(-1))




def test_models_own_decoder_sees_the_selected_bands(tmp_path):
    """A JPEG holding B, G, R (file order) through a LoadImageFromFile model
    with bands=[3, 2, 1]: the model sees cv2.imread's pixels of bands
    3, 2, 1, i.e. R, G, B, as BGR (its loader's order)."""
    import cv2
    from mmringmoe.apis import RSInferencer
    cfg = pixel_seg_config(cv2_loader=True)
    net = build(cfg)
    ckpt = save_checkpoint(net, str(tmp_path / 'm.pth'))
    rng = np.random.default_rng(7)
    blocks = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
    rgb = np.kron(blocks, np.ones((7, 7, 1), np.uint8))[:H, :W]
    path = str(tmp_path / 'bgr.jpg')
    assert cv2.imwrite(path, np.ascontiguousarray(rgb))  # file: R, G, B
    # as cv2 writes BGR arrays: file band 1 = rgb[..., 2] etc.
    res = RSInferencer(cfg, ckpt)(path, crop=32, probs=True, bands=[3, 2, 1])
    file_order = cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1]  # b1, b2, b3
    picked = file_order[..., [2, 1, 0]]          # bands 3, 2, 1
    ref = whole_probs(net, np.ascontiguousarray(picked[..., ::-1]))  # BGR
    np.testing.assert_allclose(res.probs, ref, atol=2e-6)
    # control: without the selection the model sees other pixels
    res0 = RSInferencer(cfg, ckpt)(path, crop=32, probs=True)
    assert np.abs(res0.probs - ref).max() > 1e-2


def test_models_own_decoder_refuses_bands_it_does_not_decode(tmp_path):
    """A 5-band uint8 GeoTIFF is no image for mmcv's LoadImageFromFile (cv2
    returns nothing): with bands 4, 2, 1 it is refused in one line rather
    than read by GDAL as the model's loader never would."""
    import cv2
    from mmringmoe.apis import RSInferencer
    cfg = pixel_seg_config(cv2_loader=True)
    ckpt = save_checkpoint(build(cfg), str(tmp_path / 'm.pth'))
    five = _write(tmp_path / 'five.tif', _five(_rgb()))
    assert cv2.imread(five, cv2.IMREAD_COLOR) is None
    with pytest.raises(ValueError) as err:
        RSInferencer(cfg, ckpt)(five, out=str(tmp_path / 'o.tif'), crop=32,
                                bands=[4, 2, 1])
    assert '\n' not in str(err.value)
    assert 'LoadImageFromFile (cv2) cannot decode' in str(err.value)
    assert not (tmp_path / 'o.tif').exists()


def test_alpha_band_mask_or_data_with_a_selection(model, tmp_path):
    """An unselected band flagged alpha holding transparency (0 / 255)
    stays the mask of the selected bands; one holding data (the NIR of a
    B, G, R, NIR uint8 GeoTIFF, which GDAL flags alpha by default) masks
    nothing, even where it is 0."""
    import rasterio
    from rasterio.enums import ColorInterp as CI
    from mmringmoe.apis import RSInferencer
    cfg, _, ckpt = model
    inf = RSInferencer(cfg, ckpt)
    rgb = _rgb(5)
    ref = inf(_write(tmp_path / 'rgb.tif', rgb, nodata=None), crop=32).pred
    alpha = np.full((H, W, 1), 255, np.uint8)
    alpha[0:5, 0:7] = 0
    rgba = _write(tmp_path / 'rgba.tif', np.concatenate([rgb, alpha], 2),
                  nodata=None, colours=('red', 'green', 'blue', 'alpha'))
    pred = inf(rgba, crop=32, bands=[1, 2, 3]).pred
    np.testing.assert_array_equal(pred[5:], ref[5:])
    assert (pred[0:5, 0:7] == 255).all()
    assert (pred[0:5, 7:] == ref[0:5, 7:]).all()
    nir = np.random.default_rng(6).integers(1, 250, (H, W, 1)).astype(np.uint8)
    nir[10:20, 10:20] = 0
    bgrn = _write(tmp_path / 'bgrn.tif',
                  np.concatenate([rgb[..., ::-1], nir], 2), nodata=None)
    with rasterio.open(bgrn) as ds:
        assert ds.colorinterp[3] == CI.alpha  # GDAL's default flag
    np.testing.assert_array_equal(inf(bgrn, crop=32, bands=[3, 2, 1]).pred,
                                  ref)
