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
decoders agree on size and channels. A pipeline reading with our
``LoadRSImageFromFile`` / ``LoadBitemporalImageFromFile`` /
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


def decode_like_loader(path: str, load_cfg: dict) -> np.ndarray:
    """Decode ``path`` with the pipeline's own ``LoadImageFromFile``, built
    from ``load_cfg`` by mmengine's ``TRANSFORMS`` registry (its
    ``color_type``, ``imdecode_backend`` and ``backend_args``;
    ``to_float32`` left to the caller).

    Args:
        path (str): the image file.
        load_cfg (dict): the pipeline's loader step.

    Returns:
        np.ndarray: ``(H, W, C)`` in file band order (the loader's BGR turned
        back to RGB for 3 channels; 1 channel for ``grayscale``), the
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
    if img.shape[2] == 3:
        img = img[..., ::-1]  # BGR -> file order (RGB)
    return np.ascontiguousarray(img)


__all__ = ['LOSSY_DRIVERS', 'LOSSY_COMPRESSIONS', 'reads_with_mmcv',
           'lossy_codec', 'exif_orientation', 'check_orientation',
           'decode_like_loader']
