"""Outputs of scene inference: streamed GeoTIFFs and GeoJSON.

:class:`GeoTIFFBlockWriter` writes a tiled, compressed GeoTIFF one block of
rows at a time (rasterio windowed writes), into ``<out>.part`` renamed to
``out`` only when the scene is complete, so an interrupted run never leaves a
file that looks finished. :class:`ArrayBlockWriter` is the in-memory twin for
``out=None``. Neither writes over an existing file unless asked to.
"""
import functools
import json
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np


def check_output_path(out: str, inputs: Sequence[str],
                      overwrite: bool = False):
    """Refuse an output that would write over an input (always) or that
    exists (unless ``overwrite``), before any work is done.

    An input counts with every file GDAL reads for it (rasterio's
    ``files``: the sources of a VRT, ``.msk`` / ``.aux.xml`` / ``.ovr``
    sidecars), and the output with the ``<out>.part`` file it is written
    through first (then renamed): an input named like that would be
    truncated and removed.

    Raises:
        ValueError: ``out`` or ``<out>.part`` is (a file read for) an
            input, or ``out`` is a folder.
        FileExistsError: ``out`` exists and ``overwrite`` is False.
        FileNotFoundError: the folder of ``out`` does not exist.
    """
    from .scene import same_file
    if osp.isdir(out) or out.endswith(('/', os.sep)):
        raise ValueError(f'output {out!r} is a folder; give a file path')
    for path in inputs:
        if path is None:
            continue
        for read in _files_read_for(path):
            for mine in (out, out + '.part'):
                if same_file(mine, read):
                    what = f'the input {path!r}' if read == path else \
                        f'{read!r}, which the input {path!r} reads'
                    head = f'output {out!r} is' if mine == out else \
                        (f'output {out!r} is written through its temporary '
                         f'file {mine!r}, which is')
                    raise ValueError(f'{head} {what}; refusing to write '
                                     'over an input')
    if osp.exists(out) and not overwrite:
        raise FileExistsError(f'output {out!r} exists; pass --force '
                              '(overwrite=True) to replace it')
    parent = osp.dirname(osp.abspath(out))
    if not osp.isdir(parent):
        raise FileNotFoundError(f'output folder {parent!r} does not exist')


def _files_read_for(path: str) -> tuple:
    """``path`` and the other files GDAL reads for it (rasterio
    ``DatasetReader.files``); ``(path, )`` for a file GDAL does not open
    (``.npy``, a video)."""
    if not osp.isfile(path) or path.lower().endswith('.npy'):
        return (path, )
    st = os.stat(path)
    return (path, ) + _gdal_files(osp.realpath(path), st.st_mtime_ns,
                                  st.st_size)


@functools.lru_cache(maxsize=4096)
def _gdal_files(real: str, mtime_ns: int, size: int) -> tuple:
    # cached per file version: a tracking sequence checks its frames once
    # per output
    import rasterio
    from rasterio.errors import RasterioIOError
    try:
        with rasterio.open(real) as ds:
            files = list(ds.files)
    except RasterioIOError:
        return ()
    return tuple(f for f in files if osp.realpath(f) != real)


class ArrayBlockWriter:
    """Collects row blocks into an ``(count, H, W)`` array."""

    def __init__(self, height: int, width: int, count: int, dtype,
                 nodata=None, **_):
        fill = 0 if nodata is None else nodata
        self.array = np.full((count, height, width), fill, dtype=dtype)

    def write(self, row0: int, block: np.ndarray):
        self.array[:, row0:row0 + block.shape[1]] = block

    def close(self):
        pass

    def abort(self):
        pass


class GeoTIFFBlockWriter:
    """A tiled GeoTIFF written by blocks of full-width rows.

    Args:
        path (str): output file (``.tif``).
        height, width, count (int): size and band count.
        dtype: numpy dtype of the bands.
        crs, transform: georeferencing (WKT / 6-tuple) or None.
        gcps, gcp_crs: ground control points (rasterio
            ``GroundControlPoint`` or ``(row, col, x, y[, z])``) on this
            file's pixel grid and their CRS, or None (a GCP-georeferenced
            input has no transform; its GCPs apply to an output on its grid
            unchanged).
        rpcs: rational polynomial coefficients (rasterio ``RPC`` or its
            dict) on this file's pixel grid, or None.
        nodata: nodata value or None.
        colormap (dict, optional): ``{index: (r, g, b[, a])}`` colour table
            for band 1 (uint8 only).
        band_descriptions (list[str], optional): one per band.
        tags (dict, optional): dataset metadata (``gdalinfo`` shows them).
        overwrite (bool): replace an existing ``path``.
    """

    def __init__(self, path: str, height: int, width: int, count: int,
                 dtype, crs=None, transform=None, nodata=None,
                 colormap: Optional[dict] = None,
                 band_descriptions: Optional[Sequence[str]] = None,
                 tags: Optional[Dict[str, str]] = None,
                 overwrite: bool = False, gcps=None, gcp_crs=None,
                 rpcs=None):
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning
        from rasterio.transform import Affine

        from mmringmoe.datasets.transforms.raster_io import (
            check_gcps_writable, write_georef)
        if osp.exists(path) and not overwrite:
            raise FileExistsError(f'output {path!r} exists')
        if transform is None:
            check_gcps_writable(path, gcps, gcp_crs)
        self.path, self.tmp = path, path + '.part'
        profile = dict(driver='GTiff', height=height, width=width,
                       count=count, dtype=np.dtype(dtype).name,
                       compress='deflate', tiled=True, blockxsize=256,
                       blockysize=256, BIGTIFF='IF_SAFER')
        if np.dtype(dtype).kind in 'iu':
            profile['predictor'] = 2
        if crs is not None:
            profile['crs'] = crs
        if transform is not None:
            profile['transform'] = Affine(*tuple(transform)[:6])
        if nodata is not None:
            profile['nodata'] = nodata
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', NotGeoreferencedWarning)
            self.dst = rasterio.open(self.tmp, 'w', **profile)
        write_georef(self.dst, transform, gcps, gcp_crs, rpcs)
        if colormap is not None:
            self.dst.write_colormap(1, colormap)
        for i, d in enumerate(band_descriptions or (), start=1):
            self.dst.set_band_description(i, str(d))
        if tags:
            self.dst.update_tags(**{k: str(v) for k, v in tags.items()})
        self.width = width

    def write(self, row0: int, block: np.ndarray):
        """``block`` ``(count, n, W)`` for scene rows ``row0 .. row0+n``."""
        from rasterio.windows import Window
        self.dst.write(block, window=Window(0, row0, self.width,
                                            block.shape[1]))

    def close(self):
        self.dst.close()
        os.replace(self.tmp, self.path)

    def abort(self):
        try:
            self.dst.close()
        finally:
            if osp.exists(self.tmp):
                os.remove(self.tmp)


def pixel_to_map(transform, cols: np.ndarray, rows: np.ndarray):
    """Map coordinates of pixel-corner coordinates (col, row) through an
    affine 6-tuple (rasterio order): ``x = a col + b row + c``,
    ``y = d col + e row + f``; without a transform the pixel coordinates are
    returned."""
    cols, rows = np.asarray(cols, np.float64), np.asarray(rows, np.float64)
    if transform is None:
        return cols, rows
    a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
    return a * cols + b * rows + c, d * cols + e * rows + f


def gcps_to_map(gcps, cols: np.ndarray, rows: np.ndarray):
    """Map coordinates (in the GCP CRS) of pixel-corner coordinates
    (col, row) through GDAL's GCP transformer (``rasterio.transform.xy``
    with the GCPs, ``offset='ul'``: GCP rows/cols are pixel corners)."""
    from rasterio.transform import xy
    x, y = xy(list(gcps), np.asarray(rows, np.float64),
              np.asarray(cols, np.float64), offset='ul')
    return np.asarray(x, np.float64), np.asarray(y, np.float64)


def crs_member(crs_wkt: Optional[str]) -> Optional[dict]:
    """GeoJSON 2008 ``crs`` member (read by GDAL/QGIS) for a CRS."""
    if crs_wkt is None:
        return None
    from rasterio.crs import CRS
    crs = CRS.from_wkt(crs_wkt)
    epsg = crs.to_epsg()
    name = f'urn:ogc:def:crs:EPSG::{epsg}' if epsg else crs.to_wkt()
    return dict(type='name', properties=dict(name=name))


def detections_geojson(polygons_px: np.ndarray, labels: np.ndarray,
                       scores: np.ndarray, classes: Sequence[str], transform,
                       crs_wkt: Optional[str],
                       boxes_px: Optional[np.ndarray] = None,
                       gcps=None, gcp_crs: Optional[str] = None,
                       rpcs=None) -> dict:
    """A FeatureCollection of detections.

    Args:
        polygons_px: ``(N, 4, 2)`` corner (col, row) pixel coordinates of
            each box (pixel corners: pixel (r, c) spans [c, c+1) x [r, r+1)).
        labels: ``(N,)`` class indices; scores: ``(N,)``.
        classes: class names.
        transform, crs_wkt: the scene's georeferencing.
        gcps, gcp_crs, rpcs: the scene's GCPs (with their CRS) and RPCs
            (:class:`~mmringmoe.datasets.transforms.raster_io.GeoMeta`), used
            only when ``transform`` is None.
        boxes_px: ``(N, 4)`` ``x1, y1, x2, y2`` or ``(N, 5)`` ``cx, cy, w,
            h, angle`` (radians) in pixels, kept in the properties.

    Returns:
        dict: geometry ``Polygon`` in the scene CRS (closed ring); properties
        ``class_name``, ``label``, ``score``, ``pixel_polygon`` and
        ``pixel_bbox`` (or ``pixel_rbox``). A scene georeferenced by GCPs
        only (no transform) gets map coordinates in the GCP CRS through
        GDAL's GCP transformer (``rasterio.transform.xy`` with the GCPs: the
        polynomial gdalwarp uses, order 1 least squares for fewer than 6
        GCPs); a scene with RPCs only keeps pixel coordinates (the RPCs need
        the terrain height, a DEM, to give map coordinates) and an
        :class:`~mmringmoe.apis.rs_inferencer.InferenceNote` says so.
    """
    gcp_list = None
    if transform is None and gcps:
        from mmringmoe.datasets.transforms.raster_io import _as_gcp
        gcp_list = [_as_gcp(g) for g in gcps]
        crs_wkt = gcp_crs
    elif transform is None and rpcs is not None:
        from .rs_inferencer import InferenceNote
        warnings.warn(
            'the scene is georeferenced by RPCs only (no transform, no '
            'GCPs), so the detection GeoJSON is in pixel coordinates (col, '
            'row); project them with the RPCs and a DEM (e.g. gdaltransform '
            '-rpc -to RPC_DEM=dem.tif)', InferenceNote, stacklevel=3)
    feats: List[dict] = []
    for i in range(len(labels)):
        poly = np.asarray(polygons_px[i], np.float64)
        if gcp_list is not None:
            xs, ys = gcps_to_map(gcp_list, poly[:, 0], poly[:, 1])
        else:
            xs, ys = pixel_to_map(transform, poly[:, 0], poly[:, 1])
        ring = [[float(x), float(y)] for x, y in zip(xs, ys)]
        ring.append(ring[0])
        label = int(labels[i])
        props = dict(
            class_name=str(classes[label]) if label < len(classes)
            else f'class_{label}',
            label=label, score=float(scores[i]),
            pixel_polygon=[[float(x), float(y)] for x, y in poly])
        if boxes_px is not None:
            key = 'pixel_bbox' if boxes_px.shape[1] == 4 else 'pixel_rbox'
            props[key] = [float(v) for v in boxes_px[i]]
        feats.append(dict(type='Feature',
                          geometry=dict(type='Polygon', coordinates=[ring]),
                          properties=props))
    fc = dict(type='FeatureCollection', features=feats)
    member = crs_member(crs_wkt)
    if member is not None:
        fc['crs'] = member
    return fc


def write_json(path: str, obj: dict, overwrite: bool = False):
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'output {path!r} exists')
    tmp = path + '.part'
    with open(tmp, 'w') as f:
        json.dump(obj, f)
    os.replace(tmp, path)


__all__ = ['check_output_path', 'ArrayBlockWriter', 'GeoTIFFBlockWriter',
           'pixel_to_map', 'gcps_to_map', 'detections_geojson', 'write_json',
           'crs_member']
