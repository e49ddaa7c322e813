"""Scene inference refuses a raster whose own band names contradict the
model's band order (found by a new-user trial: a B, G, R GeoTIFF whose GDAL
colour interpretation said blue, green, red ran through an R, G, B model
with exit code 0, and the map's accuracy fell from 0.986 to 0.498).

What a file declares (:func:`declared_band_names`) is checked against
rasterio's view of hand-made files: band descriptions in the model's
vocabulary, and colour interpretations other than GDAL's default red,
green, blue (which GDAL gives every 3- or 4-band 8-bit GeoTIFF, whatever
the bands hold)."""
import numpy as np
import pytest

from helpers import run_tool_main
from inference_models import file_digest, pixel_seg_checkpoint

H, W = 40, 48


def _write(path, count=3, colours=None, descriptions=None, photometric=None,
           dtype='uint8'):
    import rasterio
    from rasterio.enums import ColorInterp
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 250, (count, H, W)).astype(dtype)
    prof = dict(driver='GTiff', height=H, width=W, count=count, dtype=dtype,
                crs='EPSG:32633',
                transform=rasterio.Affine(10, 0, 5e5, 0, -10, 4e6))
    if photometric:
        prof['photometric'] = photometric
    with rasterio.open(path, 'w', **prof) as ds:
        ds.write(arr)
        if colours:
            ds.colorinterp = [getattr(ColorInterp, c) for c in colours]
        for i, d in enumerate(descriptions or (), start=1):
            ds.set_band_description(i, d)
    return str(path)


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return pixel_seg_checkpoint(
        tmp_path_factory.mktemp('band_order'), inference=dict(
            dtype=dict(opt='uint8'),
            band_order=dict(opt=['red', 'green', 'blue'])))


VOCAB = ('red', 'green', 'blue', 'nir')


def test_declared_names_against_rasterio_files(tmp_path):
    from mmringmoe.apis.model_spec import declared_band_names
    # GDAL's default for a 3-band uint8 GeoTIFF: says nothing
    plain = _write(tmp_path / 'plain.tif')
    import rasterio
    with rasterio.open(plain) as ds:
        assert [c.name for c in ds.colorinterp] == ['red', 'green', 'blue']
    assert declared_band_names(plain, 3, None, VOCAB) == ((None, ''), ) * 3
    bgr = _write(tmp_path / 'bgr.tif', colours=('blue', 'green', 'red'))
    assert [n for n, _ in declared_band_names(bgr, 3, None, VOCAB)] == \
        ['blue', 'green', 'red']
    # descriptions count, case-insensitively, when they are band names
    desc = _write(tmp_path / 'desc.tif', photometric='MINISBLACK',
                  descriptions=('Blue', 'GREEN', 'B04'))
    assert declared_band_names(desc, 3, None, VOCAB) == (
        ('blue', 'band description'), ('green', 'band description'),
        (None, ''))
    # a B, G, R, NIR uint8 file written with GDAL's defaults (band 4
    # flagged alpha): nothing declared, so no refusal of a valid MS file
    ms = _write(tmp_path / 'ms.tif', count=4)
    assert [n for n, _ in declared_band_names(ms, 4, 4, VOCAB)] == \
        [None] * 4


@pytest.mark.parametrize('kw,declared,pick', [
    (dict(colours=('blue', 'green', 'red')), 'blue, green, red',
     '3, 2, 1'),
    (dict(photometric='MINISBLACK',
          descriptions=('green', 'red', 'blue')), 'green, red, blue',
     '2, 1, 3'),
])
def test_contradicting_file_is_refused_in_one_line(model, tmp_path, kw,
                                                   declared, pick):
    from mmringmoe.apis import RSInferencer
    cfg, cfg_path, ckpt = model
    path = _write(tmp_path / 'scene.tif', **kw)
    digest = file_digest(path)
    out = tmp_path / 'o.tif'
    with pytest.raises(ValueError) as err:
        RSInferencer(cfg, ckpt)(path, out=str(out), crop=32)
    msg = str(err.value)
    assert '\n' not in msg
    assert msg.startswith(f"'{path}': its bands are declared {declared} ")
    assert "modality 'opt' as red, green, blue" in msg
    assert f'write bands {pick} in that order' in msg
    assert not out.exists() and file_digest(path) == digest
    # the command line: one error line, exit code 1
    assert run_tool_main('infer', [cfg_path, ckpt, path, '--out', out,
                                   '--quiet']) == 1


def test_agreeing_or_silent_files_run(model, tmp_path):
    """Files that agree with the model, or declare nothing, give the map of
    the same pixels (the check changes no prediction)."""
    from mmringmoe.apis import RSInferencer
    cfg, _, ckpt = model
    inf = RSInferencer(cfg, ckpt)
    plain = inf(_write(tmp_path / 'a.tif'), crop=32).pred
    for name, kw in [('b', dict(photometric='MINISBLACK')),
                     ('c', dict(descriptions=('red', 'green', 'blue'))),
                     ('d', dict(photometric='MINISBLACK',
                                descriptions=('red', '', 'B2')))]:
        np.testing.assert_array_equal(
            inf(_write(tmp_path / f'{name}.tif', **kw), crop=32).pred, plain)


def test_band_name_and_designations_by_hand():
    from mmringmoe.apis.band_names import (band_name, designation,
                                           designation_readings)
    cases = {'Blue (B2)': 'blue', 'band_4_red': 'red', 'RED': 'red',
             'G': 'green', 'Near infrared': 'nir', 'NIR': 'nir',
             'Red Edge 1': 'rededge', 'Coastal blue': 'coastal',
             'SWIR 1': 'swir', 'Band 1': None, 'B2': None, '': None,
             'red green': None, 'hh_re': 'hh_re'}
    for text, want in cases.items():
        assert band_name(text, ('hh_re', )) == want, text
    assert designation('B02') == ('2', True, '')
    assert designation('SR_B4') == ('4', False, 'sr')
    assert designation('b8A') == ('8a', False, '')
    assert designation('S2A_B02') == designation('B02_10m') == (
        '2', True, 's2')
    assert designation('sur_refl_b03') == ('3', False, 'modis')
    assert designation('B6_VCID_1') == ('6_vcid_1', False, '')
    assert designation('Band 2') is None and designation('B') is None
    # B2, B3, B4: blue, green, red for Sentinel-2 and Landsat 8-9, green,
    # red, NIR for Landsat 4-7 (USGS band designations)
    assert designation_readings([designation(d) for d in
                                 ('B2', 'B3', 'B4')]) == {
        'Sentinel-2': ('blue', 'green', 'red'),
        'Landsat 8-9': ('blue', 'green', 'red'),
        'Landsat 4-7': ('green', 'red', 'nir')}
    # zero-padded: Sentinel-2's form only; B8A and B12: Sentinel-2 only
    assert list(designation_readings([designation('B02')])) == [
        'Sentinel-2']
    assert list(designation_readings([designation('B8A')])) == [
        'Sentinel-2']
    assert list(designation_readings([designation('B5'), designation(
        'B11')])) == ['Sentinel-2', 'Landsat 8-9']

    def sensors(*names):
        return list(designation_readings([designation(n) for n in names]))
    # Landsat Collection 2 Level-2: SR_B6 is Landsat 8-9's (SWIR 1), band 6
    # of Landsat 4-7 is ST_B6; B6_VCID_1 is Landsat 7's; sur_refl_: MODIS
    l89 = [f'SR_B{i}' for i in range(1, 8)]
    l47 = ['SR_B1', 'SR_B2', 'SR_B3', 'SR_B4', 'SR_B5', 'ST_B6', 'SR_B7']
    assert sensors(*l89) == ['Landsat 8-9']
    assert sensors(*l47) == ['Landsat 4-7']
    assert sensors('B1', 'B6_VCID_1', 'B8') == ['Landsat 4-7']
    assert sensors('sur_refl_b01') == ['MODIS']
    assert sensors('S2A_B02') == ['Sentinel-2']
    # centre wavelengths and other languages
    for text, want in {'490nm': 'blue', 'Band 2 (490 nm)': 'blue',
                       '0.665 um': 'red', '842 nm': 'nir', 'Rot': 'red',
                       'Grün': 'green', 'bleu': 'blue', '蓝': 'blue',
                       'Reddish': None}.items():
        assert band_name(text) == want, text


@pytest.mark.parametrize('descriptions,declared,pick', [
    (('B2', 'B3', 'B4'), 'B2, B3, B4 (band description; blue, green, red '
     'as Sentinel-2 / Landsat 8-9 bands; green, red, nir as Landsat 4-7 '
     'bands)', '3,2,1'),
    (('B02', 'B03', 'B04'), 'B02, B03, B04 (band description; blue, green, '
     'red as Sentinel-2 bands)', '3,2,1'),
    (('SR_B2', 'SR_B3', 'SR_B4'), 'SR_B2, SR_B3, SR_B4', '3,2,1'),
    (('Blue (B2)', 'Green (B3)', 'Red (B4)'), 'blue, green, red '
     '(band description)', '3,2,1'),
    (('band_2_blue', 'band_3_green', 'band_4_red'), 'blue, green, red',
     '3,2,1'),
    (('B', 'G', 'R'), 'blue, green, red', '3,2,1'),
    (('Red Edge 1', 'Green', 'Blue'), 'rededge, green, blue', None),
])
def test_sensor_and_descriptive_band_names_are_read(model, tmp_path,
                                                    descriptions, declared,
                                                    pick):
    """Found by a new-user trial: a B, G, R file described B2, B3, B4 (or
    B02..., SR_B2..., "Blue (B2)"..., B, G, R) ran through an R, G, B model
    with exit 0 and 2.2 % of its pixels as in the right order."""
    from mmringmoe.apis import RSInferencer
    cfg, _, ckpt = model
    path = _write(tmp_path / 'scene.tif', photometric='MINISBLACK',
                  descriptions=descriptions)
    with pytest.raises(ValueError) as err:
        RSInferencer(cfg, ckpt)(path, crop=32)
    msg = str(err.value)
    assert '\n' not in msg
    assert msg.startswith(f"'{path}': its bands are declared {declared}")
    assert "modality 'opt' as red, green, blue" in msg
    if pick:
        assert f'--bands {pick} (tools/infer.py)' in msg
    else:
        assert msg.endswith("write the model's bands to a new file in its "
                            'order')


def test_designations_that_fit_one_sensor_warn_once_and_run(model, tmp_path):
    """B4, B3, B2 is red, green, blue for Sentinel-2 and Landsat 8-9 but
    NIR, red, green for Landsat 4-7: it runs with one warning; B04, B03, B02
    (Sentinel-2 only) and a 13-band Sentinel-2 file (B1..B12 and B8A)
    read with --bands 4,3,2 run with none; the maps equal the plain file's."""
    import warnings
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.model_spec import InferenceWarning
    cfg, _, ckpt = model
    inf = RSInferencer(cfg, ckpt)
    plain = inf(_write(tmp_path / 'plain.tif'), crop=32).pred
    with pytest.warns(InferenceWarning) as caught:
        pred = inf(_write(tmp_path / 'l8.tif', photometric='MINISBLACK',
                          descriptions=('B4', 'B3', 'B2')), crop=32).pred
    mine = [w for w in caught if issubclass(w.category, InferenceWarning)]
    assert len(mine) == 1
    assert str(mine[0].message).endswith(
        'nir, red, green as Landsat 4-7 bands): read as Sentinel-2 / Landsat '
        "8-9 bands, as the model reads modality 'opt' (red, green, blue); if "
        'the file is from another sensor, check its band order')
    np.testing.assert_array_equal(pred, plain)
    import rasterio
    s2 = [f'B{i}' for i in range(1, 13)]
    s2.insert(8, 'B8A')
    with rasterio.open(_write(tmp_path / 'p.tif')) as ds:
        rgb = ds.read()
    arr = np.zeros((13, H, W), np.uint8)
    arr[[3, 2, 1]] = rgb  # B4, B3, B2 = R, G, B
    with rasterio.open(tmp_path / 's2.tif', 'w', driver='GTiff', height=H,
                       width=W, count=13, dtype='uint8',
                       photometric='MINISBLACK') as ds:
        ds.write(arr)
        for i, d in enumerate(s2, start=1):
            ds.set_band_description(i, d)
    with warnings.catch_warnings():
        warnings.simplefilter('error', InferenceWarning)
        pred = inf(_write(tmp_path / 's2pad.tif', photometric='MINISBLACK',
                          descriptions=('B04', 'B03', 'B02')), crop=32).pred
        np.testing.assert_array_equal(pred, plain)
        pred = inf(str(tmp_path / 's2.tif'), crop=32, bands=[4, 3, 2]).pred
        np.testing.assert_array_equal(pred, plain)


def test_hint_searches_every_band_of_the_file(model, tmp_path):
    """--bands 1,3,2 of a NIR, blue, green, red file: the refusal gives the
    indexes of red, green, blue among all four bands."""
    from mmringmoe.apis import RSInferencer
    cfg, _, ckpt = model
    path = _write(tmp_path / 'nbgr.tif', count=4, photometric='MINISBLACK',
                  descriptions=('nir', 'blue', 'green', 'red'))
    with pytest.raises(ValueError, match=r'--bands 4,3,2 \(tools/infer.py\)'):
        RSInferencer(cfg, ckpt)(path, crop=32, bands=[1, 3, 2])


def _multi(path, descriptions, order=None):
    """A file of len(descriptions) bands; the scene's R, G, B written to
    the 1-based bands ``order`` gives (default 1, 2, 3)."""
    import rasterio
    with rasterio.open(_write(path.with_suffix('.rgb.tif'))) as ds:
        rgb = ds.read()
    arr = np.zeros((len(descriptions), H, W), np.uint8)
    for band, idx in zip(rgb, order or (1, 2, 3)):
        arr[idx - 1] = band
    with rasterio.open(path, 'w', driver='GTiff', height=H, width=W,
                       count=len(descriptions), dtype='uint8',
                       photometric='MINISBLACK') as ds:
        ds.write(arr)
        for i, d in enumerate(descriptions, start=1):
            ds.set_band_description(i, d)
    return str(path)


def test_second_trial_cases(model, tmp_path):
    """A second new-user trial: (a) descriptions red, green, blue on a file
    whose colour interpretation says blue, green, red ran with exit 0;
    (b) Landsat files whose other bands tell the sensor were read as
    another sensor's (--bands 4,3,2 of a Landsat 7 file with B6_VCID_1
    warned and fed NIR, R, G; SR_B1..SR_B7 of Landsat 8 read as Landsat
    4-7); (c) a B1..B8 refusal hinted the Sentinel-2 pick only; (d)
    descriptions it could not read (B02_10m, 490nm, Blau) ran silently."""
    import warnings
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.model_spec import InferenceWarning
    cfg, _, ckpt = model
    inf = RSInferencer(cfg, ckpt)
    plain = inf(_write(tmp_path / 'plain.tif'), crop=32).pred
    # (a)
    path = _write(tmp_path / 'a.tif', colours=('blue', 'green', 'red'),
                  descriptions=('Red', 'Green', 'Blue'))
    with pytest.raises(ValueError, match=r'declared red \(colour '
                       r'interpretation blue\), green, blue \(colour '
                       r'interpretation red\) \(band description and colour '
                       'interpretation, which disagrees with the '
                       'description\\)'):
        inf(path, crop=32)
    # (b) Landsat 7: B4, B3, B2 are NIR, R, G, refused; 3,2,1 runs
    l7 = ['B1', 'B2', 'B3', 'B4', 'B5', 'B6_VCID_1', 'B6_VCID_2', 'B7', 'B8']
    path = _multi(tmp_path / 'l7.tif', l7, order=(3, 2, 1))
    with pytest.raises(ValueError, match=r'nir, red, green as Landsat 4-7 '
                       r'bands\) but .* --bands 3,2,1 \(tools'):
        inf(path, crop=32, bands=[4, 3, 2])
    with warnings.catch_warnings():
        warnings.simplefilter('error', InferenceWarning)
        np.testing.assert_array_equal(
            inf(path, crop=32, bands=[3, 2, 1]).pred, plain)
    # Landsat 8-9 surface reflectance: SR_B4, SR_B3, SR_B2 run, no warning
    path = _multi(tmp_path / 'l8.tif', [f'SR_B{i}' for i in range(1, 8)],
                  order=(4, 3, 2))
    with pytest.raises(ValueError, match=r'--bands 4,3,2 \(tools'):
        inf(path, crop=32, bands=[3, 2, 1])
    with warnings.catch_warnings():
        warnings.simplefilter('error', InferenceWarning)
        np.testing.assert_array_equal(
            inf(path, crop=32, bands=[4, 3, 2]).pred, plain)
    # (c) B1..B8: Sentinel-2 / Landsat 8-9 and Landsat 4-7 disagree
    path = _multi(tmp_path / 'b18.tif', [f'B{i}' for i in range(1, 9)])
    with pytest.raises(ValueError) as err:
        inf(path, crop=32, bands=[1, 2, 3])
    assert str(err.value).endswith(
        'read them in the model\'s order with --bands 4,3,2 if they are '
        'Sentinel-2 / Landsat 8-9 bands or --bands 3,2,1 if they are '
        'Landsat 4-7 bands (tools/infer.py; bands=[...] in RSInferencer)')
    # (d) read now: B02_10m and 490nm refused; unknown words: one warning;
    # "Band 1".."Band 3" on bands 1-3 say nothing and give no warning
    for descs in (('B02_10m', 'B03_10m', 'B04_10m'),
                  ('490nm', '560nm', '665nm'), ('Blau', 'Grün', 'Rot')):
        with pytest.raises(ValueError, match='--bands 3,2,1'):
            inf(_write(tmp_path / f'{descs[0]}.tif', photometric='MINISBLACK',
                       descriptions=descs), crop=32)
    with pytest.warns(InferenceWarning, match=r"'Reddish', 'Greenish', "
                      r"'Blueish' \(band\(s\) 1, 2, 3\) name no band"):
        inf(_write(tmp_path / 'ish.tif', photometric='MINISBLACK',
                   descriptions=('Reddish', 'Greenish', 'Blueish')), crop=32)
    with warnings.catch_warnings():
        warnings.simplefilter('error', InferenceWarning)
        inf(_write(tmp_path / 'generic.tif', photometric='MINISBLACK',
                   descriptions=('Band 1', 'Band 2', 'Band 3')), crop=32)
