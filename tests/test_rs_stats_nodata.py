"""compute_rs_stats / compute_band_stats over valid pixels only, read window
by window (issue 12; issue 13 item 2: ``--modality`` band counts)."""
import json

import numpy as np
import pytest

from helpers import run_tool_main
from mmringmoe.datasets.transforms.normalize import compute_band_stats
from mmringmoe.datasets.transforms.raster_io import (write_complex_int16_tiff,
                                                     write_raster)

RNG = np.random.default_rng(0)
T = (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)


def test_65535_half_scene_gives_the_valid_halfs_statistics(tmp_path):
    # 768 x 768 x 4 uint16, left half 65535 (declared nodata), right half
    # about 1000: 16 tiles of 192 px, 8 of them pure nodata
    img = RNG.normal(1000, 150, (768, 768, 4)).clip(1, 3000).astype(
        np.uint16)
    img[:, :384] = 65535
    write_raster(tmp_path / 'scene.tif', img, crs='EPSG:32650', transform=T,
                 nodata=65535)
    valid = img[:, 384:].reshape(-1, 4).astype(np.float64)
    # statistics of the whole scene (read window by window) leave the
    # nodata half out
    import shutil
    (tmp_path / 'all' / 'ms').mkdir(parents=True)
    shutil.copy(tmp_path / 'scene.tif', tmp_path / 'all' / 'ms')
    stats = run_tool_main('dataset_converters/compute_rs_stats',
                          [tmp_path / 'all'])['ms']
    np.testing.assert_allclose(stats['mean'], valid.mean(0), rtol=0.01)
    np.testing.assert_allclose(stats['std'], valid.std(0), rtol=0.01)
    # (exact, in fact: same pixels, float64)
    np.testing.assert_allclose(stats['mean'], valid.mean(0), rtol=1e-9)
    np.testing.assert_allclose(stats['std'], valid.std(0), rtol=1e-9)
    assert stats['num_pixels'] == 768 * 384
    assert stats['num_invalid_pixels'] == 768 * 384
    # even --max-nodata 1 never keeps a window without a valid pixel
    out = run_tool_main('dataset_converters/tile_rs_images',
                        [tmp_path / 'scene.tif', '--size', '192', '--step',
                         '192', '--max-nodata', '1', '--out-dir',
                         tmp_path / 'all1' / 'ms'])
    assert (out['kept'], out['dropped']) == (8, 8)
    # the default tiler drops the 8 pure-nodata tiles
    out = run_tool_main('dataset_converters/tile_rs_images',
                        [tmp_path / 'scene.tif', '--size', '192', '--step',
                         '192', '--out-dir', tmp_path / 'kept' / 'ms'])
    assert (out['kept'], out['dropped']) == (8, 8)


def test_window_by_window_equals_whole_array(tmp_path):
    # both float32: files of one sample dtype (mixed dtypes are refused)
    a = RNG.integers(0, 4000, (130, 110, 3)).astype(np.float32)
    a[:20] = 9
    b = RNG.random((50, 70, 3)).astype(np.float32) * 500
    b[5:9, 3:60] = np.nan
    write_raster(tmp_path / 'a.tif', a, nodata=9)
    write_raster(tmp_path / 'b.tif', b)
    st = compute_band_stats([str(tmp_path / 'a.tif'),
                             str(tmp_path / 'b.tif')], block=32)
    va = a[~(a == 9).all(-1)].astype(np.float64)
    vb = b[np.isfinite(b).all(-1)].astype(np.float64)
    both = np.concatenate([va, vb])
    np.testing.assert_allclose(st['mean'], both.mean(0), rtol=1e-10)
    np.testing.assert_allclose(st['std'], both.std(0), rtol=1e-10)
    assert st['num_pixels'] == len(both)


def test_zero_border_only_as_explicit_fallback(tmp_path):
    a = RNG.integers(1, 255, (64, 64, 3)).astype(np.uint8)
    a[:, :16] = 0
    a[30:34, 30:34] = 0  # dark interior: data, not border
    (tmp_path / 'opt').mkdir()
    write_raster(tmp_path / 'opt' / 'a.tif', a)
    keep = np.ones((64, 64), bool)
    keep[:, :16] = False
    plain = compute_band_stats([str(tmp_path / 'opt' / 'a.tif')])
    np.testing.assert_allclose(plain['mean'], a.reshape(-1, 3).mean(0))
    fb = compute_band_stats([str(tmp_path / 'opt' / 'a.tif')],
                            nodata_fallback='zero_border', block=24)
    np.testing.assert_allclose(fb['mean'], a[keep].mean(0))
    stats = run_tool_main('dataset_converters/compute_rs_stats',
                          [tmp_path, '--nodata-fallback', 'zero_border'])
    np.testing.assert_allclose(stats['opt']['std'], a[keep].std(0))


def test_sar_l1_power_statistics_over_positive_power_only(tmp_path):
    pairs = RNG.integers(-300, 300, (40, 40, 4, 2)).astype(np.int16)
    bordered = pairs.copy()
    bordered[:, :8] = 0  # 20 % zero-power border (the products' fill)
    (tmp_path / 'sar_l1').mkdir()
    write_complex_int16_tiff(tmp_path / 'sar_l1' / 'a.tif', bordered)
    st = run_tool_main('dataset_converters/compute_rs_stats',
                       [tmp_path])['sar_l1']
    p = (bordered.astype(np.float64)**2).sum((-1, -2))
    db = 10 * np.log10(p[p > 0])
    assert st['power_db_num_pixels'] == db.size <= 40 * 32
    np.testing.assert_allclose(st['power_db_mean'], db.mean(), rtol=1e-10)
    np.testing.assert_allclose(st['power_db_std'], db.std(), rtol=1e-10)
    assert st['num_bands'] == 8 and st['dtype'] == 'complex_int16'


def test_sar_l1_four_file_samples_are_one_sample(tmp_path):
    folder = tmp_path / 'sar_l1' / 'scene1'
    folder.mkdir(parents=True)
    pairs = RNG.integers(-99, 99, (8, 8, 4, 2)).astype(np.int16)
    for k, p in enumerate(('HH', 'HV', 'VH', 'VV')):
        write_complex_int16_tiff(folder / f'GF3_{p}_L1A.tiff',
                                 pairs[:, :, k:k + 1])
    st = run_tool_main('dataset_converters/compute_rs_stats',
                       [tmp_path])['sar_l1']
    x = pairs.reshape(-1, 8).astype(np.float64)
    np.testing.assert_allclose(st['mean'], x.mean(0), rtol=1e-10)
    assert st['num_files'] == 1 and st['num_bands'] == 8


@pytest.mark.parametrize('modality,bands,dtype', [('ms', 3, np.uint16),
                                                  ('sar_l2', 3, np.uint8),
                                                  ('opt', 4, np.uint8)])
def test_modality_band_count_is_enforced(tmp_path, capsys, modality, bands,
                                         dtype):
    write_raster(tmp_path / 'x.tif',
                 RNG.integers(1, 200, (8, 8, bands)).astype(dtype))
    code = run_tool_main('dataset_converters/compute_rs_stats',
                         [tmp_path, '--modality', modality])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert 'x.tif' in err[0] and f'{bands} bands' in err[0]
    assert f"'{modality}'" in err[0]
    assert not (tmp_path / 'rs_stats.json').exists()


def test_modality_sar_l1_refuses_8_bit(tmp_path):
    write_raster(tmp_path / 'x.tif',
                 RNG.integers(1, 200, (8, 8, 8)).astype(np.uint8))
    with pytest.raises(ValueError, match=r'x\.tif.*8-bit'):
        compute_band_stats([str(tmp_path / 'x.tif')], 'sar_l1')


def test_right_band_count_passes_and_json_matches(tmp_path):
    a = RNG.integers(1, 2000, (16, 16, 1)).astype(np.uint16)
    write_raster(tmp_path / 'x.tif', a)
    stats = run_tool_main('dataset_converters/compute_rs_stats',
                          [tmp_path, '--modality', 'sar_l2'])
    assert json.loads((tmp_path / 'rs_stats.json').read_text()) == stats
    assert stats['sar_l2']['dtype'] == 'uint16'
    np.testing.assert_allclose(stats['sar_l2']['mean'], [a.mean()])
