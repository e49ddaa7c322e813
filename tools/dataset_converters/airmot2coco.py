"""Convert AIR-MOT / AIR-HSAO annotations to mmdet's CocoVideo json.

Usage::

    python tools/dataset_converters/airmot2coco.py data/AIR-MOT \
        --dataset air-mot --splits train test
    # writes data/AIR-MOT/annotations/{train,test}_cocoformat.json

The expected input layout (``<src>/<split>/<video>/img/000001.jpg`` and
``<src>/<split>/<video>/gt/gt.txt`` with ``frame,id,x,y,w,h,conf,class,
visibility`` lines) is documented in ``mmringmoe/datasets/mot_convert.py``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from mmringmoe.datasets.mot_convert import (DATASET_CLASSES,  # noqa: E402
                                            convert_split)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='data root holding <split>/<video>/')
    parser.add_argument('--dataset', choices=sorted(DATASET_CLASSES),
                        default='air-mot')
    parser.add_argument('--splits', nargs='+', default=['train', 'test'])
    parser.add_argument('--out-dir', default=None,
                        help='default: <src>/annotations')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar (shown only on a terminal)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out_dir = args.out_dir or osp.join(args.src, 'annotations')
    classes = DATASET_CLASSES[args.dataset]
    for split in args.splits:
        out_file = osp.join(out_dir, f'{split}_cocoformat.json')
        coco = convert_split(args.src, split, classes, out_file=out_file,
                             quiet=args.quiet)
        print(f'{split}: {len(coco["videos"])} videos, '
              f'{len(coco["images"])} frames, '
              f'{len(coco["annotations"])} boxes, '
              f'{coco["num_instances"]} tracks -> {out_file}')


if __name__ == '__main__':
    main()
