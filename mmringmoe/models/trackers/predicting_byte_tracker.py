"""ByteTracker that Kalman-predicts its tracks on every frame.

mmdet 3.x ``ByteTracker.track`` (``mmdet/models/trackers/byte_tracker.py``)
runs the Kalman prediction of its confirmed tracks only inside the branch
taken when the frame has at least one detection. On a frame without any
detection (a cloud over the only target, a blank frame) the tracks keep their
last state; a target missing for ``k`` such frames is then predicted one
step instead of ``k + 1`` when it returns, misses the IoU gate and gets a new
id. The same target keeps its id when any other object is detected in those
frames, so the result depended on unrelated objects.
"""
from mmdet.models.trackers import ByteTracker
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmringmoe.registry import MODELS


@MODELS.register_module()
class PredictingByteTracker(ByteTracker):
    """mmdet ``ByteTracker`` whose confirmed tracks are predicted on every
    frame, including frames with no detection at all.

    On a frame with detections nothing changes (``ByteTracker.track`` already
    predicts every confirmed track). On a frame with none, each confirmed
    track gets the step ``ByteTracker`` applies on a frame with detections:
    the height velocity (Kalman state index 7) of a track lost before this
    frame is zeroed, then ``KalmanFilter.predict`` advances mean and
    covariance by one frame. Tentative tracks are not predicted (as
    upstream: an unmatched tentative track is dropped on the same frame).

    Same arguments as :class:`mmdet.models.trackers.ByteTracker`.
    """

    def predict_tracks(self, frame_id: int) -> None:
        """Advance every confirmed track's Kalman state to ``frame_id``.

        The per-track step is the one of ``ByteTracker.track`` (step 1):
        ``mean[7] = 0`` for a track not matched on ``frame_id - 1``, then
        ``self.kf.predict``.
        """
        for id in self.confirmed_ids:
            track = self.tracks[id]
            if track.frame_ids[-1] != frame_id - 1:
                track.mean[7] = 0
            track.mean, track.covariance = self.kf.predict(
                track.mean, track.covariance)

    def track(self, data_sample: DetDataSample, **kwargs) -> InstanceData:
        """``ByteTracker.track``, after predicting the tracks of a frame that
        has no detection (``pred_instances`` empty)."""
        frame_id = data_sample.metainfo.get('frame_id', -1)
        if not hasattr(self, 'kf'):
            self.kf = self.motion
        no_detection = data_sample.pred_instances.bboxes.size(0) == 0
        if no_detection and frame_id != 0 and not self.empty:
            self.predict_tracks(frame_id)
        return super().track(data_sample, **kwargs)


__all__ = ['PredictingByteTracker']
