"""Prediction pictures for every task, drawn by the toolboxes' visualizers.

The subclasses below add one method each, ``draw_panels``, that draws a
sample over OUR display image (:func:`mmringmoe.visualization.display_image`
of the sample's own array) and returns titled panels; the masks, boxes,
rotated boxes and track ids are drawn by the parent classes' own methods
(mmseg ``SegLocalVisualizer._draw_sem_seg``, mmdet
``DetLocalVisualizer._draw_instances``, mmrotate
``RotLocalVisualizer._draw_instances``, mmdet
``TrackLocalVisualizer._draw_instances``). :class:`PredictionPainter` picks
the right one from the data sample's fields and composes the figure (panels,
class legend, display legend). Each panel is the display image at its own
(upscaled) size, boxes past its edges cut off there
(:class:`~mmringmoe.visualization.image_view.ImageViewMixin`: matplotlib
>= 3.11 would otherwise shrink the image inside white to fit them).
"""
import itertools
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.visualization import DetLocalVisualizer, TrackLocalVisualizer
from mmseg.visualization import SegLocalVisualizer

from mmringmoe.registry import VISUALIZERS
from .display import DisplayImage, paint_nodata
from .image_view import ImageViewMixin
from .overlay import change_overlay, colorbar, colormap, figure, vstack

try:  # mmrotate is optional at import time (rotated detection only)
    from mmrotate.visualization import RotLocalVisualizer
except Exception:  # pragma: no cover - without mmrotate
    RotLocalVisualizer = None

Panel = Tuple[str, np.ndarray]
_names = itertools.count()


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _upscale_factor(shape, min_size: int) -> int:
    return max(1, int(np.ceil(min_size / max(1, min(shape[:2])))))


def _rep(a: np.ndarray, k: int) -> np.ndarray:
    return a if k == 1 else np.repeat(np.repeat(a, k, 0), k, 1)


@VISUALIZERS.register_module()
class RSSegLocalVisualizer(ImageViewMixin, SegLocalVisualizer):
    """mmseg's ``SegLocalVisualizer`` over an RS display image; nodata
    pixels keep :data:`NODATA_COLOR` in every panel."""

    def draw_panels(self, display: np.ndarray, data_sample,
                    valid_mask: Optional[np.ndarray] = None,
                    draw_gt: bool = True, with_labels: bool = False,
                    scale: int = 1) -> List[Panel]:
        """``[image, ground truth, prediction]`` panels (uint8 RGB).

        Args:
            display (np.ndarray): uint8 ``(H, W, 3)`` at the prediction's
                size (``ori_shape``).
            data_sample: mmseg ``SegDataSample`` with ``pred_sem_seg``
                (``(1, H, W)``) and optionally ``gt_sem_seg``.
            valid_mask (np.ndarray, optional): ``(H, W)`` bool.
            scale (int): Nearest-neighbour upscaling factor.
        """
        classes = self.dataset_meta['classes']
        palette = self.dataset_meta['palette']
        panels = [('image', _rep(display, scale))]
        keys = (['gt_sem_seg'] if draw_gt else []) + ['pred_sem_seg']
        for key, title in zip(keys, ['ground truth', 'prediction'][-len(
                keys):]):
            if key not in data_sample:
                continue
            seg = _np(data_sample.get(key).data)
            if seg.shape[-2:] != display.shape[:2]:
                raise ValueError(
                    f'{key} of shape {seg.shape[-2:]} does not match the '
                    f'display image {display.shape[:2]} of '
                    f'{data_sample.metainfo.get("img_path")!r}')
            from mmengine.structures import PixelData
            drawn = self._draw_sem_seg(
                _rep(display, scale),
                PixelData(data=_rep(seg[0], scale)[None]), classes, palette,
                with_labels)
            if valid_mask is not None:
                drawn = paint_nodata(drawn, _rep(valid_mask, scale))
            panels.append((title, drawn))
        return panels


class _BoxPanels:
    """``draw_panels`` for box visualizers (parent ``_draw_instances``)."""

    def _draw(self, image, instances):
        return self._draw_instances(image, instances,
                                    self.dataset_meta.get('classes'),
                                    self.dataset_meta.get('palette'))

    def draw_panels(self, display: np.ndarray, data_sample,
                    draw_gt: bool = True, score_thr: float = 0.3,
                    scale: int = 1) -> List[Panel]:
        """``[ground truth boxes, predicted boxes]`` (uint8 RGB); predictions
        below ``score_thr`` are left out; labels carry class and score."""
        image = _rep(display, scale)
        panels = []
        if draw_gt and 'gt_instances' in data_sample:
            panels.append(('ground truth', self._draw(
                image, _scaled(data_sample.gt_instances.cpu(), scale))))
        if 'pred_instances' in data_sample:
            pred = data_sample.pred_instances.cpu()
            pred = pred[pred.scores > score_thr]
            panels.append((f'prediction (score > {score_thr:g})',
                           self._draw(image, _scaled(pred, scale))))
        return panels


def _scaled(instances, k: int):
    """Copy of ``instances`` with boxes in a ``k``-times upscaled image
    (horizontal xyxy, mmdet/mmrotate box objects: centre/size, not angle)."""
    if k == 1 or 'bboxes' not in instances or len(instances) == 0:
        return instances
    inst = instances.clone()
    b = inst.bboxes
    if isinstance(b, torch.Tensor):
        inst.bboxes = b * k if b.shape[-1] in (4, 8) else torch.cat(
            [b[..., :4] * k, b[..., 4:]], -1)
    else:  # BaseBoxes: rbox (cx, cy, w, h, t), qbox (8 coordinates), hbox
        t = b.tensor.clone()
        if t.shape[-1] == 5:
            t[..., :4] *= k
        else:
            t *= k
        inst.bboxes = type(b)(t)
    return inst


@VISUALIZERS.register_module()
class RSDetLocalVisualizer(_BoxPanels, ImageViewMixin, DetLocalVisualizer):
    """mmdet's ``DetLocalVisualizer`` (horizontal boxes, class: score) over
    an RS display image."""


if RotLocalVisualizer is not None:

    @VISUALIZERS.register_module()
    class RSRotLocalVisualizer(_BoxPanels, ImageViewMixin,
                               RotLocalVisualizer):
        """mmrotate's ``RotLocalVisualizer`` (rotated boxes, class: score)
        over an RS display image."""
else:  # pragma: no cover
    RSRotLocalVisualizer = None


class _Tab10:
    """Stand-in for seaborn in mmdet's ``random_color`` (track colours):
    mmdet 3.3 imports seaborn optionally and refuses to colour tracks without
    it. ``color_palette()`` gives matplotlib's tab10, seaborn's default
    palette family."""

    @staticmethod
    def color_palette():
        import matplotlib
        return [tuple(c[:3]) for c in matplotlib.colormaps['tab10'].colors]


@VISUALIZERS.register_module()
class RSTrackLocalVisualizer(ImageViewMixin, TrackLocalVisualizer):
    """mmdet's ``TrackLocalVisualizer`` (boxes coloured by track id, labels
    ``class / id | score``) over an RS display image. Without seaborn, track
    colours come from matplotlib's tab10 (:class:`_Tab10`)."""

    def __init__(self, name: str = 'visualizer', **kwargs):
        super().__init__(name=name, **kwargs)
        import mmdet.visualization.local_visualizer as mmdet_vis
        if getattr(mmdet_vis, 'sns', None) is None:
            mmdet_vis.sns = _Tab10()

    def draw_panels(self, display: np.ndarray, data_sample,
                    score_thr: float = 0.3, scale: int = 1) -> List[Panel]:
        pred = data_sample.pred_track_instances.cpu()
        if 'scores' in pred:
            pred = pred[pred.scores > score_thr]
        return [(f'tracks (score > {score_thr:g})',
                 self._draw_instances(_rep(display, scale),
                                      _scaled(pred, scale)))]


class PredictionPainter:
    """One figure per data sample of any task, over its display image(s).

    Dispatch on the data sample's fields:

    * ``pred_track_instances``: tracking (boxes with track ids);
    * ``pred_instances`` with 5-parameter or box-object rotated boxes:
      rotated detection; with ``(N, 4)`` boxes: detection;
    * ``pred_depth_map``: colour-mapped height beside the ground truth (one
      shared colour range, metres);
    * ``pred_sem_seg`` with two display images (bitemporal): change masks
      beside both dates; otherwise semantic segmentation with a class legend;
    * ``pred_label``: classification (predicted and true class, score).

    Args:
        dataset_meta (dict): ``classes`` and ``palette`` of the test set.
        alpha (float): Opacity of class colours. Defaults to 0.5.
        score_thr (float): Boxes below are not drawn. Defaults to 0.3.
        min_size (int): Small images are upscaled (nearest neighbour, integer
            factor) to at least this short side. Defaults to 256.
        draw_gt (bool): Draw the ground truth panel. Defaults to True.
    """

    def __init__(self, dataset_meta: dict, alpha: float = 0.5,
                 score_thr: float = 0.3, min_size: int = 256,
                 draw_gt: bool = True):
        self.dataset_meta = dict(dataset_meta or {})
        self.alpha, self.score_thr = alpha, score_thr
        self.min_size, self.draw_gt = min_size, draw_gt
        self._vis = {}

    def _visualizer(self, cls):
        if cls not in self._vis:
            name = f'mmringmoe_painter_{cls.__name__}_{next(_names)}'
            kwargs = dict(name=name, alpha=self.alpha)
            if cls is not RSSegLocalVisualizer:
                kwargs.update(line_width=2, alpha=0.9)
            vis = cls(**kwargs)
            meta = dict(self.dataset_meta)
            if cls is RSSegLocalVisualizer:
                vis.set_dataset_meta(meta.get('classes'), meta.get('palette'))
            else:
                vis.dataset_meta = meta
            self._vis[cls] = vis
        return self._vis[cls]

    def _palette(self, n):
        palette = self.dataset_meta.get('palette')
        if palette is None or len(palette) < n:
            rng = np.random.RandomState(42)
            palette = [tuple(int(c) for c in rng.randint(0, 256, 3))
                       for _ in range(n)]
            self.dataset_meta['palette'] = palette
        return palette

    def paint(self, data_sample, displays: Sequence[DisplayImage],
              valid_mask: Optional[np.ndarray] = None) -> np.ndarray:
        """Figure (uint8 RGB ``(H', W', 3)``) of one sample.

        Args:
            data_sample: the model's output sample (mmseg / mmdet /
                mmpretrain data sample).
            displays: display images of the sample, one per date (change
                detection) or per modality (opt+SAR), at ``ori_shape``.
            valid_mask (np.ndarray, optional): ``(H, W)`` bool.
        """
        d0 = displays[0]
        k = _upscale_factor(d0.rgb.shape, self.min_size)
        legend = [d.legend if len(displays) == 1 else f'{t}: {d.legend}'
                  for t, d in zip(self._display_titles(displays), displays)]
        if 'pred_track_instances' in data_sample:
            vis = self._visualizer(RSTrackLocalVisualizer)
            panels = vis.draw_panels(d0.rgb, data_sample, self.score_thr, k)
            return figure(panels, legend + [
                'box colour = track id; label: class, id | score'])
        if 'pred_instances' in data_sample:
            b = data_sample.pred_instances.bboxes
            rotated = not isinstance(b, torch.Tensor) or b.shape[-1] != 4
            cls = RSRotLocalVisualizer if rotated else RSDetLocalVisualizer
            if cls is None:
                raise RuntimeError('rotated boxes need mmrotate installed')
            classes = self.dataset_meta.get('classes') or ()
            self._palette(len(classes))
            vis = self._visualizer(cls)
            panels = vis.draw_panels(d0.rgb, data_sample, self.draw_gt,
                                     self.score_thr, k)
            return figure(panels, legend + [
                ('rotated boxes' if rotated else 'boxes')
                + ': class: score in %'])
        if 'pred_depth_map' in data_sample:
            return self._depth(data_sample, d0, legend, valid_mask, k)
        if 'pred_sem_seg' in data_sample:
            classes = self.dataset_meta.get('classes')
            if classes is None:
                n = int(_np(data_sample.pred_sem_seg.data).max()) + 1
                classes = tuple(f'class {i}' for i in range(max(n, 2)))
                self.dataset_meta['classes'] = classes
            palette = self._palette(len(classes))
            if len(displays) == 2 and self.dataset_meta.get(
                    'bitemporal', False):
                return self._change(data_sample, displays, legend,
                                    valid_mask, k)
            vis = self._visualizer(RSSegLocalVisualizer)
            panels = vis.draw_panels(d0.rgb, data_sample, valid_mask,
                                     self.draw_gt, scale=k)
            for t, d in list(zip(self._display_titles(displays),
                                 displays))[1:]:
                panels.insert(1, (t, _rep(d.rgb, k)))
            if len(displays) > 1:
                panels[0] = (self._display_titles(displays)[0], panels[0][1])
            shown = np.unique(np.concatenate([
                _np(data_sample.get(key).data).ravel()
                for key in ('pred_sem_seg', 'gt_sem_seg')
                if key in data_sample]))
            shown = [int(c) for c in shown if c < len(classes)]
            return figure(
                panels, legend + [f'class colours at opacity {vis.alpha:g}'],
                swatches=([classes[c] for c in shown],
                          [palette[c] for c in shown]))
        if 'pred_label' in data_sample:
            return self._classification(data_sample, d0, legend, k)
        raise ValueError('nothing to draw: the data sample has none of '
                         'pred_sem_seg, pred_instances, pred_track_instances,'
                         ' pred_depth_map, pred_label')

    @staticmethod
    def _display_titles(displays):
        if len(displays) == 1:
            return ['image']
        return [d.legend.split(' ')[0] if not d.legend.startswith('optical')
                else 'optical' for d in displays]

    def _change(self, data_sample, displays, legend, valid_mask, k):
        a, b = (_rep(d.rgb, k) for d in displays)
        pred = _rep(_np(data_sample.pred_sem_seg.data)[0], k)
        panels = [('date A', a), ('date B', b)]
        if self.draw_gt and 'gt_sem_seg' in data_sample:
            gt = _rep(_np(data_sample.gt_sem_seg.data)[0], k)
            panels.append(('true change on B', change_overlay(b, gt)))
        panels.append(('predicted change on B', change_overlay(b, pred)))
        if valid_mask is not None:
            vm = _rep(valid_mask, k)
            panels = [(t, paint_nodata(p, vm)) for t, p in panels]
        return figure(panels, [f'date A/B: {displays[0].legend}',
                               'red: change (label 1)'])

    def _depth(self, data_sample, d0, legend, valid_mask, k):
        pred = _np(data_sample.pred_depth_map.data).astype(np.float64)
        pred = pred.reshape(pred.shape[-2:])
        gt = None
        if 'gt_depth_map' in data_sample:
            gt = _np(data_sample.gt_depth_map.data).astype(np.float64)
            gt = gt.reshape(gt.shape[-2:])
        ref = gt[np.isfinite(gt) & (gt > 0)] if gt is not None else None
        vals = pred[np.isfinite(pred)]
        if ref is not None and ref.size:
            vals = np.concatenate([vals, ref])
        vmin, vmax = (float(vals.min()), float(vals.max())) if vals.size \
            else (0.0, 1.0)
        panels = [('image', _rep(d0.rgb, k))]
        vm = None if valid_mask is None or valid_mask.shape != pred.shape \
            else np.asarray(valid_mask, bool)
        if self.draw_gt and gt is not None:
            # target 0 / non-finite: no height (LoadDSMFromFile's invalid
            # pixels, left out by DepthMetric's min_depth_eval)
            ok = np.isfinite(gt) & (gt > 0)
            panels.append(('true height', _rep(colormap(
                gt, vmin, vmax, valid=ok if vm is None else ok & vm), k)))
        panels.append(('predicted height', _rep(
            colormap(pred, vmin, vmax, valid=vm), k)))
        fig = figure(panels, legend + [
            'height (m) colour map viridis, one range for both; magenta: '
            'no ground truth (target 0) or image nodata'])
        return vstack([fig, colorbar(vmin, vmax, fig.shape[1], 'm')])

    def _classification(self, data_sample, d0, legend, k):
        classes = self.dataset_meta.get('classes')

        def name(i):
            i = int(i)
            return classes[i] if classes is not None and i < len(
                classes) else f'class {i}'

        label = int(_np(data_sample.pred_label).ravel()[0])
        lines = [f'predicted: {name(label)}']
        if 'pred_score' in data_sample:
            score = _np(data_sample.pred_score).ravel()
            lines[0] += f' ({float(score[label]):.2f})'
        if 'gt_label' in data_sample and len(_np(data_sample.gt_label)):
            lines.append(f'true: {name(_np(data_sample.gt_label).ravel()[0])}')
        return figure([('image', _rep(d0.rgb, k))], lines + legend)


__all__ = [
    'RSSegLocalVisualizer', 'RSDetLocalVisualizer', 'RSRotLocalVisualizer',
    'RSTrackLocalVisualizer', 'PredictionPainter'
]
