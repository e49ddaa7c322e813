"""DFC23 track 1 (B.5.3): rasterise roof polygons, seeded 7:2:1 split.

Release layout::

    <src>/train/rgb/<id>.tif      # 512 x 512 optical
    <src>/train/sar/<id>.tif      # 512 x 512 SAR amplitude
    <src>/roof_fine_train.json    # COCO polygons, 12 roof categories

Every polygon is filled with its category's index (1..12, in the order of
the json's ``categories`` sorted by id; later annotations paint over
earlier ones), background 0. Images are then split 7:2:1 into train / val /
test (``--seed``), as in the paper. Output, read by
``mmringmoe.DFC23Dataset``::

    <out>/{rgb,sar}/{train,val,test}/<id>.tif
    <out>/ann/{train,val,test}/<id>.png

    python tools/dataset_converters/dfc23.py data/dfc23-raw --out-dir data/DFC23
"""
import argparse
import json
import os
import os.path as osp
import shutil
from typing import Optional, Sequence

import numpy as np

NUM_ROOF_TYPES = 12


def rasterise(height: int, width: int, annotations, cat_to_label) -> np.ndarray:
    import cv2
    mask = np.zeros((height, width), np.uint8)
    for ann in annotations:
        seg = ann.get('segmentation')
        if not isinstance(seg, list):
            raise ValueError(f'annotation {ann.get("id")}: only polygon '
                             'segmentations are supported (no RLE).')
        label = cat_to_label[ann['category_id']]
        for poly in seg:
            pts = np.round(np.asarray(poly, np.float64).reshape(-1, 2))
            cv2.fillPoly(mask, [pts.astype(np.int32)], int(label))
    return mask


def convert(src: str, out_dir: str, ann_file: str = 'roof_fine_train.json',
            ratios: Sequence[float] = (0.7, 0.2, 0.1), seed: int = 0,
            overwrite: bool = False, quiet: Optional[bool] = None) -> dict:
    from PIL import Image

    from mmringmoe.visualization.progress import progress
    with open(osp.join(src, ann_file)) as f:
        coco = json.load(f)
    cats = sorted(coco['categories'], key=lambda c: c['id'])
    if len(cats) != NUM_ROOF_TYPES:
        raise ValueError(f'{ann_file}: expected {NUM_ROOF_TYPES} roof '
                         f'categories, found {len(cats)}')
    cat_to_label = {c['id']: i + 1 for i, c in enumerate(cats)}
    by_image = {}
    for ann in coco['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    images = sorted(coco['images'], key=lambda im: im['file_name'])
    order = np.random.default_rng(seed).permutation(len(images))
    n_train = int(round(ratios[0] * len(images)))
    n_val = int(round(ratios[1] * len(images)))
    splits = dict(train=order[:n_train], val=order[n_train:n_train + n_val],
                  test=order[n_train + n_val:])
    for split, idx in splits.items():
        for k in ('rgb', 'sar', 'ann'):
            os.makedirs(osp.join(out_dir, k, split), exist_ok=True)
        for i in progress(sorted(idx), desc=f'DFC23 {split}', quiet=quiet,
                          unit='image'):
            im = images[i]
            stem = osp.splitext(im['file_name'])[0]
            rgb = osp.join(src, 'train', 'rgb', im['file_name'])
            sar = osp.join(src, 'train', 'sar', im['file_name'])
            for k, p in (('optical', rgb), ('SAR', sar)):
                if not osp.isfile(p):
                    raise FileNotFoundError(f'DFC23 image {im["file_name"]!r}:'
                                            f' missing {k} file {p!r}.')
            outs = (osp.join(out_dir, 'rgb', split, stem + '.tif'),
                    osp.join(out_dir, 'sar', split, stem + '.tif'),
                    osp.join(out_dir, 'ann', split, stem + '.png'))
            if not overwrite and any(osp.exists(o) for o in outs):
                raise FileExistsError(f'{outs[0]} exists; use --overwrite.')
            shutil.copyfile(rgb, outs[0])
            shutil.copyfile(sar, outs[1])
            mask = rasterise(im['height'], im['width'],
                             by_image.get(im['id'], []), cat_to_label)
            Image.fromarray(mask).save(outs[2])
    return {k: len(v) for k, v in splits.items()}


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src')
    parser.add_argument('--out-dir', default='data/DFC23')
    parser.add_argument('--ann-file', default='roof_fine_train.json')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar (shown only on a terminal)')
    args = parser.parse_args(argv)
    counts = convert(args.src, args.out_dir, args.ann_file, seed=args.seed,
                     overwrite=args.overwrite, quiet=args.quiet)
    print(f'{counts} -> {args.out_dir}')
    return counts


if __name__ == '__main__':
    main()
