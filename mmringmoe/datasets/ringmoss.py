"""RingMOSS-style pretraining data: one folder per modality, unpaired tiles.

Layout::

    data_root/
      opt/     *.tif|*.png|*.jpg|*.npy   (3 bands)
      ms/      ...                        (4 bands)
      sar_l1/  *.tif|*.npy                (complex or 8-channel int16), or one
               sub-folder per sample with four files named *HH*, *HV*, *VH*, *VV*
      sar_l2/  ...                        (1 band)
"""
import os
import os.path as osp
import random
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset, Compose
from mmengine.dist import barrier, get_dist_info

from mmringmoe.registry import DATASETS
from .builtin_pretrain import builtin_data_ready, make_builtin_pretrain_data
from .transforms.normalize import RASTER_EXTS, list_rasters
from .transforms.raster_io import SAR_L1_POLARISATIONS


def _pol_files(folder: str) -> Optional[List[str]]:
    files = [f for f in sorted(os.listdir(folder))
             if osp.splitext(f)[1].lower() in RASTER_EXTS]
    found = []
    for pol in SAR_L1_POLARISATIONS:
        match = [f for f in files if pol in osp.splitext(f)[0].upper()]
        if len(match) != 1:
            return None
        found.append(osp.join(folder, match[0]))
    return found


@DATASETS.register_module()
class RingMOSSDataset(BaseDataset):
    """Unpaired multi-modal pretraining tiles.

    Args:
        data_root (str): Folder holding one sub-folder per modality.
        modalities (Sequence[str]): Modalities to load (order = index).
        data_prefix (dict, optional): ``{modality: sub-folder}``; defaults to
            the modality names.
        pipeline (list | dict): One pipeline for all samples, or
            ``{modality: pipeline}`` (SAR-L1 needs its own loader and the
            power target).
        generate_builtin (bool): When ``data_root`` lacks a modality folder,
            write the built-in demo data there first (generated locally, see
            ``mmringmoe.datasets.builtin_pretrain``). Defaults to False.
        per_sample_seed (int, optional): Seed numpy/random with
            ``(per_sample_seed, epoch-free sample index)`` before each
            pipeline run, so random crops, flips and masks of a sample are
            identical however the data is split across processes (used to
            check DDP against single-process runs). Defaults to None.
        max_per_modality (int, optional): Keep the first N files of each.
    """

    METAINFO = dict(modalities=('opt', 'ms', 'sar_l1', 'sar_l2'))

    def __init__(self,
                 data_root: str,
                 modalities: Sequence[str] = ('opt', 'ms', 'sar_l1', 'sar_l2'),
                 data_prefix: Optional[Dict[str, str]] = None,
                 pipeline: Union[list, dict] = (),
                 generate_builtin: bool = False,
                 per_sample_seed: Optional[int] = None,
                 max_per_modality: Optional[int] = None,
                 **kwargs):
        self.modalities = tuple(modalities)
        self.folders = {m: (data_prefix or {}).get(m, m) for m in modalities}
        self.per_sample_seed = per_sample_seed
        self.max_per_modality = max_per_modality
        if generate_builtin:
            # rank 0 writes, the others wait: no two processes write a file
            rank, world_size = get_dist_info()
            if rank == 0 and not builtin_data_ready(
                    data_root, [self.folders[m] for m in self.modalities]):
                make_builtin_pretrain_data(data_root)
            if world_size > 1:
                barrier()
        if isinstance(pipeline, dict):
            self.modality_pipelines = {
                m: Compose(p) for m, p in pipeline.items()}
            pipeline = []
        else:
            self.modality_pipelines = None
        kwargs.setdefault('metainfo', dict(modalities=self.modalities))
        super().__init__(
            data_root=data_root, pipeline=list(pipeline), **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = []
        for idx, m in enumerate(self.modalities):
            folder = osp.join(self.data_root, self.folders[m])
            if not osp.isdir(folder):
                raise FileNotFoundError(
                    f'RingMOSSDataset: folder {folder!r} for modality {m!r} '
                    'does not exist.')
            samples: List[Union[str, List[str]]] = list_rasters(folder) \
                if m != 'sar_l1' else self._sar_l1_samples(folder)
            if not samples:
                raise FileNotFoundError(
                    f'RingMOSSDataset: folder {folder!r} for modality {m!r} '
                    f'holds no raster files ({", ".join(RASTER_EXTS)}).')
            if self.max_per_modality:
                samples = samples[:self.max_per_modality]
            data_list += [
                dict(img_path=s, modality=m, modality_idx=idx) for s in samples
            ]
        return data_list

    @staticmethod
    def _sar_l1_samples(folder: str) -> list:
        samples = []
        for entry in sorted(os.listdir(folder)):
            path = osp.join(folder, entry)
            if osp.isdir(path):
                pols = _pol_files(path)
                if pols is None:
                    raise FileNotFoundError(
                        f'SAR-L1 sample folder {path!r} must hold exactly one '
                        f'file per polarisation {SAR_L1_POLARISATIONS}.')
                samples.append(pols)
            elif osp.splitext(entry)[1].lower() in RASTER_EXTS:
                samples.append(path)
        return samples

    def indices_by_modality(self) -> Dict[str, List[int]]:
        """``{modality: [dataset indices]}`` (used by the balanced sampler)."""
        out: Dict[str, List[int]] = {m: [] for m in self.modalities}
        for i in range(len(self)):
            out[self.get_data_info(i)['modality']].append(i)
        return out

    def prepare_data(self, idx):
        info = self.get_data_info(idx)
        if self.per_sample_seed is not None:
            seed = (self.per_sample_seed * 1000003 + idx) % (2**32)
            np.random.seed(seed)
            random.seed(seed)
        if self.modality_pipelines is not None:
            pipe = self.modality_pipelines.get(info['modality'])
            if pipe is None:
                raise KeyError(f'no pipeline for modality {info["modality"]!r}')
            return pipe(info)
        return self.pipeline(info)


__all__ = ['RingMOSSDataset']
