"""Raster loading, SAR-L1 transforms, normalisation and band-agnostic
augmentations (issue 4, step 1)."""
import json

import numpy as np
import pytest
import tifffile
from mmcv.transforms import RandomFlip

from mmringmoe.datasets.transforms import (LoadComplexSAR,
                                           LoadRSImageFromFile, NormalizeRS,
                                           RSRandomResizedCrop, RSResize,
                                           SARAmplitudePhase, SARLogScale,
                                           SARPauliRGB, SARPower,
                                           compute_band_stats, read_raster,
                                           resize_bands, sar_power,
                                           write_raster)
from mmringmoe.datasets.transforms.raster_io import write_complex_int16_tiff
from mmringmoe.registry import TRANSFORMS

RNG = np.random.default_rng(0)


def _load(path, **kw):
    return LoadRSImageFromFile(**kw)(dict(img_path=str(path)))


# ----------------------------------------------------------------- loading
@pytest.mark.parametrize('dtype', [np.uint8, np.uint16, np.int16, np.float32])
@pytest.mark.parametrize('bands', [1, 3, 4, 13])
def test_tiff_roundtrip_keeps_dtype_and_bands(tmp_path, dtype, bands):
    img = (RNG.random((21, 34, bands)) * 200).astype(dtype)
    write_raster(tmp_path / 'x.tif', img)
    res = _load(tmp_path / 'x.tif')
    assert res['img'].dtype == dtype
    assert res['img'].shape == (21, 34, bands)
    assert res['num_bands'] == bands
    np.testing.assert_array_equal(res['img'], img)


def test_planar_and_band_sequential_tiffs(tmp_path):
    img = RNG.integers(0, 65535, (20, 30, 4), dtype=np.uint16)
    tifffile.imwrite(tmp_path / 'planar.tif', img.transpose(2, 0, 1),
                     planarconfig='separate', photometric='minisblack')
    np.testing.assert_array_equal(_load(tmp_path / 'planar.tif')['img'], img)
    # GDAL-style band-sequential pages
    tifffile.imwrite(tmp_path / 'pages.tif', img.transpose(2, 0, 1),
                     photometric='minisblack')
    np.testing.assert_array_equal(_load(tmp_path / 'pages.tif')['img'], img)


def test_png_jpg_npy(tmp_path):
    from PIL import Image
    rgb = RNG.integers(0, 255, (16, 24, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / 'a.png')
    res = _load(tmp_path / 'a.png', modality='opt')
    np.testing.assert_array_equal(res['img'], rgb)  # RGB order, no BGR swap
    assert res['modality'] == 'opt'
    Image.fromarray(rgb).save(tmp_path / 'a.jpg')
    assert _load(tmp_path / 'a.jpg')['img'].shape == (16, 24, 3)
    np.save(tmp_path / 'a.npy', rgb.astype(np.uint16))
    assert _load(tmp_path / 'a.npy')['img'].dtype == np.uint16


def test_lzw_tiff_written_by_pillow(tmp_path):
    """LZW TIFFs from another writer (Pillow) decode through GDAL."""
    from PIL import Image
    rgb = RNG.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / 'lzw.tif', compression='tiff_lzw')
    np.testing.assert_array_equal(_load(tmp_path / 'lzw.tif')['img'], rgb)


def test_registered_and_usable_from_toolbox_scopes():
    from mmengine.registry import DefaultScope
    for scope in ('mmpretrain', 'mmseg'):
        with DefaultScope.overwrite_default_scope(scope):
            t = TRANSFORMS.build(dict(type='mmringmoe.LoadRSImageFromFile'))
            assert isinstance(t, LoadRSImageFromFile)
            t = TRANSFORMS.build(dict(type='mmringmoe.LoadComplexSAR'))
            assert isinstance(t, LoadComplexSAR)


# ------------------------------------------------------------ bad inputs
def test_wrong_band_count_names_file_and_modality(tmp_path):
    write_raster(tmp_path / 'ms.tif', np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(ValueError, match=r"ms\.tif.*'opt'.*expected 3 bands, "
                       r'found 4'):
        _load(tmp_path / 'ms.tif', modality='opt')
    # the modality may come from the dataset
    with pytest.raises(ValueError, match=r"ms\.tif.*'sar_l2'"):
        LoadRSImageFromFile()(dict(img_path=str(tmp_path / 'ms.tif'),
                                   modality='sar_l2'))


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_nan_inf_masked_or_rejected(tmp_path, bad):
    """NaN/Inf are masked (and zeroed) by default, refused on request."""
    img = RNG.random((8, 8, 3)).astype(np.float32)
    img[2, 3, 1] = bad
    write_raster(tmp_path / 'bad.tif', img)
    res = _load(tmp_path / 'bad.tif', modality='opt')
    assert not res['valid_mask'][2, 3] and int(res['valid_mask'].sum()) == 63
    assert np.isfinite(res['img']).all() and res['img'][2, 3, 1] == 0
    np.testing.assert_array_equal(res['img'][res['valid_mask']],
                                  img[res['valid_mask']])
    with pytest.raises(ValueError, match=r'bad\.tif.*(NaN|Inf)'):
        _load(tmp_path / 'bad.tif', modality='opt', check_finite=True)
    z = np.ones((8, 8, 4), np.complex64)
    z[0, 0, 0] = complex(bad, 0)
    np.save(tmp_path / 'badc.npy', z)
    res = LoadComplexSAR()(dict(img_path=str(tmp_path / 'badc.npy')))
    assert not res['valid_mask'][0, 0] and int(res['valid_mask'].sum()) == 63
    with pytest.raises(ValueError, match=r"badc\.npy.*'sar_l1'.*(NaN|Inf)"):
        LoadComplexSAR(check_finite=True)(
            dict(img_path=str(tmp_path / 'badc.npy')))


@pytest.mark.parametrize('keep', [0.5, 0.05])
def test_truncated_tiff(tmp_path, keep):
    write_raster(tmp_path / 'ok.tif',
                 RNG.integers(0, 999, (64, 64, 4), dtype=np.uint16))
    data = (tmp_path / 'ok.tif').read_bytes()
    (tmp_path / 'cut.tif').write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match=r'cut\.tif'):
        _load(tmp_path / 'cut.tif', modality='ms')


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.tif'):
        _load(tmp_path / 'nope.tif')


def test_8bit_rejected_for_sar_l1(tmp_path):
    write_raster(tmp_path / 'sar8.tif', np.zeros((8, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"sar8\.tif.*'sar_l1'.*8-bit.*16-bit"):
        LoadComplexSAR()(dict(img_path=str(tmp_path / 'sar8.tif')))


def test_sar_l1_wrong_channels(tmp_path):
    write_raster(tmp_path / 's6.tif', np.zeros((8, 8, 6), np.int16))
    with pytest.raises(ValueError, match=r"s6\.tif.*expected 8 real channels"):
        LoadComplexSAR()(dict(img_path=str(tmp_path / 's6.tif')))


def test_complex_input_to_plain_loader_points_to_sar_loader(tmp_path):
    np.save(tmp_path / 'z.npy', np.ones((4, 4, 4), np.complex64))
    with pytest.raises(ValueError, match='LoadComplexSAR'):
        _load(tmp_path / 'z.npy')


# ------------------------------------------------------------- SAR-L1
def _hand_power(pairs):
    """sum over HH, HV, VH, VV of re^2 + im^2, written out."""
    h, w = pairs.shape[:2]
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            for p in range(4):
                re, im = int(pairs[i, j, p, 0]), int(pairs[i, j, p, 1])
                out[i, j] += re * re + im * im
    return out


def test_gf3_complex_int16_tiff_and_power_equals_hand_computation(tmp_path):
    pairs = RNG.integers(-32768, 32767, (6, 7, 4, 2), dtype=np.int16)
    pairs[0, 0] = -32768  # extremes: |x|^2 exceeds int16 and int32
    write_complex_int16_tiff(tmp_path / 'gf3.tif', pairs)
    with tifffile.TiffFile(tmp_path / 'gf3.tif') as tif:
        # written by GDAL as CInt16: SampleFormat COMPLEXINT, as in GF-3 L1A
        assert tif.pages[0].sampleformat == 5
    res = LoadComplexSAR()(dict(img_path=str(tmp_path / 'gf3.tif')))
    img = res['img']
    assert img.dtype == np.int16 and img.shape == (6, 7, 8)
    # channel order HH_re, HH_im, HV_re, HV_im, VH_re, VH_im, VV_re, VV_im
    np.testing.assert_array_equal(img[..., 2], pairs[..., 1, 0])
    np.testing.assert_array_equal(img[..., 7], pairs[..., 3, 1])
    hand = _hand_power(pairs)
    np.testing.assert_array_equal(sar_power(img), hand)
    target = SARPower()(dict(res))['gt_power']
    np.testing.assert_allclose(target, hand, rtol=1e-7)
    assert hand[0, 0] == 8 * 32768**2


def test_complex_forms_agree(tmp_path):
    pairs = RNG.integers(-3000, 3000, (5, 9, 4, 2), dtype=np.int16)
    expected = pairs.reshape(5, 9, 8)
    z = (pairs[..., 0] + 1j * pairs[..., 1]).astype(np.complex64)
    structured = np.empty((5, 9, 4), dtype=[('re', '<i2'), ('im', '<i2')])
    structured['re'], structured['im'] = pairs[..., 0], pairs[..., 1]
    np.save(tmp_path / 'c64.npy', z)
    tifffile.imwrite(tmp_path / 'c64.tif', z, photometric='minisblack',
                     planarconfig='contig')
    np.save(tmp_path / 'rec.npy', structured)
    write_raster(tmp_path / 'eight.tif', expected)
    for pol, k in zip(('HH', 'HV', 'VH', 'VV'), range(4)):
        write_raster(tmp_path / f'x_{pol}.tif', pairs[:, :, k, :])
    load = LoadComplexSAR()
    for name in ('c64.npy', 'c64.tif', 'rec.npy', 'eight.tif'):
        got = load(dict(img_path=str(tmp_path / name)))['img']
        np.testing.assert_array_equal(got, expected, err_msg=name)
    four = [str(tmp_path / f'x_{p}.tif') for p in ('HH', 'HV', 'VH', 'VV')]
    got = load(dict(img_path=four))
    np.testing.assert_array_equal(got['img'], expected)
    hand = _hand_power(pairs)
    np.testing.assert_allclose(sar_power(z), hand, rtol=1e-6)


def test_amplitude_phase_db_pauli():
    pairs = np.array([[[[3, 4], [0, 1], [0, 1], [-3, 0]]]], np.int16)
    img = pairs.reshape(1, 1, 8)
    ap = SARAmplitudePhase()(dict(img=img))['img'][0, 0]
    np.testing.assert_allclose(ap[0::2], [5, 1, 1, 3], rtol=1e-6)
    np.testing.assert_allclose(ap[1::2],
                               [np.arctan2(4, 3), np.pi / 2, np.pi / 2, np.pi],
                               rtol=1e-6)
    db = SARPower(scale='db')(dict(img=img))['gt_power']
    np.testing.assert_allclose(db, 10 * np.log10(25 + 1 + 1 + 9), rtol=1e-6)
    amp = SARLogScale('db_amplitude')(dict(img=np.array([[[10.0]]])))['img']
    np.testing.assert_allclose(amp, 20.0, rtol=1e-6)
    # Pauli: |HH-VV|, |HV+VH|, |HH+VV| on a 2-pixel image
    two = np.concatenate([img, np.zeros_like(img)], 1)
    rgb = SARPauliRGB(percentiles=(0, 100))(dict(img=two))['pauli_rgb']
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 2, 3)
    assert rgb[0, 0].tolist() == [255, 255, 255]  # brighter pixel
    assert rgb[0, 1].tolist() == [0, 0, 0]


# -------------------------------------------------- normalisation, stats
def test_band_stats_and_normalize(tmp_path):
    a = RNG.integers(0, 4000, (30, 20, 4), dtype=np.uint16)
    b = RNG.integers(0, 4000, (10, 12, 4), dtype=np.uint16)
    write_raster(tmp_path / 'a.tif', a)
    write_raster(tmp_path / 'b.tif', b)
    st = compute_band_stats([str(tmp_path / 'a.tif'), str(tmp_path / 'b.tif')])
    both = np.concatenate([a.reshape(-1, 4), b.reshape(-1, 4)]).astype(float)
    np.testing.assert_allclose(st['mean'], both.mean(0))
    np.testing.assert_allclose(st['std'], both.std(0))
    (tmp_path / 'stats.json').write_text(json.dumps(dict(ms=st)))
    out = NormalizeRS(stats_file=str(tmp_path / 'stats.json'))(
        dict(img=a, modality='ms'))['img']
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (a - both.mean(0)) / both.std(0),
                               rtol=1e-5)
    with pytest.raises(ValueError, match='4 bands but the statistics have 3'):
        NormalizeRS(mean=[1, 2, 3], std=[1, 1, 1])(dict(img=a))
    with pytest.raises(ValueError, match="no statistics for modality 'opt'"):
        NormalizeRS(stats=dict(ms=st))(dict(img=a, modality='opt'))


def test_compute_rs_stats_tool(tmp_path):
    from helpers import run_tool_main
    for m, c, dt in (('opt', 3, np.uint8), ('sar_l2', 1, np.uint8)):
        (tmp_path / m).mkdir()
        write_raster(tmp_path / m / 't.tif',
                     RNG.integers(0, 255, (8, 8, c), dtype=dt))
    (tmp_path / 'sar_l1').mkdir()
    write_complex_int16_tiff(tmp_path / 'sar_l1' / 's.tif',
                             RNG.integers(-99, 99, (8, 8, 4, 2), np.int16))
    stats = run_tool_main('dataset_converters/compute_rs_stats',
                          [tmp_path])
    assert set(stats) == {'opt', 'sar_l1', 'sar_l2'}
    assert stats['sar_l1']['num_bands'] == 8
    assert 'power_db_mean' in stats['sar_l1']
    assert json.loads((tmp_path / 'rs_stats.json').read_text()) == stats


# ------------------------------------------------------------- geometry
@pytest.mark.parametrize('dtype', [np.uint8, np.int16, np.uint16, np.float32,
                                   np.int32])
@pytest.mark.parametrize('bands', [1, 5, 8, 13])
def test_resize_any_bands_keeps_dtype(dtype, bands):
    img = (RNG.random((37, 41, bands)) * 100).astype(dtype)
    out = resize_bands(img, (20, 10))
    assert out.shape == (10, 20, bands) and out.dtype == dtype
    # per-band identical to resizing that band alone
    one = resize_bands(img[..., -1], (20, 10))
    np.testing.assert_array_equal(out[..., -1], one)


def test_random_resized_crop_and_flip_any_bands():
    img = RNG.integers(-999, 999, (100, 120, 8), dtype=np.int16)
    power = sar_power(img).astype(np.float32)
    t = RSRandomResizedCrop(scale=192, crop_ratio_range=(0.2, 1.0))
    res = t(dict(img=img, gt_power=power))
    assert res['img'].shape == (192, 192, 8) and res['img'].dtype == np.int16
    assert res['gt_power'].shape == (192, 192)
    one = RSRandomResizedCrop(scale=24)(dict(img=img[..., :1].copy()))
    assert one['img'].shape == (24, 24, 1)
    flip = RandomFlip(prob=1.0, direction='horizontal')
    flipped = flip(dict(img=img.copy()))['img']
    assert flipped.dtype == np.int16 and flipped.shape == img.shape
    np.testing.assert_array_equal(flipped, img[:, ::-1])
    res = RSResize(scale=(30, 20))(dict(img=img))
    assert res['img'].shape == (20, 30, 8)
