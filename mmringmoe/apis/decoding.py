"""Decode an image file the way the model's test pipeline decodes it.

Scene and tracking inference read rasters with rasterio (GDAL). For lossless
formats that gives the same values as any other decoder (PNG, BMP, TIFF
uncompressed / DEFLATE / LZW: identical to OpenCV's and Pillow's decoding,
tested in ``tests/test_inference_decoding.py``). Lossy codecs are not
bit-exact across libraries: GDAL's JPEG decoder and OpenCV's (libjpeg-turbo,
used by ``mmcv.imfrombytes`` with the ``cv2`` and ``pillow`` backends alike)
differ by up to 89 grey levels, in 97 % of the pixels, on a 4:2:0 JPEG of
saturated 7 px colour blocks (chroma upsampling; 143 levels for a YCbCr
JPEG-compressed GeoTIFF); a 4:4:4 JPEG, a grey JPEG, WebP and JPEG 2000
measured identical here, but nothing guarantees it across library versions.

So when the model's pipeline reads images with mmcv's ``LoadImageFromFile``
(mmseg / mmdet / mmpretrain configs, any backend, colour type and
``backend_args``), a file coded with a lossy-capable codec
(:func:`lossy_codec`: JPEG, WebP, JPEG 2000, or a GeoTIFF compressed with
JPEG / WebP / JPEG XL) is decoded by that very loader
(:func:`decode_like_loader`), not by GDAL: the model sees the pixels
``tools/test.py`` would feed it for that file. Georeferencing, nodata and the
valid mask still come from GDAL (a ``.jgw`` / ``.wld`` world file or
``.aux.xml`` next to a JPEG is read by GDAL), after checking that both
decoders agree on size and channels. The loader also decodes every file
whose GDAL bands are not its pixels in a band order (:func:`not_band_order`:
OpenCV premultiplies an RGBA GeoTIFF by its alpha and turns a 3-band uint16
GeoTIFF into one grey channel; ``tifffile``); other windows are put in the
loader's band order (:func:`mmcv_band_order`: BGR for cv2 / pillow). A pipeline
reading with our ``LoadRSImageFromFile`` / ``LoadBitemporalImageFromFile`` /
``LoadComplexSAR`` / ``LoadOptSARPair`` reads with GDAL, so GDAL is what the
model saw and nothing changes for it.
"""
import os.path as osp
from typing import Optional

import numpy as np

#: GDAL drivers of lossy-capable codecs.
LOSSY_DRIVERS = {'JPEG': 'JPEG', 'WEBP': 'WebP', 'JP2OpenJPEG': 'JPEG 2000',
                 'JPEG2000': 'JPEG 2000', 'JP2KAK': 'JPEG 2000',
                 'JP2ECW': 'JPEG 2000', 'JP2MrSID': 'JPEG 2000',
                 'JPEGXL': 'JPEG XL'}
#: GeoTIFF compressions of lossy-capable codecs (rasterio names).
LOSSY_COMPRESSIONS = {'jpeg': 'JPEG', 'webp': 'WebP', 'jxl': 'JPEG XL'}
#: mmcv colour types that turn the image as its EXIF orientation tag says.
_ORIENTING = ('color', 'grayscale')


def _short(type_name) -> str:
    return str(type_name).split('.')[-1]


def reads_with_mmcv(load_cfg: Optional[dict]) -> bool:
    """True when a pipeline step is mmcv's ``LoadImageFromFile`` (also as
    ``mmdet.LoadImageFromFile`` etc.), which decodes with
    ``mmcv.imfrombytes``."""
    return bool(load_cfg) and _short(load_cfg.get('type', '')) == \
        'LoadImageFromFile'


def lossy_codec(path: str) -> Optional[str]:
    """Name of the lossy-capable codec of a raster file (``'JPEG'``,
    ``'WebP'``, ``'JPEG 2000'``, ``'JPEG XL'``), or None (PNG, BMP, TIFF
    uncompressed / DEFLATE / LZW / ZSTD / PackBits, ``.npy``, ...). Reads the
    header only (rasterio)."""
    path = str(path)
    if path.lower().endswith('.npy') or not osp.isfile(path):
        return None
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            if ds.driver in LOSSY_DRIVERS:
                return LOSSY_DRIVERS[ds.driver]
            comp = ds.compression
            name = getattr(comp, 'name', None) or str(comp or '')
            return LOSSY_COMPRESSIONS.get(name.lower())


def exif_orientation(path: str) -> int:
    """The EXIF / TIFF orientation tag of an image (1 = as stored; 1 when
    absent or unreadable). Reads the header only (Pillow)."""
    from PIL import Image
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # a header, not a decompression bomb
        with Image.open(path) as im:
            return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # not an image Pillow opens (e.g. CInt16 TIFF)
        return 1
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def check_orientation(path: str, load_cfg: dict):
    """Refuse a file whose orientation tag ``LoadImageFromFile`` would apply
    (colour types ``color`` / ``grayscale`` turn the image; GDAL, whose
    georeferencing and valid mask we use, does not).

    Raises:
        ValueError: one line naming the file, the tag and the colour type.
    """
    flag = load_cfg.get('color_type', 'color')
    if flag not in _ORIENTING:
        return
    o = exif_orientation(path)
    if o != 1:
        raise ValueError(
            f'{path!r} carries orientation tag {o}: the model\'s '
            f'LoadImageFromFile (color_type={flag!r}) turns the image by it '
            'but GDAL\'s georeferencing and mask refer to the stored pixels; '
            'store the pixels turned, without the tag')


def mmcv_band_order(load_cfg: dict, count: int) -> Optional[tuple]:
    """The file's bands (0-based, GDAL / file order) in the order mmcv's
    ``LoadImageFromFile`` yields them for a file of ``count`` bands (also
    ``LoadImageFromNDArray`` on ``mmcv.imread``'s array), or None when its
    output is no band order of the file (colour converted to grey or grey to
    colour: each decoder has its own weights).

    From ``mmcv.imfrombytes`` (mmcv 2.x; checked against the loader itself
    for cv2, pillow and tifffile in ``tests/test_inference_channel_order.py``;
    turbojpeg is not installed here): the ``tifffile`` backend returns the
    stored order whatever ``color_type``; ``cv2`` / ``pillow`` /
    ``turbojpeg`` with ``color`` (``color_ignore_orientation``) give 3
    channels BGR, i.e. ``(2, 1, 0)`` of an RGB file; ``unchanged`` keeps
    every band and dtype with the first three reversed (BGR, BGRA);
    ``grayscale`` gives one band, the file's own only for a 1-band file.
    Only for the files :func:`not_band_order` passes are GDAL's bands in
    this order the loader's pixels; others are decoded by the loader.
    """
    flag = load_cfg.get('color_type', 'color')
    backend = load_cfg.get('imdecode_backend') or 'cv2'
    if backend == 'tifffile':
        return tuple(range(count))
    if str(flag).startswith('grayscale'):
        return (0, ) if count == 1 else None
    if flag == 'unchanged':
        return (2, 1, 0) + tuple(range(3, count)) if count >= 3 else \
            tuple(range(count))
    return (2, 1, 0) if count == 3 else None


def not_band_order(path: str, load_cfg: dict) -> Optional[str]:
    """Why GDAL's window reads of ``path``, put in :func:`mmcv_band_order`,
    may not be what mmcv's ``LoadImageFromFile`` decodes (a short reason),
    or None when they are: an 8-bit PNG, BMP or pixel-interleaved GeoTIFF
    (16-bit also for PNG) whose bands are grey or red, green, blue, read
    with the cv2 / pillow / turbojpeg backend (tested identical). Everything
    else is decoded by the loader itself (:func:`decode_like_loader`): OpenCV
    turns a 3-band uint16 GeoTIFF (photometric grey, extra samples) into one
    grey channel and premultiplies an RGBA GeoTIFF by its alpha; a palette
    is expanded; ``tifffile`` returns the stored array. Reads the header
    only (rasterio)."""
    backend = load_cfg.get('imdecode_backend') or 'cv2'
    if backend == 'tifffile':
        return 'tifffile'
    if str(path).lower().endswith('.npy') or not osp.isfile(path):
        return None  # not an image file mmcv decodes; GDAL / numpy read it
    import warnings

    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.errors import NotGeoreferencedWarning
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            ci = tuple(ds.colorinterp)
            dtype, driver, count = ds.dtypes[0], ds.driver, ds.count
            inter = getattr(ds.interleaving, 'name', None)
    names = ', '.join(c.name for c in ci)
    if driver not in ('PNG', 'BMP', 'GTiff'):
        return f'{driver} file'
    if not (dtype == 'uint8' or (driver == 'PNG' and dtype == 'uint16')):
        return f'{dtype} {driver}'
    if ci not in ((ColorInterp.gray, ), (ColorInterp.red, ColorInterp.green,
                                         ColorInterp.blue)):
        return f'bands {names}'
    if driver == 'GTiff' and count > 1 and inter != 'pixel':
        return 'band-interleaved GeoTIFF'
    return None


def decode_like_loader(path: str, load_cfg: dict) -> np.ndarray:
    """Decode ``path`` with the pipeline's own ``LoadImageFromFile``, built
    from ``load_cfg`` by mmengine's ``TRANSFORMS`` registry (its
    ``color_type``, ``imdecode_backend`` and ``backend_args``;
    ``to_float32`` left to the caller).

    Args:
        path (str): the image file.
        load_cfg (dict): the pipeline's loader step.

    Returns:
        np.ndarray: ``(H, W, C)`` in file band order (the loader's order,
        :func:`mmcv_band_order`, undone: its BGR turned back to RGB for 3
        channels, tifffile's kept; 1 channel for ``grayscale``), the
        loader's dtype (uint8 for 8-bit colour types). The whole file is
        read (mmengine ``fileio.get``) and decoded at once: its bytes plus
        ``H * W * C`` bytes (uint8) in memory (a 4096 x 4096 RGB JPEG scene
        through ``tools/infer.py``: peak RSS 1264 MiB vs 1200 MiB for the
        same image as a PNG read window by window). An image the loader
        cannot decode (e.g. over OpenCV's pixel limit
        ``CV_IO_MAX_IMAGE_PIXELS``, 2**30 by default) is the one-line
        ``ValueError`` below, not a GDAL fallback.

    Raises:
        ValueError: one line when the loader cannot decode the file.
    """
    from mmengine.registry import TRANSFORMS
    cfg = dict(load_cfg)
    cfg['to_float32'] = False
    cfg.pop('ignore_empty', None)
    loader = TRANSFORMS.build(cfg)
    try:
        img = loader.transform(dict(img_path=path))['img']
    except Exception as e:  # AssertionError 'failed to load image', ...
        msg = str(e).strip().splitlines()
        raise ValueError(
            f'the model\'s loader {load_cfg["type"]} '
            f'({load_cfg.get("imdecode_backend", "cv2")}) cannot decode '
            f'{path!r}' + (f': {msg[0]}' if msg else '')) from e
    if img.ndim == 2:
        img = img[..., None]
    order = mmcv_band_order(load_cfg, img.shape[2])
    if order is not None and len(set(order)) == len(order):
        img = img[..., np.argsort(order)]  # loader's order -> file order
    return np.ascontiguousarray(img)


__all__ = ['LOSSY_DRIVERS', 'LOSSY_COMPRESSIONS', 'reads_with_mmcv',
           'lossy_codec', 'exif_orientation', 'check_orientation',
           'decode_like_loader', 'mmcv_band_order', 'not_band_order']
