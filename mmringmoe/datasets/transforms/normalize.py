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
from typing import Callable, Dict, Iterable, Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmringmoe.registry import TRANSFORMS
from .raster_io import MODALITY_CHANNELS, read_raster
from .sar import sar_power, to_db

RASTER_EXTS = ('.tif', '.tiff', '.png', '.jpg', '.jpeg', '.npy', '.bmp')


def list_rasters(folder: str, exts: Sequence[str] = RASTER_EXTS):
    files = [
        f for f in glob.glob(osp.join(folder, '**', '*'), recursive=True)
        if osp.splitext(f)[1].lower() in exts and osp.isfile(f)
    ]
    return sorted(files)


def compute_band_stats(files: Iterable[str],
                       load: Optional[Callable[[str], np.ndarray]] = None,
                       with_power: bool = False) -> dict:
    """Per-band mean and (population) std over every pixel of ``files``.

    Accumulates float64 sums, so 16-bit data and millions of pixels stay
    exact enough; all files must share the band count.
    """
    load = load or read_raster
    n, s, ss = 0, None, None
    p_n, p_s, p_ss = 0, 0.0, 0.0
    dtype, count = None, 0
    for path in files:
        img = load(path)
        if img.ndim == 4 or np.iscomplexobj(img) or img.dtype.names:
            from .raster_io import complex_to_channels
            img = complex_to_channels(img)
        x = img.reshape(-1, img.shape[-1]).astype(np.float64)
        if not np.isfinite(x).all():
            raise ValueError(f'{path!r} contains NaN/Inf values.')
        if s is None:
            s, ss = np.zeros(x.shape[1]), np.zeros(x.shape[1])
            dtype = str(img.dtype)
        elif x.shape[1] != s.shape[0]:
            raise ValueError(f'{path!r} has {x.shape[1]} bands, the files '
                             f'before it {s.shape[0]}.')
        n += x.shape[0]
        s += x.sum(0)
        ss += (x * x).sum(0)
        if with_power:
            p = to_db(sar_power(img)).ravel()
            p_n += p.size
            p_s += p.sum()
            p_ss += (p * p).sum()
        count += 1
    if count == 0:
        raise FileNotFoundError('No raster files to compute statistics from.')
    mean = s / n
    std = np.sqrt(np.maximum(ss / n - mean * mean, 0))
    out = dict(mean=mean.tolist(), std=std.tolist(), num_bands=len(mean),
               dtype=dtype, num_files=count, num_pixels=n)
    if with_power:
        pm = p_s / p_n
        out['power_db_mean'] = pm
        out['power_db_std'] = float(np.sqrt(max(p_ss / p_n - pm * pm, 0)))
    return out


def _sar_l1_loader(path):
    from .raster_io import LoadComplexSAR
    return LoadComplexSAR()(dict(img_path=path))['img']


def folder_stats(folder: str, modality: Optional[str] = None) -> dict:
    """Band statistics of every raster under ``folder`` (SAR-L1 folders are
    read as 8 channels and also get the power statistics in dB)."""
    files = list_rasters(folder)
    if not files:
        raise FileNotFoundError(
            f'No raster files ({", ".join(RASTER_EXTS)}) in {folder!r}' +
            (f' (modality {modality!r})' if modality else ''))
    if modality == 'sar_l1':
        return compute_band_stats(files, _sar_l1_loader, with_power=True)
    return compute_band_stats(files)


def compute_folder_stats(folder: str,
                         modality: Optional[str] = None) -> Dict[str, dict]:
    """``{modality: stats}`` for a folder with modality sub-folders, or
    ``{modality or folder name: stats}`` for a single folder."""
    subdirs = [m for m in MODALITY_CHANNELS if osp.isdir(osp.join(folder, m))]
    if subdirs and modality is None:
        return {m: folder_stats(osp.join(folder, m), m) for m in subdirs}
    name = modality or osp.basename(osp.normpath(folder))
    return {name: folder_stats(folder, modality)}


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
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 stats: Optional[Dict[str, dict]] = None,
                 stats_file: Optional[str] = None,
                 modality: Optional[str] = None,
                 key: str = 'img'):
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
