"""Apply a model to a whole georeferenced scene (sliding windows, streamed).

    python tools/infer.py CONFIG CHECKPOINT INPUT [INPUT2] --out OUT
        [--crop 512] [--overlap 128] [--batch-size 4] [--device cpu]
        [--show PNG] [--probs] [--blend cosine|triangular|uniform]
        [--stats rs_stats.json] [--tta flip|flip4] [--bands 3,2,1]
        [--force] [--quiet]

    python tools/infer.py TRACK_CONFIG CHECKPOINT FRAMES_DIR/|VIDEO
        --out tracks.txt [--show-dir DIR] [--no-postprocess] [--force]

INPUT2 is the second date of a change detection pair; for the optical +
SAR-L2 fusion models give ``--sar SAR.tif`` (INPUT is the optical raster).
``--bands 4,3,2`` reads those 1-based bands of INPUT (and INPUT2) in that
order (GDAL's ``-b``), e.g. R, G, B of a 12-band Sentinel-2 file.
Outputs keep the input's CRS and transform: a uint8 class GeoTIFF with class
names and a colour table (segmentation, change detection), a float32 GeoTIFF
in metres (depth), a GeoJSON FeatureCollection in the scene CRS (detection),
a per-window class map (scene classification; top-k printed for an image
smaller than one window). An output equal to an input is refused, an
existing output unless ``--force``. Bad input ends with one ``error: ...``
line and exit code 1.
"""
import argparse
import os.path as osp
import sys

if __package__ in (None, ''):  # run as a script from a source checkout
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('input', help='scene raster (date 1 for change detection,'
                   ' the optical raster for opt + SAR-L2 models)')
    p.add_argument('input2', nargs='?', help='date 2 of a change pair')
    p.add_argument('--sar', help='SAR-L2 raster of an opt + SAR-L2 model')
    p.add_argument('--bands', help='1-based band indexes of INPUT (and '
                   'INPUT2) to read, in the order the model reads them, '
                   'GDAL\'s -b convention, e.g. 4,3,2 for the R, G, B of a '
                   'Sentinel-2 file; default every band in file order')
    p.add_argument('--out', required=True, help='output: .tif / .tiff '
                   '(segmentation, change detection, depth, the per-window '
                   'classification map), .geojson / .json (detection), '
                   '.json (classification top-k of a scene smaller than one '
                   'window), .txt (tracking)')
    p.add_argument('--crop', type=int, help='window size in pixels '
                   '(default: the model\'s test crop)')
    p.add_argument('--overlap', type=int,
                   help='overlap of neighbouring windows (default crop/4)')
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--device', default='cpu')
    p.add_argument('--blend', default='cosine',
                   choices=('cosine', 'triangular', 'uniform'))
    p.add_argument('--probs', action='store_true',
                   help='also write per-class probabilities (<out>_probs.tif)')
    p.add_argument('--stats', help='per-modality statistics JSON '
                   '(tools/dataset_converters/compute_rs_stats.py; its dtype '
                   'is checked against the scene) for checkpoints that do '
                   'not carry them')
    p.add_argument('--tta', choices=('flip', 'flip4'),
                   help='flip test-time augmentation (segmentation, change '
                   'detection, depth): each window also run flipped '
                   'horizontally (flip; flip4: also vertically and both), '
                   'outputs flipped back and averaged before blending')
    p.add_argument('--show', help='write a quick-look PNG with the '
                   'prediction drawn over the scene')
    p.add_argument('--show-size', type=int, default=1024,
                   help='the quick look\'s longer side is at most this many '
                   'pixels (the scene decimated by an integer factor)')
    p.add_argument('--force', action='store_true',
                   help='replace existing outputs (never an input)')
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    # tracking configs (INPUT a folder of frames or a video, OUT a
    # MOTChallenge txt): mmringmoe/apis/track_inferencer.py
    p.add_argument('--show-dir', help='tracking: folder for the rendered '
                   'frames (000001.png, ...)')
    p.add_argument('--no-postprocess', action='store_true',
                   help='tracking: the raw tracker output, without the '
                   'config\'s tracklet post-processing (interpolation)')
    return p.parse_args(argv)


def parse_bands(text: str):
    """``'3,2,1'`` -> ``[3, 2, 1]``; one-line ValueError for a value that
    is no integer (range and repeats are checked against the file)."""
    out = []
    for part in text.split(','):
        part = part.strip()
        try:
            out.append(int(part))
        except ValueError:
            raise ValueError(f'--bands {text}: {part!r} is not an integer; '
                             'give 1-based band indexes such as 3,2,1') \
                from None
    return out


def _inputs(args):
    if args.input2 and args.sar:
        raise ValueError('give INPUT2 (change detection) or --sar (opt + '
                         'SAR-L2), not both')
    if args.input2:
        return (args.input, args.input2)
    if args.sar:
        return {'opt': args.input, 'sar_l2': args.sar}
    return args.input


def _one_line(shown):
    """``warnings.showwarning`` that prints the inferencer's own warnings
    (``InferenceWarning``: a check that could not be made) as one
    ``warning: ...`` line on stderr and leaves the others to ``shown``."""
    from mmringmoe.apis.model_spec import InferenceWarning

    from mmringmoe.apis.rs_inferencer import InferenceNote
    from mmringmoe.datasets.transforms.raster_io import GeoreferencingWarning

    def show(message, category, *args, **kwargs):
        if issubclass(category, (InferenceWarning, GeoreferencingWarning)):
            print(f'warning: {message}', file=sys.stderr)
        elif issubclass(category, InferenceNote):
            print(f'note: {message}', file=sys.stderr)
        else:
            shown(message, category, *args, **kwargs)
    return show


def _mmengine_info_hidden():
    """While the model is built and loaded: mmengine's ``Loads checkpoint
    by local backend from path: ...`` (a ``print`` of its checkpoint loader)
    is left out; anything else printed then is passed on."""
    import contextlib
    import io

    @contextlib.contextmanager
    def hidden():
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                yield
        finally:
            sys.stdout.write(''.join(
                line for line in buf.getvalue().splitlines(keepends=True)
                if not line.startswith('Loads checkpoint by ')))
    return hidden()


def infer(args):
    import warnings

    from mmringmoe.apis.model_spec import InferenceWarning
    from mmringmoe.apis.rs_inferencer import InferenceNote
    from mmringmoe.datasets.transforms.raster_io import GeoreferencingWarning
    with warnings.catch_warnings():  # restores the filters on exit
        warnings.showwarning = _one_line(warnings.showwarning)
        # the notes and warnings are about the user's data: shown every time,
        # even under -W ignore / PYTHONWARNINGS=ignore
        for category in (InferenceNote, InferenceWarning,
                         GeoreferencingWarning):
            warnings.simplefilter('always', category)
        return _infer(args)


def _check_options(args):
    """One-line refusals of option values, before anything is built, read
    or written: the device, and crop / batch size / quick-look size."""
    from mmringmoe.engine.cli import UserError
    from mmringmoe.apis.rs_inferencer import check_device, check_positive
    try:
        check_device(args.device)
        if args.crop is not None:
            check_positive('--crop', args.crop)
        if args.overlap is not None and args.overlap < 0:
            raise ValueError(f'--overlap must be >= 0, got {args.overlap}')
        check_positive('--batch-size', args.batch_size)
        check_positive('--show-size', args.show_size)
    except ValueError as e:
        raise UserError(f'--{str(e)}' if str(e).startswith('device ')
                        else str(e)) from e
    if args.show is not None:
        from mmringmoe.apis.quicklook import check_quicklook_path
        try:
            check_quicklook_path(args.show)
        except ValueError as e:
            raise UserError(str(e)) from e
    if args.stats is not None and not osp.isfile(args.stats):
        raise UserError(f'statistics file {args.stats} (--stats) does not '
                        'exist')


def _infer(args):
    from mmringmoe.apis.track_inferencer import (infer_tracking,
                                                 is_tracking_config)
    _check_options(args)
    if args.tta and is_tracking_config(args.config):
        from mmringmoe.engine.cli import UserError
        raise UserError(f'--tta {args.tta} is for segmentation, change '
                        'detection and depth models; this is a tracking '
                        'model')
    if args.bands is not None and is_tracking_config(args.config):
        from mmringmoe.engine.cli import UserError
        raise UserError(f'--bands {args.bands} is for raster scenes; this is '
                        'a tracking model (frames / video)')
    if is_tracking_config(args.config):  # frames / video -> MOT txt
        return infer_tracking(args)
    if args.show_dir or args.no_postprocess:
        from mmringmoe.engine.cli import UserError
        raise UserError('--show-dir and --no-postprocess are options of '
                        'tracking configs (a folder of frames or a video)')
    from mmringmoe.engine import cli
    from mmringmoe.apis.writers import check_output_path
    paths = [args.input] + [p for p in (args.input2, args.sar) if p]
    for path in paths:
        if osp.isdir(path):
            raise cli.UserError(
                f'input {path} is a folder; a folder of frames (or a video) '
                f'is an input for tracking configs only and {args.config} is '
                'not one: give a raster file')
        if not osp.isfile(path):
            raise FileNotFoundError(f'input {path} does not exist')
    stem, ext = osp.splitext(args.out)
    probs = [f'{stem}_probs{ext or ".tif"}'] if args.probs else []
    outs = [args.out] + probs + ([args.show] if args.show else [])
    try:
        inputs = _inputs(args)
        bands = None
        if args.bands is not None:
            if args.sar:
                raise ValueError('--bands selects the bands of INPUT (and '
                                 'INPUT2), not of an opt + SAR-L2 pair '
                                 '(--sar): write the optical bands the model '
                                 'reads to a new file')
            bands = parse_bands(args.bands)
        if args.show:
            mine = [args.out] + probs
            if osp.realpath(args.show) in {osp.realpath(p) for p in mine}:
                raise ValueError(f'--show {args.show} is also an output of this '
                                 'run (--out or its _probs file); give the quick '
                                 'look its own path')
        for out in outs:  # before the model is built: fail fast
            check_output_path(out, paths, args.force)
        cfg = cli.load_config(args.config)
        from mmringmoe.apis import RSInferencer
        from mmringmoe.apis.quicklook import render_quicklook
        from mmringmoe.visualization.progress import progress_counter
        with _mmengine_info_hidden():  # 'Loads checkpoint by local backend'
            inferencer = RSInferencer(cfg, args.checkpoint,
                                      device=args.device, stats=args.stats)
        bar = None

        def progress(done, total):
            nonlocal bar
            if bar is None:  # the project's one bar (only on a terminal)
                bar = progress_counter(total, desc='windows', unit='win',
                                       quiet=args.quiet)
            bar.update(done - bar.n)

        result = inferencer(inputs, out=args.out, crop=args.crop,
                            overlap=args.overlap, batch_size=args.batch_size,
                            blend=args.blend, probs=args.probs,
                            overwrite=args.force, progress=progress,
                            tta=args.tta, bands=bands)
        if bar is not None:
            bar.close()
        if args.show:
            from mmringmoe.apis.scene import build_scene
            render_quicklook(result, build_scene(inputs, bands=bands),
                             inferencer.spec,
                             args.show, max_size=args.show_size,
                             overwrite=args.force)
    except (ValueError, FileExistsError) as e:
        raise cli.UserError(str(e).strip().splitlines()[0]) from e
    plural = '' if result.num_windows == 1 else 's'
    summary = (f'{result.task}: {result.num_windows} window{plural} '
               f'({result.num_skipped} all-nodata skipped) -> {args.out}')
    if probs:
        summary += f', {probs[0]}'
    if result.num_windows and result.num_skipped == result.num_windows:
        print(f'note: every window of {args.input} is nodata, so every '
              'output pixel is nodata', file=sys.stderr)
    if result.topk:
        summary += '; top-k: ' + ', '.join(f'{c} {s:.3f}'
                                           for c, s in result.topk)
    if args.show:
        summary += f'; quick look {args.show}'
    print(summary)
    return result


# Upstream warnings hidden during a run: deprecation notices that say nothing
# about the user's data or model (setuptools' pkg_resources via mmengine,
# mmseg's build_loss, and the training-loss default, which inference never
# uses), and rasterio's NotGeoreferencedWarning, which the run's own one-line
# note replaces ('... has no georeferencing ..., so the output is in pixel
# coordinates').
UPSTREAM_NOISE = (r'pkg_resources is deprecated as an API',
                  r'``build_loss`` would be deprecated soon',
                  r'Default ``avg_non_ignore`` is False')


def main(argv=None):
    import warnings

    from rasterio.errors import NotGeoreferencedWarning
    with warnings.catch_warnings():  # the caller's filters come back after
        for message in UPSTREAM_NOISE:
            warnings.filterwarnings('ignore', message=message)
        warnings.simplefilter('ignore', NotGeoreferencedWarning)
        return _main(argv)


def _main(argv):
    import signal
    import threading
    from mmringmoe.engine.cli import run_cli
    args = parse_args(argv)
    if threading.current_thread() is not threading.main_thread():
        return run_cli(infer, args)
    # SIGTERM (kill, a batch scheduler's time limit) ends the run as Ctrl-C
    # does: the output being written (<out>.part) is removed, no half-written
    # file is left behind; exit code 143
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return run_cli(infer, args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


if __name__ == '__main__':
    main()
