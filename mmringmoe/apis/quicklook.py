"""Quick-look PNG of a scene with its prediction drawn over it.

The scene is read decimated (rasterio ``out_shape``, nearest) so that the
longer side is at most ``max_size`` pixels; display per modality:

- ``opt``: the three bands as RGB;
- ``ms``: false colour NIR, red, green (band names from the model's band
  order, default blue, green, red, NIR);
- ``sar_l1``: Pauli RGB;
- ``sar_l2``: amplitude in dB (20 log10), grey;

drawn by :func:`mmringmoe.visualization.display_image`: 16-bit and float
data stretched between the 2nd and 98th percentile of the valid pixels
(never a cast to uint8, which would wrap them), nodata in magenta. Class
maps are blended with their palette (alpha 0.5), heights with a colour ramp,
detections drawn as polygon outlines.

Under the picture a legend strip
(:func:`mmringmoe.visualization.overlay.swatch_legend`): a swatch in the
palette colour and the name of every class present in the prediction
(segmentation, change detection, scene classification: counted over the
whole class map, block by block for a GeoTIFF, so a class too small to
survive the decimation is still listed; detection: the classes of the
features, the colour of their outlines), the height range for depth, and the
display line (bands, stretch, nodata colour).
"""
from typing import Sequence, Tuple

import numpy as np


def _decimated(src, max_size: int):
    """``(array (h, w, C[, 2]), valid (h, w), step)`` of a SceneSource."""
    H, W = src.height, src.width
    step = max(1, int(np.ceil(max(H, W) / max_size)))
    h, w = -(-H // step), -(-W // step)
    if src.path is None:
        arr = src._arr[::step, ::step]
        valid = src._valid[::step, ::step]
        return np.asarray(arr), np.asarray(valid), step
    import rasterio
    from rasterio.enums import Resampling
    from mmringmoe.datasets.transforms.raster_io import _alpha_index
    selected = getattr(src, 'bands', None)
    with rasterio.open(src.path) as ds:
        alpha = src.alpha  # None when the model reads that band as data
        bands = list(selected) if selected is not None else \
            [i for i in range(1, ds.count + 1) if i != alpha]
        data = ds.read(bands, out_shape=(len(bands), h, w),
                       resampling=Resampling.nearest)
        if src.alpha is None and _alpha_index(ds) is not None:
            mask = None  # the alpha-flagged band is data: GDAL's mask is not
        elif selected is not None:
            # GDAL's per-band masks of the selected bands only (the rule of
            # read_raster_with_meta(indexes=...))
            mask = (ds.read_masks(bands, out_shape=(len(bands), h, w),
                                  resampling=Resampling.nearest) > 0).any(0)
        else:
            mask = ds.dataset_mask(out_shape=(h, w),
                                   resampling=Resampling.nearest) > 0
        nodata = ds.nodata
    arr = np.moveaxis(data, 0, 2)
    if mask is None:
        from mmringmoe.datasets.transforms.raster_io import valid_mask_from
        mask = valid_mask_from(arr, nodata)
    if arr.dtype.kind in 'fc':
        mask &= np.isfinite(arr).all(-1)
        arr = np.where(np.isfinite(arr), arr, 0)
    return arr, mask, step


def scene_rgb(arr: np.ndarray, valid: np.ndarray, modality: str,
              band_order: Sequence[str] = ()) -> np.ndarray:
    """Display RGB ``(h, w, 3)`` uint8 of a decimated raster: the project's
    one display function (:func:`mmringmoe.visualization.display_image`);
    for ``ms`` the NIR, red and green bands are found by name in the model's
    band order (default B, G, R, NIR)."""
    return scene_display(arr, valid, modality, band_order).rgb


def scene_display(arr: np.ndarray, valid: np.ndarray, modality: str,
                  band_order: Sequence[str] = ()):
    """:class:`mmringmoe.visualization.display.DisplayImage` (``rgb`` and
    its ``legend`` line) of a decimated raster (:func:`scene_rgb`)."""
    from mmringmoe.datasets.transforms.raster_io import complex_to_channels
    from mmringmoe.visualization import display_image
    if arr.ndim == 4 or arr.dtype.kind == 'c':
        arr = complex_to_channels(arr)
    bands = None
    if modality == 'ms' and band_order:
        names = [b.lower() for b in band_order]
        if all(n in names for n in ('nir', 'red', 'green')):
            bands = [names.index(n) for n in ('nir', 'red', 'green')]
    return display_image(arr, modality, valid_mask=valid, bands=bands)


def _ramp(x: np.ndarray) -> np.ndarray:
    """Heights in [0, 1] -> RGB (matplotlib's viridis)."""
    from matplotlib import colormaps
    return (colormaps['viridis'](x)[..., :3] * 255).astype(np.uint8)


def check_quicklook_path(path: str):
    """Refuse a quick-look name that is not ``.png`` (PIL would pick the
    format from the extension, or fail after the map was written).

    Raises:
        ValueError: one line naming ``path``, its extension and ``.png``.
    """
    import os.path as osp
    ext = osp.splitext(path)[1]
    if ext.lower() != '.png':
        raise ValueError(f'quick look {path!r} (--show) has extension '
                         f'{ext or "none"!r}; the quick look is a PNG: '
                         'expected .png')


def render_quicklook(result, scene, spec, path: str, max_size: int = 1024,
                     alpha: float = 0.5, overwrite: bool = False):
    """Write ``path`` (PNG): the scene (first raster; date 2 for change
    detection) with ``result`` drawn over it, read decimated by the
    smallest integer factor that brings its longer side to at most
    ``max_size`` pixels (a 2000 x 1500 scene at 1024: every 2nd pixel,
    1000 x 750).

    Raises:
        ValueError: ``max_size`` not an integer > 0; ``path`` not a
            ``.png`` name (:func:`check_quicklook_path`).
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    import os.path as osp
    from PIL import Image, ImageDraw
    if isinstance(max_size, bool) or not isinstance(
            max_size, (int, np.integer)) or max_size <= 0:
        raise ValueError(f'show size (--show-size, max_size=) must be an '
                         f'integer > 0, got {max_size!r}')
    check_quicklook_path(path)
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'output {path!r} exists')
    spec.loader.check_bands(scene)  # an alpha band the model reads is data
    roles = list(scene.sources)
    role = 'date2' if 'date2' in roles else roles[0]
    src = scene.sources[role]
    modality = next((r.modality for r in spec.roles if r.role == role),
                    spec.roles[0].modality)
    arr, valid, step = _decimated(src, max_size)
    shown = scene_display(arr, valid, modality, spec.band_order.get(modality,
                                                                    ()))
    rgb = shown.rgb.astype(np.float64)
    h, w = rgb.shape[:2]
    lines = []
    if result.task in ('segmentation', 'change_detection', 'depth'):
        pred = _read_pred(result, step, (h, w))
        if result.task == 'depth':
            ok = pred != result.nodata
            vals = pred[ok]
            norm = np.zeros_like(pred, dtype=np.float64)
            if vals.size:
                lo, hi = np.percentile(vals, (2, 98))
                norm = np.clip((pred - lo) / max(hi - lo, 1e-6), 0, 1)
                lines.append(f'height {lo:.2f} m (dark blue) to {hi:.2f} m '
                             '(yellow), viridis, 2nd-98th percentile')
            over = _ramp(norm).astype(np.float64)
        else:
            ok = pred != result.nodata
            pal = np.zeros((256, 3), np.float64)
            for i, c in enumerate(result.palette):
                pal[i] = c
            over = pal[pred]
        rgb[ok] = (1 - alpha) * rgb[ok] + alpha * over[ok]
    elif result.task == 'classification' and result.pred is not None:
        grid = result.pred
        cell = (h / grid.shape[0], w / grid.shape[1])
        rr = np.minimum((np.arange(h) / cell[0]).astype(int), grid.shape[0] - 1)
        cc = np.minimum((np.arange(w) / cell[1]).astype(int), grid.shape[1] - 1)
        g = grid[rr][:, cc]
        ok = g != result.nodata
        pal = np.zeros((256, 3))
        for i, c in enumerate(result.palette):
            pal[i] = c
        rgb[ok] = (1 - alpha) * rgb[ok] + alpha * pal[g][ok]
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    present = []
    if result.task == 'detection':
        draw = ImageDraw.Draw(img)
        for f in result.pred['features']:
            poly = [(x / step, y / step)
                    for x, y in f['properties']['pixel_polygon']]
            draw.polygon(poly, outline=_box_color(result,
                                                  f['properties']['label']))
        present = sorted({int(f['properties']['label'])
                          for f in result.pred['features']})
    elif result.task == 'classification' and result.pred is None:
        present = [result.classes.index(result.topk[0][0])] \
            if result.topk else []  # smaller than one window: top-1
    elif result.task != 'depth':
        present = classes_present(result)
    names = [result.classes[i] if i < len(result.classes) else f'class_{i}'
             for i in present]
    colors = [_box_color(result, i) if result.task == 'detection'
              else tuple(result.palette[i]) if i < len(result.palette)
              else (0, 0, 0) for i in present]
    lines.append(shown.legend)
    img = legend_below(np.asarray(img), names, colors, lines)
    Image.fromarray(img).save(path, format='PNG')
    return path


def _box_color(result, label: int) -> Tuple[int, int, int]:
    return tuple(result.palette[label]) if label < len(result.palette) \
        else (255, 0, 0)


def legend_below(img: np.ndarray, names: Sequence[str],
                 colors: Sequence[Sequence[int]],
                 lines: Sequence[str] = ()) -> np.ndarray:
    """``img`` (uint8 ``(h, w, 3)``) with, below it, a swatch legend
    (:func:`mmringmoe.visualization.overlay.swatch_legend`: a 10 x 10 px
    square of each colour, outlined black, and the name) and text lines;
    the picture above keeps its pixels and size."""
    from mmringmoe.visualization.overlay import (swatch_legend, text_strip,
                                                 vstack)
    width = max(img.shape[1], 160)  # room for a name on tiny scenes
    parts = [img]
    if len(names):
        parts.append(swatch_legend(names, colors, width))
    if lines:
        parts.append(text_strip(lines, width))
    return vstack(parts)


def classes_present(result) -> list:
    """Sorted class indices present in a class map (segmentation, change
    detection, classification; nodata left out): ``result.pred`` in memory,
    or the ``result.out`` GeoTIFF counted block by block (bounded memory,
    every pixel, not the decimated quick look)."""
    counts = np.zeros(256, np.int64)
    if result.pred is not None:
        counts += np.bincount(np.asarray(result.pred, np.uint8).ravel(),
                              minlength=256)
    else:
        import rasterio
        with rasterio.open(result.out) as ds:
            for _, win in ds.block_windows(1):
                counts += np.bincount(ds.read(1, window=win).ravel(),
                                      minlength=256)
    if result.nodata is not None and 0 <= int(result.nodata) < 256:
        counts[int(result.nodata)] = 0
    return [int(i) for i in np.flatnonzero(counts)]


def _read_pred(result, step: int, shape: Tuple[int, int]) -> np.ndarray:
    if result.pred is not None:
        return np.asarray(result.pred)[::step, ::step][:shape[0], :shape[1]]
    import rasterio
    from rasterio.enums import Resampling
    with rasterio.open(result.out) as ds:
        return ds.read(1, out_shape=shape, resampling=Resampling.nearest)


__all__ = ['render_quicklook', 'check_quicklook_path', 'scene_rgb', 'scene_display', 'legend_below',
           'classes_present']
