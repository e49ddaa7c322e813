"""Sliding-window tiling of large rasters (paper Appendix B.1).

Windows come from the one grid module, :mod:`mmringmoe.datasets.windows`
(192 x 192 windows with stride 64 by default; the last row and column are
aligned to the scene border, so every pixel lies in some window). A file is
read window by window with rasterio, never as a whole scene.

A window is dropped when more than ``max_nodata`` (default 30 %) of its
pixels inside the scene are invalid. Validity follows
:mod:`mmringmoe.datasets.transforms.raster_io`: the file's mask band / alpha
band, its declared nodata value (whatever it is: 0, 255, 65535, -9999, NaN)
and NaN/Inf in float data. Only for a file that declares none of these, the
old zero-border heuristic is the fallback (``nodata_fallback='zero_border'``):
all-zero pixels connected to the scene's outer edge are the black frame of the
scene (``border_mode='any'`` counts every all-zero pixel). The edge
connectivity is computed over the whole scene in blocks with a union-find over
block borders (:func:`scene_zero_border`), so it too never holds the scene.

Tiles are written by :func:`write_tile` as GeoTIFFs carrying the source CRS,
their window's affine transform and the nodata value; a valid mask that the
nodata value alone cannot express (mask/alpha band, zero border, padding of a
file without nodata) is stored as the tile's internal GDAL mask band, so
:func:`~mmringmoe.datasets.transforms.raster_io.read_raster_with_meta` returns
the same ``valid_mask`` from the tile as from the scene.
"""
from typing import Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from .windows import SceneTooSmallError, Window, window_grid, \
    window_transform

#: a tile with a larger fraction of invalid pixels is dropped (B.1 tiler)
MAX_NODATA = 0.3
BORDER_MODES = ('edge', 'any')
TILE_NODATA_FALLBACKS = ('none', 'zero_border')


class Tile(NamedTuple):
    """One kept window of a scene.

    Attributes:
        row (int): ``row_off`` of the window in the scene (pixels).
        col (int): ``col_off`` of the window in the scene (pixels).
        data (np.ndarray): ``(h, w, C)`` in the file's dtype (CInt16 SAR as
            ``(h, w, P, 2)`` int16 pairs); a padded window is filled with the
            nodata value (0 when none is declared).
        nodata_fraction (float): invalid pixels / window pixels inside the
            scene, in [0, 1] (padding is not counted).
        valid_mask (np.ndarray): ``(h, w)`` bool, True where ``data`` holds
            data (False on padding).
        window (Window): the window (``height``/``width`` the tile's size).
        crs (str | None): the scene's CRS as WKT.
        transform (tuple | None): affine 6-tuple of the tile (the scene's
            transform moved to the window's upper-left corner).
        nodata (float | None): the scene's declared nodata value.
        mask_source (str): what ``valid_mask`` came from (see
            :class:`~mmringmoe.datasets.transforms.raster_io.GeoMeta`).
        gcps, gcp_crs, rpcs: the scene's ground control points (with their
            CRS as WKT) and RPCs moved to the window's upper-left corner
            (:class:`~mmringmoe.datasets.transforms.raster_io.GeoMeta`), or
            None.
    """
    row: int
    col: int
    data: np.ndarray
    nodata_fraction: float
    valid_mask: np.ndarray
    window: Window
    crs: Optional[str] = None
    transform: Optional[Tuple[float, ...]] = None
    nodata: Optional[float] = None
    mask_source: str = 'none'
    gcps: Optional[tuple] = None
    gcp_crs: Optional[str] = None
    rpcs: Optional[object] = None


def black_border_mask(img: np.ndarray, mode: str = 'edge') -> np.ndarray:
    """Boolean ``(H, W)`` map of black-border pixels of an in-memory array.

    A pixel is black when it is 0 in every band. ``mode='edge'`` keeps only
    black pixels 4-connected to the array's outer edge (the frame of a
    scene), ``'any'`` every black pixel.

    Args:
        img (np.ndarray): ``(H, W)``, ``(H, W, C)`` or complex pairs
            ``(H, W, P, 2)``.
        mode (str): ``'edge'`` or ``'any'``.

    Returns:
        np.ndarray: ``(H, W)`` bool, True on the border.
    """
    zero = img == 0
    while zero.ndim > 2:
        zero = zero.all(-1)
    if mode == 'any':
        return zero
    if mode != 'edge':
        raise ValueError(f"border mode must be 'edge' or 'any', got {mode!r}")
    from scipy import ndimage
    labels, _ = ndimage.label(zero)
    edge = np.unique(np.concatenate(
        [labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge = edge[edge > 0]
    return np.isin(labels, edge)


# ------------------------------------------------------------ bit masks
class PackedMask:
    """A ``(height, width)`` bool map stored as bits (1/8 byte per pixel).

    ``window(row_off, col_off, h, w)`` unpacks one window (pixels outside the
    map are False).
    """

    def __init__(self, height: int, width: int):
        self.height, self.width = int(height), int(width)
        self.bits = np.zeros((self.height, (self.width + 7) // 8), np.uint8)

    def put(self, row_off: int, col_off: int, block: np.ndarray):
        """Store ``block`` at (``row_off``, ``col_off``); ``col_off`` must be
        a multiple of 8 and the block must end at a multiple of 8 or at the
        map's right edge."""
        if col_off % 8:
            raise ValueError(f'col_off {col_off} is not a multiple of 8')
        packed = np.packbits(np.asarray(block, bool), axis=1)
        c0 = col_off // 8
        self.bits[row_off:row_off + block.shape[0],
                  c0:c0 + packed.shape[1]] = packed

    def window(self, row_off: int, col_off: int, height: int,
               width: int) -> np.ndarray:
        out = np.zeros((height, width), bool)
        h = max(0, min(height, self.height - row_off))
        w = max(0, min(width, self.width - col_off))
        if h and w:
            c0, c1 = col_off // 8, (col_off + w + 7) // 8
            bits = np.unpackbits(self.bits[row_off:row_off + h, c0:c1],
                                 axis=1)
            s = col_off - 8 * c0
            out[:h, :w] = bits[:, s:s + w].astype(bool)
        return out


def _blocks(height: int, width: int, block: int):
    """Non-overlapping partition of a scene in ``block`` x ``block`` pieces
    (smaller at the right and bottom): ``(bi, bj, Window)``."""
    for bi, r in enumerate(range(0, height, block)):
        for bj, c in enumerate(range(0, width, block)):
            yield bi, bj, Window(r, c, min(block, height - r),
                                 min(block, width - c))


def scene_zero_border(path: str, mode: str = 'edge', block: int = 1024,
                      backend_args: Optional[dict] = None) -> PackedMask:
    """The zero-border fallback mask of a whole scene, read in blocks.

    Equal to :func:`black_border_mask` of the full array, but the scene is
    read ``block`` x ``block`` at a time: the all-zero map is kept as bits,
    each block's zero pixels are labelled (4-connectivity, as scipy's
    ``ndimage.label``), and labels touching a block edge are merged with the
    neighbour block's by a union-find; a component is border when it reaches
    the scene's outer edge. Memory: two bit maps (H x W / 4 bytes) plus one
    block.

    Args:
        path (str): raster file.
        mode (str): ``'edge'`` or ``'any'`` (see :func:`black_border_mask`).
        block (int): block size in pixels, a multiple of 8.

    Returns:
        PackedMask: True on the border.
    """
    from scipy import ndimage

    from .transforms.raster_io import raster_info, read_raster
    if mode not in BORDER_MODES:
        raise ValueError(f"border mode must be 'edge' or 'any', got {mode!r}")
    if block <= 0 or block % 8:
        raise ValueError(f'block must be a positive multiple of 8, got '
                         f'{block}')
    info = raster_info(path, backend_args)
    height, width = info.height, info.width
    zero = PackedMask(height, width)
    for _, _, win in _blocks(height, width, block):
        arr = read_raster(path, window=tuple(win), backend_args=backend_args)
        z = arr == 0
        while z.ndim > 2:
            z = z.all(-1)
        zero.put(win.row_off, win.col_off, z)
    if mode == 'any':
        return zero

    parent: List[int] = [0]  # node 0 stands for the scene's outer edge

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: int, b: int):
        ra, rb = find(a), find(b)
        if ra != rb:  # the smaller root wins, so the edge (0) stays a root
            parent[max(ra, rb)] = min(ra, rb)

    def union_pairs(a: np.ndarray, b: np.ndarray):
        both = (a >= 0) & (b >= 0)
        if both.any():
            for x, y in np.unique(np.stack([a[both], b[both]], 1), axis=0):
                union(int(x), int(y))

    luts, edges = {}, {}
    for bi, bj, win in _blocks(height, width, block):
        labels, n = ndimage.label(zero.window(*win))
        on_edge = np.unique(np.concatenate(
            [labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        on_edge = on_edge[on_edge > 0]
        lut = np.full(n + 1, -1, np.int64)
        lut[on_edge] = np.arange(len(parent), len(parent) + on_edge.size)
        parent.extend(range(len(parent), len(parent) + on_edge.size))
        top, bottom = lut[labels[0]], lut[labels[-1]]
        left, right = lut[labels[:, 0]], lut[labels[:, -1]]
        r, c, h, w = win
        for ids, outer in ((top, r == 0), (bottom, r + h == height),
                           (left, c == 0), (right, c + w == width)):
            if outer:
                for g in np.unique(ids[ids >= 0]):
                    union(0, int(g))
        if bi > 0:
            union_pairs(edges[bi - 1, bj][1], top)
        if bj > 0:
            union_pairs(edges[bi, bj - 1][3], left)
        edges[bi, bj] = (top, bottom, left, right)
        luts[bi, bj] = lut

    border = PackedMask(height, width)
    for bi, bj, win in _blocks(height, width, block):
        lut = luts[bi, bj]
        if not (lut >= 0).any():
            continue
        labels, _ = ndimage.label(zero.window(*win))
        is_border = np.array([g >= 0 and find(int(g)) == 0 for g in lut])
        border.put(win.row_off, win.col_off, is_border[labels])
    return border


# -------------------------------------------------------- tiling
def _pad(arr: np.ndarray, valid: np.ndarray, height: int, width: int,
         fill) -> Tuple[np.ndarray, np.ndarray]:
    """Extend ``arr``/``valid`` to ``height`` x ``width`` at the bottom and
    right with ``fill`` (invalid)."""
    h, w = valid.shape
    if (h, w) == (height, width):
        return arr, valid
    out = np.full((height, width) + arr.shape[2:], fill, arr.dtype)
    out[:h, :w] = arr
    mask = np.zeros((height, width), bool)
    mask[:h, :w] = valid
    return out, mask


def _fill_value(dtype: np.dtype, nodata):
    if nodata is None:
        return 0
    if isinstance(nodata, float) and np.isnan(nodata) and \
            np.dtype(dtype).kind not in 'fc':
        return 0
    return nodata


def _check_args(max_nodata, nodata_fallback, border_mode):
    if not 0 <= max_nodata <= 1:
        raise ValueError(f'max_nodata must be in [0, 1], got {max_nodata}')
    if nodata_fallback not in TILE_NODATA_FALLBACKS:
        raise ValueError(f'nodata_fallback must be one of '
                         f'{TILE_NODATA_FALLBACKS}, got {nodata_fallback!r}')
    if border_mode not in BORDER_MODES:
        raise ValueError(f'border_mode must be one of {BORDER_MODES}, got '
                         f'{border_mode!r}')


def tile_raster(img: np.ndarray,
                size=192,
                stride=64,
                max_nodata: float = MAX_NODATA,
                valid_mask: Optional[np.ndarray] = None,
                nodata=None,
                nodata_fallback: str = 'zero_border',
                border_mode: str = 'edge',
                small: str = 'error',
                transform=None,
                crs: Optional[str] = None) -> Tuple[List[Tile], int]:
    """Tile an in-memory ``(H, W, ...)`` array on the window grid.

    The valid mask is ``valid_mask`` if given, else derived from ``nodata``
    (:func:`~mmringmoe.datasets.transforms.raster_io.valid_mask_from`: every
    band equal to it, NaN matching NaN), else, with
    ``nodata_fallback='zero_border'``, the complement of
    :func:`black_border_mask` (``border_mode``); NaN/Inf are always invalid.
    Same rules as :func:`iter_raster_tiles` for files.

    Args:
        img (np.ndarray): ``(H, W)``, ``(H, W, C)`` or ``(H, W, P, 2)``.
        size, stride (int | (h, w)): window size and stride (pixels).
        max_nodata (float): drop a window whose invalid fraction (inside the
            scene) exceeds this, in [0, 1].
        small (str): ``'error'`` or ``'pad'`` for a scene smaller than one
            window (:func:`~mmringmoe.datasets.windows.window_grid`).
        transform, crs: the array's georeferencing; each tile gets its
            window's transform.

    Returns:
        tuple: ``(kept tiles, number of windows dropped)``.

    Raises:
        SceneTooSmallError: the scene is smaller than one window and
            ``small='error'``.
    """
    from .transforms.raster_io import valid_mask_from
    _check_args(max_nodata, nodata_fallback, border_mode)
    if valid_mask is not None:
        valid = valid_mask_from(img, mask=valid_mask)
        source = 'mask_band'
    elif nodata is not None:
        valid = valid_mask_from(img, nodata=nodata)
        source = 'nodata'
    elif nodata_fallback == 'zero_border':
        valid = valid_mask_from(img) & ~black_border_mask(img, border_mode)
        source = 'zero_border'
    else:
        valid = valid_mask_from(img)
        source = 'none'
    height, width = img.shape[:2]
    kept, dropped = [], 0
    for win in window_grid(height, width, size, stride, small):
        v = valid[win.slices]
        frac = 1.0 - float(v.mean())
        if frac > max_nodata or not v.any():  # never a pure-nodata tile
            dropped += 1
            continue
        data, v = _pad(img[win.slices], v, win.height, win.width,
                       _fill_value(img.dtype, nodata))
        kept.append(Tile(win.row_off, win.col_off, data, frac, v, win, crs,
                         window_transform(transform, win.row_off,
                                          win.col_off), nodata, source))
    return kept, dropped


def iter_raster_tiles(path: str,
                      size=192,
                      stride=64,
                      max_nodata: float = MAX_NODATA,
                      small: str = 'error',
                      nodata_fallback: str = 'zero_border',
                      border_mode: str = 'edge',
                      report: Optional[dict] = None,
                      block: int = 1024,
                      backend_args: Optional[dict] = None,
                      expected_bands: Optional[int] = None
                      ) -> Iterator[Tile]:
    """Kept tiles of a raster file, read window by window (rasterio).

    Peak memory is one window (plus, for the zero-border fallback, a bit map
    of the scene), whatever the scene size.

    Args:
        path (str): any GDAL raster (or ``.npy``, which numpy loads whole).
        size, stride (int | (h, w)): window size and stride in pixels.
        max_nodata (float): drop a window whose invalid fraction inside the
            scene exceeds this (default 0.3, the B.1 tiler's 30 %).
        small (str): ``'error'`` (raise :class:`SceneTooSmallError` naming
            both sizes) or ``'pad'`` (one window per short axis, filled with
            the nodata value, or 0 marked invalid, past the scene).
        nodata_fallback (str): ``'zero_border'`` (default) or ``'none'``;
            used only when the file declares no nodata, mask or alpha band.
        border_mode (str): ``'edge'`` or ``'any'`` (zero-border fallback).
        report (dict, optional): filled with ``height``, ``width``,
            ``windows``, ``kept``, ``dropped`` and ``mask_source``.
        block (int): block size of the zero-border pass.
        expected_bands (int, optional): the band count the tiles must have;
            a band GDAL declares alpha is then kept as data when the file
            has exactly this many bands (4-band uint8 written with GDAL's
            defaults), and a file of another count is refused.

    Yields:
        Tile: kept windows, row-major.

    Raises:
        SceneTooSmallError: see ``small`` (the message names the file).
    """
    from .transforms.raster_io import raster_info, read_raster_with_meta
    _check_args(max_nodata, nodata_fallback, border_mode)
    info = raster_info(path, backend_args)
    height, width = info.height, info.width
    try:
        windows = window_grid(height, width, size, stride, small)
    except SceneTooSmallError as err:
        raise SceneTooSmallError(f'{path}: {err}') from None
    declared = info.nodata is not None or info.has_mask
    border = None
    if not declared and nodata_fallback == 'zero_border':
        border = scene_zero_border(path, border_mode, block, backend_args)
    report = {} if report is None else report
    report.update(height=height, width=width, windows=len(windows), kept=0,
                  dropped=0, mask_source=None)
    for win in windows:
        h = min(win.height, height - win.row_off)
        w = min(win.width, width - win.col_off)
        arr, meta = read_raster_with_meta(
            path, window=(win.row_off, win.col_off, h, w),
            backend_args=backend_args, expected_bands=expected_bands)
        if expected_bands is not None and arr.shape[2] != expected_bands:
            raise ValueError(f'{path!r}: {arr.shape[2]} bands, expected '
                             f'{expected_bands}.')
        valid, source = meta.valid_mask, meta.mask_source
        if border is not None:
            valid = valid & ~border.window(win.row_off, win.col_off, h, w)
            source = source.replace('none', 'zero_border')
        report['mask_source'] = source
        frac = 1.0 - float(valid.mean())
        if frac > max_nodata or not valid.any():  # never a pure-nodata tile
            report['dropped'] += 1
            continue
        arr, valid = _pad(arr, valid, win.height, win.width,
                          _fill_value(arr.dtype, meta.nodata))
        report['kept'] += 1
        yield Tile(win.row_off, win.col_off, arr, frac, valid, win, meta.crs,
                   meta.transform, meta.nodata, source, meta.gcps,
                   meta.gcp_crs, meta.rpcs)


def write_tile(path: str, tile: Tile, overwrite: bool = False,
               compress: Optional[str] = 'deflate'):
    """Write ``tile`` as a GeoTIFF with its CRS, transform, GCPs, RPCs and
    nodata value.

    The tile's ``valid_mask`` is kept exactly: where the nodata value (and
    NaN) already express it nothing else is written; otherwise the mask is
    stored as the GeoTIFF's internal GDAL mask band (``GDAL_TIFF_INTERNAL_
    MASK``). In float tiles, invalid pixels hold the nodata value (NaN when
    none is declared), since the reader returns NaN/Inf as 0; integer and
    complex values are written as read.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    import rasterio

    from .transforms.raster_io import valid_mask_from, write_raster
    data, valid, nodata = tile.data, tile.valid_mask, tile.nodata
    if data.dtype.kind == 'f' and not valid.all():
        data = data.copy()
        data[~valid] = np.nan if nodata is None else nodata
    write_raster(path, data, overwrite=overwrite, crs=tile.crs,
                 transform=tile.transform, nodata=nodata, compress=compress,
                 gcps=tile.gcps, gcp_crs=tile.gcp_crs, rpcs=tile.rpcs)
    pairs = data.ndim == 4
    implied = valid_mask_from(
        data if not pairs else data.reshape(*data.shape[:2], -1),
        nodata=nodata)
    if not np.array_equal(implied, valid):
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
            with rasterio.open(path, 'r+') as dst:
                dst.write_mask(valid.astype(np.uint8) * 255)


def tile_name(stem: str, tile: Tile, ext: str = '.tif') -> str:
    """``<stem>_r<row_off>_c<col_off>.tif``."""
    return f'{stem}_r{tile.row}_c{tile.col}{ext}'


def iter_tiles(img: np.ndarray, **kwargs) -> Iterator[Tile]:
    """Generator over :func:`tile_raster`'s kept tiles."""
    yield from tile_raster(img, **kwargs)[0]


__all__ = ['Tile', 'MAX_NODATA', 'black_border_mask', 'PackedMask',
           'scene_zero_border', 'tile_raster', 'iter_raster_tiles',
           'write_tile', 'tile_name', 'iter_tiles', 'SceneTooSmallError']
