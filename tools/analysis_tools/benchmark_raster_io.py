"""Peak memory of the tiler against the scene size (issue 12, "Memory").

    python tools/analysis_tools/benchmark_raster_io.py [--sizes 2048 8192]
        [--bands 4] [--tile-size 192] [--step 192] [--no-nodata] [--keep DIR]

For each size a 4-band uint16 GeoTIFF scene (deflate, 256 x 256 internal
tiles, nodata 65535 on a left strip of 1/8 of the width) is generated in a
temporary folder by a child process writing 256-row strips, so the generator
never holds the scene. Then ``tools/dataset_converters/tile_rs_images.py``
tiles it in another child process, whose peak resident set size is read
from ``os.wait4`` (``ru_maxrss``) for that child alone (ru_maxrss is
inherited across fork/exec, so this process stays small). The child also
reports its peak RSS after its imports (``mmringmoe`` pulls torch, mmcv,
...), before the first read, so the tiler's own increment is printed too. Printed: one
line per size (peak RSS, RSS after imports, increment, tiles kept/dropped,
wall time) and the ratios largest / smallest size; the tiler reads windows,
so the goal is a peak ratio of at most 1.3.

``--no-nodata`` writes the scenes without a nodata declaration and a zero
left strip, so the tiler uses its zero-border fallback (a bit map of the
scene, H x W / 4 bytes). Linux only (``ru_maxrss`` in KiB).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

_CHILD = r'''
import json, resource, sys
sys.path.insert(0, {tools!r})
import tile_rs_images
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = tile_rs_images.main({argv!r})
print('@@' + json.dumps(dict(before_kib=before, kept=out['kept'],
                             dropped=out['dropped'])))
'''


def make_scene(path: str, size: int, bands: int = 4, nodata: bool = True,
               strip: int = 256, seed: int = 0):
    """Write a ``size`` x ``size`` ``bands``-band uint16 GeoTIFF strip by
    strip (peak memory one strip). Values: a smooth ramp plus noise in
    200..4000; the left ``size // 8`` columns hold 65535 (declared nodata)
    or, with ``nodata=False``, 0 (undeclared: the zero border)."""
    import rasterio
    from rasterio.transform import from_origin
    rng = np.random.default_rng(seed)
    fill = 65535 if nodata else 0
    profile = dict(driver='GTiff', height=size, width=size, count=bands,
                   dtype='uint16', compress='deflate', predictor=2,
                   tiled=True, blockxsize=256, blockysize=256,
                   crs='EPSG:32650', transform=from_origin(
                       500000.0, 4000000.0, 2.0, 2.0))
    if nodata:
        profile['nodata'] = fill
    cols = np.arange(size, dtype=np.float32)
    with rasterio.open(path, 'w', **profile) as dst:
        for r in range(0, size, strip):
            h = min(strip, size - r)
            rows = np.arange(r, r + h, dtype=np.float32)[:, None]
            base = 200 + 3000 * (rows + cols[None]) / (2 * size)
            data = np.empty((bands, h, size), np.uint16)
            for b in range(bands):
                data[b] = base + rng.integers(0, 800, (h, size),
                                              dtype=np.uint16) + 50 * b
            data[:, :, :size // 8] = fill
            dst.write(data, window=rasterio.windows.Window(0, r, size, h))


def run_tiler(scene: str, out_dir: str, tile_size: int, step: int) -> dict:
    """Tile ``scene`` in a child process; its own peak RSS via wait4."""
    argv = [scene, '--out-dir', out_dir, '--size', str(tile_size), '--step',
            str(step)]
    code = _CHILD.format(tools=osp.join(ROOT, 'tools', 'dataset_converters'),
                         argv=argv)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, '-c', code],
                            stdout=subprocess.PIPE, cwd=ROOT, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f'tiler failed on {scene} (exit '
                           f'{proc.returncode}):\n{stdout}')
    line = [ln for ln in stdout.splitlines() if ln.startswith('@@')][-1]
    res = json.loads(line[2:])
    res.update(peak_kib=usage.ru_maxrss, wall_s=wall)
    return res


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[2048, 8192])
    parser.add_argument('--bands', type=int, default=4)
    parser.add_argument('--tile-size', type=int, default=192)
    parser.add_argument('--step', type=int, default=192)
    parser.add_argument('--no-nodata', action='store_true',
                        help='undeclared zero border (zero-border fallback)')
    parser.add_argument('--keep', help='write scenes and tiles here instead '
                        'of a temporary folder (kept)')
    parser.add_argument('--make-scene', nargs=4, help=argparse.SUPPRESS,
                        metavar=('PATH', 'SIZE', 'BANDS', 'NODATA'))
    args = parser.parse_args(argv)
    if args.make_scene:
        path, size, bands, nodata = args.make_scene
        make_scene(path, int(size), int(bands), bool(int(nodata)))
        return None
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or tmp
        os.makedirs(work, exist_ok=True)
        for size in args.sizes:
            scene = osp.join(work, f'scene_{size}.tif')
            # in a child of its own: ru_maxrss is inherited across fork and
            # exec, so this process must stay small for the tiler's figure
            subprocess.run([sys.executable, osp.abspath(__file__),
                            '--make-scene', scene, str(size),
                            str(args.bands), str(int(not args.no_nodata))],
                           check=True)
            res = run_tiler(scene, osp.join(work, f'tiles_{size}'),
                            args.tile_size, args.step)
            res['scene_mib'] = size * size * args.bands * 2 / 2**20
            results[size] = res
            print(f'{size} x {size} x {args.bands} uint16 '
                  f'({res["scene_mib"]:.0f} MiB in memory): peak RSS '
                  f'{res["peak_kib"] / 1024:.1f} MiB, after imports '
                  f'{res["before_kib"] / 1024:.1f} MiB, tiler increment '
                  f'{(res["peak_kib"] - res["before_kib"]) / 1024:.1f} MiB; '
                  f'{res["kept"]} tiles kept, {res["dropped"]} dropped, '
                  f'{res["wall_s"]:.1f} s', flush=True)
    lo, hi = results[min(args.sizes)], results[max(args.sizes)]
    ratio = hi['peak_kib'] / lo['peak_kib']
    inc_lo = max(lo['peak_kib'] - lo['before_kib'], 1)
    inc_hi = max(hi['peak_kib'] - hi['before_kib'], 1)
    print(f'peak RSS ratio {max(args.sizes)} / {min(args.sizes)}: '
          f'{ratio:.3f} (goal <= 1.3); tiler increment ratio '
          f'{inc_hi / inc_lo:.2f} ({inc_lo / 1024:.1f} -> '
          f'{inc_hi / 1024:.1f} MiB) for a '
          f'{(max(args.sizes) / min(args.sizes))**2:.0f}x larger scene')
    return dict(results=results, ratio=ratio)


if __name__ == '__main__':
    main()
