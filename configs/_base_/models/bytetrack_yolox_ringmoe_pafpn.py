# ByteTrack with a YOLOX detector on RingMoE (paper B.5.5), built on mmdet's
# upstream `bytetrack_yolox_x_8xb4-80e_crowdhuman-mot17halftrain_test-
# mot17halfval.py`: YOLOX-X neck and head widths, KalmanFilter motion,
# tracklet interpolation, EMA, checkpoint hooks and the MOT metrics come from
# there (the paper only says "standard YOLOX"). The data settings of that
# file are replaced by the data set bases (air-mot_bytetrack.py, ...).
#
# This file holds the stage-1 schedule; stage 2 (frozen backbone, full
# frames, SGD) is set by the `*_stage2_*` leaf configs from the variables
# `stage2_*` at the bottom.
_base_ = 'mmdet::bytetrack/bytetrack_yolox_x_8xb4-80e_crowdhuman-mot17halftrain_test-mot17halfval.py'  # noqa: E501

custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)

model = dict(
    # RingMoE was pretrained on normalised RGB, so frames are normalised like
    # the detection configs (upstream YOLOX feeds raw BGR 0-255). No
    # multi-scale batch resize: the paper trains on fixed 640x640 crops
    # (stage 1) and full frames (stage 2).
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        batch_augments=None),
    detector=dict(
        # mmdet YOLOX + loss_moe_balance when the backbone is sparse (EP)
        type='mmringmoe.RingMoEYOLOX',
        # replaced by a variant of configs/_base_/backbones/ in the leaves;
        # stages 1-3 = strides 8/16/32 go into the PAFPN
        backbone=dict(
            _delete_=True,
            type='mmringmoe.RingMoE',
            out_indices=(1, 2, 3)),
        neck=dict(in_channels=[896, 1792, 3584]),
        init_cfg=None,
        # paper: NMS threshold 0.65 (score_thr 0.01: upstream)
        test_cfg=dict(nms=dict(iou_threshold=0.65))),
    # Paper B.5.5 inference settings mapped onto mmdet's ByteTracker
    # (original ByteTrack argument -> ByteTracker parameter):
    # mmdet's ByteTracker skips the Kalman prediction on a frame without any
    # detection, so a target hidden for a few frames (cloud) came back with
    # a new id; this subclass predicts every track on every frame.
    tracker=dict(
        type='mmringmoe.PredictingByteTracker',
        motion=dict(type='KalmanFilter'),
        # track_thresh 0.3 -> obj_score_thrs.high: detections above it enter
        # the first association. The low-score bound of the second
        # association is ByteTrack's fixed 0.1 (also upstream's value).
        obj_score_thrs=dict(high=0.3, low=0.1),
        # ByteTrack starts a new track above track_thresh + 0.1 (its
        # `det_thresh`); upstream's 0.6 / 0.7 pair follows the same rule.
        init_track_thr=0.4,
        weight_iou_with_det_scores=True,
        # match_thresh 0.8 is ByteTrack's cost limit on 1 - IoU in the first
        # association; ByteTracker takes an IoU threshold and uses
        # 1 - threshold as the cost limit, so IoU >= 1 - 0.8 = 0.2. The
        # second (0.5) and unconfirmed-track (0.3) thresholds are ByteTrack's
        # fixed 1 - 0.5 and 1 - 0.7 (also upstream's values).
        match_iou_thrs=dict(high=0.2, low=0.5, tentative=0.3),
        # track buffer 50 frames -> tracks lost for 50 frames are dropped.
        # (ByteTrack scales its buffer by frame_rate / 30; the paper states
        # the buffer in frames, so no scaling here.)
        num_frames_retain=50))

# Stage 1 (paper B.5.5): all parameters trained on 640x640 frame crops,
# AdamW lr 1e-5, weight decay 0.005, batch size 2; linear warm-up over the
# first 5000 iterations from factor 0.1, then constant, 5 epochs.
# No decay on norms and biases: upstream YOLOX value (paper silent).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-5, weight_decay=0.005),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=5000)
]
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=5, val_begin=5, val_interval=1)
auto_scale_lr = dict(enable=False, base_batch_size=2)
# YOLOXModeSwitchHook is dropped: it switches off Mosaic/MixUp, which the
# paper's crop pipeline does not use. EMA and SyncNorm: upstream.
custom_hooks = [
    dict(type='SyncNormHook', priority=48),
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0001,
        update_buffers=True,
        priority=49)
]

# Stage 2 (paper B.5.5): backbone frozen (all 4 stages and the patch
# embedding), original 1920x1080 frames, SGD lr 4e-4, weight decay 0.005,
# batch size 2, 2 more epochs. Momentum 0.9 and Nesterov: upstream YOLOX;
# constant learning rate (the paper names no schedule for stage 2).
stage2_optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='SGD', lr=4e-4, momentum=0.9, weight_decay=0.005,
        nesterov=True),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
stage2_param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=2)
]
stage2_train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=2, val_begin=2, val_interval=1)

# Class-agnostic MOTA / IDF1 / HOTA (see mmringmoe ClassAgnosticMOTChallengeMetric)
val_evaluator = dict(
    _delete_=True,
    type='mmringmoe.ClassAgnosticMOTChallengeMetric',
    metric=['HOTA', 'CLEAR', 'Identity'],
    # upstream post-processing (paper silent)
    postprocess_tracklet_cfg=[
        dict(type='InterpolateTracklets', min_num_frames=5,
             max_num_frames=20)
    ])
test_evaluator = val_evaluator
