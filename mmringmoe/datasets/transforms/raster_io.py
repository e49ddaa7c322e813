"""Reading and writing remote sensing rasters on rasterio (GDAL).

Every GDAL raster format opens (GeoTIFF compressed with LZW / DEFLATE / ZSTD /
JPEG, tiled, BigTIFF, COG, band- or pixel-interleaved; PNG, JPEG, ...), plus
numpy ``.npy``. Arrays come back as ``(H, W, C)`` in the file's own dtype:
values are never rescaled here (normalisation is a later, explicit step), so
16-bit and complex SAR keep their full dynamic range.

Georeferencing travels with the data (DESIGN.md section 9): every read can
return a :class:`GeoMeta` with the CRS (WKT), the affine ``transform`` of the
window read (rasterio / GDAL order ``(a, b, c, d, e, f)``: ``x = a*col + b*row
+ c``, ``y = d*col + e*row + f``, pixel corners), the declared ``nodata``
value and a ``valid_mask``.

Valid-pixel mask, in order of precedence (rasterio's ``dataset_mask``):

1. the file's mask band / alpha band / ``.msk`` sidecar;
2. else the declared nodata value: a pixel is invalid when every band holds it
   (GDAL's dataset-mask rule, so a bright white pixel of an RGB image with
   nodata 255 in one band only stays valid);
3. NaN and +-Inf in float data are always invalid (and replaced by 0 in the
   returned array, so they cannot poison a network; the mask says where);
4. only if the file declares nothing, and only when asked
   (``nodata_fallback='zero_border'``), all-zero pixels connected to the image
   border (the black frame of a scene) are invalid.

An alpha band is a mask, not data: it is removed from the returned bands.
"""
import io
import os.path as osp
import warnings
from contextlib import contextmanager
from typing import NamedTuple, Optional, Sequence, Tuple

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
_NPY_LAYOUTS = ('hwc', 'chw')
NODATA_FALLBACKS = ('none', 'zero_border')


class GeoMeta(NamedTuple):
    """Georeferencing and validity of an array read from a raster.

    Attributes:
        crs (str | None): CRS as WKT; None for a file without one.
        transform (tuple | None): affine ``(a, b, c, d, e, f)`` of the array's
            pixel grid (rasterio order, map units per pixel); None when the file
            is not georeferenced.
        nodata (float | None): the declared nodata value (per file, GDAL).
        valid_mask (np.ndarray): ``(H, W)`` bool, True where the pixel holds
            data (see the module docstring for the rules).
        mask_source (str): what the mask came from: ``'mask_band'``,
            ``'alpha'``, ``'nodata'``, ``'zero_border'`` or ``'none'``
            (``'+nonfinite'`` appended when NaN/Inf were found).
        path (str): the file.
        gcps (tuple | None): the file's ground control points, rasterio
            ``GroundControlPoint`` (``row``, ``col`` in pixels of the array
            read, pixel corners as GDAL: ``(0, 0)`` is the top-left corner;
            ``x``, ``y``, ``z`` in ``gcp_crs``); None when the file has none
            (raw L1 products are often georeferenced by GCPs only, with no
            geotransform: then ``crs`` and ``transform`` are None).
        gcp_crs (str | None): CRS of the GCPs as WKT.
        rpcs (rasterio.rpc.RPC | None): the file's rational polynomial
            coefficients (Pleiades, WorldView, Sentinel-1 L1 ...), with
            ``line_off`` / ``samp_off`` of the array read; None when absent.
    """
    crs: Optional[str]
    transform: Optional[Tuple[float, ...]]
    nodata: Optional[float]
    valid_mask: np.ndarray
    mask_source: str
    path: str
    gcps: Optional[tuple] = None
    gcp_crs: Optional[str] = None
    rpcs: Optional[object] = None


class RasterInfo(NamedTuple):
    """Header of a raster: what :func:`raster_info` returns without reading
    pixels. ``dtype`` is rasterio's name (``'uint16'``, ``'complex_int16'``,
    ...); ``count`` counts data bands (an alpha band is not counted)."""
    path: str
    height: int
    width: int
    count: int
    dtype: str
    crs: Optional[str]
    transform: Optional[Tuple[float, ...]]
    nodata: Optional[float]
    has_mask: bool
    driver: str
    gcps: Optional[tuple] = None
    gcp_crs: Optional[str] = None
    rpcs: Optional[object] = None


def sample_kind(dtype) -> str:
    """Kind and bit depth of a sample dtype, the level at which a scene and
    a model's training data (or the files of one statistics run) must agree:
    ``'8-bit integer'`` (uint8, int8), ``'16-bit integer'`` (uint16, int16,
    GDAL CInt16 ``complex_int16`` and its int16 (re, im) pairs),
    ``'32-bit integer'``, ``'float'`` (float16/32/64, complex64/128 SAR),
    ``'bool'``. Signedness is not compared here (int16 and uint16 DN share a
    scale; scene inference checks the values instead:
    :meth:`mmringmoe.apis.model_spec.WindowLoader.check_values`); integers of different width, or integers and floats (DN vs
    reflectance 0-1), are different kinds."""
    name = str(dtype)
    if name == 'complex_int16':
        return '16-bit integer'
    dt = np.dtype(name)
    if dt.kind in 'iu':
        return f'{dt.itemsize * 8}-bit integer'
    if dt.kind in 'fc':
        return 'float'
    if dt.kind == 'b':
        return 'bool'
    return dt.name


class GeoreferencingWarning(UserWarning):
    """A written raster cannot hold part of its input's georeferencing
    (e.g. GCPs next to a geotransform); the message names the file.
    ``tools/infer.py`` prints it as one ``warning: ...`` line, even under
    ``-W ignore``."""


class AmbiguousNpyLayout(ValueError):
    """A 3-D ``.npy`` whose band axis (first or last) cannot be told from
    its shape (attributes ``path``, ``shape``)."""


def _describe(path, modality=None):
    return f'{path!r}' + (f' (modality {modality!r})' if modality else '')


def _is_npy(path: str) -> bool:
    return str(path).lower().endswith('.npy')


@contextmanager
def _open(path: str, backend_args: Optional[dict] = None):
    """rasterio dataset for a local path, or for bytes fetched by mmengine."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
    path = str(path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NotGeoreferencedWarning)
        if backend_args is None and '://' not in path:
            if not osp.isfile(path):
                raise FileNotFoundError(f'Raster file not found: {path!r}')
            try:
                src = rasterio.open(path)
            except RasterioIOError as err:
                raise ValueError(f'Cannot read raster {path!r} (corrupt, '
                                 f'truncated or not a raster?): {err}') from err
            with src:
                yield src
            return
        from mmengine.fileio import get
        data = get(path, backend_args=backend_args)
        with rasterio.MemoryFile(data) as mem:
            try:
                src = mem.open()
            except RasterioIOError as err:
                raise ValueError(f'Cannot read raster {path!r} (corrupt, '
                                 f'truncated or not a raster?): {err}') from err
            with src:
                yield src


def _alpha_index(src) -> Optional[int]:
    """1-based index of an alpha band, if any."""
    from rasterio.enums import ColorInterp
    for i, ci in enumerate(src.colorinterp, start=1):
        if ci == ColorInterp.alpha:
            return i
    return None


def _georef(src):
    from rasterio.transform import Affine
    crs = src.crs.to_wkt() if src.crs else None
    t = src.transform
    if crs is None and t == Affine.identity():
        return None, None
    return crs, tuple(float(v) for v in t[:6])


def _gcps_rpcs(src):
    """``(gcps, gcp_crs, rpcs)`` of an open rasterio dataset (each None when
    absent): GCPs as a tuple of ``GroundControlPoint``, their CRS as WKT, the
    RPCs as a rasterio ``RPC``."""
    gcps, gcp_crs = src.gcps
    gcps = tuple(gcps) if gcps else None
    gcp_crs = gcp_crs.to_wkt() if (gcps and gcp_crs) else None
    return gcps, gcp_crs, src.rpcs or None


def _as_gcp(g):
    """A rasterio ``GroundControlPoint`` from one, or from a
    ``(row, col, x, y[, z])`` tuple."""
    from rasterio.control import GroundControlPoint
    if isinstance(g, GroundControlPoint):
        return g
    row, col, x, y, *z = (float(v) for v in g)
    return GroundControlPoint(row, col, x, y, z[0] if z else None)


def _as_rpc(rpcs):
    """A rasterio ``RPC`` from one or from its dict (``RPC.to_dict()`` /
    GDAL's RPC metadata domain keys)."""
    from rasterio.rpc import RPC
    if rpcs is None or isinstance(rpcs, RPC):
        return rpcs
    if all(isinstance(k, str) and k.isupper() for k in rpcs):
        return RPC.from_gdal(rpcs)
    return RPC(**rpcs)


def gcps_on_grid(gcps, row_off: float = 0, col_off: float = 0,
                 row_step: float = 1, col_step: float = 1):
    """GCPs of a grid whose pixel ``(i, j)`` spans input pixels
    ``[row_off + i * row_step, ...)`` x ``[col_off + j * col_step, ...)``: a
    window (offsets) or a coarser grid (steps). Pixel corners (GDAL's GCP
    convention): ``row' = (row - row_off) / row_step``. None stays None."""
    if not gcps:
        return None
    out = []
    for g in gcps:
        g = _as_gcp(g)
        out.append(type(g)(row=(g.row - row_off) / row_step,
                           col=(g.col - col_off) / col_step, x=g.x, y=g.y,
                           z=g.z, id=g.id, info=g.info))
    return tuple(out)


def rpcs_on_grid(rpcs, row_off: float = 0, col_off: float = 0,
                 row_step: float = 1, col_step: float = 1):
    """RPCs of a window (offsets) or a coarser grid (steps) of the input,
    as :func:`gcps_on_grid`. RPC line / sample coordinates are pixel centres
    (GDAL's RPC transformer maps corner ``(0, 0)`` to line ``-0.5``), so a
    step ``k`` gives ``LINE_OFF' = (LINE_OFF - row_off + 0.5) / k - 0.5`` and
    ``LINE_SCALE' = LINE_SCALE / k`` (samples alike). None stays None."""
    rpcs = _as_rpc(rpcs)
    if rpcs is None:
        return None
    import attr
    return attr.evolve(
        rpcs,
        line_off=(rpcs.line_off - row_off + 0.5) / row_step - 0.5,
        line_scale=rpcs.line_scale / row_step,
        samp_off=(rpcs.samp_off - col_off + 0.5) / col_step - 0.5,
        samp_scale=rpcs.samp_scale / col_step)


def raster_info(path: str, backend_args: Optional[dict] = None) -> RasterInfo:
    """Header of ``path`` (no pixel is read). ``.npy`` files report their
    shape with ``crs``/``transform``/``nodata`` None."""
    path = str(path)
    if _is_npy(path):
        arr = _read_npy(path, backend_args, mmap=True)
        return RasterInfo(path, arr.shape[0], arr.shape[1], arr.shape[2],
                          str(arr.dtype), None, None, None, False, 'npy')
    from rasterio.enums import MaskFlags
    with _open(path, backend_args) as src:
        alpha = _alpha_index(src)
        crs, transform = _georef(src)
        flags = src.mask_flag_enums[0] if src.count else ()
        has_mask = alpha is not None or MaskFlags.per_dataset in flags
        return RasterInfo(path, src.height, src.width,
                          src.count - (alpha is not None), src.dtypes[0], crs,
                          transform, src.nodata, has_mask, src.driver,
                          *_gcps_rpcs(src))


def _to_rio_window(window):
    """``None``, a rasterio ``Window`` or ``(row_off, col_off, height, width)``
    (the :class:`mmringmoe.datasets.windows.Window` order)."""
    if window is None:
        return None
    from rasterio.windows import Window as RioWindow
    if isinstance(window, RioWindow):
        return window
    r, c, h, w = (int(v) for v in window)
    return RioWindow(c, r, w, h)


def _complex_int16_pairs(arr: np.ndarray) -> np.ndarray:
    """complex64 read from a CInt16 band -> exact int16 (re, im) pairs."""
    return np.stack([arr.real, arr.imag], axis=-1).astype(np.int16)


def check_band_indexes(indexes, count: int, name: str) -> Tuple[int, ...]:
    """``indexes`` as a tuple of 1-based band indexes of a raster of
    ``count`` bands (GDAL's ``-b`` convention), or a one-line ValueError
    naming ``name``: an index that is no integer (a bool or float is
    none), < 1 or > ``count``, repeated, or an empty selection."""
    try:
        idx = list(indexes)
    except TypeError:
        idx = [indexes]
    if not idx:
        raise ValueError(f'{name!r}: empty band selection; give 1-based band '
                         f'indexes 1..{count}')
    for i in idx:
        if isinstance(i, (bool, np.bool_)) or not isinstance(
                i, (int, np.integer)):
            raise ValueError(f'{name!r}: band index {i!r} is not an integer; '
                             f'give 1-based band indexes 1..{count}')
        if not 1 <= int(i) <= count:
            raise ValueError(f'{name!r}: band {int(i)} does not exist (the '
                             f'file has {count} band(s), indexes 1..{count})')
    if len(set(int(i) for i in idx)) != len(idx):
        dup = sorted({int(i) for i in idx if idx.count(i) > 1})
        raise ValueError(f'{name!r}: band {dup[0]} is selected more than once '
                         f'in {[int(i) for i in idx]}')
    return tuple(int(i) for i in idx)


def _stack_tiff_pages(src, path, first, bands, kw):
    """A multi-page TIFF (one page per band, as tifffile and some archives
    write band-sequential data): GDAL opens page 1 only and lists the others
    as sub-datasets. Their bands are appended in page order when every page
    has the first page's size and dtype; anything else is refused, so no
    band is dropped silently."""
    import rasterio
    parts = [first]
    for name in src.subdatasets[1:]:
        with rasterio.open(name) as page:
            if (page.height, page.width, page.dtypes[0]) != (
                    src.height, src.width, src.dtypes[0]):
                raise ValueError(
                    f'{path!r}: multi-page TIFF whose page {name!r} is '
                    f'{page.height} x {page.width} {page.dtypes[0]}, expected'
                    f' {src.height} x {src.width} {src.dtypes[0]} like page '
                    '1; store the bands in one image.')
            parts.append(page.read(**kw))
    return np.concatenate(parts, axis=0)


def _check_alpha_is_a_mask(src, alpha, kw, path):
    """An alpha band used as the mask must hold transparency (0 and the
    dtype's maximum only). GDAL also marks the 4th band of any 4-band uint8
    GeoTIFF written with its defaults as alpha; when that band holds other
    values it is data (e.g. NIR) and dropping it would be silent."""
    a = src.read(alpha, **kw)
    top = np.iinfo(a.dtype).max if a.dtype.kind in 'iu' else 1.0
    odd = (a != 0) & (a != top)
    if odd.any():
        raise ValueError(
            f'{path!r}: band {alpha} of {src.count} is declared alpha but '
            f'holds values other than 0 and {top} (e.g. {a[odd][0]}), so it '
            f'looks like data; to read it as a band, expect {src.count} '
            'bands (the modality\'s band count, e.g. ms, or the tiler\'s '
            '--bands), else rewrite the file without the alpha flag.')


def _read_rio(path, backend_args, window, nodata_fallback, boundless=False,
              fill_value=None, expected_bands=None, indexes=None):
    """Read bands ``(H, W, C)`` + :class:`GeoMeta` through rasterio."""
    from rasterio.enums import MaskFlags
    with _open(path, backend_args) as src:
        alpha = _alpha_index(src)
        alpha_is_data = False
        if indexes is not None:
            indexes = check_band_indexes(indexes, src.count, path)
            if src.subdatasets and src.driver == 'GTiff':
                raise ValueError(
                    f'{path!r}: band selection {list(indexes)} is not '
                    'supported for a multi-page TIFF (one page per band); '
                    'store the bands in one image.')
            if alpha is not None and (alpha in indexes or (
                    isinstance(expected_bands, int)
                    and expected_bands == src.count)):
                # a band flagged alpha that is selected is data (e.g. the
                # NIR of a B, G, R, NIR file GDAL flags alpha by default),
                # so is an unselected one when expected_bands counts it
                alpha, alpha_is_data = None, True
        elif alpha is not None and isinstance(expected_bands, int) \
                and src.count == expected_bands:
            # GDAL marks the 4th band of every 4-band uint8 GeoTIFF written
            # with its defaults as alpha: when the modality expects all the
            # bands (a B, G, R, NIR file), that band is data, not a mask
            alpha, alpha_is_data = None, True
        bands = (list(indexes) if indexes is not None else
                 [i for i in range(1, src.count + 1) if i != alpha])
        rio_win = _to_rio_window(window)
        kw = dict(window=rio_win)
        if boundless:
            kw.update(boundless=True,
                      fill_value=src.nodata if fill_value is None
                      else fill_value)
        try:
            data = src.read(bands, **kw)
            flags = src.mask_flag_enums[0]
            if alpha_is_data:
                mask = (valid_mask_from(np.moveaxis(data, 0, 2), src.nodata)
                        if src.nodata is not None else
                        np.ones(data.shape[1:], bool))
                source = 'nodata' if src.nodata is not None else 'none'
                if indexes is not None and boundless and rio_win is not None:
                    # outside the raster is invalid (GDAL's boundless mask)
                    r0, c0 = int(rio_win.row_off), int(rio_win.col_off)
                    rows = np.arange(r0, r0 + mask.shape[0])
                    cols = np.arange(c0, c0 + mask.shape[1])
                    mask = (mask
                            & ((rows >= 0) & (rows < src.height))[:, None]
                            & ((cols >= 0) & (cols < src.width))[None, :])
            else:
                declared = (alpha is not None
                            or MaskFlags.per_dataset in flags
                            or MaskFlags.nodata in flags)
                if indexes is not None and (declared or boundless):
                    # GDAL's per-band masks of the selected bands only,
                    # combined as GDAL's dataset mask combines all bands
                    # (valid where any of them is valid)
                    mask = (src.read_masks(bands, window=rio_win,
                                           boundless=boundless) > 0).any(0)
                elif declared or boundless:
                    mask = src.dataset_mask(
                        window=rio_win, boundless=boundless) > 0
                else:
                    mask = np.ones(data.shape[1:], bool)
                if alpha is not None:
                    source = 'alpha'
                elif MaskFlags.per_dataset in flags:
                    source = 'mask_band'
                elif MaskFlags.nodata in flags:
                    source = 'nodata'
                else:
                    source = 'none'
        except Exception as err:  # GDAL decoders raise RasterioIOError etc.
            raise ValueError(f'Cannot decode raster {path!r} (corrupt or '
                             f'truncated file?): {err}') from err
        if alpha is not None:
            _check_alpha_is_a_mask(src, alpha, kw, path)
        if src.subdatasets and src.driver == 'GTiff':
            data = _stack_tiff_pages(src, path, data, bands, kw)
        crs, transform = _georef(src)
        gcps, gcp_crs, rpcs = _gcps_rpcs(src)
        if rio_win is not None:
            r0, c0 = int(rio_win.row_off), int(rio_win.col_off)
            if transform is not None:
                from mmringmoe.datasets.windows import window_transform
                transform = window_transform(transform, r0, c0)
            gcps = gcps_on_grid(gcps, r0, c0)
            rpcs = rpcs_on_grid(rpcs, r0, c0)
        nodata = src.nodata
        if src.dtypes[0] == 'complex_int16':
            data = _complex_int16_pairs(data)  # (C, H, W, 2)
        data = np.moveaxis(data, 0, 2)
    data = np.ascontiguousarray(data)
    if source == 'none' and not boundless and nodata_fallback == 'zero_border':
        from mmringmoe.datasets.tiling import black_border_mask
        mask = ~black_border_mask(data)
        source = 'zero_border'
    return data, crs, transform, nodata, mask, source, (gcps, gcp_crs, rpcs)


def _npy_layout(arr: np.ndarray, path: str, layout: Optional[str],
                expected_bands: Optional[int]) -> str:
    """Decide ``'hwc'`` / ``'chw'`` for a 3-D array, or refuse."""
    if layout is not None:
        if layout not in _NPY_LAYOUTS:
            raise ValueError(f'npy_layout must be one of {_NPY_LAYOUTS}, '
                             f'got {layout!r}')
        return layout
    c0, c2 = arr.shape[0], arr.shape[2]
    if callable(expected_bands):
        expected_bands = expected_bands(arr)
    if expected_bands is not None:
        hwc, chw = c2 == expected_bands, c0 == expected_bands
        if hwc != chw:
            return 'hwc' if hwc else 'chw'
        if not hwc:
            raise ValueError(
                f'{path!r}: array of shape {arr.shape} has {expected_bands} '
                f'bands on neither the first nor the last axis (expected '
                f'{expected_bands} bands).')
    else:
        smallest = min(arr.shape)
        hwc = c2 == smallest and c0 != smallest and arr.shape[1] != smallest
        chw = c0 == smallest and c2 != smallest and arr.shape[1] != smallest
        if hwc != chw:
            return 'hwc' if hwc else 'chw'
    err = AmbiguousNpyLayout(
        f'{path!r}: array of shape {arr.shape} is ambiguous (bands first or '
        f'last?); pass npy_layout=\'hwc\' or \'chw\' (or the expected band '
        f'count) to say which.')
    err.path, err.shape = path, arr.shape
    raise err


def _read_npy(path: str, backend_args: Optional[dict], mmap: bool = False,
              layout: Optional[str] = None,
              expected_bands: Optional[int] = None) -> np.ndarray:
    try:
        if backend_args is None and '://' not in path:
            if not osp.isfile(path):
                raise FileNotFoundError(f'Raster file not found: {path!r}')
            arr = np.load(path, allow_pickle=False,
                          mmap_mode='r' if mmap else None)
        else:
            from mmengine.fileio import get
            arr = np.load(io.BytesIO(get(path, backend_args=backend_args)),
                          allow_pickle=False)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise ValueError(f'Cannot read .npy {path!r} (corrupt or truncated '
                         f'file?): {err}') from err
    if arr.ndim == 2:
        return arr[..., None]
    if arr.ndim == 3:
        if _npy_layout(arr, path, layout, expected_bands) == 'chw':
            arr = arr.transpose(1, 2, 0)
        return arr if mmap else np.ascontiguousarray(arr)
    if arr.ndim == 4 and arr.shape[-1] == 2:  # (H, W, P, 2) (re, im) pairs
        return arr
    raise ValueError(f'{path!r}: expected a 2-D or 3-D array (H, W[, C]), '
                     f'found shape {arr.shape}.')


def _nonfinite(arr: np.ndarray) -> Optional[np.ndarray]:
    """(H, W) True where any band is NaN/Inf; None for integer data."""
    if arr.dtype.kind not in 'fc':
        return None
    bad = ~np.isfinite(arr)
    while bad.ndim > 2:
        bad = bad.any(-1)
    return bad if bad.any() else None


def read_raster_with_meta(path: str,
                          window=None,
                          backend_args: Optional[dict] = None,
                          nodata_fallback: str = 'none',
                          npy_layout: Optional[str] = None,
                          expected_bands: Optional[int] = None,
                          boundless: bool = False,
                          fill_value=None,
                          indexes: Optional[Sequence[int]] = None
                          ) -> Tuple[np.ndarray, GeoMeta]:
    """Read ``path`` (optionally one window) with its georeferencing and mask.

    Args:
        path (str): raster file (any GDAL format, or ``.npy``).
        window: ``(row_off, col_off, height, width)`` in pixels (a
            :class:`mmringmoe.datasets.windows.Window` or a rasterio
            ``Window``); None reads everything.
        backend_args (dict, optional): mmengine file backend for remote paths.
        nodata_fallback (str): ``'none'`` or ``'zero_border'`` (only for files
            that declare no nodata, mask or alpha).
        npy_layout (str, optional): ``'hwc'`` or ``'chw'`` for 3-D ``.npy``.
        expected_bands (int, optional): lets a ``.npy`` layout be decided by
            the band count.
        boundless (bool): a window reaching outside the raster is filled with
            ``fill_value`` (default the nodata value, else 0) and those pixels
            are invalid.
        indexes (sequence of int, optional): 1-based band indexes to read,
            in this order (GDAL's ``-b`` / rasterio's ``indexes``); None
            reads every data band (a band flagged alpha is the mask, unless
            ``expected_bands`` counts it). With ``indexes`` the array holds
            exactly those bands (``C == len(indexes)``), a selected band
            flagged alpha is data, and the valid mask is GDAL's per-band
            masks of the SELECTED bands only (rasterio ``read_masks``),
            valid where any selected band is valid (as GDAL's dataset mask
            combines all bands): with a nodata value a pixel is invalid where
            every selected band holds it, whatever the other bands hold; an
            alpha or per-dataset mask band applies as it does to every band,
            except that a band flagged alpha is data (no mask; the nodata
            rule over the selected bands) when it is selected or when
            ``expected_bands`` equals the file's band count.
            For ``.npy`` files the channels are picked, the mask is
            unchanged.

    Returns:
        tuple: ``(array, GeoMeta)``; the array is ``(H, W, C)`` in the file's
        dtype (CInt16 as ``(H, W, C, 2)`` int16 (re, im) pairs, CFloat32 as
        complex64). NaN/Inf are replaced by 0 and marked invalid.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable/corrupt file, ambiguous ``.npy`` layout, a
            float raster with no finite value at all, or ``indexes`` that
            are no 1-based band indexes of the file (out of range, repeated,
            not integers; :func:`check_band_indexes`).
    """
    path = str(path)
    if nodata_fallback not in NODATA_FALLBACKS:
        raise ValueError(f'nodata_fallback must be one of {NODATA_FALLBACKS},'
                         f' got {nodata_fallback!r}')
    if _is_npy(path):
        # a window is read through a memory map: only its rows come from
        # disk (np.load(mmap_mode='r')), not the whole array
        arr = _read_npy(path, backend_args, mmap=window is not None,
                        layout=npy_layout, expected_bands=expected_bands)
        if indexes is not None:
            count = arr.shape[2] if arr.ndim >= 3 else 1
            sel = [i - 1 for i in check_band_indexes(indexes, count, path)]
            arr = arr if arr.ndim >= 3 else arr[..., None]
            arr = np.ascontiguousarray(arr[:, :, sel])
        inside = None
        if window is not None:
            r, c, h, w = (int(v) for v in window)
            if boundless:  # outside the array: fill_value (else 0), invalid
                part = arr[max(r, 0):max(r + h, 0), max(c, 0):max(c + w, 0)]
                full = np.full((h, w) + arr.shape[2:], fill_value or 0,
                               arr.dtype)
                inside = np.zeros((h, w), bool)
                r0, c0 = max(-r, 0), max(-c, 0)
                full[r0:r0 + part.shape[0], c0:c0 + part.shape[1]] = part
                inside[r0:r0 + part.shape[0], c0:c0 + part.shape[1]] = True
                arr = full
            else:
                arr = np.ascontiguousarray(arr[r:r + h, c:c + w])
        crs = transform = nodata = None
        gcp_rpc = (None, None, None)
        source = 'none'
        if nodata_fallback == 'zero_border':
            from mmringmoe.datasets.tiling import black_border_mask
            mask = ~black_border_mask(arr)
            source = 'zero_border'
        else:
            mask = np.ones(arr.shape[:2], bool)
        if inside is not None:
            mask &= inside
    else:
        arr, crs, transform, nodata, mask, source, gcp_rpc = _read_rio(
            path, backend_args, window, nodata_fallback, boundless, fill_value,
            expected_bands, indexes)
    bad = _nonfinite(arr)
    if bad is not None:
        if bad.all() and window is None:  # a window may be all nodata
            raise ValueError(f'{path!r}: every pixel is NaN or Inf (no valid '
                             'data).')
        mask = mask & ~bad
        arr = np.where(np.isfinite(arr), arr, 0).astype(arr.dtype)
        source += '+nonfinite'
    return arr, GeoMeta(crs, transform, nodata, mask, source, path, *gcp_rpc)


def read_raster(path: str, backend_args: Optional[dict] = None,
                window=None, **kwargs) -> np.ndarray:
    """Read a raster as ``(H, W, C)`` in the file's dtype (CInt16 as
    ``(H, W, C, 2)`` int16 pairs). See :func:`read_raster_with_meta`; NaN/Inf
    are replaced by 0 there, so use that function when validity matters."""
    return read_raster_with_meta(path, window=window,
                                 backend_args=backend_args, **kwargs)[0]


def valid_mask_from(arr: np.ndarray,
                    nodata=None,
                    mask: Optional[np.ndarray] = None,
                    nodata_fallback: str = 'none') -> np.ndarray:
    """``(H, W)`` valid-pixel mask of an in-memory array with the rules of the
    module docstring: ``mask`` (True = valid) if given, else the nodata value
    (invalid where every band equals it; NaN nodata matches NaN), NaN/Inf
    always invalid, the zero border only as an explicit fallback."""
    if mask is not None:
        valid = np.asarray(mask, bool).copy()
    elif nodata is not None:
        x = arr if arr.ndim >= 3 else arr[..., None]
        hit = np.isnan(x) if (isinstance(nodata, float) and np.isnan(nodata)
                              and x.dtype.kind in 'fc') else x == nodata
        while hit.ndim > 2:
            hit = hit.all(-1)
        valid = ~hit
    elif nodata_fallback == 'zero_border':
        from mmringmoe.datasets.tiling import black_border_mask
        valid = ~black_border_mask(arr)
    else:
        valid = np.ones(arr.shape[:2], bool)
    bad = _nonfinite(arr if arr.ndim >= 3 else arr[..., None])
    if bad is not None:
        valid &= ~bad
    return valid


def _gdal_dtype(arr: np.ndarray) -> str:
    if arr.dtype == np.bool_:
        return 'uint8'
    if arr.dtype == np.complex128:
        return 'complex128'
    if arr.dtype == np.int8:
        return 'int8'
    return str(arr.dtype)


def write_raster(path: str,
                 img: np.ndarray,
                 overwrite: bool = False,
                 crs=None,
                 transform=None,
                 nodata=None,
                 compress: Optional[str] = 'deflate',
                 tiled: Optional[bool] = None,
                 colormap: Optional[dict] = None,
                 band_descriptions: Optional[Sequence[str]] = None,
                 complex_int16: bool = False,
                 gcps=None,
                 gcp_crs=None,
                 rpcs=None):
    """Write ``(H, W[, C])`` so that :func:`read_raster` returns it unchanged.

    TIFF through rasterio as a GeoTIFF carrying ``crs`` (WKT / EPSG string /
    rasterio CRS), ``transform`` (6-tuple or ``Affine``) and ``nodata``, the
    ground control points ``gcps`` (rasterio ``GroundControlPoint`` or
    ``(row, col, x, y[, z])`` tuples, as :class:`GeoMeta` holds them) with
    their CRS ``gcp_crs``, and ``rpcs`` (rasterio ``RPC`` or its dict), all
    on the pixel grid of ``img`` (see :func:`write_georef`),
    compressed (``compress``, lossless) and tiled for images of 512 px or more;
    ``(H, W, P, 2)`` int16 pairs (or ``complex_int16=True`` with complex
    input) as CInt16, the way GF-3 L1A stores complex SAR. ``.npy`` as is;
    other extensions through Pillow (1/3/4-band 8-bit only, no georeferencing).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: georeferencing or nodata asked for a format that cannot
            hold it.
    """
    path = str(path)
    if not overwrite and osp.exists(path):
        raise FileExistsError(f'Refusing to overwrite existing file {path!r}')
    ext = osp.splitext(path)[1].lower()
    if ext not in _TIFF_EXTS:
        if crs is not None or transform is not None or nodata is not None \
                or gcps or rpcs is not None:
            raise ValueError(f'{path!r}: only GeoTIFF (.tif) can carry a CRS,'
                             ' transform, GCPs, RPCs or nodata value.')
        if ext == '.npy':
            np.save(path, img)
            return
        from PIL import Image
        Image.fromarray(img[..., 0] if img.ndim == 3 and img.shape[2] == 1
                        else img).save(path)
        return
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.transform import Affine
    if transform is None:
        check_gcps_writable(path, gcps, gcp_crs)
    arr = np.asarray(img)
    dtype = _gdal_dtype(arr)
    if arr.ndim == 4 and arr.shape[-1] == 2:  # (H, W, P, 2) int pairs
        arr = arr[..., 0].astype(np.float32) + 1j * arr[..., 1].astype(
            np.float32)
        complex_int16 = True
    if arr.ndim == 2:
        arr = arr[..., None]
    if complex_int16:
        dtype = 'complex_int16'
        arr = arr.astype(np.complex64)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    h, w, c = arr.shape
    if tiled is None:
        tiled = h >= 512 and w >= 512
    profile = dict(driver='GTiff', height=h, width=w, count=c, dtype=dtype)
    if compress and arr.dtype.kind != 'c':
        profile['compress'] = compress
        if compress in ('deflate', 'lzw', 'zstd') and arr.dtype.kind in 'iuf':
            profile['predictor'] = 3 if arr.dtype.kind == 'f' else 2
    if tiled:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if h * w * c * arr.dtype.itemsize > 3.5 * 2**30:
        profile['BIGTIFF'] = 'YES'
    if crs is not None:
        profile['crs'] = crs
    if transform is not None:
        profile['transform'] = (transform if isinstance(transform, Affine)
                                else Affine(*transform[:6]))
    if nodata is not None:
        profile['nodata'] = nodata
    # GDAL writes 4-band uint8 as RGBA by default: the 4th band (an MS NIR)
    # would come back as an alpha mask; only 3-band uint8 is RGB
    profile['photometric'] = ('RGB' if c == 3 and arr.dtype == np.uint8
                              else 'MINISBLACK')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NotGeoreferencedWarning)
        with rasterio.open(path, 'w', **profile) as dst:
            dst.write(np.moveaxis(arr, 2, 0))
            write_georef(dst, transform, gcps, gcp_crs, rpcs)
            if colormap is not None:
                dst.write_colormap(1, colormap)
            if band_descriptions:
                for i, d in enumerate(band_descriptions, start=1):
                    dst.set_band_description(i, str(d))


def check_gcps_writable(path, gcps, gcp_crs):
    """Refuse, before anything is written to ``path``, GCPs that have no
    CRS: rasterio writes GCPs only with one, and dropping them would lose the
    georeferencing silently.

    Raises:
        ValueError: one line naming ``path`` and the GCP count.
    """
    if gcps and gcp_crs is None:
        raise ValueError(f'{path!r}: the input has {len(gcps)} GCPs but no '
                         'GCP CRS; rasterio writes GCPs only with their CRS '
                         '(assign one to the input, e.g. gdal_edit.py -a_srs)')


def write_georef(dst, transform=None, gcps=None, gcp_crs=None, rpcs=None):
    """Store GCPs and RPCs in ``dst``, a GeoTIFF opened for writing by
    rasterio (``dst.gcps = (gcps, crs)``, ``dst.rpcs = rpcs``; GDAL writes the
    GCPs as GeoTIFF tie points and the RPCs as the RPC coefficient tag).

    A GeoTIFF holds either one geotransform or GCPs: GDAL's GTiff driver
    replaces the geotransform and CRS by the GCPs when both are set. An input
    with both (possible only outside GeoTIFF, e.g. a ``.aux.xml``) keeps its
    geotransform and CRS, and the GCPs are left out with a warning naming
    the file. RPCs are kept alongside either.

    Raises:
        ValueError: GCPs without a CRS (:func:`check_gcps_writable`).
    """
    if gcps:
        if transform is not None:
            warnings.warn(
                f'{dst.name!r}: the input has both a geotransform and '
                f'{len(gcps)} GCPs; a GeoTIFF holds one of them, so the '
                'geotransform and CRS are written and the GCPs left out',
                GeoreferencingWarning, stacklevel=3)
        else:
            from rasterio.crs import CRS
            check_gcps_writable(dst.name, gcps, gcp_crs)
            dst.gcps = ([_as_gcp(g) for g in gcps],
                        CRS.from_user_input(gcp_crs))
    if rpcs is not None:
        dst.rpcs = _as_rpc(rpcs)


def write_complex_int16_tiff(path: str, pairs: np.ndarray,
                             overwrite: bool = False, **kwargs):
    """Write ``(H, W, P, 2)`` int16 (real, imaginary) pairs as a CInt16
    GeoTIFF (GF-3 L1A style); :func:`read_raster` returns the pairs
    unchanged. ``kwargs`` go to :func:`write_raster` (crs, transform, ...)."""
    pairs = np.asarray(pairs)
    if pairs.ndim != 4 or pairs.shape[-1] != 2:
        raise ValueError(f'expected (H, W, P, 2) int16 pairs, got {pairs.shape}')
    if pairs.dtype != np.int16:
        raise ValueError(f'expected int16 pairs, got {pairs.dtype}')
    write_raster(path, pairs, overwrite=overwrite, **kwargs)


def collapse_identical_bands(arr: np.ndarray, path: str) -> np.ndarray:
    """``(H, W, C)`` whose C bands are all equal (a grey image stored as RGB,
    as some single-channel SAR amplitude archives ship) -> ``(H, W, 1)``,
    losslessly; any band that differs from the first is refused.

    Raises:
        ValueError: naming the file, the band count and the first differing
            band, when the bands are not identical.
    """
    if arr.ndim != 3 or arr.shape[2] == 1:
        return arr
    for b in range(1, arr.shape[2]):
        if not np.array_equal(arr[..., b], arr[..., 0]):
            raise ValueError(
                f'{path!r}: {arr.shape[2]} bands, expected 1; band {b + 1} '
                'differs from band 1, so they are not one grey band stored '
                'several times (collapse_identical_bands refuses it).')
    return np.ascontiguousarray(arr[..., :1])


def check_finite(arr: np.ndarray, path: str, modality=None):
    """Raise when ``arr`` holds NaN/Inf (for callers that must refuse them)."""
    if arr.dtype.kind in 'fc' and not np.isfinite(arr).all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise ValueError(f'{_describe(path, modality)} contains {n_nan} NaN '
                         f'and {n_inf} Inf values; fill or mask them before '
                         'training.')


def _set_image(results: dict, img: np.ndarray, modality, meta: GeoMeta):
    results['img'] = img
    results['img_shape'] = img.shape[:2]
    results['ori_shape'] = img.shape[:2]
    results['num_bands'] = img.shape[2]
    results['img_dtype'] = str(img.dtype)
    results['crs'] = meta.crs
    results['transform'] = meta.transform
    results['nodata'] = meta.nodata
    results['valid_mask'] = meta.valid_mask
    results['mask_source'] = meta.mask_source
    if modality is not None:
        results['modality'] = modality
    return results


def _check_some_valid(meta: GeoMeta, where: str, allow_empty: bool):
    if not allow_empty and not meta.valid_mask.any():
        raise ValueError(f'{where}: no valid pixel (every pixel is nodata '
                         f'by {meta.mask_source}).')


@TRANSFORMS.register_module()
class LoadRSImageFromFile(BaseTransform):
    """Load a remote sensing raster with any number of bands (rasterio).

    Every GDAL format (GeoTIFF compressed, tiled, BigTIFF, COG; PNG, JPEG) and
    ``.npy``. Bands stay in file order (no BGR swap; an alpha band becomes the
    mask) and the dtype is kept until normalisation.

    Required keys: ``img_path``. Added keys: ``img`` (H, W, C), ``img_shape``,
    ``ori_shape``, ``num_bands``, ``img_dtype``, ``crs`` (WKT or None),
    ``transform`` (6-tuple affine of the array or None), ``nodata``,
    ``valid_mask`` ((H, W) bool), ``mask_source`` and ``modality`` (when
    known).

    Args:
        modality (str, optional): Modality of the files; when None, taken from
            ``results['modality']`` if the dataset provides it.
        expected_channels (int, optional): Band count to enforce. Defaults to
            the modality's (opt 3, ms 4, sar_l2 1); None with no modality
            means any band count is accepted.
        to_float32 (bool): Cast to float32 after loading. Defaults to False.
        check_finite (bool): Refuse files with NaN/Inf instead of masking them.
            Defaults to False (masked, DESIGN.md section 9).
        nodata_fallback (str): ``'none'`` or ``'zero_border'`` for files that
            declare no nodata/mask/alpha. Defaults to ``'none'``.
        allow_empty (bool): accept a file with no valid pixel. Default False.
        npy_layout (str, optional): ``'hwc'`` / ``'chw'`` for 3-D ``.npy``.
        collapse_identical_bands (bool): for a 1-band modality, accept a file
            whose bands are all identical (grey stored as RGB) as its one
            band; differing bands are refused. ``compute_rs_stats.py
            --collapse-identical-bands`` reads the same way. Default False.
        key (str): Result key holding the path. Defaults to ``'img_path'``.
        backend_args (dict, optional): mmengine file backend arguments.

    Raises:
        ValueError: complex data (use :class:`LoadComplexSAR`), a band count
            other than expected, an ambiguous ``.npy``, no valid pixel.
    """

    def __init__(self,
                 modality: Optional[str] = None,
                 expected_channels: Optional[int] = None,
                 to_float32: bool = False,
                 check_finite: bool = False,
                 nodata_fallback: str = 'none',
                 allow_empty: bool = False,
                 npy_layout: Optional[str] = None,
                 collapse_identical_bands: bool = False,
                 key: str = 'img_path',
                 backend_args: Optional[dict] = None):
        if modality is not None and modality not in MODALITY_CHANNELS:
            raise ValueError(f'Unknown modality {modality!r}; expected one of '
                             f'{tuple(MODALITY_CHANNELS)}')
        if nodata_fallback not in NODATA_FALLBACKS:
            raise ValueError(f'nodata_fallback must be one of '
                             f'{NODATA_FALLBACKS}, got {nodata_fallback!r}')
        self.modality = modality
        self.expected_channels = expected_channels
        self.to_float32 = to_float32
        self.check_finite = check_finite
        self.nodata_fallback = nodata_fallback
        self.allow_empty = allow_empty
        self.npy_layout = npy_layout
        self.collapse_identical_bands = collapse_identical_bands
        self.key = key
        self.backend_args = backend_args

    def _expected(self, modality):
        if self.expected_channels is not None:
            return self.expected_channels
        return MODALITY_CHANNELS.get(modality)

    def transform(self, results: dict) -> dict:
        path = results[self.key]
        modality = self.modality or results.get('modality')
        expected = self._expected(modality)
        where = _describe(path, modality)
        if _is_npy(path) and self.backend_args is None and osp.isfile(path):
            head = np.load(path, mmap_mode='r', allow_pickle=False)
            if head.dtype.kind == 'c' or head.dtype.names is not None:
                raise ValueError(f'{where} holds complex values; load SAR-L1 '
                                 'with LoadComplexSAR instead.')
        img, meta = read_raster_with_meta(
            path, backend_args=self.backend_args,
            nodata_fallback=self.nodata_fallback,
            npy_layout=self.npy_layout, expected_bands=expected)
        if self.check_finite and meta.mask_source.endswith('+nonfinite'):
            raise ValueError(f'{where} contains NaN/Inf values; fill or mask '
                             'them, or load with check_finite=False to mask '
                             'them.')
        if img.ndim == 4 or img.dtype.kind == 'c':
            raise ValueError(f'{where} holds complex values; load SAR-L1 '
                             'with LoadComplexSAR instead.')
        if (self.collapse_identical_bands and expected == 1
                and img.shape[2] > 1):
            img = collapse_identical_bands(img, path)
        if expected is not None and img.shape[2] != expected:
            raise ValueError(
                f'{where}: expected {expected} bands, found {img.shape[2]} '
                f'(shape {img.shape}, dtype {img.dtype}).')
        _check_some_valid(meta, where, self.allow_empty)
        if self.to_float32:
            img = img.astype(np.float32)
        return _set_image(results, img, modality, meta)

    def __repr__(self):
        return (f'{self.__class__.__name__}(modality={self.modality!r}, '
                f'expected_channels={self.expected_channels}, '
                f'to_float32={self.to_float32}, '
                f'nodata_fallback={self.nodata_fallback!r})')


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
    """Load fully polarimetric SAR-L1 as 8 real channels (rasterio).

    Channel order: HH, HV, VH, VV, each real then imaginary. Accepted inputs:

    - complex rasters (GDAL CFloat32/CFloat64, complex ``.npy``) with 4
      polarisation bands;
    - complex int16 as GF-3 L1A stores it (GDAL CInt16), or ``(H, W, 4, 2)``
      int16 ``.npy`` pairs / numpy structured (re, im) records;
    - an 8-channel real array already in the order above (int16, uint16,
      float);
    - ``img_path`` a list of 4 single-polarisation files (HH, HV, VH, VV),
      each complex, complex int16, or 2-band (I, Q) int16. They must share
      size, CRS and transform.

    CInt16 keeps int16, complex64 becomes float32 (both exact), so the
    physics target (power) can be computed from the raw values. 8-bit data is
    refused: it has lost the SAR dynamic range. Adds the same georeferencing
    keys as :class:`LoadRSImageFromFile`.

    Args:
        to_float32 (bool): Cast to float32 after loading. Defaults to False.
        check_finite (bool): Refuse NaN/Inf instead of masking. Default False.
        nodata_fallback (str): ``'none'`` or ``'zero_border'``.
        allow_empty (bool): accept a file with no valid pixel. Default False.
        key (str): Result key with the path(s). Defaults to ``'img_path'``.
        backend_args (dict, optional): mmengine file backend arguments.
    """
    modality = 'sar_l1'
    num_channels = MODALITY_CHANNELS['sar_l1']

    def __init__(self,
                 to_float32: bool = False,
                 check_finite: bool = False,
                 nodata_fallback: str = 'none',
                 allow_empty: bool = False,
                 key: str = 'img_path',
                 backend_args: Optional[dict] = None):
        self.to_float32 = to_float32
        self.check_finite = check_finite
        self.nodata_fallback = nodata_fallback
        self.allow_empty = allow_empty
        self.key = key
        self.backend_args = backend_args

    def _load_one(self, path: str, num_pols: int):
        arr, meta = read_raster_with_meta(
            path, backend_args=self.backend_args,
            nodata_fallback=self.nodata_fallback,
            expected_bands=lambda a: num_pols if (
                a.dtype.kind == 'c' or a.dtype.names is not None)
            else 2 * num_pols)
        where = _describe(path, self.modality)
        if self.check_finite and meta.mask_source.endswith('+nonfinite'):
            raise ValueError(f'{where} contains NaN/Inf values; fill or mask '
                             'them, or load with check_finite=False.')
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
        return chans, meta

    def transform(self, results: dict) -> dict:
        paths = results[self.key]
        if isinstance(paths, (list, tuple)):
            if len(paths) != len(SAR_L1_POLARISATIONS):
                raise ValueError(
                    f'SAR-L1 sample {paths!r}: expected '
                    f'{len(SAR_L1_POLARISATIONS)} files '
                    f'{SAR_L1_POLARISATIONS}, got {len(paths)}.')
            loaded = [self._load_one(p, 1) for p in paths]
            parts = [p for p, _ in loaded]
            metas = [m for _, m in loaded]
            shapes = {p.shape[:2] for p in parts}
            if len(shapes) != 1:
                raise ValueError(f'SAR-L1 polarisation files {paths!r} '
                                 f'differ in size: {sorted(shapes)}.')
            for m in metas[1:]:
                if (m.crs, m.transform) != (metas[0].crs, metas[0].transform):
                    raise ValueError(
                        f'SAR-L1 polarisation file {m.path!r} has CRS/transform'
                        f' {m.transform} but {metas[0].path!r} has '
                        f'{metas[0].transform}; they must be co-registered.')
            dtypes = {p.dtype for p in parts}
            img = np.concatenate(
                parts if len(dtypes) == 1 else
                [p.astype(np.float32) for p in parts], axis=2)
            mask = np.logical_and.reduce([m.valid_mask for m in metas])
            meta = metas[0]._replace(valid_mask=mask, path=str(paths))
        else:
            img, meta = self._load_one(paths, len(SAR_L1_POLARISATIONS))
        _check_some_valid(meta, _describe(paths, self.modality),
                          self.allow_empty)
        if self.to_float32:
            img = img.astype(np.float32)
        return _set_image(results, img, self.modality, meta)

    def __repr__(self):
        return f'{self.__class__.__name__}(to_float32={self.to_float32})'


def modality_channels(modality: str,
                      overrides: Optional[dict] = None) -> int:
    """Channels of ``modality``, honouring a user's ``in_channels`` dict."""
    if overrides and modality in overrides:
        return overrides[modality]
    return MODALITY_CHANNELS[modality]


__all__ = [
    'GeoreferencingWarning',
    'sample_kind', 'AmbiguousNpyLayout',
    'MODALITY_CHANNELS', 'SAR_L1_POLARISATIONS', 'SAR_L1_CHANNEL_NAMES',
    'GeoMeta', 'RasterInfo', 'raster_info', 'read_raster',
    'read_raster_with_meta', 'valid_mask_from', 'write_raster',
    'write_georef', 'check_gcps_writable', 'gcps_on_grid', 'rpcs_on_grid',
    'write_complex_int16_tiff', 'check_finite', 'complex_to_channels',
    'collapse_identical_bands',
    'LoadRSImageFromFile', 'LoadComplexSAR', 'modality_channels'
]
