"""Changed-class precision / recall / F1 / IoU (paper B.5.6 (3))."""
from collections import OrderedDict

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mmringmoe.registry import METRICS


@METRICS.register_module()
class ChangeDetectionMetric(BaseMetric):
    """Pixel counts of the changed class accumulated over the whole split.

    Precision = TP / (TP + FP), Recall = TP / (TP + FN),
    F1 = 2PR / (P + R), IoU = TP / (TP + FP + FN); reported in percent like
    the paper's tables. Pixels labelled ``ignore_index`` are skipped.
    """

    default_prefix = None

    def __init__(self, changed_index=1, ignore_index=255,
                 collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.changed_index = changed_index
        self.ignore_index = ignore_index

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze()
            gt = sample['gt_sem_seg']['data'].squeeze().to(pred.device)
            if pred.shape != gt.shape:
                raise ValueError(f'prediction {tuple(pred.shape)} and label '
                                 f'{tuple(gt.shape)} differ in shape')
            valid = gt != self.ignore_index
            p = (pred == self.changed_index) & valid
            g = (gt == self.changed_index) & valid
            self.results.append(torch.stack([
                (p & g).sum(), (p & ~g).sum(), (~p & g).sum()]).cpu())

    @staticmethod
    def scores(tp, fp, fn):
        """Precision, recall, F1, IoU in [0, 1] from counts (0 when undefined)."""
        tp, fp, fn = float(tp), float(fp), float(fn)
        precision = tp / (tp + fp) if tp + fp else 0.
        recall = tp / (tp + fn) if tp + fn else 0.
        f1 = (2 * precision * recall / (precision + recall)
              if precision + recall else 0.)
        iou = tp / (tp + fp + fn) if tp + fp + fn else 0.
        return precision, recall, f1, iou

    def compute_metrics(self, results):
        tp, fp, fn = torch.stack(results).sum(0).tolist()
        precision, recall, f1, iou = self.scores(tp, fp, fn)
        metrics = OrderedDict(F1=f1 * 100, IoU=iou * 100,
                              Precision=precision * 100, Recall=recall * 100)
        print_log('change detection (changed class): ' + ', '.join(
            f'{k} {v:.2f}' for k, v in metrics.items()), logger='current')
        return metrics
