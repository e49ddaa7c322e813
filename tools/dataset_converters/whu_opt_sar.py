"""Crop WHU-OPT-SAR (B.5.3) into 256 x 256 patches, seeded 8:2 split.

The release has 100 co-registered 5556 x 3704 scenes::

    <src>/optical/<scene>.tif   # R, G, B, NIR
    <src>/sar/<scene>.tif       # 1 band amplitude
    <src>/lbl/<scene>.tif       # 0 unlabelled, 10 farmland, 20 city, 30 village,
                                # 40 water, 50 forest, 60 road, 70 others

Following the official guidelines, scenes are cut into 256 x 256 patches
without overlap (partial border patches dropped) and the patches are split
8:2 at random (``--seed``). Optical patches keep ``--opt-bands`` (default
R, G, B: RingMoE-Opt takes three bands). Output, read by
``mmringmoe.WHUOptSARDataset``::

    <out>/{optical,sar}/{train,test}/<scene>_<row>_<col>.tif
    <out>/lbl/{train,test}/<scene>_<row>_<col>.png   # 0..6, 255 unlabelled

    python tools/dataset_converters/whu_opt_sar.py data/whu-opt-sar-raw \
        --out-dir data/WHU-OPT-SAR
"""
import argparse
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np

LABEL_VALUES = (10, 20, 30, 40, 50, 60, 70)


def remap_labels(lbl: np.ndarray, path: str = '') -> np.ndarray:
    out = np.full(lbl.shape, 255, np.uint8)
    for i, v in enumerate(LABEL_VALUES):
        out[lbl == v] = i
    bad = np.setdiff1d(np.unique(lbl), (0, ) + LABEL_VALUES)
    if bad.size:
        raise ValueError(f'WHU-OPT-SAR label {path!r} holds values '
                         f'{bad.tolist()}; expected 0 and {LABEL_VALUES}.')
    return out


def convert(src: str, out_dir: str, size: int = 256,
            train_fraction: float = 0.8, seed: int = 0,
            opt_bands: Sequence[int] = (0, 1, 2),
            overwrite: bool = False) -> dict:
    from PIL import Image

    from mmringmoe.datasets.transforms.raster_io import (read_raster,
                                                          write_raster)
    scenes = sorted(
        osp.splitext(f)[0] for f in os.listdir(osp.join(src, 'optical'))
        if f.lower().endswith(('.tif', '.tiff')))
    if not scenes:
        raise FileNotFoundError(f'No optical scenes in {src}/optical')
    patches = []
    for scene in scenes:
        paths = {k: osp.join(src, k, scene + '.tif')
                 for k in ('optical', 'sar', 'lbl')}
        for k, p in paths.items():
            if not osp.isfile(p):
                raise FileNotFoundError(
                    f'Scene {scene!r}: missing {k} file {p!r} (pairs need '
                    'optical, sar and lbl with the same name).')
        opt = read_raster(paths['optical'])[..., list(opt_bands)]
        sar = read_raster(paths['sar'])
        lbl = remap_labels(read_raster(paths['lbl'])[..., 0], paths['lbl'])
        if not opt.shape[:2] == sar.shape[:2] == lbl.shape:
            raise ValueError(f'Scene {scene!r}: optical {opt.shape[:2]}, sar '
                             f'{sar.shape[:2]}, lbl {lbl.shape} differ.')
        h, w = lbl.shape
        for y in range(0, h - size + 1, size):
            for x in range(0, w - size + 1, size):
                patches.append((scene, y, x, opt, sar, lbl))
    order = np.random.default_rng(seed).permutation(len(patches))
    n_train = int(round(train_fraction * len(patches)))
    splits = dict(train=sorted(order[:n_train]), test=sorted(order[n_train:]))
    for split, idx in splits.items():
        for k in ('optical', 'sar', 'lbl'):
            os.makedirs(osp.join(out_dir, k, split), exist_ok=True)
        for i in idx:
            scene, y, x, opt, sar, lbl = patches[i]
            name = f'{scene}_{y // size}_{x // size}'
            outs = (osp.join(out_dir, 'optical', split, name + '.tif'),
                    osp.join(out_dir, 'sar', split, name + '.tif'),
                    osp.join(out_dir, 'lbl', split, name + '.png'))
            if not overwrite and any(osp.exists(o) for o in outs):
                raise FileExistsError(f'{outs[0]} exists; use --overwrite.')
            win = (slice(y, y + size), slice(x, x + size))
            write_raster(outs[0], np.ascontiguousarray(opt[win]), overwrite)
            write_raster(outs[1], np.ascontiguousarray(sar[win]), overwrite)
            Image.fromarray(lbl[win]).save(outs[2])
    return dict(total=len(patches), train=len(splits['train']),
                test=len(splits['test']))


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src')
    parser.add_argument('--out-dir', default='data/WHU-OPT-SAR')
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--train-fraction', type=float, default=0.8)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--opt-bands', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    counts = convert(args.src, args.out_dir, args.size, args.train_fraction,
                     args.seed, args.opt_bands, args.overwrite)
    print(f'{counts["total"]} patches: {counts["train"]} train, '
          f'{counts["test"]} test -> {args.out_dir}')
    return counts


if __name__ == '__main__':
    main()
