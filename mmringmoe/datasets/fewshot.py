"""Episodic data sets for unseen-class recognition (paper B.5.8).

Each item of these data sets is one episode, fully determined by
``(seed, index)``: the same seed gives the same episodes on every run and
machine. The class splits are the paper's Tab. A2 (classification) and
Tab. A3 (segmentation folds), written with each data set's own class (folder
or mmseg ``METAINFO``) names.
"""
import os
import os.path as osp

import numpy as np
import torch
from mmengine.dataset import BaseDataset
from mmengine.structures import BaseDataElement

from mmringmoe.registry import DATASETS
from .label_conventions import (check_convention, load_binary_label,
                                load_index_label)

# --------------------------------------------------------------------------
# Tab. A2: scene classification class splits (train / val / test)
FEWSHOT_CLS_SPLITS = {
    # NWPU-RESISC45: 25 / 10 / 10, folder names as in the official archive
    'nwpu-resisc45': dict(
        train=('cloud', 'mountain', 'stadium', 'airplane', 'chaparral',
               'roundabout', 'church', 'ship', 'golf_course', 'meadow',
               'harbor', 'freeway', 'lake', 'wetland', 'baseball_diamond',
               'island', 'railway', 'mobile_home_park', 'palace',
               'sparse_residential', 'bridge', 'desert', 'sea_ice', 'beach',
               'rectangular_farmland'),
        val=('thermal_power_station', 'storage_tank', 'terrace',
             'railway_station', 'tennis_court', 'snowberg', 'industrial_area',
             'runway', 'overpass', 'commercial_area'),
        test=('airport', 'basketball_court', 'river', 'parking_lot',
              'ground_track_field', 'medium_residential', 'dense_residential',
              'circular_farmland', 'intersection', 'forest')),
    # WHU-RS19: 9 / 5 / 5
    'whu-rs19': dict(
        train=('Parking', 'Port', 'Residential', 'Bridge', 'Industrial',
               'Mountain', 'Airport', 'footballField', 'Desert'),
        val=('railwayStation', 'Beach', 'Forest', 'Farmland', 'Park'),
        test=('Viaduct', 'Pond', 'Meadow', 'River', 'Commercial')),
    # UC Merced: 10 train classes. Tab. A2 lists 5 validation and 6 test
    # classes (Mobile home park in the test cell) while the text of B.5.8
    # says 6 / 5; the table is followed here.
    'ucm': dict(
        train=('parkinglot', 'denseresidential', 'harbor', 'chaparral',
               'freeway', 'buildings', 'overpass', 'agricultural',
               'mediumresidential', 'baseballdiamond'),
        val=('airplane', 'runway', 'forest', 'intersection', 'storagetanks'),
        test=('golfcourse', 'river', 'sparseresidential', 'tenniscourt',
              'beach', 'mobilehomepark')),
}

# Tab. A3: segmentation folds, test (novel) classes per fold; the training
# classes of a fold are all the others (background excluded).
FEWSHOT_SEG_CLASSES = {
    # mmseg iSAIDDataset METAINFO order, 0 = background
    'isaid': ('background', 'ship', 'store_tank', 'baseball_diamond',
              'tennis_court', 'basketball_court', 'Ground_Track_Field',
              'Bridge', 'Large_Vehicle', 'Small_Vehicle', 'Helicopter',
              'Swimming_pool', 'Roundabout', 'Soccer_ball_field', 'plane',
              'Harbor'),
    # mmseg LoveDADataset METAINFO order (after reduce_zero_label)
    'loveda': ('background', 'building', 'road', 'water', 'barren', 'forest',
               'agricultural'),
}
FEWSHOT_SEG_FOLDS = {
    'isaid': (
        ('ship', 'store_tank', 'baseball_diamond', 'tennis_court',
         'basketball_court'),
        ('Ground_Track_Field', 'Bridge', 'Large_Vehicle', 'Small_Vehicle',
         'Helicopter'),
        ('Swimming_pool', 'Roundabout', 'Soccer_ball_field', 'plane',
         'Harbor'),
    ),
    'loveda': (
        ('building', 'road'),
        ('water', 'barren'),
        ('forest', 'agricultural'),
    ),
}


def fewshot_seg_fold_classes(dataset, fold, split):
    """Class indices of ``split`` ('train' = base, 'test' = novel)."""
    names = FEWSHOT_SEG_CLASSES[dataset]
    folds = FEWSHOT_SEG_FOLDS[dataset]
    if not 0 <= fold < len(folds):
        raise ValueError(f'{dataset} has folds 0..{len(folds) - 1}, got {fold}')
    novel = [names.index(c) for c in folds[fold]]
    if split == 'test':
        return novel
    if split == 'train':
        return [i for i in range(1, len(names)) if i not in novel]
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def _episode_rng(seed, index):
    return np.random.default_rng([int(seed), int(index)])


def _to_tensor_img(img):
    if img.ndim == 2:
        img = img[..., None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


class _EpisodicDataset(BaseDataset):
    """Common part: the data list holds images; ``len`` counts episodes."""

    def __init__(self, *args, **kwargs):
        kwargs['serialize_data'] = False  # the sampler indexes data_list
        super().__init__(*args, **kwargs)

    def _load_image(self, info):
        out = self.pipeline(dict(info))
        if out is None:
            raise ValueError(f'pipeline dropped {info["img_path"]}')
        return out

    def __getitem__(self, idx):
        if not self._fully_initialized:
            self.full_init()
        return self.episode(idx)


@DATASETS.register_module()
class FewShotClsEpisodeDataset(_EpisodicDataset):
    """N-way K-shot scene classification episodes.

    Layout: ``<data_root>/<img_path>/<class folder>/<image>`` (NWPU-RESISC45,
    WHU-RS19 and UCMerced_LandUse ``Images`` are all laid out like this).
    Only the folders of ``split`` (Tab. A2) are listed, so a training
    episode can never contain a validation or test class.

    Each item: ``inputs = dict(support=(N*K, 3, H, W), query=(N*Q, 3, H, W))``
    uint8 tensors (``pipeline`` is applied to every image and must return an
    ``img`` array) and a ``data_samples`` element with ``support_labels``,
    ``query_labels`` (episode-local 0..N-1) and metainfo ``classes``.
    """

    IMG_EXTS = ('.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp')

    def __init__(self, dataset_name, split, num_ways=5, num_shots=1,
                 num_queries=15, num_episodes=600, seed=0, **kwargs):
        if dataset_name not in FEWSHOT_CLS_SPLITS:
            raise ValueError(f'dataset_name must be one of '
                             f'{sorted(FEWSHOT_CLS_SPLITS)}, got '
                             f'{dataset_name!r}')
        if split not in ('train', 'val', 'test'):
            raise ValueError(f'split must be train/val/test, got {split!r}')
        self.dataset_name = dataset_name
        self.split = split
        self.class_names = FEWSHOT_CLS_SPLITS[dataset_name][split]
        if num_ways > len(self.class_names):
            raise ValueError(f'{num_ways}-way episodes need {num_ways} '
                             f'classes, the {split} split of {dataset_name} '
                             f'has {len(self.class_names)}')
        self.num_ways = num_ways
        self.num_shots = num_shots
        self.num_queries = num_queries
        self.num_episodes = num_episodes
        self.seed = seed
        kwargs.setdefault('data_prefix', dict(img_path=''))
        super().__init__(**kwargs)

    def load_data_list(self):
        root = self.data_prefix['img_path']
        data_list = []
        self.class_to_indices = {}
        missing = [osp.join(root, n) for n in self.class_names
                   if not osp.isdir(osp.join(root, n))]
        if missing:
            raise FileNotFoundError(
                f'{self.dataset_name} class folder(s) missing for the '
                f'{self.split} split (Tab. A2): {", ".join(missing)}')
        for label, name in enumerate(self.class_names):
            folder = osp.join(root, name)
            files = sorted(f for f in os.listdir(folder)
                           if f.lower().endswith(self.IMG_EXTS))
            need = self.num_shots + self.num_queries
            if len(files) < need:
                raise ValueError(f'{folder} has {len(files)} images, an '
                                 f'episode needs {need} per class')
            start = len(data_list)
            data_list += [dict(img_path=osp.join(folder, f), gt_label=label,
                               class_name=name) for f in files]
            self.class_to_indices[label] = list(range(start, len(data_list)))
        return data_list

    def __len__(self):
        return self.num_episodes

    def sample_episode(self, idx):
        """(class labels, support indices, query indices) of episode idx."""
        rng = _episode_rng(self.seed, idx)
        classes = sorted(rng.choice(len(self.class_names), self.num_ways,
                                    replace=False).tolist())
        support, query = [], []
        for c in classes:
            pick = rng.choice(self.class_to_indices[c],
                              self.num_shots + self.num_queries,
                              replace=False).tolist()
            support += pick[:self.num_shots]
            query += pick[self.num_shots:]
        return classes, support, query

    def episode(self, idx):
        classes, support, query = self.sample_episode(idx)

        def load(indices):
            return torch.stack([
                _to_tensor_img(self._load_image(self.data_list[i])['img'])
                for i in indices])

        sample = BaseDataElement(metainfo=dict(
            classes=[self.class_names[c] for c in classes], episode=idx))
        sample.support_labels = torch.arange(self.num_ways).repeat_interleave(
            self.num_shots)
        sample.query_labels = torch.arange(self.num_ways).repeat_interleave(
            self.num_queries)
        return dict(inputs=dict(support=load(support), query=load(query)),
                    data_samples=sample)


@DATASETS.register_module()
class FewShotSegEpisodeDataset(_EpisodicDataset):
    """1-shot semantic segmentation episodes on an mmseg-layout data set.

    ``dataset_name`` 'isaid' (mmseg's converted iSAID: ``img_dir/<split>/*.png``,
    ``ann_dir/<split>/*_instance_color_RGB.png``) or 'loveda' (mmseg's
    LoveDA: ``img_dir/<split>/*.png``, ``ann_dir/<split>/*.png``, 0 = no data).
    ``split='train'`` draws episodes of the fold's training classes,
    ``'test'`` of its novel classes (Tab. A3). A (query image, class) pair
    qualifies when the class covers at least ``min_fg_pixels`` pixels; the
    support is another image with the same class. Training enumerates every
    qualifying pair (``num_episodes=None``); testing draws ``num_episodes``
    seeded pairs.

    ``label_convention`` (default ``'index'``: class indices) may name a
    binary mask convention (``'0/1'``, ``'0/255'``, ``'0/1/255'``,
    ``'0/255-jpeg'``, ``'auto'``; class 1 = foreground, see
    :mod:`mmringmoe.datasets.label_conventions`); the pipeline's
    ``LoadSegAnnotations`` must name the same one (checked).

    Each item: ``inputs = dict(query=(3,H,W), support=(3,H,W),
    support_mask=(H,W))``; ``data_samples`` carries ``gt_mask`` (query,
    1 = class, 0 = other, 255 = ignore) and metainfo ``class_index``,
    ``class_name``.
    """

    _DEFAULTS = dict(
        isaid=dict(img_suffix='.png', seg_map_suffix='_instance_color_RGB.png',
                   reduce_zero_label=False),
        loveda=dict(img_suffix='.png', seg_map_suffix='.png',
                    reduce_zero_label=True))

    def __init__(self, dataset_name, fold, split, num_episodes=None, seed=0,
                 min_fg_pixels=2 * 32 * 32, ignore_index=255,
                 label_convention='index', **kwargs):
        if dataset_name not in FEWSHOT_SEG_FOLDS:
            raise ValueError(f'dataset_name must be one of '
                             f'{sorted(FEWSHOT_SEG_FOLDS)}, got '
                             f'{dataset_name!r}')
        self.dataset_name = dataset_name
        self.fold = fold
        self.split = split
        self.class_indices = fewshot_seg_fold_classes(dataset_name, fold,
                                                      split)
        self.class_names = FEWSHOT_SEG_CLASSES[dataset_name]
        self.num_episodes = num_episodes
        self.seed = seed
        self.min_fg_pixels = min_fg_pixels
        self.ignore_index = ignore_index
        self.label_convention = check_convention(label_convention)
        d = self._DEFAULTS[dataset_name]
        self.img_suffix = d['img_suffix']
        self.seg_map_suffix = d['seg_map_suffix']
        self.reduce_zero_label = d['reduce_zero_label']
        super().__init__(**kwargs)
        for t in getattr(self.pipeline, 'transforms', []):
            conv = getattr(t, 'label_convention', None)
            if conv is not None and conv != self.label_convention:
                raise ValueError(
                    f'{type(self).__name__}: label_convention '
                    f'{self.label_convention!r} but the pipeline\'s {t!r} '
                    f'reads {conv!r}; give both the same convention.')

    def _read_label(self, path):
        """Class-index map as int64, read in the file's own dtype by
        ``read_label_map`` (a file of several differing bands, a JPEG map or
        values outside 0..255 are refused naming the file; mmcv's reader
        kept band 0 of a colour label and wrapped 16-bit values)."""
        if not osp.isfile(path):
            raise FileNotFoundError(f'label map not found: {path}')
        if self.label_convention != 'index':
            # a binary mask: class 1 is the foreground
            return load_binary_label(path, self.label_convention,
                                     self.ignore_index).astype(np.int64)
        label = load_index_label(path, self.ignore_index,
                                 allow_one_hot=False).astype(np.int64)
        if self.reduce_zero_label:
            ignore = label == self.ignore_index  # declared nodata of the file
            label = np.where(label == 0, 256, label) - 1
            label[(label == 255) | ignore] = self.ignore_index
        return label

    def load_data_list(self):
        img_dir = self.data_prefix['img_path']
        ann_dir = self.data_prefix['seg_map_path']
        if not osp.isdir(img_dir):
            raise FileNotFoundError(f'{self.dataset_name} image folder '
                                    f'{img_dir} is missing')
        data_list = []
        self.class_to_images = {c: [] for c in self.class_indices}
        wanted = np.zeros(len(self.class_names) + 256, dtype=bool)
        wanted[self.class_indices] = True
        for name in sorted(os.listdir(img_dir)):
            if not name.endswith(self.img_suffix):
                continue
            stem = name[:-len(self.img_suffix)]
            seg_path = osp.join(ann_dir, stem + self.seg_map_suffix)
            if not osp.isfile(seg_path):
                raise FileNotFoundError(f'label map {seg_path} of '
                                        f'{osp.join(img_dir, name)} is missing')
            counts = np.bincount(self._read_label(seg_path).ravel(),
                                 minlength=wanted.size)
            present = np.flatnonzero(wanted[:counts.size]
                                     & (counts >= self.min_fg_pixels))
            if not len(present):
                continue
            idx = len(data_list)
            data_list.append(dict(
                img_path=osp.join(img_dir, name), seg_map_path=seg_path,
                reduce_zero_label=self.reduce_zero_label, seg_fields=[],
                classes=present.tolist()))
            for c in present:
                self.class_to_images[int(c)].append(idx)
        self.pairs = [(i, c) for i, info in enumerate(data_list)
                      for c in info['classes']
                      if len(self.class_to_images[c]) > 1]
        if not self.pairs:
            raise ValueError(
                f'no episode possible: no {self.split} class of '
                f'{self.dataset_name} fold {self.fold} covers '
                f'>= {self.min_fg_pixels} pixels in two images of {img_dir}')
        return data_list

    def __len__(self):
        if not self._fully_initialized:
            self.full_init()
        return (len(self.pairs) if self.num_episodes is None
                else self.num_episodes)

    def sample_episode(self, idx):
        """(query index, support index, class index) of episode idx."""
        rng = _episode_rng(self.seed, idx)
        if self.num_episodes is None:
            q, c = self.pairs[idx]
        else:
            q, c = self.pairs[rng.integers(len(self.pairs))]
        candidates = [i for i in self.class_to_images[c] if i != q]
        s = candidates[rng.integers(len(candidates))]
        return q, s, c

    def _load_binary(self, info, cls):
        out = self._load_image(info)
        label = out['gt_seg_map'].astype(np.int64)
        mask = np.where(label == cls, 1, 0)
        mask[label == self.ignore_index] = self.ignore_index
        return _to_tensor_img(out['img']), torch.from_numpy(mask.astype(
            np.uint8))

    def episode(self, idx):
        q, s, c = self.sample_episode(idx)
        q_img, q_mask = self._load_binary(self.data_list[q], c)
        s_img, s_mask = self._load_binary(self.data_list[s], c)
        sample = BaseDataElement(metainfo=dict(
            class_index=c, class_name=self.class_names[c], episode=idx,
            img_path=self.data_list[q]['img_path'],
            support_path=self.data_list[s]['img_path']))
        sample.gt_mask = q_mask
        return dict(inputs=dict(query=q_img, support=s_img,
                                support_mask=s_mask),
                    data_samples=sample)
