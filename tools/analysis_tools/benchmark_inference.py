"""Scene inference overhead and memory (issue 14), in one run.

    python tools/analysis_tools/benchmark_inference.py [--size 2048]
        [--crop 512] [--overlap 128] [--batch-size 2] [--big 8192]
        [--work-dir /tmp/...] [--repeats 3] [--threads 1] [--skip-rss]

1. Time: ``RSInferencer`` on a ``size`` x ``size`` GeoTIFF (windows read from
   disk, the model's test pipeline, blending, argmax, streamed GeoTIFF
   write) over the bare model forward (``model.encode_decode``) on the very
   same windows, preprocessed and held in memory beforehand, in the same
   batches (checked tensor by tensor), with the same torch threads
   (``--threads``). Goal <= 1.15. Other load on the machine skews single
   timings of seconds by 20 % and more (on 2 cores under a load of about
   4 the bare runs of one benchmark run took 7.8 to 18.0 s wall), so after
   a warm-up of both paths it is measured two ways, ``--repeats`` times
   each:

   a. ``interleaved`` (the reported ``ratio``, median over the runs): in a
      scene run, right before or after (alternately) the model's forward of
      each batch, the bare forward of the same batch runs and is timed
      apart; the scene run's time without those bare forwards over their
      sum. Both are measured within the same second, so load hits them
      alike.
      ``forward_over_bare``: the scene run's own forward over the bare one
      (1 when the scene work between batches does not slow the model).
   b. ``alternating``: whole bare and scene runs, bare, scene, bare, ...,
      scene, bare; each scene run over the mean of the two bare runs
      around it (load drifting linearly cancels), median, min and max.

   Both come in wall time and in CPU time of the process. Also reported:
   ``ratio_in_run`` (a scene run over the forward time inside it), the
   share of the scene run per phase (read, pipeline, preprocess, forward,
   blend, flush = normalise + argmax + nodata, write, other; timed by
   wrapping those callables), the forward calls of both paths and the
   1-minute load average before and after.
2. Memory: peak RSS of a child process mapping a ``big`` x ``big`` scene
   over one mapping a ``size`` x ``size`` scene (same model, crop, overlap).
   Goal <= 1.3: memory follows the windows in flight and one band of window
   rows, not the scene.

The model is a tiny RingMoE-opt (dense) + UperNet with random weights saved
to a checkpoint (speed and memory do not depend on the weight values). The
RSS children use the same model. Scenes are generated 3-band uint8 GeoTIFFs
(tiled, written block by block) in ``--work-dir`` (a temporary folder by
default, removed afterwards).
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ''):
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))

import numpy as np  # noqa: E402


def model_config():
    from mmengine.config import Config
    chans = [32, 64, 128, 256]
    return Config(dict(
        default_scope='mmseg',
        model=dict(
            type='mmringmoe.RingMoEEncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor',
                                   mean=[120., 115., 100.],
                                   std=[60., 58., 57.], bgr_to_rgb=False,
                                   pad_val=0, seg_pad_val=255),
            backbone=dict(type='mmringmoe.RingMoE', arch='tiny',
                          modalities=('opt', ), moe_mode='dense',
                          pad_small_map=True, out_indices=(0, 1, 2, 3),
                          drop_path_rate=0.0, init_cfg=None),
            decode_head=dict(type='UPerHead', in_channels=chans,
                             in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3),
                             channels=32, dropout_ratio=0.0, num_classes=4,
                             norm_cfg=dict(type='BN', requires_grad=True),
                             align_corners=False,
                             loss_decode=dict(type='CrossEntropyLoss')),
            train_cfg=dict(), test_cfg=dict(mode='whole')),
        test_dataloader=dict(dataset=dict(pipeline=[
            dict(type='mmringmoe.LoadRSImageFromFile', modality='opt'),
            dict(type='PackSegInputs')]))))


def make_checkpoint(path):
    import torch
    from mmengine.registry import MODELS, init_default_scope
    import mmringmoe  # noqa: F401
    cfg = model_config()
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)


def make_scene(path, size):
    """3-band uint8 GeoTIFF with smooth content, written by row blocks."""
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window
    profile = dict(driver='GTiff', width=size, height=size, count=3,
                   dtype='uint8', crs='EPSG:32633', tiled=True,
                   blockxsize=256, blockysize=256,
                   transform=Affine(10, 0, 500000, 0, -10, 4000000))
    cols = np.arange(size)
    with rasterio.open(path, 'w', **profile) as dst:
        for r0 in range(0, size, 256):
            rows = np.arange(r0, min(r0 + 256, size))[:, None]
            block = np.stack([(127 + 100 * np.sin(rows / 97. + k)
                               * np.cos(cols / 61. - k)) for k in range(3)])
            dst.write(block.astype(np.uint8),
                      window=Window(0, r0, size, len(rows)))


class PhaseClock:
    """Wall and CPU seconds spent inside wrapped callables, per phase.

    ``wrap(name, fn)`` returns ``fn`` timed into phase ``name``; calls nested
    inside another timed phase are counted in both (the phases of
    :func:`scene_phases` do not nest, except ``write`` inside ``flush``,
    which is reported separately and subtracted there)."""

    def __init__(self):
        self.wall, self.cpu = {}, {}

    def reset(self):
        self.wall, self.cpu = {}, {}

    def wrap(self, name, fn):
        def timed(*a, **k):
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **k)
            finally:
                self.wall[name] = self.wall.get(name, 0.0) + \
                    time.perf_counter() - w
                self.cpu[name] = self.cpu.get(name, 0.0) + \
                    time.process_time() - c
        return timed


def paired_ratios(bare, scene):
    """Ratios of each scene run to the bare runs around it.

    The runs alternate ``bare[0], scene[0], bare[1], scene[1], ...,
    bare[n]`` (``len(bare) == len(scene) + 1``); scene run ``i`` is compared
    with the mean of ``bare[i]`` and ``bare[i + 1]``, so load that drifts
    linearly over the pair cancels. Returns ``dict(median, min, max,
    runs)``."""
    if len(bare) != len(scene) + 1 or not scene:
        raise ValueError(f'need n scene runs between n + 1 bare runs, got '
                         f'{len(scene)} and {len(bare)}')
    r = [s / ((b0 + b1) / 2) for s, b0, b1 in zip(scene, bare, bare[1:])]
    return dict(median=round(float(np.median(r)), 3),
                min=round(min(r), 3), max=round(max(r), 3),
                runs=[round(x, 3) for x in r])


def _spread(values, nd=3):
    return dict(median=round(float(np.median(values)), nd),
                min=round(min(values), nd), max=round(max(values), nd))


def time_ratio(scene, ckpt, crop, overlap, batch_size, out, repeats=3):
    """Scene inference over the bare forward on the same windows (module
    docstring). Every number is given in wall time and in this process's
    CPU time (``time.process_time``: all its threads; waiting for a core
    that another process holds is not counted)."""
    import torch
    from mmringmoe.apis import RSInferencer, blending, scene as scene_mod
    from mmringmoe.apis import writers
    from mmringmoe.datasets.windows import window_grid
    inf = RSInferencer(model_config(), ckpt)
    # the same windows, through the same pipeline and preprocessor, held in
    # memory beforehand, in batches of batch_size in the grid's order
    sc = scene_mod.build_scene(scene)
    stride = crop - overlap
    wins = window_grid(sc.height, sc.width, crop, stride)
    batches = []
    for i in range(0, len(wins), batch_size):
        packed = []
        for k, w in enumerate(wins[i:i + batch_size]):
            arrays, valid = sc.read(w)
            packed.append(inf._window_results(sc, arrays, valid, w, k))
        data = inf.model.data_preprocessor(inf.collate_fn(packed), False)
        batches.append((data['inputs'],
                        [s.metainfo for s in data['data_samples']]))
    model = inf.model
    encode_decode = model.encode_decode

    def bare_run():
        w, c = time.perf_counter(), time.process_time()
        with torch.no_grad():
            for inputs, metas in batches:
                encode_decode(inputs, metas)
        return time.perf_counter() - w, time.process_time() - c

    # the scene run's phases, timed by wrapping the callables it goes
    # through (a few microseconds per call); restored afterwards
    clock = PhaseClock()
    calls = [0]
    interleave = [False]

    def counted(*a, **k):
        calls[0] += 1
        return encode_decode(*a, **k)

    def same_batch(i, inputs):
        if i >= len(batches) or not torch.equal(batches[i][0], inputs):
            raise RuntimeError(f'forward call {i} of the scene run is not '
                               f'bare batch {i}: the two paths differ')

    timed_forward = clock.wrap('forward', counted)
    timed_bare = clock.wrap('bare', encode_decode)
    timed_check = clock.wrap('check', same_batch)

    def forward(inputs, metas):
        # the bare forward of this very batch, right before (even calls) or
        # after (odd calls) the scene's own: a cost of coming first or
        # second (caches, allocator) falls on both paths alike
        i = calls[0]
        if interleave[0]:
            timed_check(i, inputs)
            if i % 2 == 0:
                timed_bare(*batches[i])
        result = timed_forward(inputs, metas)
        if interleave[0] and i % 2 == 1:
            timed_bare(*batches[i])
        return result

    dp = model.data_preprocessor
    patches = [
        (scene_mod.Scene, 'read', 'read'),
        (blending.RowBandAccumulator, 'add', 'blend'),
        (blending.RowBandAccumulator, 'finish_rows_before', 'flush'),
        (writers.GeoTIFFBlockWriter, 'write', 'write'),
    ]
    saved = [(owner, attr, getattr(owner, attr))
             for owner, attr, _ in patches]
    for owner, attr, name in patches:
        setattr(owner, attr, clock.wrap(name, getattr(owner, attr)))
    pipeline = inf.pipeline
    inf.pipeline = clock.wrap('pipeline', pipeline)
    dp.forward = clock.wrap('preprocess', dp.forward)
    model.encode_decode = forward

    def scene_run(with_bare=False):
        clock.reset()
        calls[0] = 0
        interleave[0] = with_bare
        w, c = time.perf_counter(), time.process_time()
        res = inf(scene, out=out, crop=crop, overlap=overlap,
                  batch_size=batch_size, overwrite=True)
        return (time.perf_counter() - w, time.process_time() - c,
                dict(clock.wall), dict(clock.cpu), res)

    try:
        # warm-up (allocator, lazy init, page cache), both paths
        bare_run()
        scene_run()
        load0 = os.getloadavg()[0]
        # (a) whole runs alternating: bare, scene, bare, ..., scene, bare
        bare, full, phases = [bare_run()], [], []
        for _ in range(repeats):
            wall, cpu, ph_wall, ph_cpu, res = scene_run()
            full.append((wall, cpu))
            phases.append((ph_wall, ph_cpu))
            bare.append(bare_run())
        # (b) interleaved batch by batch inside scene runs
        inter = [scene_run(with_bare=True) for _ in range(repeats)]
        load1 = os.getloadavg()[0]
    finally:
        for owner, attr, fn in saved:
            setattr(owner, attr, fn)
        inf.pipeline = pipeline
        del dp.forward, model.encode_decode
    report = dict(windows=len(wins), repeats=repeats,
                  threads=torch.get_num_threads(),
                  load_avg_1min=[round(load0, 2), round(load1, 2)],
                  forward_calls=dict(bare=len(batches), scene=calls[0]),
                  num_windows=res.num_windows)
    names = ('read', 'pipeline', 'preprocess', 'forward', 'blend', 'flush',
             'write')
    for k, kind in enumerate(('wall', 'cpu')):
        b = [x[k] for x in bare]
        s = [x[k] for x in full]
        fwd = [p[k]['forward'] for p in phases]
        # (b): the scene run without the interleaved bare forwards (and the
        # check that they got the very same batch) over those bare forwards
        i_bare = [r[2 + k]['bare'] for r in inter]
        i_scene = [r[k] - r[2 + k]['bare'] - r[2 + k]['check']
                   for r in inter]
        i_ratio = [x / y for x, y in zip(i_scene, i_bare)]
        share = {n: [] for n in names + ('other', )}
        for ph, total in zip((p[k] for p in phases), s):
            ph = dict(ph)
            ph['flush'] = ph.get('flush', 0.0) - ph.get('write', 0.0)
            for n in names:
                share[n].append(ph.get(n, 0.0) / total)
            share['other'].append(1 - sum(ph.get(n, 0.0) for n in names)
                                  / total)
        report[kind] = dict(
            interleaved=dict(
                ratio=dict(_spread(i_ratio),
                           runs=[round(x, 3) for x in i_ratio]),
                scene_s=_spread(i_scene, 2),
                bare_forward_s=_spread(i_bare, 2),
                forward_over_bare=_spread(
                    [r[2 + k]['forward'] / r[2 + k]['bare'] for r in inter])),
            alternating=dict(
                ratio=paired_ratios(b, s), scene_s=_spread(s, 2),
                bare_forward_s=_spread(b, 2)),
            ratio_in_run=_spread([x / f for x, f in zip(s, fwd)]),
            # share of the scene run's time per phase (median over the
            # alternating runs); flush = dividing the blended sums, argmax,
            # nodata (write apart)
            phase_share={n: round(float(np.median(v)), 4)
                         for n, v in share.items()})
    report['ratio'] = report['wall']['interleaved']['ratio']['median']
    return report


def child_rss(scene, ckpt, crop, overlap, batch_size, out):
    from mmringmoe.apis import RSInferencer
    inf = RSInferencer(model_config(), ckpt)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    res = inf(scene, out=out, crop=crop, overlap=overlap,
              batch_size=batch_size, overwrite=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(dict(peak_rss_mib=round(peak / 1024, 1),
                          rss_after_model_mib=round(base / 1024, 1),
                          windows=res.num_windows,
                          seconds=round(time.perf_counter() - t0, 1))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', type=int, default=2048)
    p.add_argument('--big', type=int, default=8192)
    p.add_argument('--crop', type=int, default=512)
    p.add_argument('--overlap', type=int, default=128)
    p.add_argument('--batch-size', type=int, default=2)
    p.add_argument('--work-dir')
    p.add_argument('--repeats', type=int, default=3,
                   help='scene runs of each kind (alternating with bare '
                   'runs; interleaved with bare forwards)')
    p.add_argument('--threads', type=int, default=1,
                   help='torch intra-op threads, the same for both paths '
                   'and the RSS children')
    p.add_argument('--skip-rss', action='store_true')
    p.add_argument('--child', nargs=2, metavar=('SCENE', 'CKPT'),
                   help=argparse.SUPPRESS)
    p.add_argument('--child-out', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    if args.child:
        child_rss(args.child[0], args.child[1], args.crop, args.overlap,
                  args.batch_size, args.child_out)
        return None
    tmp = None
    if args.work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix='bench_infer_')
        args.work_dir = tmp.name
    os.makedirs(args.work_dir, exist_ok=True)
    wd = args.work_dir
    ckpt = osp.join(wd, 'tiny_upernet.pth')
    make_checkpoint(ckpt)
    small = osp.join(wd, f'scene_{args.size}.tif')
    make_scene(small, args.size)
    report = dict(crop=args.crop, overlap=args.overlap,
                  batch_size=args.batch_size, threads=args.threads)
    report['time'] = time_ratio(small, ckpt, args.crop, args.overlap,
                                args.batch_size, osp.join(wd, 'pred.tif'),
                                args.repeats)
    print(json.dumps(dict(time=report['time'])), flush=True)
    if not args.skip_rss:
        rss = {}
        for size in (args.size, args.big):
            scene = small if size == args.size else osp.join(
                wd, f'scene_{size}.tif')
            if not osp.exists(scene):
                make_scene(scene, size)
            cmd = [sys.executable, osp.abspath(__file__), '--child', scene,
                   ckpt, '--crop', str(args.crop), '--overlap',
                   str(args.overlap), '--batch-size', str(args.batch_size),
                   '--threads', str(args.threads),
                   '--child-out', osp.join(wd, f'pred_{size}.tif')]
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
            out = subprocess.run(
                cmd, check=True, capture_output=True, text=True,
                env=env).stdout.strip().splitlines()[-1]
            rss[size] = json.loads(out)
            print(json.dumps({f'rss_{size}': rss[size]}), flush=True)
        report['rss'] = {str(k): v for k, v in rss.items()}
        report['rss_ratio'] = round(rss[args.big]['peak_rss_mib']
                                    / rss[args.size]['peak_rss_mib'], 3)
    print(json.dumps(report, indent=1))
    if tmp is not None:
        tmp.cleanup()
    return report


if __name__ == '__main__':
    main()
