"""Per-modality, per-band normalisation with stored statistics.

Statistics files are JSON written by
``tools/dataset_converters/compute_rs_stats.py``::

    {"opt": {"mean": [...], "std": [...], "num_bands": 3, "dtype": "uint8",
             "num_files": 120, "num_pixels": ...},
     "sar_l1": {..., "power_db_mean": 61.2, "power_db_std": 8.3}}
"""
import glob
import json
import os.path as osp
from typing import Dict, Iterable, Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmringmoe.registry import TRANSFORMS
from .raster_io import MODALITY_CHANNELS, sample_kind
from .sar import power_db_values

RASTER_EXTS = ('.tif', '.tiff', '.png', '.jpg', '.jpeg', '.npy', '.bmp')


def list_rasters(folder: str, exts: Sequence[str] = RASTER_EXTS):
    files = [
        f for f in glob.glob(osp.join(folder, '**', '*'), recursive=True)
        if osp.splitext(f)[1].lower() in exts and osp.isfile(f)
    ]
    return sorted(files)


class _Moments:
    """Per-band count, mean and sum of squared deviations, merged window by
    window (Chan et al.'s parallel update), in float64."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, None, None

    def add(self, x: np.ndarray):
        """``x``: ``(N, C)`` or ``(N, )`` values of valid pixels."""
        if x.shape[0] == 0:
            return
        x = x.astype(np.float64)
        n_b = x.shape[0]
        mean_b = x.mean(0)
        m2_b = ((x - mean_b)**2).sum(0)
        if self.n == 0:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta * delta * (self.n * n_b / n)
        self.n = n

    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.m2 / self.n, 0))


def _block_windows(height: int, width: int, block: int):
    """Non-overlapping ``(row_off, col_off, h, w)`` windows covering a scene
    (statistics must count every pixel once, so not the tiling grid)."""
    for r in range(0, height, block):
        for c in range(0, width, block):
            yield (r, c, min(block, height - r), min(block, width - c))


def _sample_channels(sample, modality):
    """Header check of one sample (a path, or a list of 4 SAR-L1
    polarisation files): ``(height, width, channels, dtype, paths)`` where
    channels counts real channels (a complex band gives two)."""
    from .raster_io import raster_info
    paths = list(sample) if isinstance(sample, (list, tuple)) else [sample]
    infos = [raster_info(p) for p in paths]
    sizes = {(i.height, i.width) for i in infos}
    if len(sizes) != 1:
        raise ValueError(f'SAR-L1 polarisation files {paths!r} differ in '
                         f'size: {sorted(sizes)}.')
    chans = sum(i.count * (2 if 'complex' in i.dtype else 1) for i in infos)
    if modality == 'sar_l1' and any(
            np.dtype(i.dtype).itemsize == 1 for i in infos
            if 'complex' not in i.dtype):
        raise ValueError(
            f'{paths[0]!r}: found 8-bit data ({infos[0].dtype}); SAR-L1 '
            'statistics need the 16-bit integer or complex values (as '
            'LoadComplexSAR reads them).')
    return infos[0].height, infos[0].width, chans, infos[0].dtype, paths


def _zero_borders(paths, nodata_fallback):
    """Scene-wide zero-border masks (:func:`..tiling.scene_zero_border`) of
    the files that declare no nodata/mask/alpha, with the fallback on."""
    from ..tiling import scene_zero_border
    from .raster_io import raster_info
    out = []
    for p in paths:
        info = raster_info(p)
        declared = info.nodata is not None or info.has_mask
        out.append(scene_zero_border(p) if nodata_fallback == 'zero_border'
                   and not declared else None)
    return out


def _read_sample_window(paths, window, borders, collapse=False):
    """``(h, w, C)`` real channels and the ``(h, w)`` valid mask of one
    window of a sample (complex bands as real/imaginary channel pairs)."""
    from .raster_io import complex_to_channels, read_raster_with_meta
    parts, valid = [], None
    for p, border in zip(paths, borders):
        arr, meta = read_raster_with_meta(p, window=window)
        if arr.ndim == 4 or np.iscomplexobj(arr) or arr.dtype.names:
            arr = complex_to_channels(arr)
        if collapse:
            from .raster_io import collapse_identical_bands
            arr = collapse_identical_bands(arr, p)
        parts.append(arr)
        mask = meta.valid_mask
        if border is not None:
            mask = mask & ~border.window(*window)
        valid = mask if valid is None else valid & mask
    if len(parts) == 1:
        return parts[0], valid
    if len({a.dtype for a in parts}) > 1:
        parts = [a.astype(np.float32) for a in parts]
    return np.concatenate(parts, axis=2), valid


def compute_band_stats(files: Iterable,
                       modality: Optional[str] = None,
                       with_power: Optional[bool] = None,
                       nodata_fallback: str = 'none',
                       block: int = 1024,
                       collapse_identical_bands: bool = False,
                       quiet: Optional[bool] = None) -> dict:
    """Per-band mean and (population) std over the VALID pixels of ``files``.

    Each file is read ``block`` x ``block`` pixels at a time with rasterio
    (bounded memory, whatever the scene size) and only pixels of its
    ``valid_mask`` count: the declared nodata value, mask / alpha band and
    NaN/Inf are left out (:func:`~.raster_io.read_raster_with_meta`; the
    zero-border heuristic only with ``nodata_fallback='zero_border'``, for
    files that declare nothing). These are the pixels the loaders mark valid,
    so ``NormalizeRS`` standardises with the statistics of what it sees.
    Moments are merged window by window in float64 (Chan et al.), exact for
    16-bit data and billions of pixels.

    With ``with_power`` (default: ``modality == 'sar_l1'``) also
    ``power_db_mean`` / ``power_db_std``: mean and population std of
    ``10 log10(P)``, ``P = sum_c x_c^2`` (Eq. 5), over the valid pixels with
    finite ``P > 0`` only (:func:`~.sar.power_db_values`; zero power is the
    products' fill value, not a measurement), and ``power_db_num_pixels``.
    :class:`SARPower` standardises exactly these values.

    Args:
        files (iterable): raster paths; for SAR-L1 an item may also be a list
            of four single-polarisation files (HH, HV, VH, VV).
        modality (str, optional): when given, every file must have that
            modality's channel count (opt 3, ms 4, sar_l1 8 real channels =
            4 complex, sar_l2 1), else :class:`ValueError`; SAR-L1 8-bit data
            is refused.
        nodata_fallback (str): ``'none'`` or ``'zero_border'``.
        block (int): window size of the reads in pixels.
        quiet (bool, optional): no progress bar over the samples (it is
            shown only on a terminal).
        collapse_identical_bands (bool): for a 1-band ``modality``, read a
            file whose bands are all identical as one band (as
            ``LoadRSImageFromFile(collapse_identical_bands=True)`` does);
            differing bands are refused.

    Returns:
        dict: ``mean``, ``std`` (lists, one per band, in file units),
        ``num_bands``, ``dtype``, ``num_files``, ``num_pixels`` (valid pixels
        counted), ``num_invalid_pixels`` (left out).

    Raises:
        FileNotFoundError: no file.
        ValueError: a file with another band count than the first (or than
            ``modality`` asks), no valid pixel at all.
    """
    if modality is not None and modality not in MODALITY_CHANNELS:
        raise ValueError(f'Unknown modality {modality!r}; expected one of '
                         f'{tuple(MODALITY_CHANNELS)}')
    if with_power is None:
        with_power = modality == 'sar_l1'
    expected = MODALITY_CHANNELS.get(modality)
    bands = _Moments()
    power = _Moments()
    dtype, count, invalid, num_bands = None, 0, 0, None
    from mmringmoe.visualization.progress import progress
    files = list(files)
    for sample in progress(files, desc=f'statistics {modality or ""}'.strip(),
                           unit='file', quiet=quiet):
        height, width, chans, dt, paths = _sample_channels(sample, modality)
        where = paths[0] if len(paths) == 1 else paths
        collapse = collapse_identical_bands and expected == 1 and chans > 1
        if collapse:
            chans = 1
        if expected is not None and chans != expected:
            raise ValueError(
                f'{where!r}: {chans} bands ({dt}), but modality {modality!r} '
                f'has {expected}; statistics must be computed over files '
                'the modality\'s pipeline reads as they are.')
        if num_bands is None:
            num_bands, dtype = chans, dt
        elif chans != num_bands:
            raise ValueError(f'{where!r} has {chans} bands, the files '
                             f'before it {num_bands}.')
        elif sample_kind(dt) != sample_kind(dtype):
            # one mean/std over 8-bit and 16-bit (or DN and reflectance)
            # files fits neither, and the stats file can name one dtype only
            raise ValueError(f'{where!r} holds {dt} values, the files before '
                             f'it {dtype} ({sample_kind(dt)} vs '
                             f'{sample_kind(dtype)}); compute statistics over '
                             'files of one sample dtype.')
        borders = _zero_borders(paths, nodata_fallback)
        for window in _block_windows(height, width, block):
            arr, valid = _read_sample_window(paths, window, borders,
                                             collapse)
            invalid += int((~valid).sum())
            bands.add(arr[valid].reshape(-1, arr.shape[2]))
            if with_power:
                power.add(power_db_values(arr, valid))
        count += 1
    if count == 0:
        raise FileNotFoundError('No raster files to compute statistics from.')
    if bands.n == 0:
        raise ValueError(f'No valid pixel in the {count} file(s) (every '
                         'pixel is nodata / masked).')
    out = dict(mean=bands.mean.tolist(), std=bands.std().tolist(),
               num_bands=num_bands, dtype=dtype, num_files=count,
               num_pixels=bands.n, num_invalid_pixels=invalid)
    if with_power:
        if power.n == 0:
            raise ValueError('No SAR-L1 pixel with positive power to compute '
                             'the power_db statistics from.')
        out['power_db_mean'] = float(power.mean)
        out['power_db_std'] = float(power.std())
        out['power_db_num_pixels'] = power.n
    return out


def folder_stats(folder: str, modality: Optional[str] = None,
                 nodata_fallback: str = 'none',
                 collapse_identical_bands: bool = False,
                 quiet: Optional[bool] = None) -> dict:
    """Band statistics of every raster under ``folder`` (SAR-L1 folders are
    read as 8 channels, a sub-folder of four polarisation files as one
    sample, and also get the power statistics in dB)."""
    if modality == 'sar_l1':
        from ..ringmoss import RingMOSSDataset
        files = RingMOSSDataset._sar_l1_samples(folder)
    else:
        files = list_rasters(folder)
    if not files:
        raise FileNotFoundError(
            f'No raster files ({", ".join(RASTER_EXTS)}) in {folder!r}' +
            (f' (modality {modality!r})' if modality else ''))
    return compute_band_stats(
        files, modality, nodata_fallback=nodata_fallback,
        collapse_identical_bands=collapse_identical_bands, quiet=quiet)


def compute_folder_stats(folder: str,
                         modality: Optional[str] = None,
                         nodata_fallback: str = 'none',
                         collapse_identical_bands: bool = False,
                         quiet: Optional[bool] = None) -> Dict[str, dict]:
    """``{modality: stats}`` for a folder with modality sub-folders, or
    ``{modality or folder name: stats}`` for a single folder."""
    subdirs = [m for m in MODALITY_CHANNELS if osp.isdir(osp.join(folder, m))]
    if subdirs and modality is None:
        return {m: folder_stats(osp.join(folder, m), m, nodata_fallback,
                                quiet=quiet)
                for m in subdirs}
    name = modality or osp.basename(osp.normpath(folder))
    return {name: folder_stats(folder, modality, nodata_fallback,
                               collapse_identical_bands, quiet)}


def load_stats(stats_file: str) -> Dict[str, dict]:
    with open(stats_file) as f:
        return json.load(f)


@TRANSFORMS.register_module()
class NormalizeRS(BaseTransform):
    """``(img - mean) / std`` per band, to float32, for any band count.

    Statistics come from ``mean``/``std`` directly, or per modality from
    ``stats`` (a dict ``{modality: {'mean': [...], 'std': [...]}}``) or a
    ``stats_file`` JSON of the same layout. The modality is ``modality`` or
    ``results['modality']``.

    Args:
        mean, std (sequence, optional): Per-band statistics (length 1
            broadcasts).
        stats (dict, optional): Per-modality statistics.
        stats_file (str, optional): JSON with per-modality statistics.
        modality (str, optional): Fixed modality.
        key (str): Array to normalise. Defaults to ``'img'``.
        fill_invalid (bool): set the pixels that ``results['valid_mask']``
            marks invalid (declared nodata, mask/alpha, NaN, scene padding)
            to 0, the band mean after standardisation, so a fill value such
            as 65535 or 255 never reaches the network as data (mmseg pads
            normalised inputs with 0 the same way). Defaults to True.
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 stats: Optional[Dict[str, dict]] = None,
                 stats_file: Optional[str] = None,
                 modality: Optional[str] = None,
                 key: str = 'img',
                 fill_invalid: bool = True):
        self.fill_invalid = fill_invalid
        if (mean is None) != (std is None):
            raise ValueError('Give both mean and std, or neither.')
        if mean is None and stats is None and stats_file is None:
            raise ValueError('NormalizeRS needs mean/std, stats or stats_file.')
        self.stats = dict(stats or {})
        if stats_file is not None:
            self.stats.update(load_stats(stats_file))
        self.mean = None if mean is None else np.asarray(mean, np.float64)
        self.std = None if std is None else np.asarray(std, np.float64)
        self.modality = modality
        self.key = key

    def _stats_for(self, results):
        if self.mean is not None:
            return self.mean, self.std
        modality = self.modality or results.get('modality')
        if modality not in self.stats:
            raise ValueError(
                f'NormalizeRS: no statistics for modality {modality!r} '
                f'(file {results.get("img_path")!r}); known: '
                f'{sorted(self.stats)}.')
        st = self.stats[modality]
        return (np.asarray(st['mean'], np.float64),
                np.asarray(st['std'], np.float64))

    def transform(self, results: dict) -> dict:
        img = results[self.key]
        mean, std = self._stats_for(results)
        c = img.shape[-1] if img.ndim == 3 else 1
        if mean.size not in (1, c) or std.size not in (1, c):
            raise ValueError(
                f'NormalizeRS on {results.get("img_path")!r} (modality '
                f'{results.get("modality")!r}): image has {c} bands but the '
                f'statistics have {mean.size} means / {std.size} stds.')
        if np.any(std <= 0):
            raise ValueError(f'NormalizeRS: non-positive std {std.tolist()}')
        out = (img.astype(np.float64) - mean) / std
        valid = results.get('valid_mask')
        if self.fill_invalid and valid is not None and \
                np.shape(valid) == out.shape[:2] and not np.all(valid):
            out[~np.asarray(valid, bool)] = 0.0
        results[self.key] = out.astype(np.float32)
        results['img_norm_cfg'] = dict(mean=mean.tolist(), std=std.tolist())
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(modality={self.modality!r}, '
                f'stats={sorted(self.stats)})')


__all__ = [
    'RASTER_EXTS', 'list_rasters', 'compute_band_stats', 'folder_stats',
    'compute_folder_stats', 'load_stats',
    'NormalizeRS', 'MODALITY_CHANNELS'
]
