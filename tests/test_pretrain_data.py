"""Pretraining data: tiling tool, built-in data, RingMOSS dataset, sampler."""
import os

import numpy as np
import pytest

from helpers import run_tool_main
from mmringmoe.datasets.ringmoss import RingMOSSDataset
from mmringmoe.datasets.samplers import ModalityBalancedSampler
from mmringmoe.datasets.tiling import tile_raster
from mmringmoe.datasets.transforms import read_raster, write_raster
from mmringmoe.datasets.transforms.raster_io import write_complex_int16_tiff

RNG = np.random.default_rng(0)


def _bordered(h=448, w=448, left=128, top=0, bands=3, dtype=np.uint8):
    img = RNG.integers(1, 255, (h, w, bands)).astype(dtype)
    img[:, :left] = 0
    img[:top] = 0
    return img


def test_tiling_exact_count_with_known_black_border(tmp_path):
    # 448 px: windows start at 0, 64, 128, 192, 256 -> 5 x 5 = 25. A 128 px
    # black band on the left gives border fractions 128/192 (col 0) and
    # 64/192 = 33% (col 64) > 30%: both dropped; cols 128.. have none.
    img = _bordered()
    write_raster(tmp_path / 'scene.tif', img)
    out = run_tool_main('dataset_converters/tile_rs_images',
                        [tmp_path / 'scene.tif'])
    assert (out['kept'], out['dropped']) == (15, 10)
    tiles = sorted(os.listdir(tmp_path / 'scene_tiles'))
    assert len(tiles) == 15
    assert 'scene_r0_c128.tif' in tiles and 'scene_r256_c256.tif' in tiles
    t = read_raster(tmp_path / 'scene_tiles' / 'scene_r64_c192.tif')
    np.testing.assert_array_equal(t, img[64:256, 192:384])
    assert t.dtype == np.uint8
    # input untouched; a second run refuses to overwrite its earlier tiles
    np.testing.assert_array_equal(read_raster(tmp_path / 'scene.tif'), img)
    with pytest.raises(FileExistsError):
        run_tool_main('dataset_converters/tile_rs_images',
                      [tmp_path / 'scene.tif'])


def test_tiling_threshold_and_border_modes():
    # 32 px border -> col 0 has 32/192 = 16.7% <= 30%: kept
    kept, dropped = tile_raster(_bordered(left=32))
    assert (len(kept), dropped) == (25, 0)
    # 64 px top and left border: row/col 0 has 1 - (128/192)^2 = 55.6%
    # border, row 0 col 64 has 64*192/192^2 = 33% -> both dropped
    kept, dropped = tile_raster(_bordered(left=64, top=64))
    assert dropped == 9 and len(kept) == 16
    # dark pixels inside the scene are not border unless border_mode='any'
    img = RNG.integers(1, 255, (192, 192, 3)).astype(np.uint8)
    img[40:150, 40:150] = 0
    assert len(tile_raster(img)[0]) == 1
    assert len(tile_raster(img, border_mode='any')[0]) == 0


def test_tiling_complex_sar_keeps_format(tmp_path):
    pairs = RNG.integers(-500, 500, (200, 260, 4, 2)).astype(np.int16)
    write_complex_int16_tiff(tmp_path / 'l1a.tif', pairs)
    out = run_tool_main('dataset_converters/tile_rs_images',
                        [tmp_path / 'l1a.tif', '--out-dir', tmp_path / 'o'])
    assert out['kept'] == 2  # cols 0, 64; one row
    t = read_raster(tmp_path / 'o' / 'l1a_r0_c64.tif')
    np.testing.assert_array_equal(t, pairs[:192, 64:256])


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
