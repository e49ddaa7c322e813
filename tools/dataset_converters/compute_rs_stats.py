"""Per-band mean/std of every raster in a folder, for ``NormalizeRS``.

    python tools/dataset_converters/compute_rs_stats.py FOLDER [--out stats.json]
        [--modality opt|ms|sar_l1|sar_l2] [--nodata-fallback none|zero_border]

If FOLDER has modality sub-folders (``opt``, ``ms``, ``sar_l1``, ``sar_l2``),
statistics are computed per modality; otherwise for FOLDER as a whole (name it
with ``--modality``). With a modality, every file must have its band count
(opt 3, ms 4, sar_l1 8 real = 4 complex, sar_l2 1): a file with another count
stops the tool with one line naming it (exit status 1), since the pipeline
would not read it as the statistics did.

Files are read window by window with rasterio (bounded memory) and only valid
pixels count: declared nodata, mask/alpha bands and NaN/Inf are left out (the
zero-border heuristic only with ``--nodata-fallback zero_border``, for files
that declare nothing). SAR-L1 folders also get the mean/std of the power in dB
(the pretraining target scale) over the valid pixels of positive power. The
JSON goes to ``FOLDER/rs_stats.json`` unless ``--out`` says otherwise; an
existing file is not replaced without ``--force``.
"""
import argparse
import json
import os.path as osp
import sys

from mmringmoe.datasets.transforms.normalize import compute_folder_stats
from mmringmoe.datasets.transforms.raster_io import MODALITY_CHANNELS


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('folder')
    parser.add_argument('--modality', choices=sorted(MODALITY_CHANNELS))
    parser.add_argument('--out', help='JSON file (default FOLDER/rs_stats.json)')
    parser.add_argument('--force', action='store_true',
                        help='replace an existing output file')
    parser.add_argument('--nodata-fallback', default='none',
                        choices=('none', 'zero_border'),
                        help='mask the zero border of files that declare no '
                        'nodata/mask/alpha (as the loaders\' nodata_fallback)')
    parser.add_argument('--collapse-identical-bands', action='store_true',
                        help='for a 1-band modality (sar_l2), read files '
                        'whose bands are all identical (grey stored as RGB) '
                        'as one band, as LoadRSImageFromFile('
                        'collapse_identical_bands=True) does; differing '
                        'bands are refused')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar (it is shown only on a terminal)')
    args = parser.parse_args(argv)
    if not osp.isdir(args.folder):
        parser.error(f'not a folder: {args.folder!r}')
    try:
        stats = compute_folder_stats(args.folder, args.modality,
                                     args.nodata_fallback,
                                     args.collapse_identical_bands,
                                     args.quiet)
    except (ValueError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(1)
    out = args.out or osp.join(args.folder, 'rs_stats.json')
    if osp.exists(out) and not args.force:
        print(f'{out} exists; use --force to replace it', file=sys.stderr)
        print(json.dumps(stats, indent=2))
        return stats
    with open(out, 'w') as f:
        json.dump(stats, f, indent=2)
    for name, st in stats.items():
        print(f'{name}: {st["num_files"]} files, {st["num_bands"]} bands, '
              f'{st["num_pixels"]} valid pixels ({st["num_invalid_pixels"]} '
              f'nodata left out), mean {[round(v, 3) for v in st["mean"]]}, '
              f'std {[round(v, 3) for v in st["std"]]}')
    print(f'wrote {out}')
    return stats


if __name__ == '__main__':
    main()
