"""A sampler that fixes how many samples of each modality every batch holds."""
import math
from typing import Dict, Iterator, Optional, Union

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmringmoe.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class ModalityBalancedSampler(Sampler):
    """Every per-process batch holds ``samples_per_modality[m]`` samples of
    each modality ``m``, in the dataset's modality order.

    Use it with ``batch_size = sum(samples_per_modality.values())``. The
    dataset must provide ``indices_by_modality()`` (e.g.
    :class:`RingMOSSDataset`).

    Global batches are drawn once for all processes from one seeded stream
    (``world_size x`` the per-process counts per modality) and process ``r``
    takes the ``r``-th share of each modality, so a run on N processes sees
    exactly the samples of a single-process run with an N times larger batch.
    Each modality is reshuffled every time it is exhausted; an epoch ends
    when the largest modality has been seen once.

    Args:
        dataset: The dataset.
        samples_per_modality (int | dict): Samples of each modality per
            process batch (an int applies to every modality).
        shuffle (bool): Shuffle within modalities. Defaults to True.
        seed (int, optional): Shared random seed; synced across processes
            when None.
        round_up (bool): Kept for mmengine sampler-config compatibility.
    """

    def __init__(self,
                 dataset,
                 samples_per_modality: Union[int, Dict[str, int]] = 1,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 round_up: bool = True):
        if not hasattr(dataset, 'indices_by_modality'):
            raise TypeError('ModalityBalancedSampler needs a dataset with '
                            'indices_by_modality(), e.g. RingMOSSDataset')
        self.dataset = dataset
        self.rank, self.world_size = get_dist_info()
        self.groups = {
            m: idx for m, idx in dataset.indices_by_modality().items()
        }
        if isinstance(samples_per_modality, int):
            samples_per_modality = {m: samples_per_modality
                                    for m in self.groups}
        unknown = set(samples_per_modality) - set(self.groups)
        if unknown:
            raise ValueError(f'samples_per_modality names modalities '
                             f'{sorted(unknown)} the dataset lacks '
                             f'({sorted(self.groups)})')
        self.counts = {m: int(samples_per_modality.get(m, 0))
                       for m in self.groups}
        self.counts = {m: c for m, c in self.counts.items() if c > 0}
        if not self.counts:
            raise ValueError('samples_per_modality selects no samples')
        for m in self.counts:
            if not self.groups[m]:
                raise ValueError(f'modality {m!r} has no samples')
        self.batch_size = sum(self.counts.values())
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0
        self.num_batches = max(
            math.ceil(len(self.groups[m]) / (c * self.world_size))
            for m, c in self.counts.items())

    def _stream(self, modality: str, generator: torch.Generator):
        idx = self.groups[modality]
        while True:
            order = (torch.randperm(len(idx), generator=generator).tolist()
                     if self.shuffle else range(len(idx)))
            for i in order:
                yield idx[i]

    def __iter__(self) -> Iterator[int]:
        streams = {}
        for k, m in enumerate(self.counts):
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch * 1009 + k * 7919)
            streams[m] = self._stream(m, g)
        for _ in range(self.num_batches):
            for m, c in self.counts.items():
                global_draw = [next(streams[m])
                               for _ in range(c * self.world_size)]
                yield from global_draw[self.rank * c:(self.rank + 1) * c]

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


__all__ = ['ModalityBalancedSampler']
