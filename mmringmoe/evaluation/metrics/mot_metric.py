"""MOTA / IDF1 / HOTA for satellite-video tracking (paper B.5.5).

mmdet's ``MOTChallengeMetric`` hands the ground truth to TrackEval's
``MotChallenge2DBox``, which scores class 1 ("pedestrian") only and drops the
other MOT17 class ids. AIR-MOT labels aircraft 1 and ship 2, so ships would
silently vanish from the score. The paper reports one MOTA / IDF1 per data
set over all its objects, and predicted tracks are written to TrackEval
without a class anyway, so every ground-truth box is scored as class 1.

mmdet's tracklet post-processing (``InterpolateTracklets``) fails on a video
without any predicted track (``np.max`` of an empty array); such a video is
passed through unchanged here.
"""
import copy

import numpy as np

from mmdet.evaluation import MOTChallengeMetric

from mmringmoe.registry import METRICS


@METRICS.register_module()
class ClassAgnosticMOTChallengeMetric(MOTChallengeMetric):
    """``MOTChallengeMetric`` over all classes of the data set together.

    Same arguments and result keys as mmdet's metric
    (``motchallenge-metric/MOTA``, ``.../IDF1``, ``.../HOTA``, ...). Only the
    class id written to TrackEval's ground-truth files changes: always 1.
    ``mot_conf`` (0 = ignore region) and ``visibility`` keep their meaning.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.postprocess_tracklet_methods = [
            _SkipEmpty(m) for m in self.postprocess_tracklet_methods
        ]

    def transform_gt_and_pred(self, img_data_sample, video, frame_id):
        if 'instances' in img_data_sample:
            img_data_sample = dict(img_data_sample)
            instances = copy.copy(img_data_sample['instances'])
            img_data_sample['instances'] = [
                dict(ins, category_id=1) for ins in instances
            ]
        return super().transform_gt_and_pred(img_data_sample, video, frame_id)


class _SkipEmpty:
    """Run a tracklet post-processing only on a non-empty ``(N, 7)`` array."""

    def __init__(self, method):
        self.method = method

    def forward(self, pred_tracks):
        pred_tracks = np.asarray(pred_tracks)
        if pred_tracks.size == 0:
            return pred_tracks.reshape(0, 7)
        return self.method.forward(pred_tracks)
