"""Seeded per-class train/test split of a scene classification folder.

Appendix B.5.1: NWPU-RESISC45 uses 10% of every class for training, AID 20%,
the rest for testing. The data sets ship as one folder per class
(``<root>/<class>/<image>``); this writes mmpretrain ``CustomDataset``
annotation files::

Default ``<out>``: ``<root>/../splits/<root name>_tr<percent>``, the path the
configs read (``data/splits/nwpu-resisc45_tr10/train.txt``)::

    <out>/classes.txt     one class name per line (sorted, = label index)
    <out>/train.txt       "<class>/<image> <label>" per line
    <out>/test.txt

The same seed always gives the same split: files are sorted before a
``numpy.random.default_rng(seed)`` permutation per class, and each class
keeps ``round(ratio * n)`` (at least 1) training images.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp')


def scan_class_folders(root: str,
                       extensions: Sequence[str] = IMG_EXTENSIONS
                       ) -> Dict[str, List[str]]:
    """``{class: sorted relative image paths}`` of a class-per-folder tree."""
    if not osp.isdir(root):
        raise FileNotFoundError(f'Scene classification root not found: '
                                f'{root!r}')
    classes = sorted(d for d in os.listdir(root)
                     if osp.isdir(osp.join(root, d)))
    if not classes:
        raise ValueError(f'{root!r} holds no class folders '
                         '(expected <root>/<class>/<image>).')
    out = {}
    for c in classes:
        files = sorted(
            f for f in os.listdir(osp.join(root, c))
            if f.lower().endswith(tuple(extensions)))
        if not files:
            raise ValueError(f'Class folder {osp.join(root, c)!r} holds no '
                             f'images with extensions {tuple(extensions)}.')
        out[c] = [f'{c}/{f}' for f in files]
    return out


def split_per_class(files: Dict[str, List[str]], train_ratio: float,
                    seed: int = 0
                    ) -> Tuple[List[Tuple[str, int]], List[Tuple[str, int]]]:
    """Split each class by ``train_ratio``; returns (train, test) lists of
    ``(relative path, label)``."""
    if not 0 < train_ratio < 1:
        raise ValueError(f'train_ratio must lie in (0, 1), got {train_ratio}')
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label, c in enumerate(sorted(files)):
        items = sorted(files[c])
        n_train = max(1, int(round(train_ratio * len(items))))
        if n_train >= len(items):
            raise ValueError(f'Class {c!r} has {len(items)} images: too few '
                             f'for a {train_ratio:.0%} training split.')
        order = rng.permutation(len(items))
        train += [(items[i], label) for i in sorted(order[:n_train])]
        test += [(items[i], label) for i in sorted(order[n_train:])]
    return train, test


def write_split(root: str, out_dir: str, train_ratio: float, seed: int = 0,
                overwrite: bool = False) -> Dict[str, int]:
    """Scan ``root``, split, write ``classes.txt``, ``train.txt`` and
    ``test.txt`` into ``out_dir``; returns the sample counts."""
    files = scan_class_folders(root)
    train, test = split_per_class(files, train_ratio, seed)
    os.makedirs(out_dir, exist_ok=True)
    targets = {name: osp.join(out_dir, name)
               for name in ('classes.txt', 'train.txt', 'test.txt')}
    if not overwrite:
        existing = [p for p in targets.values() if osp.exists(p)]
        if existing:
            raise FileExistsError(f'{existing} exist; pass overwrite=True '
                                  '(--overwrite) to replace them.')
    with open(targets['classes.txt'], 'w') as f:
        f.writelines(f'{c}\n' for c in sorted(files))
    for name, items in (('train.txt', train), ('test.txt', test)):
        with open(targets[name], 'w') as f:
            f.writelines(f'{p} {label}\n' for p, label in items)
    return dict(classes=len(files), train=len(train), test=len(test))


def read_split(path: str) -> List[Tuple[str, int]]:
    with open(path) as f:
        return [(p, int(label)) for p, label in
                (line.rsplit(' ', 1) for line in f.read().splitlines() if line)]


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, int]:
    import argparse
    parser = argparse.ArgumentParser(
        description='Seeded per-class train/test split for NWPU-RESISC45 '
        '(--train-ratio 0.1) and AID (--train-ratio 0.2).')
    parser.add_argument('root', help='folder with one sub-folder per class')
    parser.add_argument('--train-ratio', type=float, required=True)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out-dir', default=None,
                        help='default: <root>/../splits/<root name>_tr<percent>'
                        ' (e.g. data/splits/nwpu-resisc45_tr10)')
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    root = osp.abspath(args.root.rstrip('/'))
    out_dir = args.out_dir or osp.join(
        osp.dirname(root), 'splits', f'{osp.basename(root).lower()}_tr'
        f'{int(round(args.train_ratio * 100))}')
    counts = write_split(args.root, out_dir, args.train_ratio, args.seed,
                         args.overwrite)
    print(f'{counts["classes"]} classes: {counts["train"]} train, '
          f'{counts["test"]} test images -> {out_dir}')
    return counts


__all__ = ['scan_class_folders', 'split_per_class', 'write_split',
           'read_split', 'main']
