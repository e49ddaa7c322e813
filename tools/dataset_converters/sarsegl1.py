"""Tile SARSegL1 (B.5.2): 500 x 500 windows, overlap 200, seeded 8:2 split.

SARSegL1 holds two GF-3 fully polarimetric scenes (5456 x 4708 and
6192 x 4888). Windows start every 300 px (500 - 200) and only whole windows
are kept, which gives the paper's 540 samples (15 x 17 + 15 x 19)::

    python tools/dataset_converters/sarsegl1.py \
        --scene guangzhou data/raw/gz/HH.tif data/raw/gz/HV.tif \
                data/raw/gz/VH.tif data/raw/gz/VV.tif data/raw/gz/label.png \
        --scene hangzhou data/raw/hz/image.tif data/raw/hz/label.tif \
        --out-dir data/SARSegL1

Each ``--scene`` is a name, the image (one 8-channel / 4-band complex file,
or four single-polarisation files HH HV VH VV, read by
``mmringmoe.LoadComplexSAR``), and last the label raster. Labels hold class
indices; by default 0 is unlabelled and 1..5 are water, vegetation, bare
land, road, building (``--zero-is-class`` when 0..4 are the classes). Tiles
keep the raw dtype (int16 / float32) as 8-channel TIFF, HH, HV, VH, VV each
real then imaginary; labels become PNG with 255 for unlabelled. Writes
``img_dir/{train,test}``, ``ann_dir/{train,test}`` and ``splits/*.txt``;
never overwrites existing tiles unless ``--overwrite``.
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np

NUM_CLASSES = 5


def window_starts(length: int, size: int = 500, overlap: int = 200
                  ) -> List[int]:
    """Starts of the whole windows along one axis (no padded tail)."""
    stride = size - overlap
    if stride <= 0:
        raise ValueError(f'overlap {overlap} must be smaller than size {size}')
    if length < size:
        return []
    return list(range(0, length - size + 1, stride))


def tile_boxes(height: int, width: int, size: int = 500, overlap: int = 200
               ) -> List[Tuple[int, int]]:
    """``(y, x)`` upper-left corners of all whole windows, row major."""
    return [(y, x) for y in window_starts(height, size, overlap)
            for x in window_starts(width, size, overlap)]


def split_indices(n: int, train_fraction: float = 0.8, seed: int = 0
                  ) -> Tuple[List[int], List[int]]:
    """Seeded random split of ``range(n)`` into sorted train / test lists."""
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(train_fraction * n))
    return sorted(order[:n_train].tolist()), sorted(order[n_train:].tolist())


def load_scene(image_paths: Sequence[str], label_path: str,
               zero_is_class: bool = False):
    from mmringmoe.datasets.transforms.raster_io import (LoadComplexSAR,
                                                          read_raster)
    paths = list(image_paths)
    key = paths if len(paths) > 1 else paths[0]
    img = LoadComplexSAR()(dict(img_path=key))['img']
    label = read_raster(label_path)
    if label.shape[2] != 1:
        raise ValueError(f'Label raster {label_path!r} must have one band of '
                         f'class indices, found {label.shape[2]}.')
    label = label[..., 0].astype(np.int64)
    if label.shape != img.shape[:2]:
        raise ValueError(f'Label {label_path!r} is {label.shape} but the '
                         f'image {paths} is {img.shape[:2]}.')
    if zero_is_class:
        out = label.copy()
    else:
        out = label - 1
        out[label == 0] = 255
    bad = np.setdiff1d(np.unique(out), list(range(NUM_CLASSES)) + [255])
    if bad.size:
        raise ValueError(f'Label {label_path!r} holds values outside the '
                         f'{NUM_CLASSES} SARSegL1 classes: {bad.tolist()} '
                         '(after mapping).')
    return img, out.astype(np.uint8)


def convert(scenes: Sequence[Tuple[str, Sequence[str], str]], out_dir: str,
            size: int = 500, overlap: int = 200, train_fraction: float = 0.8,
            seed: int = 0, zero_is_class: bool = False,
            overwrite: bool = False) -> dict:
    """Tile every scene and write the split; returns tile counts."""
    from PIL import Image

    from mmringmoe.datasets.transforms.raster_io import write_raster
    tiles = []  # (name, scene index, y, x)
    loaded = []
    for s, (name, images, label) in enumerate(scenes):
        img, lbl = load_scene(images, label, zero_is_class)
        loaded.append((img, lbl))
        for y, x in tile_boxes(*lbl.shape, size, overlap):
            tiles.append((f'{name}_{y}_{x}', s, y, x))
    train, test = split_indices(len(tiles), train_fraction, seed)
    for split, idx in (('train', train), ('test', test)):
        os.makedirs(osp.join(out_dir, 'img_dir', split), exist_ok=True)
        os.makedirs(osp.join(out_dir, 'ann_dir', split), exist_ok=True)
        for i in idx:
            name, s, y, x = tiles[i]
            img_out = osp.join(out_dir, 'img_dir', split, name + '.tif')
            ann_out = osp.join(out_dir, 'ann_dir', split, name + '.png')
            if not overwrite and (osp.exists(img_out) or osp.exists(ann_out)):
                raise FileExistsError(f'{img_out} exists; use --overwrite.')
            img, lbl = loaded[s]
            write_raster(img_out, np.ascontiguousarray(
                img[y:y + size, x:x + size]), overwrite=overwrite)
            Image.fromarray(lbl[y:y + size, x:x + size]).save(ann_out)
    os.makedirs(osp.join(out_dir, 'splits'), exist_ok=True)
    for split, idx in (('train', train), ('test', test)):
        with open(osp.join(out_dir, 'splits', f'{split}.txt'), 'w') as f:
            f.writelines(f'{tiles[i][0]}\n' for i in idx)
    return dict(total=len(tiles), train=len(train), test=len(test))


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--scene', nargs='+', action='append', required=True,
                        metavar='NAME IMAGE... LABEL')
    parser.add_argument('--out-dir', default='data/SARSegL1')
    parser.add_argument('--size', type=int, default=500)
    parser.add_argument('--overlap', type=int, default=200)
    parser.add_argument('--train-fraction', type=float, default=0.8)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--zero-is-class', action='store_true')
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    scenes = []
    for s in args.scene:
        if len(s) not in (3, 6):
            parser.error('--scene takes NAME, one image or four polarisation '
                         f'images (HH HV VH VV), and LABEL; got {s}')
        scenes.append((s[0], s[1:-1], s[-1]))
    counts = convert(scenes, args.out_dir, args.size, args.overlap,
                     args.train_fraction, args.seed, args.zero_is_class,
                     args.overwrite)
    print(f'{counts["total"]} tiles: {counts["train"]} train, '
          f'{counts["test"]} test -> {args.out_dir}')
    return counts


if __name__ == '__main__':
    main()
