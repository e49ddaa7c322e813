"""Crop WHU-OPT-SAR (B.5.3) into 256 x 256 patches, seeded 8:2 split.

The release has 100 co-registered 5556 x 3704 scenes::

    <src>/optical/<scene>.tif   # R, G, B, NIR
    <src>/sar/<scene>.tif       # 1 band amplitude
    <src>/lbl/<scene>.tif       # 0 unlabelled, 10 farmland, 20 city, 30 village,
                                # 40 water, 50 forest, 60 road, 70 others

Scenes are cut into 256 x 256 patches without overlap on the shared window
grid (``mmringmoe.datasets.windows``), read window by window with rasterio.
By default the last row and column of patches are aligned to the scene
border, so every pixel is in a patch (22 x 15 per 5556 x 3704 scene; the
aligned patches overlap their neighbour); ``--edge drop`` leaves the partial
border out as the official guidelines do (21 x 14). Patches are split 8:2 at
random (``--seed``). Optical patches keep ``--opt-bands`` (default R, G, B:
RingMoE-Opt takes three bands). Optical and SAR patches are GeoTIFFs in the
source dtype carrying the scene's CRS, their window's transform and the
nodata value; labels are PNG, pixel-aligned with them. Output, read by
``mmringmoe.WHUOptSARDataset`` (``<row>``, ``<col>``: pixel offsets of the
patch in the scene)::

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
EDGE_MODES = ('align', 'drop')


def remap_labels(lbl: np.ndarray, path: str = '') -> np.ndarray:
    out = np.full(lbl.shape, 255, np.uint8)
    for i, v in enumerate(LABEL_VALUES):
        out[lbl == v] = i
    bad = np.setdiff1d(np.unique(lbl), (0, ) + LABEL_VALUES)
    if bad.size:
        raise ValueError(f'WHU-OPT-SAR label {path!r} holds values '
                         f'{bad.tolist()}; expected 0 and {LABEL_VALUES}.')
    return out


def _tile(win, arr, meta):
    from mmringmoe.datasets.tiling import Tile
    return Tile(win.row_off, win.col_off, arr,
                1 - float(meta.valid_mask.mean()), meta.valid_mask, win,
                meta.crs, meta.transform, meta.nodata, meta.mask_source,
                meta.gcps, meta.gcp_crs, meta.rpcs)


def patch_windows(height: int, width: int, size: int = 256,
                  edge: str = 'align') -> list:
    """``size`` x ``size`` windows without overlap, row major
    (:func:`mmringmoe.datasets.windows.window_grid`); ``edge='align'`` adds
    the border-aligned last row/column (they overlap their neighbour, every
    pixel is covered), ``'drop'`` leaves the partial border out (the official
    guideline)."""
    from mmringmoe.datasets.windows import window_grid
    if edge not in EDGE_MODES:
        raise ValueError(f'edge must be one of {EDGE_MODES}, got {edge!r}')
    wins = window_grid(height, width, size, size)
    if edge == 'drop':
        wins = [w for w in wins
                if w.row_off % size == 0 and w.col_off % size == 0]
    return wins


def convert(src: str, out_dir: str, size: int = 256,
            train_fraction: float = 0.8, seed: int = 0,
            opt_bands: Sequence[int] = (0, 1, 2),
            overwrite: bool = False, edge: str = 'align',
            quiet: Optional[bool] = None) -> dict:
    from PIL import Image

    from mmringmoe.visualization.progress import progress

    from mmringmoe.datasets.tiling import write_tile
    from mmringmoe.datasets.transforms.raster_io import (
        raster_info, read_raster, read_raster_with_meta)
    from mmringmoe.datasets.windows import SceneTooSmallError
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
        infos = {k: raster_info(p) for k, p in paths.items()}
        sizes = {k: (i.height, i.width) for k, i in infos.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f'Scene {scene!r}: optical {sizes["optical"]}, '
                             f'sar {sizes["sar"]}, lbl {sizes["lbl"]} differ.')
        if max(opt_bands) >= infos['optical'].count or min(opt_bands) < 0:
            raise ValueError(f'{paths["optical"]!r} has '
                             f'{infos["optical"].count} bands; --opt-bands '
                             f'{list(opt_bands)} asks for others.')
        try:
            wins = patch_windows(*sizes['lbl'], size, edge)
        except SceneTooSmallError as err:
            raise SceneTooSmallError(f'WHU-OPT-SAR scene {scene!r}: '
                                     f'{err}') from None
        patches += [(scene, win, paths) for win in wins]
    order = np.random.default_rng(seed).permutation(len(patches))
    n_train = int(round(train_fraction * len(patches)))
    splits = dict(train=sorted(order[:n_train]), test=sorted(order[n_train:]))
    for split, idx in splits.items():
        for k in ('optical', 'sar', 'lbl'):
            os.makedirs(osp.join(out_dir, k, split), exist_ok=True)
        for i in progress(idx, desc=f'WHU-OPT-SAR {split}', unit='patch',
                          quiet=quiet):
            scene, win, paths = patches[i]
            name = f'{scene}_{win.row_off}_{win.col_off}'
            outs = (osp.join(out_dir, 'optical', split, name + '.tif'),
                    osp.join(out_dir, 'sar', split, name + '.tif'),
                    osp.join(out_dir, 'lbl', split, name + '.png'))
            if {osp.abspath(o) for o in outs} & {
                    osp.abspath(p) for p in paths.values()}:
                raise FileExistsError(f'refusing to overwrite an input with '
                                      f'{outs}')
            if not overwrite and any(osp.exists(o) for o in outs):
                raise FileExistsError(f'{outs[0]} exists; use --overwrite.')
            opt, opt_meta = read_raster_with_meta(paths['optical'],
                                                  window=tuple(win))
            opt = np.ascontiguousarray(opt[..., list(opt_bands)])
            sar, sar_meta = read_raster_with_meta(paths['sar'],
                                                  window=tuple(win))
            lbl = remap_labels(
                read_raster(paths['lbl'], window=tuple(win))[..., 0],
                paths['lbl'])
            write_tile(outs[0], _tile(win, opt, opt_meta), overwrite)
            write_tile(outs[1], _tile(win, sar, sar_meta), overwrite)
            Image.fromarray(lbl).save(outs[2])
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
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar (it is shown only on a terminal)')
    parser.add_argument('--edge', choices=EDGE_MODES, default='align',
                        help="'align': last patches aligned to the border "
                        "(every pixel in a patch); 'drop': partial border "
                        'patches left out (the official guideline)')
    args = parser.parse_args(argv)
    counts = convert(args.src, args.out_dir, args.size, args.train_fraction,
                     args.seed, args.opt_bands, args.overwrite, args.edge,
                     args.quiet)
    print(f'{counts["total"]} patches: {counts["train"]} train, '
          f'{counts["test"]} test -> {args.out_dir}')
    return counts


if __name__ == '__main__':
    main()
