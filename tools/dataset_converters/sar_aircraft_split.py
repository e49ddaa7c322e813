"""Write the 7:1:2 train/val/test split of SAR-AIRcraft-1.0 (paper B.5.4).

Usage::

    python tools/dataset_converters/sar_aircraft_split.py data/SAR-AIRcraft-1.0
    # reads   data/SAR-AIRcraft-1.0/Annotations/*.xml
    # writes  data/SAR-AIRcraft-1.0/ImageSets/Main/{train,val,test}.txt

Use it when your copy of the data set has no ``ImageSets/Main`` split files
(if it has them, keep the official ones). The split is a seeded shuffle, so
it is reproducible; every XML is parsed first with the same checks the
training data set applies (unknown class, degenerate box, box outside the
image), so a bad file fails here, naming the file and the object. Existing
split files are never overwritten.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from mmringmoe.datasets.det_datasets import (split_ids,  # noqa: E402
                                             voc_ids)


def validate(root, ids):
    """Parse every id with ``SARAircraftDataset``; return the box count."""
    import tempfile
    from mmringmoe.datasets.det_datasets import SARAircraftDataset
    with tempfile.NamedTemporaryFile('w', suffix='.txt') as f:
        f.write('\n'.join(ids) + '\n')
        f.flush()
        ds = SARAircraftDataset(
            data_root=root, ann_file=f.name, test_mode=True, pipeline=[],
            lazy_init=False)
        return sum(len(ds.get_data_info(i)['instances'])
                   for i in range(len(ds)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='SAR-AIRcraft-1.0 data root')
    parser.add_argument('--ratios', type=int, nargs=3, default=[7, 1, 2])
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    ids = voc_ids(osp.join(args.root, 'Annotations'))
    num_boxes = validate(args.root, ids)
    out_dir = osp.join(args.root, 'ImageSets', 'Main')
    names = ('train', 'val', 'test')
    for name in names:
        if osp.exists(osp.join(out_dir, f'{name}.txt')):
            raise FileExistsError(
                f'{osp.join(out_dir, name + ".txt")}: split file exists; '
                'remove it first to write a new split')
    os.makedirs(out_dir, exist_ok=True)
    for name, part in zip(names, split_ids(ids, args.ratios, args.seed)):
        with open(osp.join(out_dir, f'{name}.txt'), 'w') as f:
            f.write('\n'.join(part) + '\n')
        print(f'{name}: {len(part)} images')
    print(f'{len(ids)} images, {num_boxes} boxes checked')


if __name__ == '__main__':
    main()
