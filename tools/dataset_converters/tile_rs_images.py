"""Cut large rasters into RingMOSS pretraining tiles (paper Appendix B.1).

    python tools/dataset_converters/tile_rs_images.py INPUT [INPUT ...]
        [--out-dir DIR] [--size 192] [--step 64] [--max-border 0.3]
        [--border-mode edge|any]

INPUT is a raster file or a folder of rasters. Tiles keep the dtype and band
count of their source (complex-int16 SAR stays complex-int16) and are written
as ``<stem>_r<row>_c<col><ext>`` into ``--out-dir``, by default a new folder
``<stem>_tiles`` beside each input file. Inputs are never written to: the tool
refuses an output path that exists or is an input. Prints kept/dropped counts.
"""
import argparse
import os
import os.path as osp
import sys

from mmringmoe.datasets.tiling import tile_raster
from mmringmoe.datasets.transforms.normalize import list_rasters
from mmringmoe.datasets.transforms.raster_io import (read_raster,
                                                     write_complex_int16_tiff,
                                                     write_raster)


def _out_ext(path, img):
    ext = osp.splitext(path)[1].lower()
    if img.ndim == 4:
        return '.tif'
    if ext in ('.jpg', '.jpeg'):
        return '.png'  # never re-compress lossy
    return ext


def tile_file(path, out_dir=None, size=192, step=64, max_border=0.3,
              border_mode='edge', inputs=()):
    img = read_raster(path)
    stem = osp.splitext(osp.basename(path))[0]
    out_dir = out_dir or osp.join(osp.dirname(osp.abspath(path)),
                                  f'{stem}_tiles')
    os.makedirs(out_dir, exist_ok=True)
    kept, dropped = tile_raster(img, size, step, max_border, border_mode)
    ext = _out_ext(path, img)
    protected = {osp.abspath(p) for p in inputs} | {osp.abspath(path)}
    for tile in kept:
        out = osp.join(out_dir, f'{stem}_r{tile.row}_c{tile.col}{ext}')
        if osp.abspath(out) in protected:
            raise FileExistsError(f'refusing to overwrite input {out!r}')
        if tile.data.ndim == 4:
            write_complex_int16_tiff(out, tile.data)
        else:
            write_raster(out, tile.data)
    return dict(file=path, out_dir=out_dir, kept=len(kept), dropped=dropped,
                total=len(kept) + dropped)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('inputs', nargs='+')
    parser.add_argument('--out-dir')
    parser.add_argument('--size', type=int, default=192)
    parser.add_argument('--step', type=int, default=64)
    parser.add_argument('--max-border', type=float, default=0.3,
                        help='drop tiles with a larger black-border fraction')
    parser.add_argument('--border-mode', choices=('edge', 'any'),
                        default='edge')
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
    reports = []
    for f in files:
        rep = tile_file(f, args.out_dir, args.size, args.step,
                        args.max_border, args.border_mode, inputs=files)
        reports.append(rep)
        print(f'{f}: {rep["kept"]} tiles kept, {rep["dropped"]} dropped '
              f'(black border > {args.max_border:.0%}) of {rep["total"]} '
              f'windows -> {rep["out_dir"]}')
    kept = sum(r['kept'] for r in reports)
    dropped = sum(r['dropped'] for r in reports)
    print(f'total: {len(files)} rasters, {kept} tiles kept, {dropped} dropped')
    return dict(files=reports, kept=kept, dropped=dropped)


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
