"""Scene inference decodes a lossy file as the model's loader does.

GDAL (rasterio) and OpenCV decode the same 4:2:0 JPEG differently at sharp
coloured edges (chroma upsampling): shown here as the control on a generated
image. References: ``cv2.imread`` of the file (what mmcv's
``LoadImageFromFile`` decodes, ``tools/test.py``'s pixels) passed whole
through the model; GDAL's own read of the file for the georeferencing, the
mask and the lossless formats; the world file's numbers by hand."""
import os.path as osp

import numpy as np
import pytest
import torch

from inference_models import (build, pixel_seg_config, save_checkpoint,
                              whole_probs)

TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0],
                    [0, 255, 255], [255, 0, 255], [0, 0, 0],
                    [255, 255, 255]], np.uint8)


def edges_image(h=56, w=70, block=7, seed=0):
    """``(h, w, 3)`` uint8 RGB of saturated colour blocks (7 px: edges fall
    inside JPEG's 8 px blocks and 16 px chroma MCUs)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(COLOURS), (-(-h // block), -(-w // block)))
    img = COLOURS[np.kron(idx, np.ones((block, block), int))]
    return np.ascontiguousarray(img[:h, :w])


def write_jpeg(path, rgb, quality=95):
    import cv2
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]),
                       [cv2.IMWRITE_JPEG_QUALITY, quality])  # 4:2:0
    return str(path)


def cv2_rgb(path):
    import cv2
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


def gdal_read(path):
    from mmringmoe.datasets.transforms.raster_io import read_raster_with_meta
    return read_raster_with_meta(str(path))


def write_tif(path, rgb, **profile):
    import rasterio
    prof = dict(driver='GTiff', height=rgb.shape[0], width=rgb.shape[1],
                count=rgb.shape[2], dtype=str(rgb.dtype))
    prof.update(profile)
    with rasterio.open(str(path), 'w', **prof) as ds:
        ds.write(np.moveaxis(rgb, 2, 0))
    return str(path)


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """The 1 x 1 conv segmentor with mmcv's LoadImageFromFile (BGR,
    ``bgr_to_rgb``) and the same weights with LoadRSImageFromFile."""
    tmp = tmp_path_factory.mktemp('dec')
    cv2_cfg = pixel_seg_config(cv2_loader=True)
    rs_cfg = pixel_seg_config()
    model = build(cv2_cfg)
    ckpt = save_checkpoint(model, str(tmp / 'pixel.pth'))
    return cv2_cfg, rs_cfg, model, ckpt




# ------------------------------------------------- decoders, measured
@pytest.mark.parametrize('fmt', ['png', 'bmp', 'tif', 'tif-deflate',
                                 'tif-lzw', 'png-grey', 'png-uint16'])
def test_lossless_files_decode_identically(tmp_path, fmt):
    """PNG, BMP and TIFF (uncompressed, DEFLATE, LZW): GDAL's values are
    OpenCV's and Pillow's (mmcv's two backends), so windows read by GDAL are
    the loader's pixels; none is a lossy codec."""
    import cv2
    import mmcv
    from mmringmoe.apis.decoding import lossy_codec
    rgb = edges_image()
    flag = 'color'
    if fmt == 'png-grey':
        rgb, flag = rgb[..., :1], 'grayscale'
    if fmt == 'png-uint16':
        rgb = (rgb[..., :1].astype(np.uint16) * 257 + 3)
        flag = 'unchanged'
    ext = fmt.split('-')[0]
    path = str(tmp_path / f'img.{ext}')
    if ext == 'tif':
        comp = fmt.split('-')[1] if '-' in fmt else None
        write_tif(path, rgb, **(dict(compress=comp) if comp else {}))
    else:
        assert cv2.imwrite(path, rgb[..., ::-1] if rgb.shape[2] == 3
                           else rgb[..., 0])
    gdal, _ = gdal_read(path)
    np.testing.assert_array_equal(gdal, rgb)
    assert lossy_codec(path) is None
    buf = open(path, 'rb').read()
    backends = ('cv2', 'pillow') if fmt != 'png-uint16' else ('cv2', )
    for backend in backends:
        img = mmcv.imfrombytes(buf, flag=flag, backend=backend)
        img = img[..., None] if img.ndim == 2 else img[..., ::-1]
        assert img.dtype == gdal.dtype
        np.testing.assert_array_equal(img, gdal)


def test_jpeg_decoders_differ_control(tmp_path):
    """The control: on saturated colour edges GDAL's and OpenCV's decodings
    of one 4:2:0 JPEG differ (in most pixels, by tens of levels), also for a
    JPEG-compressed (YCbCr) GeoTIFF; both are lossy codecs."""
    from mmringmoe.apis.decoding import lossy_codec
    rgb = edges_image()
    jpg = write_jpeg(tmp_path / 'a.jpg', rgb)
    tif = write_tif(tmp_path / 'j.tif', rgb, compress='jpeg',
                    photometric='YCBCR')
    for path in (jpg, tif):
        gdal, _ = gdal_read(path)
        diff = np.abs(gdal.astype(int) - cv2_rgb(path))
        assert diff.max() > 30 and (diff > 0).any(-1).mean() > 0.5
        assert lossy_codec(path) == 'JPEG'


# ------------------------------------------------------ scene inference
def test_jpeg_scene_equals_the_model_on_opencv_pixels(models, tmp_path):
    """Tiled scene inference of a LoadImageFromFile model on a JPEG equals
    the model applied to cv2.imread's pixels in one pass (tiling is exact
    for a per-pixel model), and not to GDAL's (the control)."""
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.scene import build_scene
    cv2_cfg, _, model, ckpt = models
    path = write_jpeg(tmp_path / 'scene.jpg', edges_image())
    inf = RSInferencer(cv2_cfg, ckpt)
    res = inf(path, crop=32, overlap=8, batch_size=3, probs=True)
    ref = whole_probs(model, cv2_rgb(path)[..., ::-1])  # BGR, as loaded
    np.testing.assert_allclose(res.probs, ref, atol=2e-6)
    assert (res.pred == ref.argmax(0)).all()
    gdal, _ = gdal_read(path)
    ctrl = whole_probs(model, gdal[..., ::-1].copy())
    assert np.abs(res.probs - ctrl).max() > 1e-2
    scene = build_scene(path)
    inf.spec.loader.check(scene)
    assert 'LoadImageFromFile (cv2, JPEG)' in scene.sources['img'].decoded_by


def test_lossless_and_rs_loader_scenes_keep_gdal_windows(models, tmp_path):
    """A PNG and a GeoTIFF go through GDAL window reads as before (nothing
    decoded whole) and give the one-pass result on their pixels; a JPEG
    read by a LoadRSImageFromFile model stays GDAL's decoding, which is
    what that loader fed the model in training."""
    import cv2
    import rasterio
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.scene import build_scene
    cv2_cfg, rs_cfg, model, ckpt = models
    rgb = edges_image(seed=1)
    png = str(tmp_path / 'scene.png')
    cv2.imwrite(png, rgb[..., ::-1])
    tif = write_tif(tmp_path / 'scene.tif', rgb, compress='deflate',
                    crs='EPSG:32633', transform=rasterio.Affine(*TRANSFORM))
    inf = RSInferencer(cv2_cfg, ckpt)
    ref = whole_probs(model, rgb[..., ::-1].copy())
    for path in (png, tif):
        scene = build_scene(path)
        inf.spec.loader.check(scene)
        assert scene.sources['img'].decoded_by is None
        assert scene.sources['img']._arr is None  # window by window
        res = inf(path, crop=32, overlap=8, probs=True)
        np.testing.assert_allclose(res.probs, ref, atol=2e-6)
    assert res.transform == TRANSFORM
    jpg = write_jpeg(tmp_path / 'rs.jpg', rgb)
    rs = RSInferencer(rs_cfg, ckpt)
    scene = build_scene(jpg)
    rs.spec.loader.check(scene)
    assert scene.sources['img'].decoded_by is None
    res = rs(jpg, crop=32, overlap=8, probs=True)
    gdal, _ = gdal_read(jpg)
    # the rs model gets RGB unswapped; ``model`` (bgr_to_rgb) swaps BGR back
    np.testing.assert_allclose(res.probs,
                               whole_probs(model, gdal[..., ::-1].copy()),
                               atol=2e-6)


def test_world_file_jpeg_keeps_gdal_georeferencing_and_mask(models,
                                                            tmp_path):
    """A JPEG georeferenced by a .jgw world file and an .aux.xml (CRS,
    nodata 0): the output GeoTIFF carries the world file's transform (pixel
    corner = centre - half a pixel) and CRS, nodata exactly where GDAL's
    mask says, the model's classes from OpenCV's pixels elsewhere."""
    import rasterio
    from rasterio.crs import CRS
    from mmringmoe.apis import RSInferencer
    cv2_cfg, _, model, ckpt = models
    rgb = edges_image(64, 80, seed=2)
    rgb[:16, :32] = 0  # two black chroma MCUs: 0 in both decodings
    path = write_jpeg(tmp_path / 'geo.jpg', rgb)
    # world file: A, D, B, E, C, F with C, F the centre of pixel (0, 0)
    with open(tmp_path / 'geo.jgw', 'w') as f:
        f.write('2.5\n0\n0\n-2.5\n400001.25\n5000098.75\n')
    wkt = CRS.from_epsg(32632).to_wkt()
    with open(tmp_path / 'geo.jpg.aux.xml', 'w') as f:
        f.write('<PAMDataset>\n  <SRS>' + wkt.replace('"', '&quot;')
                + '</SRS>\n' + ''.join(
                    f'  <PAMRasterBand band="{b}"><NoDataValue>0'
                    '</NoDataValue></PAMRasterBand>\n' for b in (1, 2, 3))
                + '</PAMDataset>\n')
    gdal, meta = gdal_read(path)
    assert meta.transform == (2.5, 0.0, 400000.0, 0.0, -2.5, 5000100.0)
    assert not meta.valid_mask[:16, :32].any()
    out = str(tmp_path / 'geo_pred.tif')
    RSInferencer(cv2_cfg, ckpt)(path, out=out, crop=32, overlap=8)
    with rasterio.open(out) as ds:
        assert ds.transform == rasterio.Affine(*meta.transform)
        assert ds.crs == CRS.from_epsg(32632)
        assert (ds.height, ds.width) == (64, 80)
        pred = ds.read(1)
    ref = whole_probs(model, cv2_rgb(path)[..., ::-1].copy()).argmax(0)
    np.testing.assert_array_equal(pred[~meta.valid_mask], 255)
    np.testing.assert_array_equal(pred[meta.valid_mask],
                                  ref[meta.valid_mask])


def test_refusals_are_one_line(models, tmp_path, monkeypatch):
    """A JPEG whose EXIF orientation the loader would apply, a WebP-
    compressed GeoTIFF OpenCV cannot decode (tools/test.py could not read it
    either) and a decode that does not match GDAL's header are refused in
    one line before anything is written."""
    from PIL import Image
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis import model_spec
    cv2_cfg, _, _, ckpt = models
    inf = RSInferencer(cv2_cfg, ckpt)
    rgb = edges_image()
    turned = str(tmp_path / 'turned.jpg')
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 3  # 180 degrees: same size, other pixels
    im.save(turned, exif=exif, quality=95)
    out = str(tmp_path / 'o.tif')
    with pytest.raises(ValueError, match=r"orientation tag 3: the model's "
                       r"LoadImageFromFile \(color_type='color'\)") as e:
        inf(turned, out=out)
    assert '\n' not in str(e.value) and not osp.exists(out)
    webp = write_tif(tmp_path / 'w.tif', rgb, compress='webp')
    with pytest.raises(ValueError, match=r"the model's loader "
                       r"LoadImageFromFile \(cv2\) cannot decode") as e:
        inf(webp, out=out)
    assert '\n' not in str(e.value) and not osp.exists(out)
    path = write_jpeg(tmp_path / 'a.jpg', rgb)
    real = model_spec.WindowLoader.decode_file
    monkeypatch.setattr(model_spec.WindowLoader, 'decode_file',
                        lambda self, p: real(self, p)[:-1])
    with pytest.raises(ValueError, match=r"decodes 55 x 70 px with 3 "
                       r"band\(s\) but GDAL reads 56 x 70 px with 3") as e:
        inf(path, out=out)
    assert '\n' not in str(e.value) and not osp.exists(out)


# ------------------------------------------------- statistics and tiles
def test_statistics_follow_the_sar_detection_configs_loader(tmp_path):
    """compute_rs_stats (--collapse-identical-bands) and the HRSID /
    SAR-AIRcraft / SARDet-100k configs read through the same GDAL reader:
    the statistics equal the mean / std of the pixels the configs' own test
    loader returns for a grey-as-RGB JPEG, and for a colour JPEG
    (modality opt) those of LoadRSImageFromFile, not of OpenCV's decoding
    (the control)."""
    from mmengine.config import Config
    from mmengine.registry import TRANSFORMS, init_default_scope
    import mmringmoe  # noqa: F401
    from mmringmoe.apis.model_spec import find_test_pipeline
    from mmringmoe.datasets.transforms.normalize import compute_band_stats
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    grey = edges_image(40, 50, seed=3)[..., 1]
    grey_jpg = write_jpeg(tmp_path / 'g.jpg', np.stack([grey] * 3, -1))
    stats = compute_band_stats([grey_jpg], modality='sar_l2', block=16,
                               collapse_identical_bands=True,
                               quiet=True)
    init_default_scope('mmdet')
    for name in ('hrsid', 'sar-aircraft', 'sardet-100k'):
        cfg = Config.fromfile(osp.join(root, 'configs/_base_/datasets',
                                       name + '.py'))
        load = find_test_pipeline(cfg)[0]
        assert load['type'] == 'mmringmoe.LoadRSImageFromFile'
        img = TRANSFORMS.build(load)(dict(img_path=grey_jpg))['img']
        assert img.shape == (40, 50, 1)
        np.testing.assert_allclose(stats['mean'], [img.mean()], rtol=1e-12)
        np.testing.assert_allclose(stats['std'], [img.std()], rtol=1e-12)
    colour = write_jpeg(tmp_path / 'c.jpg', edges_image(40, 50, seed=4))
    st = compute_band_stats([colour], modality='opt', block=16,
                            quiet=True)
    img = TRANSFORMS.build(dict(type='mmringmoe.LoadRSImageFromFile',
                                modality='opt'))(dict(img_path=colour))['img']
    np.testing.assert_allclose(st['mean'], img.reshape(-1, 3).mean(0),
                               rtol=1e-12)
    ocv = cv2_rgb(colour).reshape(-1, 3).astype(float)
    assert np.abs(np.array(st['mean']) - ocv.mean(0)).max() > 0.1


def test_tiles_of_a_jpeg_hold_gdals_decoding_losslessly(tmp_path):
    """The tiler decodes a JPEG scene with GDAL (window by window = GDAL's
    whole read) and writes lossless GeoTIFF tiles: OpenCV (any loader) reads
    a tile back exactly as written, so a model trained on tiles saw GDAL's
    decoding of the source, whatever its loader."""
    from mmringmoe.datasets.tiling import iter_raster_tiles, write_tile
    path = write_jpeg(tmp_path / 'scene.jpg', edges_image(64, 80, seed=5))
    whole, _ = gdal_read(path)
    tiles = list(iter_raster_tiles(path, size=32, stride=24,
                                   nodata_fallback='none'))
    assert len(tiles) == 3 * 3  # rows 0, 24, 32; columns 0, 24, 48
    for k, t in enumerate(tiles):
        r, c = t.row, t.col
        np.testing.assert_array_equal(t.data, whole[r:r + 32, c:c + 32])
        out = str(tmp_path / f't{k}.tif')
        write_tile(out, t)
        np.testing.assert_array_equal(cv2_rgb(out), t.data)
    assert (cv2_rgb(path) != whole).any()  # the source's decodings differ


def test_jpeg_scene_classification_equals_the_test_pipeline(tmp_path):
    """Scene classification (NWPU-RESISC45 config, LoadImageFromFile, tiny
    backbone) of a JPEG smaller than one window gives the scores of the
    config's own test pipeline (tools/test.py's LoadImageFromFile,
    CenterCrop, PackInputs) run on the file; GDAL's pixels give others."""
    from mmengine.dataset import Compose, pseudo_collate
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.model_spec import find_test_pipeline
    from helpers import TINY_CHANNELS
    from inference_models import paper_config
    cfg = paper_config('classification/ringmoe-opt-kc_16xb64-200e_nwpu-resisc45-'
               'tr10-224px.py')
    cfg.model.head.in_channels = TINY_CHANNELS[-1]
    model = build(cfg, seed=1)
    names = tuple(f'scene{i}' for i in range(45))
    ckpt = save_checkpoint(model, str(tmp_path / 'cls.pth'), classes=names,
                           palette=[[i, i, i] for i in range(45)])
    path = write_jpeg(tmp_path / 'scene.jpg', edges_image(64, 80, seed=6))
    inf = RSInferencer(cfg, ckpt)
    got = dict(inf(path, crop=224, topk=45).topk)

    def scores(results):
        packed = Compose(find_test_pipeline(cfg)[1:])(results)
        with torch.no_grad():
            out = inf.model.test_step(pseudo_collate([packed]))
        return out[0].pred_score.numpy()

    ref = scores(Compose(find_test_pipeline(cfg)[:1])(dict(img_path=path)))
    np.testing.assert_allclose([got[n] for n in names], ref, atol=1e-6)
    gdal, _ = gdal_read(path)
    ctrl = scores(dict(img=gdal[..., ::-1].copy(), img_shape=(64, 80),
                       ori_shape=(64, 80), img_path=path))
    assert np.abs(ctrl - ref).max() > 1e-3  # 4.3e-3 measured
