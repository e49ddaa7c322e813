"""Scenes read window by window: one raster, a modality dict or a date pair.

A :class:`SceneSource` is one raster (a file read with rasterio on demand, or
an in-memory array with its georeferencing, :class:`RasterArray`). A
:class:`Scene` is the set of rasters one model input needs: ``{'img': src}``
for a single-modality model, ``{'opt': src, 'sar_l2': src}`` for the optical
+ SAR-L2 fusion models, ``{'date1': src, 'date2': src}`` for change
detection. The rasters of a scene must lie on one pixel grid (same size, CRS
and transform); otherwise :func:`build_scene` raises a ``ValueError`` whose
one line names the two files and what differs.
"""
import os
import os.path as osp
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from mmringmoe.datasets.transforms.raster_io import (AmbiguousNpyLayout,
                                                     _as_gcp, _as_rpc,
                                                     gcps_on_grid,
                                                     raster_info,
                                                     rpcs_on_grid,
                                                     read_raster_with_meta,
                                                     valid_mask_from)


class RasterArray(NamedTuple):
    """An in-memory scene: ``array`` ``(H, W[, C])`` = (rows, cols, bands),
    bands last, with optional ``crs`` (WKT / ``'EPSG:4326'``),
    ``transform`` (6-tuple, rasterio order), ``nodata`` and ``valid_mask``
    ``(H, W)`` bool (default: from ``nodata`` and NaN/Inf,
    :func:`valid_mask_from`), and optional ``gcps`` / ``gcp_crs`` / ``rpcs``
    (as :class:`~mmringmoe.datasets.transforms.raster_io.GeoMeta` holds
    them), copied to the outputs.

    rasterio's ``ds.read()`` gives ``(bands, rows, cols)``: pass
    ``arr.transpose(1, 2, 0)`` (an array whose first axis has the model's
    band count and whose last does not is refused with that hint)."""
    array: np.ndarray
    transform: Optional[Tuple[float, ...]] = None
    crs: Optional[str] = None
    nodata: Optional[float] = None
    valid_mask: Optional[np.ndarray] = None
    name: str = '<array>'
    gcps: Optional[tuple] = None
    gcp_crs: Optional[str] = None
    rpcs: Optional[object] = None


def _crs_wkt(crs) -> Optional[str]:
    if crs is None:
        return None
    from rasterio.crs import CRS
    return CRS.from_user_input(crs).to_wkt()


class SceneSource:
    """One raster of a scene, read window by window.

    Attributes: ``name`` (path or label), ``height``, ``width``, ``count``
    (data bands: a band flagged alpha is not counted), ``dtype``, ``crs``
    (WKT or None), ``transform`` (6-tuple or None), ``nodata``, ``gcps``,
    ``gcp_crs`` (WKT), ``rpcs`` (rasterio ``RPC``; each None when absent),
    ``alpha``
    (1-based index of a band flagged alpha, else None), ``file_count``
    (bands in the file, alpha included).
    """

    def __init__(self, source):
        self.alpha, self.expected_bands = None, None
        #: 1-based file band indexes read, in this order (None: every data
        #: band), set by :meth:`select_bands`
        self.bands: Optional[Tuple[int, ...]] = None
        self._has_mask = False
        self._given_mask = None
        if isinstance(source, RasterArray):
            arr = np.asarray(source.array)
            if arr.ndim == 2:
                arr = arr[..., None]
            if arr.ndim not in (3, 4):
                raise ValueError(f'{source.name}: expected an (H, W[, C]) '
                                 f'array, got shape {arr.shape}')
            self.path = None
            self.name = source.name
            self._arr = arr
            self._valid = valid_mask_from(arr, source.nodata,
                                          source.valid_mask)
            self._given_mask = source.valid_mask
            self.height, self.width = arr.shape[:2]
            self.count = arr.shape[2]
            self.dtype = str(arr.dtype)
            self.crs = _crs_wkt(source.crs)
            self.transform = None if source.transform is None else tuple(
                float(v) for v in tuple(source.transform)[:6])
            self.nodata = source.nodata
            self.gcps = tuple(source.gcps) if source.gcps else None
            self.gcp_crs = _crs_wkt(source.gcp_crs) if self.gcps else None
            self.rpcs = _as_rpc(source.rpcs)
        else:
            path = os.fspath(source)
            if osp.isdir(path):
                raise ValueError(
                    f'input {path} is a folder; a folder of frames is an '
                    'input for tracking configs only: give a raster file')
            try:
                info = raster_info(path)
            except AmbiguousNpyLayout as err:  # its npy_layout= is no option
                raise ValueError(                # of the inferencer
                    f'{err.path!r}: array of shape {err.shape} is ambiguous '
                    '(bands first or last?); save it as (H, W, C), bands '
                    'last, or pass it in memory as RasterArray(array)') \
                    from err
            self.path = self.name = path
            self._arr = None
            self.height, self.width = info.height, info.width
            self.count, self.dtype = info.count, info.dtype
            self.crs, self.transform = info.crs, info.transform
            self.nodata = info.nodata
            self.gcps, self.gcp_crs = info.gcps, info.gcp_crs
            self.rpcs = info.rpcs
            self._has_mask = info.has_mask
            if info.has_mask and info.driver != 'npy':
                import rasterio
                from mmringmoe.datasets.transforms.raster_io import \
                    _alpha_index
                with rasterio.open(path) as ds:
                    self.alpha = _alpha_index(ds)
        self.file_count = self.count + (self.alpha is not None)
        #: what decoded the pixels (None: read window by window with GDAL)
        self.decoded_by: Optional[str] = None

    def select_bands(self, bands: Sequence[int]):
        """Read only the 1-based file band indexes ``bands``, in this order
        (GDAL's ``-b`` convention, e.g. ``(4, 3, 2)`` for the R, G, B of a
        Sentinel-2 GeoTIFF), window by window (rasterio ``indexes``).
        Afterwards ``count`` is ``len(bands)`` and every check, the decoded
        path and the quick look see the selected bands only. A band flagged
        alpha is data when selected, or when it holds values other than
        transparency 0 / maximum (then no band masks the selected ones);
        otherwise, unselected, it stays the mask. The
        valid mask is GDAL's per-band masks of the selected bands only
        (:func:`read_raster_with_meta` ``indexes``): a nodata value in an
        unselected band masks nothing. For an in-memory array the channels
        are picked; its valid mask (given, else its nodata over the
        selected channels) follows the same rule.

        Raises:
            ValueError: one line: an index that is no integer, < 1, > the
                file's band count or repeated; a multi-page TIFF.
        """
        from mmringmoe.datasets.transforms.raster_io import \
            check_band_indexes
        if self.bands is not None or self.decoded_by is not None:
            raise ValueError(f'{self.name!r}: bands already selected or '
                             'decoded')
        if self._arr is not None:
            idx = check_band_indexes(bands, self._arr.shape[2], self.name)
            self._arr = np.ascontiguousarray(
                self._arr[:, :, [i - 1 for i in idx]])
            self._valid = valid_mask_from(self._arr, self.nodata,
                                          self._given_mask)
            self.bands, self.count = idx, len(idx)
            self.file_count = self.count
            return
        import rasterio
        with rasterio.open(self.path) as ds:
            if ds.subdatasets and ds.driver == 'GTiff':
                raise ValueError(
                    f'{self.name!r}: band selection is not supported for a '
                    'multi-page TIFF (one page per band); store the bands in '
                    'one image')
            idx = check_band_indexes(bands, ds.count, self.name)
            self.dtype = ds.dtypes[idx[0] - 1]
        if self.alpha is not None and (self.alpha in idx or
                                       self.alpha_data_value() is not None):
            # selected, or holding values other than transparency 0 /
            # maximum (e.g. the NIR of a B, G, R, NIR file GDAL flags alpha
            # by default): data, not the mask (read_raster_with_meta's rule
            # when expected_bands counts every band of the file)
            self.alpha = None
            self.expected_bands = self.file_count
        self.bands, self.count = idx, len(idx)
        self.file_count = self.count + (self.alpha is not None)

    def read_alpha_as_data(self):
        """Read the band flagged alpha as data (the rule of
        :func:`read_raster_with_meta` when the expected band count includes
        it: GDAL flags the 4th band of every 4-band uint8 GeoTIFF written
        with its defaults as alpha, e.g. the NIR of a B, G, R, NIR file).
        With :meth:`select_bands` the selection alone says what is data."""
        if self.alpha is not None and self.bands is None:
            self.expected_bands = self.count = self.file_count
            self.alpha = None

    def alpha_data_value(self):
        """A value of the alpha band other than 0 and the dtype's maximum
        (so the band is data, not transparency), or None. Read block by
        block (bounded memory)."""
        if self.alpha is None:
            return None
        import rasterio
        with rasterio.open(self.path) as ds:
            top = (np.iinfo(ds.dtypes[self.alpha - 1]).max
                   if np.dtype(ds.dtypes[self.alpha - 1]).kind in 'iu'
                   else 1.0)
            for _, win in ds.block_windows(self.alpha):
                a = ds.read(self.alpha, window=win)
                odd = (a != 0) & (a != top)
                if odd.any():
                    return a[odd][0].item()
        return None

    def use_decoded(self, arr: np.ndarray, decoder: str):
        """Serve this file's windows from ``arr``, the whole image decoded
        by ``decoder`` (the model's own loader, :mod:`.decoding`), instead
        of GDAL window reads; CRS, transform, nodata and the valid mask stay
        GDAL's (the mask is read once, whole, when the file declares nodata
        or a mask; otherwise every pixel is valid, as GDAL says).

        Memory: ``arr`` is held for the scene's lifetime (``H * W * C``
        bytes for 8-bit data), plus GDAL's whole-image read while the mask
        is taken.

        Raises:
            ValueError: one line when ``arr`` and GDAL's header differ in
                size or band count.
        """
        arr = arr if arr.ndim == 3 else arr[..., None]
        if self.bands is not None and arr.shape[:2] == (self.height,
                                                        self.width):
            arr = self._select_decoded(arr, decoder)
        if arr.shape[:2] != (self.height, self.width) or \
                arr.shape[2] != self.count:
            raise ValueError(
                f'{self.name!r}: {decoder} decodes {arr.shape[0]} x '
                f'{arr.shape[1]} px with {arr.shape[2]} band(s) but GDAL '
                f'reads {self.height} x {self.width} px with {self.count}; '
                'its georeferencing would not fit the pixels the model sees')
        if self.nodata is not None or self._has_mask:
            _, meta = read_raster_with_meta(
                self.path, expected_bands=self.expected_bands,
                indexes=self.bands)
            valid = meta.valid_mask
        else:
            valid = np.ones(arr.shape[:2], bool)
        self._arr, self._valid = arr, valid
        self.decoded_by = decoder

    def _select_decoded(self, arr: np.ndarray, decoder: str) -> np.ndarray:
        """The selected bands of a whole decoded image in file order
        (before any BGR conversion): its channels are the file's bands, or
        its data bands when the decoder drops the band flagged alpha."""
        import rasterio
        from mmringmoe.datasets.transforms.raster_io import _alpha_index
        with rasterio.open(self.path) as ds:
            total, alpha = ds.count, _alpha_index(ds)
        if arr.shape[2] == total:
            files = list(range(1, total + 1))
        elif alpha is not None and arr.shape[2] == total - 1:
            files = [i for i in range(1, total + 1) if i != alpha]
        else:
            raise ValueError(
                f'{self.name!r}: {decoder} decodes {arr.shape[2]} band(s) '
                f'of the file\'s {total}, so bands {list(self.bands)} cannot '
                'be picked from its pixels exactly')
        missing = [i for i in self.bands if i not in files]
        if missing:
            raise ValueError(
                f'{self.name!r}: {decoder} drops band {missing[0]} (flagged '
                f'alpha), so bands {list(self.bands)} cannot be read as the '
                'model\'s loader reads them; select other bands')
        return np.ascontiguousarray(
            arr[:, :, [files.index(i) for i in self.bands]])

    def read(self, window) -> Tuple[np.ndarray, np.ndarray]:
        """``(array (h, w, C[, 2]), valid (h, w) bool)`` of a window
        ``(row_off, col_off, height, width)``; a window reaching past the
        scene is filled (nodata, else 0) and marked invalid there."""
        r, c, h, w = (int(v) for v in window)
        outside = r + h > self.height or c + w > self.width
        if self._arr is not None:
            arr = self._arr[r:r + h, c:c + w]
            valid = self._valid[r:r + h, c:c + w]
            if outside:
                full = np.zeros((h, w) + arr.shape[2:], arr.dtype)
                if self.nodata is not None:
                    full[...] = self.nodata
                full[:arr.shape[0], :arr.shape[1]] = arr
                fv = np.zeros((h, w), bool)
                fv[:arr.shape[0], :arr.shape[1]] = valid
                arr, valid = full, fv
            return np.array(arr), np.array(valid)
        arr, meta = read_raster_with_meta(self.path, window=(r, c, h, w),
                                          boundless=outside,
                                          expected_bands=self.expected_bands,
                                          indexes=self.bands)
        return arr, meta.valid_mask


def _grid_mismatch(a: SceneSource, b: SceneSource) -> Optional[str]:
    """What differs between the pixel grids of ``a`` and ``b`` (None if
    nothing)."""
    if (a.height, a.width) != (b.height, b.width):
        return (f'size {b.height} x {b.width} px (rows x cols) but '
                f'{a.name!r} is {a.height} x {a.width}')
    if (a.crs is None) != (b.crs is None):
        return (f'CRS {_short_crs(b.crs)} but {a.name!r} has CRS '
                f'{_short_crs(a.crs)}')
    if a.crs is not None:
        from rasterio.crs import CRS
        if CRS.from_wkt(a.crs) != CRS.from_wkt(b.crs):
            return (f'CRS {_short_crs(b.crs)} but {a.name!r} has CRS '
                    f'{_short_crs(a.crs)}')
    if (a.transform is None) != (b.transform is None) or (
            a.transform is not None and not np.allclose(
                a.transform, b.transform, rtol=1e-9,
                atol=1e-6 * max(abs(a.transform[0]), abs(a.transform[4]),
                                1e-12))):
        return (f'transform {b.transform} but {a.name!r} has transform '
                f'{a.transform}')
    if _gcp_key(a) != _gcp_key(b):
        return (f'{len(b.gcps or ())} GCPs ({_short_crs(b.gcp_crs)}) but '
                f'{a.name!r} has {len(a.gcps or ())} other GCPs '
                f'({_short_crs(a.gcp_crs)})')
    if (a.rpcs is None) != (b.rpcs is None) or (
            a.rpcs is not None and a.rpcs.to_dict() != b.rpcs.to_dict()):
        return (f'{"no " if b.rpcs is None else "other "}RPCs than '
                f'{a.name!r}')
    return None


def _gcp_key(s: SceneSource):
    """Comparable GCPs of a source: (row, col, x, y, z) tuples and CRS."""
    if not s.gcps:
        return None
    from rasterio.crs import CRS
    pts = tuple((g.row, g.col, g.x, g.y, g.z)
                for g in (_as_gcp(g) for g in s.gcps))
    return pts, None if s.gcp_crs is None else CRS.from_wkt(s.gcp_crs)


def _short_crs(wkt: Optional[str]) -> str:
    if wkt is None:
        return 'none'
    from rasterio.crs import CRS
    crs = CRS.from_wkt(wkt)
    epsg = crs.to_epsg()
    return f'EPSG:{epsg}' if epsg else (crs.to_string()[:60] or 'custom')


class Scene:
    """The rasters of one model input, on one pixel grid.

    Attributes: ``sources`` (dict role -> :class:`SceneSource`), ``height``,
    ``width``, ``crs``, ``transform``, ``nodata``, ``gcps``, ``gcp_crs``,
    ``rpcs`` (of the first raster), ``kind`` (``'single'``, ``'modalities'``
    or ``'pair'``).
    """

    def __init__(self, sources: Dict[str, SceneSource], kind: str,
                 what: str = 'scene'):
        self.sources, self.kind = sources, kind
        first = next(iter(sources.values()))
        for role, src in list(sources.items())[1:]:
            diff = _grid_mismatch(first, src)
            if diff is not None:
                raise ValueError(f'{what}: {role} {src.name!r} has {diff}; '
                                 'the rasters must share CRS, transform, '
                                 'GCPs, RPCs and size')
        self.height, self.width = first.height, first.width
        self.crs, self.transform = first.crs, first.transform
        self.nodata = first.nodata
        self.gcps, self.gcp_crs = first.gcps, first.gcp_crs
        self.rpcs = first.rpcs

    def georef(self, step=(1, 1)) -> dict:
        """Georeferencing of an output raster: ``dict(crs=, transform=,
        gcps=, gcp_crs=, rpcs=)``, the keywords of
        :class:`~mmringmoe.apis.writers.GeoTIFFBlockWriter` and
        :func:`~mmringmoe.datasets.transforms.raster_io.write_raster`.

        Args:
            step (tuple[int, int]): ``(rows, cols)`` of scene pixels per
                output pixel: ``(1, 1)`` for an output on the scene grid
                (everything copied unchanged), ``crop`` for the per-window
                class map of scene classification (transform scaled, GCP
                rows/cols divided, RPC line/sample offsets and scales
                rescaled: :func:`gcps_on_grid`, :func:`rpcs_on_grid`).
        """
        ky, kx = (int(v) for v in step)
        t = self.transform
        if t is not None and (ky, kx) != (1, 1):
            t = (t[0] * kx, t[1] * ky, t[2], t[3] * kx, t[4] * ky, t[5])
        same = (ky, kx) == (1, 1)
        return dict(
            crs=self.crs, transform=t,
            gcps=self.gcps if same else gcps_on_grid(self.gcps, 0, 0, ky, kx),
            gcp_crs=self.gcp_crs,
            rpcs=self.rpcs if same else rpcs_on_grid(self.rpcs, 0, 0, ky, kx))

    @property
    def paths(self):
        return [s.path for s in self.sources.values() if s.path is not None]

    @property
    def name(self) -> str:
        return ' + '.join(s.name for s in self.sources.values())

    def read(self, window) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
        """``({role: array}, valid)`` for a window; ``valid`` is the AND of
        every raster's valid mask (a pixel counts only where every input
        holds data)."""
        arrays, valid = {}, None
        for role, src in self.sources.items():
            arr, v = src.read(window)
            arrays[role] = arr
            valid = v if valid is None else valid & v
        return arrays, valid


def _source(x) -> SceneSource:
    if isinstance(x, SceneSource):
        return x
    if isinstance(x, np.ndarray):
        x = RasterArray(x)
    elif isinstance(x, dict) and 'array' in x:
        x = RasterArray(**x)
    return SceneSource(x)


def build_scene(inputs, bands: Optional[Sequence[int]] = None) -> Scene:
    """A :class:`Scene` from what a user passes to the inferencer.

    - a path (``str`` / ``PathLike``), an ``np.ndarray`` ``(H, W[, C])``, a
      :class:`RasterArray` or ``dict(array=..., transform=..., crs=...,
      nodata=...)``: one raster, role ``'img'``;
    - ``(date1, date2)``: a change detection pair, roles ``'date1'``,
      ``'date2'``;
    - ``{modality: raster}`` (e.g. ``{'opt': 'o.tif', 'sar_l2': 's.tif'}``):
      roles named by modality.

    ``bands``: 1-based file band indexes read, in this order (GDAL's
    ``-b``), for the one raster or both dates of a pair
    (:meth:`SceneSource.select_bands`); refused for a ``{modality:
    raster}`` dict.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: rasters of one scene on different pixel grids (the line
            names the two files and the CRS, transform or size that differs);
            bad ``bands`` (one line).
    """
    scene = _build_scene(inputs)
    if bands is not None:
        if scene.kind == 'modalities':
            raise ValueError(
                f'band selection {_as_list(bands)} is for one raster or a '
                'change detection pair, not a multi-modal input (optical + '
                'SAR-L2): write the optical bands the model reads to a new '
                'file')
        for src in scene.sources.values():
            src.select_bands(bands)
    return scene


def _as_list(bands):
    try:
        return list(bands)
    except TypeError:
        return [bands]


def _build_scene(inputs) -> Scene:
    if isinstance(inputs, (RasterArray, SceneSource)):
        return Scene({'img': _source(inputs)}, 'single')
    if isinstance(inputs, (tuple, list)):
        if len(inputs) != 2:
            raise ValueError(f'a change detection pair has 2 dates, got '
                             f'{len(inputs)} inputs')
        return Scene({'date1': _source(inputs[0]),
                      'date2': _source(inputs[1])}, 'pair',
                     'change detection pair')
    if isinstance(inputs, dict) and 'array' not in inputs:
        if not inputs:
            raise ValueError('empty {modality: raster} dict')
        return Scene({str(k): _source(v) for k, v in inputs.items()},
                     'modalities', 'multi-modal input')
    return Scene({'img': _source(inputs)}, 'single')


def same_file(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name one file (links, relative paths,
    case-insensitive file systems alike)."""
    if osp.exists(a) and osp.exists(b):
        return osp.samefile(a, b)
    return osp.realpath(a) == osp.realpath(b)


__all__ = ['RasterArray', 'SceneSource', 'Scene', 'build_scene', 'same_file']
