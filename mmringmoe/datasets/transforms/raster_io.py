"""Reading remote sensing rasters: any band count, 8/16-bit, float, complex.

Everything returns ``(H, W, C)`` arrays in the file's own dtype; values are
never rescaled here (normalisation is a later, explicit step), so 16-bit and
complex SAR keep their full dynamic range.
"""
import io
import os.path as osp
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmringmoe.registry import TRANSFORMS

#: Input channels of each modality (DESIGN.md section 3).
MODALITY_CHANNELS = dict(opt=3, ms=4, sar_l1=8, sar_l2=1)
#: SAR-L1 channel order: every polarisation, real then imaginary.
SAR_L1_POLARISATIONS = ('HH', 'HV', 'VH', 'VV')
SAR_L1_CHANNEL_NAMES = tuple(f'{p}_{part}' for p in SAR_L1_POLARISATIONS
                             for part in ('re', 'im'))

_TIFF_EXTS = ('.tif', '.tiff', '.gtif', '.gtiff')
_TIFF_COMPLEXINT = 5  # TIFF SampleFormat tag value for complex integers


def _describe(path, modality=None):
    return f'{path!r}' + (f' (modality {modality!r})' if modality else '')


def _read_bytes(path: str, backend_args: Optional[dict]):
    """Local paths are read in place; anything else goes through mmengine."""
    if backend_args is None and osp.isfile(path):
        return path, osp.getsize(path)
    if backend_args is None and '://' not in str(path):
        raise FileNotFoundError(f'Raster file not found: {path!r}')
    from mmengine.fileio import get
    data = get(path, backend_args=backend_args)
    return io.BytesIO(data), len(data)


def _check_tiff_complete(tif, size: int, path: str):
    """Truncated files are the common failure of interrupted copies; tifffile
    then either raises deep inside a decoder or silently returns zeros."""
    for page in tif.pages:
        offsets = getattr(page, 'dataoffsets', ()) or ()
        counts = getattr(page, 'databytecounts', ()) or ()
        for off, cnt in zip(offsets, counts):
            if off + cnt > size:
                raise ValueError(
                    f'Truncated TIFF {path!r}: image data ends at byte '
                    f'{off + cnt} but the file has only {size} bytes.')


def _read_complexint(tif, page, path: str) -> np.ndarray:
    """TIFF SampleFormat COMPLEXINT (GF-3 L1A style int16 I/Q pairs).

    numpy has no complex-int dtype, so the raw strips are read as int16 and
    returned as ``(..., 2)`` (real, imaginary) pairs.
    """
    bits = page.bitspersample
    if bits not in (16, 32, 64):
        raise ValueError(f'{path!r}: complex integer TIFF with {bits} bits '
                         'per sample is not supported (expected 32 = 2 x int16).')
    if page.compression != 1 or page.is_tiled:
        raise ValueError(f'{path!r}: compressed or tiled complex-integer TIFF '
                         'is not supported; store it uncompressed in strips.')
    part = {16: 'i1', 32: 'i2', 64: 'i4'}[bits]
    dtype = np.dtype(tif.byteorder + part)
    fh = tif.filehandle
    chunks = []
    for off, cnt in zip(page.dataoffsets, page.databytecounts):
        fh.seek(off)
        chunks.append(fh.read(cnt))
    raw = np.frombuffer(b''.join(chunks), dtype=dtype)
    h, w, spp = page.imagelength, page.imagewidth, page.samplesperpixel
    if raw.size != h * w * spp * 2:
        raise ValueError(f'Truncated TIFF {path!r}: expected {h * w * spp * 2} '
                         f'int values, found {raw.size}.')
    if spp > 1 and page.planarconfig == 2:  # separate planes
        arr = raw.reshape(spp, h, w, 2).transpose(1, 2, 0, 3)
    else:
        arr = raw.reshape(h, w, spp, 2)
    return arr.astype(dtype.newbyteorder('='), copy=False)


def _read_tiff(path: str, backend_args: Optional[dict]) -> np.ndarray:
    import tifffile
    src, size = _read_bytes(path, backend_args)
    try:
        tif = tifffile.TiffFile(src)
    except Exception as err:  # tifffile raises several error types
        raise ValueError(f'Cannot read TIFF {path!r} (corrupt or truncated '
                         f'file?): {err}') from err
    with tif:
        _check_tiff_complete(tif, size, path)
        page = tif.pages[0]
        if page.sampleformat == _TIFF_COMPLEXINT:
            return _read_complexint(tif, page, path)
        series = tif.series[0]
        try:
            arr = series.asarray()
        except ValueError as err:
            if 'imagecodecs' not in str(err):
                raise ValueError(f'Cannot decode TIFF {path!r}: {err}') from err
            # LZW/deflate without imagecodecs installed: Pillow decodes the
            # usual 1/3/4-band 8/16-bit layouts.
            return _read_pillow(path, backend_args)
        except Exception as err:
            raise ValueError(f'Cannot decode TIFF {path!r} (corrupt or '
                             f'truncated file?): {err}') from err
        axes = series.axes
    if arr.ndim == 2:
        return arr[..., None]
    if arr.ndim == 3 and axes[-1] not in 'SC':
        # band-sequential (planar or one page per band): bands first
        return np.ascontiguousarray(arr.transpose(1, 2, 0))
    if arr.ndim > 3 and axes[-1] in 'SC':
        return arr.reshape(arr.shape[-3], arr.shape[-2], -1)
    return arr


def _read_pillow(path: str, backend_args: Optional[dict]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    src, _ = _read_bytes(path, backend_args)
    try:
        with Image.open(src) as im:
            im.load()
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f'Cannot decode image {path!r} (corrupt or '
                         f'truncated file?): {err}') from err
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def _read_npy(path: str, backend_args: Optional[dict]) -> np.ndarray:
    src, _ = _read_bytes(path, backend_args)
    try:
        arr = np.load(src, allow_pickle=False)
    except Exception as err:
        raise ValueError(f'Cannot read .npy {path!r} (corrupt or truncated '
                         f'file?): {err}') from err
    if arr.ndim == 2:
        return arr[..., None]
    if arr.ndim == 3 and arr.shape[0] <= 64 < min(arr.shape[1:]) \
            and arr.shape[2] > 64:
        # (C, H, W) saved by torch-minded tools: move bands last
        return np.ascontiguousarray(arr.transpose(1, 2, 0))
    return arr


def read_raster(path: str, backend_args: Optional[dict] = None) -> np.ndarray:
    """Read a raster as ``(H, W, C)`` (complex-int TIFFs as ``(H, W, C, 2)``).

    TIFF/GeoTIFF through tifffile, ``.npy`` through numpy, everything else
    (PNG, JPG, ...) through Pillow. The dtype is the file's own.
    """
    path = str(path)
    ext = osp.splitext(path)[1].lower()
    if ext in _TIFF_EXTS:
        return _read_tiff(path, backend_args)
    if ext == '.npy':
        return _read_npy(path, backend_args)
    return _read_pillow(path, backend_args)


def write_raster(path: str, img: np.ndarray, overwrite: bool = False):
    """Write ``(H, W[, C])`` so that :func:`read_raster` returns it unchanged.

    TIFF bands are stored pixel-interleaved (``YXS``), ``.npy`` as is, other
    extensions through Pillow (1/3/4-band 8-bit only). Refuses to replace an
    existing file unless ``overwrite``.
    """
    path = str(path)
    if not overwrite and osp.exists(path):
        raise FileExistsError(f'Refusing to overwrite existing file {path!r}')
    ext = osp.splitext(path)[1].lower()
    if ext in _TIFF_EXTS:
        import tifffile
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[..., 0]
        rgb = img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
        tifffile.imwrite(
            path, img,
            photometric='rgb' if rgb else 'minisblack',
            planarconfig='contig' if img.ndim == 3 else None)
    elif ext == '.npy':
        np.save(path, img)
    else:
        from PIL import Image
        Image.fromarray(img[..., 0] if img.ndim == 3 and img.shape[2] == 1
                        else img).save(path)


def write_complex_int16_tiff(path: str, pairs: np.ndarray,
                             overwrite: bool = False):
    """Write ``(H, W, P, 2)`` int16 (real, imaginary) pairs as a TIFF with
    SampleFormat COMPLEXINT, 32 bits per sample, the way GF-3 L1A products
    store complex SAR; :func:`read_raster` returns the pairs unchanged."""
    import tifffile
    path = str(path)
    if not overwrite and osp.exists(path):
        raise FileExistsError(f'Refusing to overwrite existing file {path!r}')
    pairs = np.ascontiguousarray(pairs, dtype='<i2')
    if pairs.ndim != 4 or pairs.shape[-1] != 2:
        raise ValueError(f'expected (H, W, P, 2) int16 pairs, got {pairs.shape}')
    packed = pairs.view('<i4')[..., 0]  # one 32-bit sample per complex value
    if packed.shape[2] == 1:
        packed = packed[..., 0]
    tifffile.imwrite(path, packed, byteorder='<', photometric='minisblack',
                     planarconfig='contig' if packed.ndim == 3 else None)
    with tifffile.TiffFile(path, mode='r+b') as tif:
        tif.pages[0].tags['SampleFormat'].overwrite(_TIFF_COMPLEXINT)


def check_finite(arr: np.ndarray, path: str, modality=None):
    if arr.dtype.kind in 'fc' and not np.isfinite(arr).all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise ValueError(f'{_describe(path, modality)} contains {n_nan} NaN '
                         f'and {n_inf} Inf values; fill or mask them before '
                         'training.')


def _set_image(results: dict, img: np.ndarray, modality):
    results['img'] = img
    results['img_shape'] = img.shape[:2]
    results['ori_shape'] = img.shape[:2]
    results['num_bands'] = img.shape[2]
    results['img_dtype'] = str(img.dtype)
    if modality is not None:
        results['modality'] = modality
    return results


@TRANSFORMS.register_module()
class LoadRSImageFromFile(BaseTransform):
    """Load a remote sensing raster with any number of bands.

    Reads 8/16-bit or float GeoTIFF/TIFF (tifffile), PNG/JPG (Pillow) and
    ``.npy``. Bands stay in file order (no BGR swap) and the dtype is kept
    until normalisation.

    Required keys: ``img_path``. Added keys: ``img`` (H, W, C), ``img_shape``,
    ``ori_shape``, ``num_bands``, ``img_dtype`` and ``modality`` (when known).

    Args:
        modality (str, optional): Modality of the files; when None, taken from
            ``results['modality']`` if the dataset provides it.
        expected_channels (int, optional): Band count to enforce. Defaults to
            the modality's (opt 3, ms 4, sar_l2 1); None with no modality
            means any band count is accepted.
        to_float32 (bool): Cast to float32 after loading. Defaults to False.
        check_finite (bool): Reject NaN/Inf values. Defaults to True.
        key (str): Result key holding the path. Defaults to ``'img_path'``.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self,
                 modality: Optional[str] = None,
                 expected_channels: Optional[int] = None,
                 to_float32: bool = False,
                 check_finite: bool = True,
                 key: str = 'img_path',
                 backend_args: Optional[dict] = None):
        if modality is not None and modality not in MODALITY_CHANNELS:
            raise ValueError(f'Unknown modality {modality!r}; expected one of '
                             f'{tuple(MODALITY_CHANNELS)}')
        self.modality = modality
        self.expected_channels = expected_channels
        self.to_float32 = to_float32
        self.check_finite = check_finite
        self.key = key
        self.backend_args = backend_args

    def _expected(self, modality):
        if self.expected_channels is not None:
            return self.expected_channels
        return MODALITY_CHANNELS.get(modality)

    def transform(self, results: dict) -> dict:
        path = results[self.key]
        modality = self.modality or results.get('modality')
        img = read_raster(path, self.backend_args)
        where = _describe(path, modality)
        if img.ndim == 4 or img.dtype.kind == 'c':
            raise ValueError(f'{where} holds complex values; load SAR-L1 '
                             'with LoadComplexSAR instead.')
        expected = self._expected(modality)
        if expected is not None and img.shape[2] != expected:
            raise ValueError(
                f'{where}: expected {expected} bands, found {img.shape[2]} '
                f'(shape {img.shape}, dtype {img.dtype}).')
        if self.check_finite:
            check_finite(img, path, modality)
        if self.to_float32:
            img = img.astype(np.float32)
        return _set_image(results, img, modality)

    def __repr__(self):
        return (f'{self.__class__.__name__}(modality={self.modality!r}, '
                f'expected_channels={self.expected_channels}, '
                f'to_float32={self.to_float32})')


def complex_to_channels(arr: np.ndarray) -> np.ndarray:
    """``(H, W, P)`` complex or ``(H, W, P, 2)`` int pairs -> ``(H, W, 2P)``
    with every polarisation's real part followed by its imaginary part."""
    if arr.dtype.names is not None:  # structured (re, im) records
        re, im = (arr[name] for name in arr.dtype.names[:2])
        arr = np.stack([re, im], axis=-1)
    if arr.dtype.kind == 'c':
        out_dtype = np.float64 if arr.dtype == np.complex128 else np.float32
        arr = np.stack([arr.real, arr.imag], axis=-1).astype(out_dtype)
    h, w = arr.shape[:2]
    return np.ascontiguousarray(arr.reshape(h, w, -1))


@TRANSFORMS.register_module()
class LoadComplexSAR(BaseTransform):
    """Load fully polarimetric SAR-L1 as 8 real channels.

    Channel order: HH, HV, VH, VV, each real then imaginary. Accepted inputs:

    - complex TIFF/npy (complex64/complex128) with 4 polarisation bands;
    - complex int16 as GF-3 L1A stores it: TIFF SampleFormat COMPLEXINT,
      int16 (..., 2) pairs, or numpy structured (re, im) int16 records;
    - an 8-channel real array already in the order above (int16, uint16,
      float);
    - ``img_path`` a list of 4 single-polarisation files (HH, HV, VH, VV),
      each complex, complex int16, or 2-band (I, Q) int16.

    Integer input keeps its dtype (int16), complex64 becomes float32, so the
    physics target (power) can be computed from the raw values later.
    8-bit data is rejected: it has lost the SAR dynamic range.

    Args:
        to_float32 (bool): Cast to float32 after loading. Defaults to False.
        check_finite (bool): Reject NaN/Inf. Defaults to True.
        key (str): Result key with the path(s). Defaults to ``'img_path'``.
        backend_args (dict, optional): mmengine file backend arguments.
    """
    modality = 'sar_l1'
    num_channels = MODALITY_CHANNELS['sar_l1']

    def __init__(self,
                 to_float32: bool = False,
                 check_finite: bool = True,
                 key: str = 'img_path',
                 backend_args: Optional[dict] = None):
        self.to_float32 = to_float32
        self.check_finite = check_finite
        self.key = key
        self.backend_args = backend_args

    def _load_one(self, path: str, num_pols: int) -> np.ndarray:
        arr = read_raster(path, self.backend_args)
        where = _describe(path, self.modality)
        if self.check_finite:
            check_finite(arr, path, self.modality)
        base = arr.dtype
        if base.names is not None:
            base = base[0]
        if base.itemsize == 1 and base.kind in 'uib':
            raise ValueError(
                f'{where}: found 8-bit data ({arr.dtype}, {arr.shape}); '
                'SAR-L1 expects 16-bit integer or complex values (HH, HV, VH, '
                'VV real/imaginary). 8-bit quantised SAR has lost its '
                'dynamic range and cannot give the physical power target.')
        chans = complex_to_channels(arr)
        if chans.shape[2] != 2 * num_pols:
            raise ValueError(
                f'{where}: expected {2 * num_pols} real channels '
                f'({num_pols} complex polarisation band(s)), found '
                f'{chans.shape[2]} (array shape {arr.shape}, dtype '
                f'{arr.dtype}).')
        return chans

    def transform(self, results: dict) -> dict:
        paths = results[self.key]
        if isinstance(paths, (list, tuple)):
            if len(paths) != len(SAR_L1_POLARISATIONS):
                raise ValueError(
                    f'SAR-L1 sample {paths!r}: expected '
                    f'{len(SAR_L1_POLARISATIONS)} files '
                    f'{SAR_L1_POLARISATIONS}, got {len(paths)}.')
            parts = [self._load_one(p, 1) for p in paths]
            shapes = {p.shape[:2] for p in parts}
            if len(shapes) != 1:
                raise ValueError(f'SAR-L1 polarisation files {paths!r} '
                                 f'differ in size: {sorted(shapes)}.')
            dtypes = {p.dtype for p in parts}
            img = np.concatenate(
                parts if len(dtypes) == 1 else
                [p.astype(np.float32) for p in parts], axis=2)
        else:
            img = self._load_one(paths, len(SAR_L1_POLARISATIONS))
        if self.to_float32:
            img = img.astype(np.float32)
        return _set_image(results, img, self.modality)

    def __repr__(self):
        return f'{self.__class__.__name__}(to_float32={self.to_float32})'


def modality_channels(modality: str,
                      overrides: Optional[dict] = None) -> int:
    """Channels of ``modality``, honouring a user's ``in_channels`` dict."""
    if overrides and modality in overrides:
        return overrides[modality]
    return MODALITY_CHANNELS[modality]


__all__ = [
    'MODALITY_CHANNELS', 'SAR_L1_POLARISATIONS', 'SAR_L1_CHANNEL_NAMES',
    'read_raster', 'write_raster', 'write_complex_int16_tiff', 'check_finite', 'complex_to_channels',
    'LoadRSImageFromFile', 'LoadComplexSAR', 'modality_channels'
]
