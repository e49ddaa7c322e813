"""Dataset converters on the shared window grid write GeoTIFF tiles that keep
the scene's CRS, their window's transform and the nodata value (issue 12)."""
import os
import os.path as osp
import shutil
import sys

import numpy as np
import pytest
from rasterio.transform import Affine

from mmringmoe.datasets.transforms.raster_io import (read_raster,
                                                     read_raster_with_meta,
                                                     write_complex_int16_tiff,
                                                     write_raster)
from mmringmoe.datasets.windows import SceneTooSmallError

sys.path.append(osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                         'tools', 'dataset_converters'))
RNG = np.random.default_rng(0)
UTM = 'EPSG:32650'
T = (2.5, 0.0, 440000.0, 0.0, -2.5, 3300000.0)


def _same_place(tile_transform, scene_transform, row, col, shape):
    """Pixel (i, j) of the tile maps where pixel (row + i, col + j) of the
    scene does (corners and an inner pixel)."""
    h, w = shape
    for i, j in ((0, 0), (h - 1, w - 1), (h // 3, w - 1), (h - 1, 1)):
        x, y = Affine(*tile_transform) @ (j + 0.5, i + 0.5)
        xs, ys = Affine(*scene_transform) @ (col + j + 0.5, row + i + 0.5)
        assert (x, y) == pytest.approx((xs, ys), abs=1e-6)


def _sarsegl1_scene(raw, shape=(70, 95), nodata=None):
    os.makedirs(raw, exist_ok=True)
    pairs = RNG.integers(-300, 300, (*shape, 4, 2)).astype(np.int16)
    img = osp.join(raw, 'image.tif')
    write_complex_int16_tiff(img, pairs, crs=UTM, transform=T, nodata=nodata)
    lbl = RNG.integers(0, 6, shape).astype(np.uint8)
    lbl_path = osp.join(raw, 'label.tif')
    write_raster(lbl_path, lbl, crs=UTM, transform=T)
    return pairs, lbl, img, lbl_path


def test_sarsegl1_tiles_are_georeferenced_windows_covering_the_scene(
        tmp_path):
    import sarsegl1
    pairs, lbl, img, lbl_path = _sarsegl1_scene(str(tmp_path / 'raw'))
    # size 32, overlap 8 -> stride 24: rows 0, 24 and 70 - 32 = 38; cols 0,
    # 24, 48 and 95 - 32 = 63 -> 3 x 4 = 12 windows ('drop': 2 x 3 = 6)
    counts = sarsegl1.convert([('gz', [img], lbl_path)],
                              str(tmp_path / 'out'), size=32, overlap=8)
    assert counts['total'] == 12
    assert len(sarsegl1.tile_boxes(70, 95, 32, 8, edge='drop')) == 6
    covered = np.zeros(lbl.shape, bool)
    for split in ('train', 'test'):
        for name in os.listdir(tmp_path / 'out' / 'img_dir' / split):
            stem = name[:-4]
            row, col = (int(v) for v in stem.split('_')[1:])
            tile, meta = read_raster_with_meta(
                str(tmp_path / 'out' / 'img_dir' / split / name))
            assert tile.shape == (32, 32, 8) and tile.dtype == np.int16
            np.testing.assert_array_equal(
                tile, pairs[row:row + 32, col:col + 32].reshape(32, 32, 8))
            assert 'UTM zone 50N' in meta.crs
            _same_place(meta.transform, T, row, col, (32, 32))
            ann = read_raster(str(tmp_path / 'out' / 'ann_dir' / split /
                                  f'{stem}.png'))[..., 0]
            want = lbl[row:row + 32, col:col + 32].astype(np.int64) - 1
            want[want < 0] = 255
            np.testing.assert_array_equal(ann, want)
            covered[row:row + 32, col:col + 32] = True
    assert covered.all()


def test_sarsegl1_nodata_travels_and_small_scene_is_refused(tmp_path):
    import sarsegl1
    pairs, lbl, img, lbl_path = _sarsegl1_scene(str(tmp_path / 'raw'),
                                                shape=(40, 40), nodata=0)
    sarsegl1.convert([('a', [img], lbl_path)], str(tmp_path / 'out'),
                     size=32, overlap=8)
    name = [n for s in ('train', 'test') for n in
            os.listdir(tmp_path / 'out' / 'img_dir' / s)][0]
    path = [str(tmp_path / 'out' / 'img_dir' / s / name)
            for s in ('train', 'test')
            if osp.exists(tmp_path / 'out' / 'img_dir' / s / name)][0]
    _, meta = read_raster_with_meta(path)
    assert meta.nodata == 0
    with pytest.raises(SceneTooSmallError, match=r'40 x 40.*64 x 64'):
        sarsegl1.convert([('a', [img], lbl_path)], str(tmp_path / 'o2'),
                         size=64, overlap=8)


def test_whu_opt_sar_patches_keep_georeferencing_and_nodata(tmp_path):
    import whu_opt_sar
    raw = tmp_path / 'raw'
    for k in ('optical', 'sar', 'lbl'):
        (raw / k).mkdir(parents=True)
    shape = (80, 100)
    opt = RNG.integers(1, 255, (*shape, 4)).astype(np.uint8)
    opt[:, :10] = 0
    sar = RNG.integers(1, 60000, (*shape, 1)).astype(np.uint16)
    lbl = (RNG.integers(0, 8, shape) * 10).astype(np.uint8)
    write_raster(raw / 'optical' / 's1.tif', opt, crs=UTM, transform=T,
                 nodata=0)
    write_raster(raw / 'sar' / 's1.tif', sar, crs=UTM, transform=T)
    write_raster(raw / 'lbl' / 's1.tif', lbl, crs=UTM, transform=T)
    # 32 px patches: rows 0, 32 and 80 - 32 = 48; cols 0, 32, 64 and
    # 100 - 32 = 68 -> 12 ('drop': the official 2 x 3 = 6)
    counts = whu_opt_sar.convert(str(raw), str(tmp_path / 'out'), size=32)
    assert counts['total'] == 12
    assert whu_opt_sar.convert(str(raw), str(tmp_path / 'drop'), size=32,
                               edge='drop')['total'] == 6
    covered = np.zeros(shape, bool)
    for split in ('train', 'test'):
        for name in os.listdir(tmp_path / 'out' / 'optical' / split):
            row, col = (int(v) for v in name[:-4].split('_')[1:])
            o, om = read_raster_with_meta(
                str(tmp_path / 'out' / 'optical' / split / name))
            s, sm = read_raster_with_meta(
                str(tmp_path / 'out' / 'sar' / split / name))
            np.testing.assert_array_equal(o, opt[row:row + 32, col:col + 32,
                                                 :3])
            np.testing.assert_array_equal(s, sar[row:row + 32, col:col + 32])
            assert s.dtype == np.uint16 and om.nodata == 0
            assert sm.nodata is None
            np.testing.assert_array_equal(
                om.valid_mask, (opt[row:row + 32, col:col + 32, :3] != 0
                                ).any(-1))
            for m in (om, sm):
                assert 'UTM zone 50N' in m.crs
                _same_place(m.transform, T, row, col, (32, 32))
            covered[row:row + 32, col:col + 32] = True
    assert covered.all()


def test_dfc23_outputs_keep_the_source_georeferencing(tmp_path):
    import dfc23
    import json
    raw = tmp_path / 'raw'
    (raw / 'train' / 'rgb').mkdir(parents=True)
    (raw / 'train' / 'sar').mkdir(parents=True)
    coco = dict(categories=[dict(id=i + 1, name=str(i)) for i in range(12)],
                images=[], annotations=[])
    for i in range(3):
        write_raster(raw / 'train' / 'rgb' / f'P{i}.tif',
                     RNG.integers(1, 255, (16, 16, 3)).astype(np.uint8),
                     crs=UTM, transform=T, nodata=0)
        write_raster(raw / 'train' / 'sar' / f'P{i}.tif',
                     RNG.integers(1, 255, (16, 16, 1)).astype(np.uint8),
                     crs=UTM, transform=T)
        coco['images'].append(dict(id=i, file_name=f'P{i}.tif', width=16,
                                   height=16))
    (raw / 'roof_fine_train.json').write_text(json.dumps(coco))
    dfc23.convert(str(raw), str(tmp_path / 'out'), ratios=(0.34, 0.33, 0.33))
    outs = [osp.join(r, f) for r, _, fs in os.walk(tmp_path / 'out' / 'rgb')
            for f in fs]
    assert len(outs) == 3
    for p in outs:
        _, meta = read_raster_with_meta(p)
        assert meta.nodata == 0 and 'UTM zone 50N' in meta.crs
        assert meta.transform == T
    shutil.rmtree(raw)  # outputs are copies, not links
    assert all(osp.exists(p) for p in outs)
