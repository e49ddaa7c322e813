"""Tile SARSegL1 (B.5.2): 500 x 500 windows, overlap 200, seeded 8:2 split.

SARSegL1 holds two GF-3 fully polarimetric scenes (5456 x 4708 and
6192 x 4888). Windows come from the shared grid
(``mmringmoe.datasets.windows``): they start every 300 px (500 - 200) and the
last row and column are aligned to the scene border, so every pixel is in a
tile: 18 x 16 + 20 x 16 = 608 samples. ``--edge drop`` keeps only the windows
on the 300 px lattice, the paper's 540 samples (15 x 17 + 15 x 19), and leaves
the pixels past the last of them out::

    python tools/dataset_converters/sarsegl1.py \
        --scene guangzhou data/raw/gz/HH.tif data/raw/gz/HV.tif \
                data/raw/gz/VH.tif data/raw/gz/VV.tif data/raw/gz/label.png \
        --scene hangzhou data/raw/hz/image.tif data/raw/hz/label.tif \
        --out-dir data/SARSegL1

Each ``--scene`` is a name, the image (one 8-channel / 4-band complex file,
or four single-polarisation files HH HV VH VV, channels as
``mmringmoe.LoadComplexSAR`` gives them), and last the label raster. Labels
hold class indices; by default 0 is unlabelled and 1..5 are water,
vegetation, bare land, road, building (``--zero-is-class`` when 0..4 are the
classes). Scenes are read window by window with rasterio. Image tiles keep
the raw dtype (int16 / float32) as 8-channel GeoTIFF (HH, HV, VH, VV each
real then imaginary) carrying the scene's CRS, their window's transform and
the nodata value (mask band where needed); labels become PNG with 255 for
unlabelled, pixel-aligned with their image tile. Writes
``img_dir/{train,test}``, ``ann_dir/{train,test}`` and ``splits/*.txt``;
never overwrites existing tiles unless ``--overwrite``, never an input.
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np

NUM_CLASSES = 5
EDGE_MODES = ('align', 'drop')


def tile_boxes(height: int, width: int, size: int = 500, overlap: int = 200,
               edge: str = 'align') -> list:
    """Windows (:class:`mmringmoe.datasets.windows.Window`, row major) of a
    scene: stride ``size - overlap``; ``edge='align'`` adds the border-aligned
    last row/column (every pixel covered), ``'drop'`` keeps only windows on
    the stride lattice (the paper's counts)."""
    from mmringmoe.datasets.windows import window_grid
    stride = size - overlap
    if stride <= 0:
        raise ValueError(f'overlap {overlap} must be smaller than size {size}')
    if edge not in EDGE_MODES:
        raise ValueError(f'edge must be one of {EDGE_MODES}, got {edge!r}')
    wins = window_grid(height, width, size, stride)
    if edge == 'drop':
        wins = [w for w in wins
                if w.row_off % stride == 0 and w.col_off % stride == 0]
    return wins


def split_indices(n: int, train_fraction: float = 0.8, seed: int = 0
                  ) -> Tuple[List[int], List[int]]:
    """Seeded random split of ``range(n)`` into sorted train / test lists."""
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(train_fraction * n))
    return sorted(order[:n_train].tolist()), sorted(order[n_train:].tolist())


def check_scene(image_paths: Sequence[str], label_path: str):
    """Header checks (no pixel read): ``(height, width)`` of the scene.

    Raises:
        ValueError: 8-bit SAR, a channel count other than 8 (4 complex
            polarisations), files of different sizes or georeferencing, a
            label with more than one band.
    """
    from mmringmoe.datasets.transforms.raster_io import raster_info
    paths = list(image_paths)
    infos = [raster_info(p) for p in paths]
    want = 8 // len(paths)
    for p, i in zip(paths, infos):
        if 'complex' not in i.dtype and np.dtype(i.dtype).itemsize == 1:
            raise ValueError(f'{p!r}: found 8-bit data ({i.dtype}); SAR-L1 '
                             'expects 16-bit integer or complex values.')
        chans = i.count * (2 if 'complex' in i.dtype else 1)
        if chans != want:
            raise ValueError(f'{p!r}: {chans} real channels ({i.count} '
                             f'{i.dtype} bands), expected {want} (HH, HV, '
                             'VH, VV real/imaginary).')
        if (i.height, i.width, i.crs, i.transform) != (
                infos[0].height, infos[0].width, infos[0].crs,
                infos[0].transform):
            raise ValueError(f'SAR-L1 file {p!r} ({i.height} x {i.width}) is '
                             f'not co-registered with {paths[0]!r} '
                             f'({infos[0].height} x {infos[0].width}).')
    lbl = raster_info(label_path)
    if lbl.count != 1:
        raise ValueError(f'Label raster {label_path!r} must have one band of '
                         f'class indices, found {lbl.count}.')
    if (lbl.height, lbl.width) != (infos[0].height, infos[0].width):
        raise ValueError(f'Label {label_path!r} is {lbl.height} x '
                         f'{lbl.width} but the image {paths} is '
                         f'{infos[0].height} x {infos[0].width}.')
    return infos[0].height, infos[0].width


def read_window(image_paths: Sequence[str], label_path: str, win,
                zero_is_class: bool = False):
    """One window: ``(img (h, w, 8), GeoMeta of the image window, label
    (h, w) uint8 with 255 unlabelled)``."""
    from mmringmoe.datasets.transforms.raster_io import (
        complex_to_channels, read_raster, read_raster_with_meta)
    parts, metas = [], []
    for p in image_paths:
        arr, meta = read_raster_with_meta(p, window=tuple(win))
        parts.append(complex_to_channels(arr))
        metas.append(meta)
    if len({a.dtype for a in parts}) > 1:
        parts = [a.astype(np.float32) for a in parts]
    img = np.concatenate(parts, axis=2) if len(parts) > 1 else parts[0]
    valid = np.logical_and.reduce([m.valid_mask for m in metas])
    meta = metas[0]._replace(valid_mask=valid)
    label = read_raster(label_path, window=tuple(win))[..., 0].astype(
        np.int64)
    if zero_is_class:
        out = label.copy()
    else:
        out = label - 1
        out[label == 0] = 255
    bad = np.setdiff1d(np.unique(out), list(range(NUM_CLASSES)) + [255])
    if bad.size:
        raise ValueError(f'Label {label_path!r} holds values outside the '
                         f'{NUM_CLASSES} SARSegL1 classes: {bad.tolist()} '
                         f'(after mapping), in window {tuple(win)}.')
    return img, meta, out.astype(np.uint8)


def convert(scenes: Sequence[Tuple[str, Sequence[str], str]], out_dir: str,
            size: int = 500, overlap: int = 200, train_fraction: float = 0.8,
            seed: int = 0, zero_is_class: bool = False,
            overwrite: bool = False, edge: str = 'align',
            quiet: Optional[bool] = None) -> dict:
    """Tile every scene and write the split; returns tile counts."""
    from PIL import Image

    from mmringmoe.visualization.progress import progress

    from mmringmoe.datasets.tiling import Tile, write_tile
    from mmringmoe.datasets.windows import SceneTooSmallError
    tiles = []  # (name, scene index, window)
    inputs = set()
    for s, (name, images, label) in enumerate(scenes):
        inputs |= {osp.abspath(p) for p in list(images) + [label]}
        height, width = check_scene(images, label)
        try:
            wins = tile_boxes(height, width, size, overlap, edge)
        except SceneTooSmallError as err:
            raise SceneTooSmallError(f'SARSegL1 scene {name!r} '
                                     f'({images[0]}): {err}') from None
        for win in wins:
            tiles.append((f'{name}_{win.row_off}_{win.col_off}', s, win))
    train, test = split_indices(len(tiles), train_fraction, seed)
    for split, idx in (('train', train), ('test', test)):
        os.makedirs(osp.join(out_dir, 'img_dir', split), exist_ok=True)
        os.makedirs(osp.join(out_dir, 'ann_dir', split), exist_ok=True)
        for i in progress(idx, desc=f'SARSegL1 {split}', unit='tile',
                          quiet=quiet):
            name, s, win = tiles[i]
            img_out = osp.join(out_dir, 'img_dir', split, name + '.tif')
            ann_out = osp.join(out_dir, 'ann_dir', split, name + '.png')
            if {osp.abspath(img_out), osp.abspath(ann_out)} & inputs:
                raise FileExistsError(f'refusing to overwrite input '
                                      f'{img_out!r} / {ann_out!r}')
            if not overwrite and (osp.exists(img_out) or osp.exists(ann_out)):
                raise FileExistsError(f'{img_out} exists; use --overwrite.')
            _, images, label = scenes[s]
            img, meta, lbl = read_window(images, label, win, zero_is_class)
            write_tile(img_out, Tile(
                win.row_off, win.col_off, img,
                1 - float(meta.valid_mask.mean()), meta.valid_mask, win,
                meta.crs, meta.transform, meta.nodata, meta.mask_source,
                meta.gcps, meta.gcp_crs, meta.rpcs),
                overwrite=overwrite)
            Image.fromarray(lbl).save(ann_out)
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
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar (it is shown only on a terminal)')
    parser.add_argument('--edge', choices=EDGE_MODES, default='align',
                        help="'align': last windows aligned to the border "
                        "(every pixel in a tile); 'drop': only windows on the "
                        "stride lattice (the paper's 540 samples)")
    args = parser.parse_args(argv)
    scenes = []
    for s in args.scene:
        if len(s) not in (3, 6):
            parser.error('--scene takes NAME, one image or four polarisation '
                         f'images (HH HV VH VV), and LABEL; got {s}')
        scenes.append((s[0], s[1:-1], s[-1]))
    counts = convert(scenes, args.out_dir, args.size, args.overlap,
                     args.train_fraction, args.seed, args.zero_is_class,
                     args.overwrite, args.edge, args.quiet)
    print(f'{counts["total"]} tiles: {counts["train"]} train, '
          f'{counts["test"]} test -> {args.out_dir}')
    return counts


if __name__ == '__main__':
    main()
