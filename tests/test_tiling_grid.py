"""Tiler on the shared window grid (issue 12): full coverage, nodata-based
dropping for any fill value, small scenes, georeferenced tiles, bounded-memory
zero-border fallback."""
import os
import re

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from helpers import run_tool_main
from mmringmoe.datasets.tiling import (black_border_mask, iter_raster_tiles,
                                       scene_zero_border, tile_raster)
from mmringmoe.datasets.transforms.raster_io import (read_raster,
                                                     read_raster_with_meta,
                                                     write_raster)

RNG = np.random.default_rng(0)
UTM = 'EPSG:32650'
T = (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
TOOL = 'dataset_converters/tile_rs_images'


def _tiles(folder):
    """{(row, col): path} of the tiles in ``folder``."""
    out = {}
    for name in os.listdir(folder):
        m = re.search(r'_r(\d+)_c(\d+)\.tif$', name)
        out[int(m.group(1)), int(m.group(2))] = os.path.join(folder, name)
    return out


def test_450x300_scene_every_pixel_in_a_tile_with_its_georeferencing(
        tmp_path):
    # rows: 0, 64, 128, 192, 256 and the aligned 450 - 192 = 258 (6);
    # cols: 0, 64 and 300 - 192 = 108 (3) -> 18 windows, none dropped
    img = RNG.integers(1, 4000, (450, 300, 4)).astype(np.uint16)
    write_raster(tmp_path / 's.tif', img, crs=UTM, transform=T, nodata=0)
    out = run_tool_main(TOOL, [tmp_path / 's.tif', '--out-dir',
                               tmp_path / 't'])
    assert (out['kept'], out['dropped']) == (18, 0)
    tiles = _tiles(tmp_path / 't')
    assert sorted({r for r, _ in tiles}) == [0, 64, 128, 192, 256, 258]
    assert sorted({c for _, c in tiles}) == [0, 64, 108]
    covered = np.zeros(img.shape[:2], bool)
    scene = Affine(*T)
    for (r, c), path in tiles.items():
        tile, meta = read_raster_with_meta(path)
        assert tile.dtype == np.uint16 and tile.shape == (192, 192, 4)
        np.testing.assert_array_equal(tile, img[r:r + 192, c:c + 192])
        covered[r:r + 192, c:c + 192] = True
        assert meta.nodata == 0
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 32650
            assert src.compression is not None
        # pixel (i, j) of the tile lies where pixel (r + i, c + j) of the
        # scene lies
        for i, j in ((0, 0), (191, 5), (17, 191)):
            assert Affine(*meta.transform) @ (j, i) == scene @ (c + j, r + i)
    assert covered.all()


def test_scene_smaller_than_a_window_is_refused_or_padded(tmp_path, capsys):
    img = RNG.integers(1, 200, (150, 150, 3)).astype(np.uint8)
    write_raster(tmp_path / 'small.tif', img, crs=UTM, transform=T,
                 nodata=255)
    code = run_tool_main(TOOL, [tmp_path / 'small.tif', '--out-dir',
                                tmp_path / 'refused'])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert 'small.tif' in err[0] and '150 x 150' in err[0] and \
        '192 x 192' in err[0]
    assert not (tmp_path / 'refused').exists()
    out = run_tool_main(TOOL, [tmp_path / 'small.tif', '--pad', '--out-dir',
                               tmp_path / 'pad'])
    assert out['kept'] == 1
    tile, meta = read_raster_with_meta(tmp_path / 'pad' / 'small_r0_c0.tif')
    assert tile.shape == (192, 192, 3)
    np.testing.assert_array_equal(tile[:150, :150], img)
    assert (tile[150:] == 255).all() and (tile[:, 150:] == 255).all()
    want = np.zeros((192, 192), bool)
    want[:150, :150] = True
    np.testing.assert_array_equal(meta.valid_mask, want)
    # no nodata declared: the padding is kept invalid by the tile's mask band
    write_raster(tmp_path / 'plain.tif', img)
    run_tool_main(TOOL, [tmp_path / 'plain.tif', '--pad', '--out-dir',
                         tmp_path / 'pad2'])
    tile, meta = read_raster_with_meta(tmp_path / 'pad2' / 'plain_r0_c0.tif')
    assert meta.mask_source == 'mask_band'
    np.testing.assert_array_equal(meta.valid_mask, want)
    assert (tile[150:] == 0).all()


@pytest.mark.parametrize('fill,dtype', [(0, np.uint16), (255, np.uint8),
                                        (65535, np.uint16),
                                        (-9999, np.int16),
                                        (-9999, np.float32),
                                        (np.nan, np.float32)])
def test_pure_nodata_tiles_dropped_for_any_fill_value(tmp_path, fill, dtype):
    # 256 x 256, 64 px windows without overlap: the left half (2 of 4 tile
    # columns) is the declared nodata -> 8 of 16 dropped
    img = RNG.integers(1, 200, (256, 256, 2)).astype(dtype)
    img[:, :128] = fill
    write_raster(tmp_path / 's.tif', img, crs=UTM, transform=T, nodata=fill)
    report = {}
    kept = list(iter_raster_tiles(str(tmp_path / 's.tif'), 64, 64,
                                  report=report))
    assert (report['kept'], report['dropped']) == (8, 8)
    assert {t.col for t in kept} == {128, 192}
    assert report['mask_source'] == 'nodata'


def test_undeclared_nan_tiles_dropped(tmp_path):
    img = RNG.random((256, 256, 3)).astype(np.float32)
    img[:, :128] = np.nan
    write_raster(tmp_path / 's.tif', img)
    out = run_tool_main(TOOL, [tmp_path / 's.tif', '--size', '64', '--step',
                               '64', '--out-dir', tmp_path / 't'])
    assert (out['kept'], out['dropped']) == (8, 8)


def test_partial_nodata_tile_keeps_its_mask_and_values(tmp_path):
    # a float tile with 25 % NaN (undeclared) is kept; its NaN stay NaN
    img = RNG.random((128, 128, 2)).astype(np.float32)
    img[:, :16] = np.nan
    write_raster(tmp_path / 's.tif', img)
    run_tool_main(TOOL, [tmp_path / 's.tif', '--size', '64', '--step', '64',
                         '--out-dir', tmp_path / 't'])
    with rasterio.open(tmp_path / 't' / 's_r0_c0.tif') as src:
        raw = src.read()
    assert np.isnan(raw[:, :, :16]).all()
    np.testing.assert_array_equal(raw[:, :, 16:],
                                  np.moveaxis(img[:64, 16:64], 2, 0))
    _, meta = read_raster_with_meta(tmp_path / 't' / 's_r0_c0.tif')
    assert meta.valid_mask[:, :16].sum() == 0 and meta.valid_mask[:, 16:].all()


def test_alpha_mask_survives_tiling(tmp_path):
    rgba = RNG.integers(1, 255, (128, 128, 4)).astype(np.uint8)
    rgba[..., 3] = 255
    rgba[:40, :, 3] = 0
    path = tmp_path / 'rgba.tif'
    with rasterio.open(path, 'w', driver='GTiff', height=128, width=128,
                       count=4, dtype='uint8', photometric='RGB',
                       alpha='YES', crs=UTM, transform=Affine(*T)) as dst:
        dst.write(np.moveaxis(rgba, 2, 0))
    tiles = list(iter_raster_tiles(str(path), 64, 64, max_nodata=1.0))
    assert len(tiles) == 4
    tile = [t for t in tiles if (t.row, t.col) == (0, 64)][0]
    assert tile.data.shape == (64, 64, 3)  # alpha is the mask, not data
    from mmringmoe.datasets.tiling import write_tile
    write_tile(str(tmp_path / 'out.tif'), tile)
    data, meta = read_raster_with_meta(tmp_path / 'out.tif')
    np.testing.assert_array_equal(data, rgba[:64, 64:, :3])
    np.testing.assert_array_equal(meta.valid_mask, rgba[:64, 64:, 3] > 0)


def _bordered(h, w, left=128, top=0, bands=3):
    img = RNG.integers(1, 255, (h, w, bands)).astype(np.uint8)
    img[:, :left] = 0
    img[:top] = 0
    return img


def test_zero_border_fallback_keeps_the_30_percent_rule(tmp_path):
    # no nodata declared -> the zero border counts. 450 x 460 with 192/64:
    # row starts 0, 64, 128, 192, 256, 258; col starts 0, 64, 128, 192,
    # 256, 268 -> 36 windows. The 128 px black band on the left: col 0 has
    # 128/192 border, col 64 has 64/192 = 33 % > 30 %: both dropped in
    # every row (12); the other 24 are kept.
    img = _bordered(450, 460)
    write_raster(tmp_path / 'scene.tif', img)
    out = run_tool_main(TOOL, [tmp_path / 'scene.tif'])
    assert (out['kept'], out['dropped']) == (24, 12)
    tiles = _tiles(tmp_path / 'scene_tiles')
    assert (0, 128) in tiles and (258, 268) in tiles and (0, 64) not in tiles
    t, meta = read_raster_with_meta(tiles[64, 192])
    np.testing.assert_array_equal(t, img[64:256, 192:384])
    assert meta.valid_mask.all()
    # input untouched; a second run refuses to overwrite its earlier tiles
    np.testing.assert_array_equal(read_raster(tmp_path / 'scene.tif'), img)
    assert run_tool_main(TOOL, [tmp_path / 'scene.tif']) == 1  # error: line
    # 32 px border -> col 0 has 16.7 % <= 30 %: kept, its border masked
    kept, dropped = tile_raster(_bordered(448, 448, left=32))
    assert (len(kept), dropped) == (25, 0)
    assert kept[0].valid_mask[:, :32].sum() == 0
    # dark pixels inside the scene are not border unless border_mode='any'
    img = RNG.integers(1, 255, (192, 192, 3)).astype(np.uint8)
    img[40:150, 40:150] = 0
    assert len(tile_raster(img)[0]) == 1
    assert len(tile_raster(img, border_mode='any')[0]) == 0
    # 'none': no fallback, everything valid
    assert len(tile_raster(_bordered(192, 192, left=150),
                           nodata_fallback='none')[0]) == 1


def test_blockwise_zero_border_equals_whole_scene_labelling(tmp_path):
    # a zero region winding through several 16 px blocks to the edge, an
    # interior lake, a diagonal-only contact (not 4-connected) and noise
    img = RNG.integers(1, 9, (70, 90, 2)).astype(np.uint16)
    img[10:12, 0:60] = 0      # from the left edge ...
    img[10:50, 58:60] = 0     # ... down ...
    img[48:50, 20:60] = 0     # ... and back left, through 3 x 4 blocks
    img[30:40, 70:80] = 0     # lake
    img[60, 61] = 0
    img[61, 60] = 0           # diagonal neighbours: not 4-connected
    img[69, 89] = 0           # corner pixel on the edge
    img[50, 21] = 0           # 4-connected to the winding band
    img[RNG.random((70, 90)) < 0.05] = 0
    write_raster(tmp_path / 'z.tif', img)
    want = black_border_mask(img)
    got = scene_zero_border(str(tmp_path / 'z.tif'), block=16)
    np.testing.assert_array_equal(got.window(0, 0, 70, 90), want)
    np.testing.assert_array_equal(got.window(5, 13, 30, 40), want[5:35,
                                                                  13:53])
    np.testing.assert_array_equal(
        scene_zero_border(str(tmp_path / 'z.tif'), 'any', 16).window(
            0, 0, 70, 90), black_border_mask(img, 'any'))
    assert want[10, 30] and want[49, 21] and want[50, 21]
    assert not want[35, 75]


def test_an_input_is_never_overwritten(tmp_path, capsys):
    img = RNG.integers(1, 200, (64, 64, 1)).astype(np.uint8)
    write_raster(tmp_path / 'a.tif', img)
    write_raster(tmp_path / 'a_r0_c0.tif', img[::-1].copy())
    code = run_tool_main(TOOL, [tmp_path / 'a.tif', tmp_path / 'a_r0_c0.tif',
                                '--size', '64', '--out-dir', tmp_path])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'overwrite input' in err[0] and \
        'a_r0_c0' in err[0]
    np.testing.assert_array_equal(read_raster(tmp_path / 'a_r0_c0.tif'),
                                  img[::-1])
