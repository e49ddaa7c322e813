"""Scene inference overhead and memory (issue 14), in one run.

    python tools/analysis_tools/benchmark_inference.py [--size 2048]
        [--crop 512] [--overlap 128] [--batch-size 2] [--big 8192]
        [--work-dir /tmp/...] [--skip-rss]

1. Time: ``RSInferencer`` on a ``size`` x ``size`` GeoTIFF (windows read from
   disk, the model's test pipeline, blending, argmax, streamed GeoTIFF
   write) over the bare model forward (``model.encode_decode``) on the very
   same windows, preprocessed and held in memory beforehand. Goal <= 1.15.
   Bare and scene runs alternate ``--repeats`` times and the best of each
   is kept; the forward time inside the last scene run is reported too
   (``ratio_in_run``), which other load on the machine cannot skew.
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


def time_ratio(scene, ckpt, crop, overlap, batch_size, out, repeats=3):
    import torch
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.scene import build_scene
    from mmringmoe.datasets.windows import window_grid
    inf = RSInferencer(model_config(), ckpt)
    # the same windows, preprocessed beforehand and kept in memory
    sc = build_scene(scene)
    stride = crop - overlap
    wins = window_grid(sc.height, sc.width, crop, stride)
    batches = []
    for i in range(0, len(wins), batch_size):
        packed = []
        for k, w in enumerate(wins[i:i + batch_size]):
            arrays, valid = sc.read(w)
            packed.append(inf._window_results(sc, arrays, valid, w, k))
        data = inf.model.data_preprocessor(inf.collate_fn(packed), False)
        batches.append(data)
    # warm-up (allocator, lazy init) on one batch, both paths
    with torch.no_grad():
        d = batches[0]
        inf.model.encode_decode(d['inputs'], [s.metainfo for s in
                                              d['data_samples']])
    # the model's forward inside the scene run is timed too (same windows,
    # same moment: robust to other load on the machine)
    in_run = [0.0]
    encode_decode = inf.model.encode_decode

    def timed(*a, **k):
        t = time.perf_counter()
        out_ = encode_decode(*a, **k)
        in_run[0] += time.perf_counter() - t
        return out_

    bare, full = [], []
    for _ in range(repeats):  # alternating, best of each (load noise)
        t0 = time.perf_counter()
        with torch.no_grad():
            for d in batches:
                encode_decode(d['inputs'],
                              [s.metainfo for s in d['data_samples']])
        bare.append(time.perf_counter() - t0)
        in_run[0] = 0.0
        inf.model.encode_decode = timed
        t0 = time.perf_counter()
        res = inf(scene, out=out, crop=crop, overlap=overlap,
                  batch_size=batch_size, overwrite=True)
        full.append(time.perf_counter() - t0)
        inf.model.encode_decode = encode_decode
        in_run_last = in_run[0]
    return dict(windows=len(wins), repeats=repeats,
                bare_forward_s=round(min(bare), 2),
                scene_s=round(min(full), 2),
                ratio=round(min(full) / min(bare), 3),
                ratio_in_run=round(full[-1] / in_run_last, 3),
                num_windows=res.num_windows)


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
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--skip-rss', action='store_true')
    p.add_argument('--child', nargs=2, metavar=('SCENE', 'CKPT'),
                   help=argparse.SUPPRESS)
    p.add_argument('--child-out', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
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
                  batch_size=args.batch_size)
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
                   '--child-out', osp.join(wd, f'pred_{size}.tif')]
            out = subprocess.run(cmd, check=True, capture_output=True,
                                 text=True).stdout.strip().splitlines()[-1]
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
