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
