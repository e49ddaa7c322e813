"""Segmentation and scene classification metrics named as the paper reports
them (Appendix B.5.1-B.5.3: OA, mIoU, mAcc, mF1 and per-class IoU/Acc)."""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.logging import MMLogger, print_log
from mmpretrain.evaluation.metrics import Accuracy
from mmseg.evaluation.metrics import IoUMetric

from mmringmoe.registry import METRICS


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def seg_metrics_from_areas(intersect, union, pred_area, label_area,
                           class_names: Sequence[str],
                           report_classes: Optional[Sequence[str]] = None
                           ) -> Dict[str, float]:
    """Paper metrics from per-class pixel counts (percentages, 2 decimals).

    ``report_classes`` (names) limits the means and OA to those classes, the
    way the paper drops Potsdam's clutter and AIR-PolSAR-Seg's Land-use and
    Other areas from its results while the model still learns them. OA is
    the share of correctly labelled pixels among ground-truth pixels of the
    reported classes. Classes absent from both ground truth and prediction
    (NaN) are left out of the means, as mmseg does.
    """
    intersect, union, pred_area, label_area = (
        np.asarray(a, np.float64) for a in (intersect, union, pred_area,
                                             label_area))
    names = list(class_names)
    if report_classes is None:
        keep = np.arange(len(names))
    else:
        missing = [c for c in report_classes if c not in names]
        if missing:
            raise ValueError(f'report_classes {missing} are not in the data '
                             f'set classes {names}')
        keep = np.array([names.index(c) for c in report_classes])
    iou = _safe_div(intersect, union)
    acc = _safe_div(intersect, label_area)
    # F1 = 2PR/(P+R) = 2 TP / (2 TP + FP + FN) = 2 TP / (pred + label)
    f1 = _safe_div(2 * intersect, pred_area + label_area)

    def mean(v):
        v = v[keep]
        return float(np.round(np.nanmean(v) * 100, 2)) if np.isfinite(
            v).any() else float('nan')

    out = OrderedDict()
    out['OA'] = float(np.round(
        _safe_div(intersect[keep].sum(), label_area[keep].sum()) * 100, 2))
    out['mIoU'] = mean(iou)
    out['mAcc'] = mean(acc)
    out['mF1'] = mean(f1)
    for i in keep:
        out[f'IoU.{names[i]}'] = float(np.round(iou[i] * 100, 2))
    for i in keep:
        out[f'Acc.{names[i]}'] = float(np.round(acc[i] * 100, 2))
    for i in keep:
        out[f'F1.{names[i]}'] = float(np.round(f1[i] * 100, 2))
    return out


@METRICS.register_module()
class RSSegMetric(IoUMetric):
    """mmseg's ``IoUMetric`` accumulation with the paper's keys.

    Returns ``OA, mIoU, mAcc, mF1`` and ``IoU.<class>``, ``Acc.<class>``,
    ``F1.<class>`` for every reported class (Tab. 3, A6-A9).

    Args:
        report_classes (Sequence[str], optional): class names that enter the
            results (default: all). The model is still trained and evaluated
            on every class; only the reported numbers skip the others.
        ignore_index (int): label ignored in evaluation. Defaults to 255.
        Other args as ``mmseg.evaluation.IoUMetric``.
    """

    def __init__(self,
                 report_classes: Optional[Sequence[str]] = None,
                 ignore_index: int = 255,
                 **kwargs):
        kwargs.setdefault('iou_metrics', ['mIoU', 'mFscore'])
        super().__init__(ignore_index=ignore_index, **kwargs)
        self.report_classes = None if report_classes is None else list(
            report_classes)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        if self.format_only:
            logger.info(f'results are saved to {self.output_dir}')
            return OrderedDict()
        areas = [sum(r).cpu().numpy() for r in zip(*results)]
        metrics = seg_metrics_from_areas(*areas, self.dataset_meta['classes'],
                                         self.report_classes)
        rows = [f'{k}: {v:.2f}' for k, v in metrics.items()]
        print_log('segmentation results:\n' + '\n'.join(rows), logger=logger)
        return metrics


@METRICS.register_module()
class SceneOA(Accuracy):
    """Overall accuracy (Appendix B.5.1) under the key ``OA``, in percent."""
    default_prefix: Optional[str] = None

    def __init__(self, **kwargs):
        kwargs.setdefault('topk', (1, ))
        super().__init__(**kwargs)
        if tuple(self.topk) != (1, ):
            raise ValueError(f'SceneOA reports top-1 accuracy only, got '
                             f'topk={self.topk}')

    def compute_metrics(self, results: List) -> Dict[str, float]:
        return {'OA': float(super().compute_metrics(results)['top1'])}


__all__ = ['RSSegMetric', 'SceneOA', 'seg_metrics_from_areas']
