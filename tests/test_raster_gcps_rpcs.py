"""GCPs and RPCs of a raster travel with its pixels: read, written back,
copied to the outputs of scene inference (new-user trial: a GCP-georeferenced
GeoTIFF gave a class map with no GCPs, no CRS and an identity transform).

The reference is always rasterio (GDAL) reading the input file itself."""
import json
import warnings

import numpy as np
import pytest

from inference_models import (blob_det_config, build, pixel_seg_config,
                              save_checkpoint)

H, W = 24, 40
# the 4 scene corners of a 10 m UTM 33N grid (x = 500000 + 10 col,
# y = 4000000 - 10 row), z distinct so that a lost z shows
CORNERS = [(0, 0, 500000.0, 4000000.0, 110.0),
           (0, W, 500400.0, 4000000.0, 120.0),
           (H, 0, 500000.0, 3999760.0, 130.0),
           (H, W, 500400.0, 3999760.0, 140.0)]


def _rpc():
    """Plausible RPCs (a Pleiades-like scene near 45.5 N, 13.2 E): affine
    terms plus a few small higher-order terms and a non-trivial
    denominator."""
    from rasterio.rpc import RPC
    line_num = [0.0] * 20
    line_num[:4] = [0.002, -0.03, -1.01, 0.004]
    line_num[7] = 1.5e-4
    samp_num = [0.0] * 20
    samp_num[:4] = [-0.001, 1.02, 0.012, -0.002]
    samp_num[5] = 2.5e-4
    den = [0.0] * 20
    den[:3] = [1.0, 1.2e-4, -3.1e-4]
    return RPC(height_off=250.0, height_scale=500.0, lat_off=45.5,
               lat_scale=0.002, long_off=13.2, long_scale=0.003,
               line_off=11.5, line_scale=12.0, samp_off=19.5,
               samp_scale=20.0, line_num_coeff=line_num, line_den_coeff=den,
               samp_num_coeff=samp_num, samp_den_coeff=den, err_bias=1.5,
               err_rand=0.3)


def _write_input(path, kind, img=None):
    """A GeoTIFF written by rasterio directly: ``kind`` 'gcps' (4 GCPs in
    EPSG:32633, no geotransform) or 'rpcs'."""
    import rasterio
    from rasterio.control import GroundControlPoint
    from rasterio.errors import NotGeoreferencedWarning
    warnings.simplefilter('ignore', NotGeoreferencedWarning)  # until set
    if img is None:
        img = np.random.default_rng(0).integers(0, 250, (3, H, W), np.uint8)
    with rasterio.open(path, 'w', driver='GTiff', height=img.shape[1],
                       width=img.shape[2], count=img.shape[0],
                       dtype=img.dtype.name, photometric='MINISBLACK') as dst:
        dst.write(img)
        if kind == 'gcps':
            dst.gcps = ([GroundControlPoint(r, c, x, y, z, id=str(i))
                         for i, (r, c, x, y, z) in enumerate(CORNERS)],
                        'EPSG:32633')
        else:
            dst.rpcs = _rpc()
    return str(path)


def _rio_georef(path):
    """``(gcp tuples, gcp CRS, rpc dict, crs, transform)`` as rasterio reads
    ``path``."""
    import rasterio
    with rasterio.open(path) as src:
        gcps, gcp_crs = src.gcps
        return ([(g.row, g.col, g.x, g.y, g.z) for g in gcps], gcp_crs,
                None if src.rpcs is None else src.rpcs.to_dict(), src.crs,
                src.transform)


def _tuples(gcps):
    return [(g.row, g.col, g.x, g.y, g.z) for g in gcps]


@pytest.fixture(params=['gcps', 'rpcs'])
def georef_input(request, tmp_path):
    return request.param, _write_input(tmp_path / f'{request.param}.tif',
                                       request.param)


# ------------------------------------------------------------ read and write
def test_read_keeps_gcps_and_rpcs(georef_input):
    from rasterio.crs import CRS
    from mmringmoe.datasets.transforms.raster_io import (raster_info,
                                                         read_raster_with_meta)
    kind, path = georef_input
    gcps, gcp_crs, rpcs, _, _ = _rio_georef(path)
    _, meta = read_raster_with_meta(path)
    info = raster_info(path)
    assert meta.crs is None and meta.transform is None
    for m in (meta, info):
        if kind == 'gcps':
            assert _tuples(m.gcps) == gcps == [c for c in CORNERS]
            assert CRS.from_wkt(m.gcp_crs) == gcp_crs == CRS.from_epsg(32633)
            assert m.rpcs is None
        else:
            assert m.gcps is None and m.gcp_crs is None
            assert m.rpcs.to_dict() == rpcs == _rpc().to_dict()


def test_window_read_moves_gcps_and_rpcs_with_the_window(georef_input):
    """A window's GCPs / RPCs map its pixel (r, c) where the file's map
    pixel (r + row_off, c + col_off): GDAL's GCP and RPC transformers on
    the file are the reference."""
    from rasterio.transform import xy
    from mmringmoe.datasets.transforms.raster_io import read_raster_with_meta
    kind, path = georef_input
    gcps, _, rpcs, _, _ = _rio_georef(path)
    r0, c0 = 5, 7
    arr, meta = read_raster_with_meta(path, window=(r0, c0, 10, 12))
    assert arr.shape[:2] == (10, 12)
    rows, cols = np.array([0.0, 3.0, 9.5]), np.array([0.0, 11.0, 4.25])
    if kind == 'gcps':
        assert _tuples(meta.gcps) == [(r - r0, c - c0, x, y, z)
                                      for r, c, x, y, z in gcps]
        got = xy(list(meta.gcps), rows, cols, offset='ul')
        ref = xy(_gcp_objs(gcps), rows + r0, cols + c0, offset='ul')
    else:
        assert meta.rpcs.line_off == rpcs['line_off'] - r0
        assert meta.rpcs.samp_off == rpcs['samp_off'] - c0
        from rasterio.rpc import RPC
        got = xy(meta.rpcs, rows, cols, zs=250.0, offset='ul')
        ref = xy(RPC(**rpcs), rows + r0, cols + c0, zs=250.0, offset='ul')
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)


def _gcp_objs(tuples):
    from rasterio.control import GroundControlPoint
    return [GroundControlPoint(*t) for t in tuples]


def _block_write(path, arr, **geo):
    from mmringmoe.apis.writers import GeoTIFFBlockWriter
    h, w = arr.shape[:2]
    wr = GeoTIFFBlockWriter(str(path), h, w, 1, np.uint8, nodata=255, **geo)
    wr.write(0, arr[None, :, :, 0])
    wr.close()


@pytest.mark.parametrize('writer', ['write_raster', 'GeoTIFFBlockWriter'])
def test_writers_copy_gcps_and_rpcs(georef_input, writer, tmp_path):
    from mmringmoe.datasets.transforms.raster_io import (read_raster_with_meta,
                                                         write_raster)
    kind, path = georef_input
    ref = _rio_georef(path)
    arr, meta = read_raster_with_meta(path)
    out = tmp_path / 'out.tif'
    geo = dict(crs=meta.crs, transform=meta.transform, gcps=meta.gcps,
               gcp_crs=meta.gcp_crs, rpcs=meta.rpcs)
    if writer == 'write_raster':
        write_raster(out, arr, **geo)
    else:
        _block_write(out, arr[..., :1], **geo)
    got = _rio_georef(out)
    assert got[0] == ref[0] and got[1] == ref[1]  # GCPs (r, c, x, y, z), CRS
    assert got[2] == ref[2]  # RPCs
    assert got[3] is None and got[4] == ref[4]  # no CRS, identity, as input


def test_gcps_without_crs_refused_before_writing(tmp_path):
    from mmringmoe.datasets.transforms.raster_io import write_raster
    from mmringmoe.apis.writers import GeoTIFFBlockWriter
    gcps = [c[:4] for c in CORNERS]
    with pytest.raises(ValueError, match='4 GCPs but no GCP CRS'):
        write_raster(tmp_path / 'a.tif', np.zeros((H, W), np.uint8),
                     gcps=gcps)
    with pytest.raises(ValueError, match='4 GCPs but no GCP CRS'):
        GeoTIFFBlockWriter(str(tmp_path / 'b.tif'), H, W, 1, np.uint8,
                           gcps=gcps)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match='only GeoTIFF'):
        write_raster(tmp_path / 'c.png', np.zeros((H, W), np.uint8),
                     gcps=gcps, gcp_crs='EPSG:32633')


def test_transform_and_gcps_keep_the_transform_with_a_warning(tmp_path):
    """A GeoTIFF holds a geotransform or GCPs (GDAL's GTiff driver replaces
    the one by the other): the geotransform is kept, the loss is said."""
    import rasterio
    from mmringmoe.datasets.transforms.raster_io import (
        GeoreferencingWarning, write_raster)
    t = (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
    # its own category, which tools/infer.py shows even under -W ignore
    with pytest.warns(GeoreferencingWarning, match='geotransform and 4 GCPs'):
        write_raster(tmp_path / 'a.tif', np.zeros((H, W), np.uint8),
                     crs='EPSG:32633', transform=t, gcps=CORNERS,
                     gcp_crs='EPSG:32633', rpcs=_rpc())
    with rasterio.open(tmp_path / 'a.tif') as src:
        assert tuple(src.transform)[:6] == t and src.crs.to_epsg() == 32633
        assert src.rpcs.to_dict() == _rpc().to_dict()


def test_coarse_grid_gcps_and_rpcs_map_like_the_scene(georef_input):
    """The per-window map of scene classification (one pixel per crop):
    its pixel corner (R, C) maps where the scene's corner (kR, kC) maps."""
    from rasterio.rpc import RPC
    from rasterio.transform import xy
    from mmringmoe.apis.scene import build_scene
    kind, path = georef_input
    gcps, gcp_crs, rpcs, _, _ = _rio_georef(path)
    ky, kx = 8, 10
    geo = build_scene(path).georef(step=(ky, kx))
    assert geo['crs'] is None and geo['transform'] is None
    R, C = np.array([0.0, 1.0, 3.0, 2.5]), np.array([0.0, 4.0, 1.0, 3.5])
    if kind == 'gcps':
        assert _tuples(geo['gcps']) == [(r / ky, c / kx, x, y, z)
                                        for r, c, x, y, z in gcps]
        got = xy(list(geo['gcps']), R, C, offset='ul')
        ref = xy(_gcp_objs(gcps), R * ky, C * kx, offset='ul')
    else:
        got = xy(geo['rpcs'], R, C, zs=250.0, offset='ul')
        ref = xy(RPC(**rpcs), R * ky, C * kx, zs=250.0, offset='ul')
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)
    same = build_scene(path).georef()
    assert (same['gcps'] is None) == (kind == 'rpcs')


def test_scene_pair_with_other_gcps_refused(tmp_path):
    from mmringmoe.apis.scene import build_scene
    a = _write_input(tmp_path / 'a.tif', 'gcps')
    b = _write_input(tmp_path / 'b.tif', 'rpcs')
    with pytest.raises(ValueError, match='GCPs'):
        build_scene((a, b))
    build_scene((a, a))  # the same GCPs: one grid


# ------------------------------------------------------- scene inference
@pytest.fixture(scope='module')
def seg_model(tmp_path_factory):
    cfg = pixel_seg_config()
    ckpt = save_checkpoint(build(cfg), str(tmp_path_factory.mktemp('m') /
                                           'pixel.pth'))
    return cfg, ckpt


@pytest.mark.parametrize('probs', [False, True])
def test_class_map_carries_input_gcps_and_rpcs(georef_input, seg_model,
                                               tmp_path, probs):
    """The uint8 class map (and the probability GeoTIFF) of a GCP / RPC
    input: same GCPs (row, col, x, y, z), GCP CRS and RPCs as rasterio reads
    in the input."""
    from mmringmoe.apis import RSInferencer
    kind, path = georef_input
    cfg, ckpt = seg_model
    ref = _rio_georef(path)
    (tmp_path / 'out').mkdir()
    out = str(tmp_path / 'out' / 'classes.tif')
    RSInferencer(cfg, ckpt)(path, out=out, crop=16, overlap=4, probs=probs)
    outs = sorted((tmp_path / 'out').glob('*.tif'))  # classes (+ probs)
    assert len(outs) == 1 + probs
    for o in outs:
        got = _rio_georef(o)
        assert got[0] == ref[0] and got[1] == ref[1]
        assert got[2] == ref[2]
        if kind == 'gcps':
            assert len(got[0]) == 4 and got[1].to_epsg() == 32633
        else:
            assert got[2] == _rpc().to_dict()


def _ship_scene(tmp_path, georef):
    """The blob detector, its checkpoint, a 1-band scene georeferenced by
    ``georef`` ('gcps' / 'rpcs') with one 4 x 8 px bright blob at rows 6-9,
    columns 12-19, and the GeoJSON output path."""
    cfg = blob_det_config()
    ckpt = save_checkpoint(build(cfg), str(tmp_path / 'det.pth'),
                           classes=('ship', ), palette=[[255, 0, 0]])
    img = np.zeros((1, H, W), np.uint8)
    img[0, 6:10, 12:20] = 200
    path = _write_input(tmp_path / 'sar.tif', georef, img)
    return cfg, ckpt, path, str(tmp_path / 'ships.geojson')


def test_detection_geojson_of_gcp_input_in_gcp_crs(tmp_path):
    """GCPs at the corners of a 10 m grid: the GeoJSON polygon is the pixel
    polygon through that grid (hand-computed), in EPSG:32633."""
    from mmringmoe.apis import RSInferencer
    cfg, ckpt, path, out = _ship_scene(tmp_path, 'gcps')
    RSInferencer(cfg, ckpt)(path, out=out, crop=32, overlap=8)
    with open(out) as f:
        fc = json.load(f)
    assert fc['crs']['properties']['name'] == 'urn:ogc:def:crs:EPSG::32633'
    (feat, ) = fc['features']
    px = np.array(feat['properties']['pixel_polygon'])
    assert sorted(map(tuple, px.tolist())) == [(12, 6), (12, 10), (20, 6),
                                               (20, 10)]
    ring = np.array(feat['geometry']['coordinates'][0])[:4]
    np.testing.assert_allclose(ring[:, 0], 500000 + 10 * px[:, 0], atol=1e-6)
    np.testing.assert_allclose(ring[:, 1], 4000000 - 10 * px[:, 1], atol=1e-6)


def test_detection_geojson_of_rpc_input_in_pixels_with_a_note(tmp_path):
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.rs_inferencer import InferenceNote
    cfg, ckpt, path, out = _ship_scene(tmp_path, 'rpcs')
    with pytest.warns(InferenceNote, match='RPCs only.*pixel coordinates'):
        RSInferencer(cfg, ckpt)(path, out=out, crop=32, overlap=8)
    with open(out) as f:
        fc = json.load(f)
    assert 'crs' not in fc
    (feat, ) = fc['features']
    ring = np.array(feat['geometry']['coordinates'][0])[:4]
    assert ring.tolist() == feat['properties']['pixel_polygon']


def test_tracking_frames_with_gcps_only_say_no_geojson(tmp_path):
    from mmringmoe.apis.track_inferencer import FrameSequence
    d = tmp_path / 'frames'
    d.mkdir()
    for i in range(2):
        _write_input(d / f'{i:03d}.tif', 'gcps')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        seq = FrameSequence(str(d))
    assert seq.transform is None
    assert 'georeferenced by GCPs' in seq.geo_note


def test_tiles_written_by_write_tile_keep_gcps_and_rpcs(georef_input,
                                                         tmp_path):
    """Tiles of a GCP / RPC scene (iter_raster_tiles + write_tile, the path
    of the dataset converters): a tile file's pixel (r, c) maps, through
    GDAL's transformers on the tile file, where the scene's pixel
    (r + row, c + col) maps."""
    from rasterio.rpc import RPC
    from rasterio.transform import xy
    from mmringmoe.datasets.tiling import iter_raster_tiles, write_tile
    kind, path = georef_input
    gcps, gcp_crs, rpcs, _, _ = _rio_georef(path)
    tiles = list(iter_raster_tiles(path, 16, 12, max_nodata=1.0))
    assert len(tiles) > 1
    (tmp_path / 'tiles').mkdir()
    rows, cols = np.array([0.0, 5.0, 15.5]), np.array([0.0, 7.25, 15.0])
    for t in tiles:
        out = tmp_path / 'tiles' / f'{t.row}_{t.col}.tif'
        write_tile(str(out), t)
        got = _rio_georef(out)
        if kind == 'gcps':
            assert got[1] == gcp_crs
            assert got[0] == [(r - t.row, c - t.col, x, y, z)
                              for r, c, x, y, z in gcps]
            a = xy(_gcp_objs(got[0]), rows, cols, offset='ul')
            b = xy(_gcp_objs(gcps), rows + t.row, cols + t.col, offset='ul')
        else:
            a = xy(RPC(**got[2]), rows, cols, zs=300.0, offset='ul')
            b = xy(RPC(**rpcs), rows + t.row, cols + t.col, zs=300.0,
                   offset='ul')
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
