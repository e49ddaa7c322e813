"""VOC-style mAP that also reports the AP50 of every class (Tab. A10).

mmdet's ``VOCMetric`` prints the per-class AP table to the log but returns
only ``mAP`` / ``AP50``; Tab. A10 (SAR-AIRcraft-1.0) reports AP50 per aircraft
type, so these come back as ``pascal_voc/AP50_<class>`` too.
"""
from mmdet.evaluation import VOCMetric
from mmdet.evaluation.functional import eval_map
from mmengine.logging import MMLogger

from mmringmoe.registry import METRICS


@METRICS.register_module()
class ClasswiseVOCMetric(VOCMetric):
    """``VOCMetric`` (same arguments and keys) + ``AP50_<class>`` per class.

    The per-class values are computed exactly like mmdet's (``eval_map`` at
    IoU 0.5, the configured ``eval_mode``, legacy +1 pixel coordinates); a
    class without ground truth in the evaluated set gets AP 0, as in mmdet.
    """

    def compute_metrics(self, results: list) -> dict:
        eval_results = super().compute_metrics(results)
        if self.metric != 'mAP':
            return eval_results
        gts, preds = zip(*results)
        classes = self.dataset_meta['classes']
        _, per_class = eval_map(
            preds, gts, scale_ranges=self.scale_ranges, iou_thr=0.5,
            dataset=classes, logger='silent', eval_mode=self.eval_mode,
            use_legacy_coordinate=True)
        for name, res in zip(classes, per_class):
            eval_results[f'AP50_{name}'] = round(float(res['ap']), 3)
        MMLogger.get_current_instance().info(
            'per-class AP50: ' + ', '.join(
                f'{n} {eval_results[f"AP50_{n}"]}' for n in classes))
        return eval_results
