"""Metrics of unseen-class recognition (paper B.5.8 (3))."""
from collections import OrderedDict

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mmringmoe.registry import METRICS


@METRICS.register_module()
class FewShotAccuracy(BaseMetric):
    """Query accuracy per episode; reported as the mean over episodes with
    the half-width of its 95% confidence interval, both in percent:
    ``accuracy`` +- ``accuracy_ci95`` = 1.96 * std / sqrt(#episodes)."""

    default_prefix = None

    def process(self, data_batch, data_samples):
        for ds in data_samples:
            # the evaluator hands over data samples as dicts (to_dict())
            pred = ds.get('pred_label').cpu()
            gt = ds.get('query_labels').cpu()
            self.results.append(float((pred == gt).float().mean()))

    @staticmethod
    def mean_ci95(values):
        values = np.asarray(values, dtype=np.float64)
        ci = (1.96 * values.std() / np.sqrt(len(values))
              if len(values) > 1 else 0.)
        return float(values.mean()), float(ci)

    def compute_metrics(self, results):
        mean, ci = self.mean_ci95(results)
        print_log(f'few-shot accuracy over {len(results)} episodes: '
                  f'{100 * mean:.2f} +- {100 * ci:.2f}', logger='current')
        return OrderedDict(accuracy=100 * mean, accuracy_ci95=100 * ci)


@METRICS.register_module()
class FewShotSegMetric(BaseMetric):
    """Class IoU over a fold's novel classes.

    Intersection and union of the episode's class (foreground) are summed per
    class over all test episodes; ``mIoU`` is the mean of the per-class IoUs
    (n = 5 for an iSAID fold, 2 for LoveDA), in percent. The paper's number
    is the mean of the three folds' ``mIoU``. ``FB-IoU`` (mean of foreground
    and background IoU over all episodes) is reported as well.
    """

    default_prefix = None

    def __init__(self, ignore_index=255, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ignore_index = ignore_index

    def process(self, data_batch, data_samples):
        for ds in data_samples:
            pred = ds.get('pred_mask').cpu().long()
            gt = ds.get('gt_mask').cpu().long()
            valid = gt != self.ignore_index
            counts = []
            for cls in (1, 0):
                p, g = (pred == cls) & valid, (gt == cls) & valid
                counts += [int((p & g).sum()), int((p | g).sum())]
            self.results.append((ds.get('class_name'), *counts))

    def compute_metrics(self, results):
        per_class = {}
        fb = np.zeros(4)
        for name, inter, union, bg_inter, bg_union in results:
            acc = per_class.setdefault(name, np.zeros(2))
            acc += (inter, union)
            fb += (inter, union, bg_inter, bg_union)
        ious = {n: (a[0] / a[1] if a[1] else 0.) for n, a in per_class.items()}
        metrics = OrderedDict(mIoU=100 * float(np.mean(list(ious.values()))))
        fg_iou = fb[0] / fb[1] if fb[1] else 0.
        bg_iou = fb[2] / fb[3] if fb[3] else 0.
        metrics['FB-IoU'] = 100 * (fg_iou + bg_iou) / 2
        for name in sorted(ious):
            metrics[f'IoU.{name}'] = 100 * ious[name]
        print_log('few-shot segmentation: ' + ', '.join(
            f'{k} {v:.2f}' for k, v in metrics.items()), logger='current')
        return metrics
