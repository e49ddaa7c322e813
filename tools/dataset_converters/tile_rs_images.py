"""Cut large rasters into RingMOSS pretraining tiles (paper Appendix B.1).

    python tools/dataset_converters/tile_rs_images.py INPUT [INPUT ...]
        [--out-dir DIR] [--size 192] [--step 64] [--max-nodata 0.3]
        [--pad] [--nodata-fallback zero_border|none] [--border-mode edge|any]

INPUT is a raster file (any GDAL format, or ``.npy``) or a folder of rasters.
Each scene is read window by window with rasterio on the shared window grid
(``mmringmoe.datasets.windows``: the last row and column of windows are
aligned to the scene border, so every pixel is in some tile). A window whose
invalid fraction exceeds ``--max-nodata`` is dropped; invalid pixels are the
file's declared nodata (any value, NaN included), its mask or alpha band and
NaN/Inf, or, only for files that declare none of these, the zero border
(all-zero pixels connected to the scene edge; ``--nodata-fallback none`` turns
that off).

Tiles keep the dtype and band count of their source (CInt16 SAR stays CInt16)
and are GeoTIFFs (deflate) carrying the source CRS, their window's transform
and the nodata value (a mask the nodata value cannot express is stored as the
tile's internal mask band). They are written as ``<stem>_r<row>_c<col>.tif``
into ``--out-dir``, by default a new folder ``<stem>_tiles`` beside each
input. Inputs are never written to: an output path that exists or is an input
is refused. A scene smaller than one window is refused before anything is
written (exit status 2, one line naming both sizes) unless ``--pad`` asks to
pad it with nodata; a run that keeps no tile at all exits with status 1.
"""
import argparse
import os
import os.path as osp
import sys

from mmringmoe.datasets.tiling import (MAX_NODATA, iter_raster_tiles,
                                       tile_name, write_tile)
from mmringmoe.datasets.transforms.normalize import list_rasters
from mmringmoe.datasets.transforms.raster_io import raster_info
from mmringmoe.datasets.windows import SceneTooSmallError, window_grid
from mmringmoe.visualization.progress import progress


def tile_file(path, out_dir=None, size=192, step=64, max_nodata=MAX_NODATA,
              pad=False, nodata_fallback='zero_border', border_mode='edge',
              inputs=(), quiet=None, bands=None):
    """Tile one raster; returns a report dict (``kept``, ``dropped``,
    ``total``, ``out_dir``, ``mask_source``, ...)."""
    stem = osp.splitext(osp.basename(path))[0]
    out_dir = out_dir or osp.join(osp.dirname(osp.abspath(path)),
                                  f'{stem}_tiles')
    protected = {osp.abspath(p) for p in inputs} | {osp.abspath(path)}
    report = {}
    tiles = iter_raster_tiles(path, size, step, max_nodata,
                              'pad' if pad else 'error', nodata_fallback,
                              border_mode, report=report,
                              expected_bands=bands)
    for tile in progress(tiles, desc=f'{stem} (tiles kept)', unit='tile',
                         quiet=quiet):
        out = osp.join(out_dir, tile_name(stem, tile))
        if osp.abspath(out) in protected:
            raise FileExistsError(f'refusing to overwrite input {out!r}')
        os.makedirs(out_dir, exist_ok=True)
        write_tile(out, tile)
    return dict(file=path, out_dir=out_dir, kept=report['kept'],
                dropped=report['dropped'], total=report['windows'],
                height=report['height'], width=report['width'],
                mask_source=report['mask_source'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('inputs', nargs='+')
    parser.add_argument('--out-dir')
    parser.add_argument('--size', type=int, default=192)
    parser.add_argument('--step', type=int, default=64,
                        help='stride between windows (<= --size)')
    parser.add_argument('--max-nodata', type=float, default=MAX_NODATA,
                        help='drop tiles with a larger fraction of invalid '
                        '(nodata / masked / zero-border) pixels')
    parser.add_argument('--pad', action='store_true',
                        help='pad a scene smaller than one window with '
                        'nodata instead of refusing it')
    parser.add_argument('--nodata-fallback', default='zero_border',
                        choices=('zero_border', 'none'),
                        help='for files that declare no nodata/mask/alpha')
    parser.add_argument('--border-mode', choices=('edge', 'any'),
                        default='edge')
    parser.add_argument('--bands', type=int,
                        help='band count every input must have (e.g. 4 for '
                        'MS); a band GDAL declares alpha is then kept as data '
                        'when the file has exactly this many bands')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar (it is shown only on a terminal)')
    args = parser.parse_args(argv)
    files = []
    for inp in args.inputs:
        if osp.isdir(inp):
            found = list_rasters(inp)
            if not found:
                parser.error(f'no rasters in folder {inp!r}')
            files += found
        elif osp.isfile(inp):
            files.append(inp)
        else:
            parser.error(f'input not found: {inp!r}')
    # refuse small scenes before writing anything
    too_small = []
    for f in files:
        try:
            info = raster_info(f)
        except (ValueError, FileNotFoundError) as err:
            print(f'error: {err}', file=sys.stderr)
            sys.exit(1)
        try:
            window_grid(info.height, info.width, args.size, args.step,
                        'pad' if args.pad else 'error')
        except SceneTooSmallError as err:
            too_small.append(f'{f}: {err}')
    if too_small:
        for line in too_small:
            print(line, file=sys.stderr)
        sys.exit(2)
    reports = []
    for f in files:
        try:
            rep = tile_file(f, args.out_dir, args.size, args.step,
                            args.max_nodata, args.pad, args.nodata_fallback,
                            args.border_mode, inputs=files, quiet=args.quiet,
                            bands=args.bands)
        except (ValueError, FileExistsError, FileNotFoundError) as err:
            print(f'error: {err}', file=sys.stderr)
            sys.exit(1)
        reports.append(rep)
        print(f'{f} ({rep["height"]} x {rep["width"]} px): {rep["kept"]} '
              f'tiles kept, {rep["dropped"]} dropped (invalid > '
              f'{args.max_nodata:.0%} by {rep["mask_source"]}) of '
              f'{rep["total"]} windows -> {rep["out_dir"]}')
    kept = sum(r['kept'] for r in reports)
    dropped = sum(r['dropped'] for r in reports)
    print(f'total: {len(files)} rasters, {kept} tiles kept, {dropped} dropped')
    if kept == 0:
        print('no tile kept: every window is mostly nodata', file=sys.stderr)
        sys.exit(1)
    return dict(files=reports, kept=kept, dropped=dropped)


if __name__ == '__main__':
    main()
