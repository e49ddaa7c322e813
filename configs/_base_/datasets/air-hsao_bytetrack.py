# AIR-HSAO (paper B.5.5): high-speed airplanes in Jilin satellite videos,
# 1920x1080, one class (aircraft); 128 training and 69 test videos, scored
# on test (airmot2coco.py --dataset air-hsao).
# Annotations: run tools/dataset_converters/airmot2coco.py first (input
# layout documented in mmringmoe/datasets/mot_convert.py), giving
#   data/AIR-HSAO/{train,test}/<video>/img/000001.jpg ...
#   data/AIR-HSAO/annotations/{train,test}_cocoformat.json
# The detector trains on single frames (CocoDataset over the same json);
# tracking is evaluated video by video (MOTChallengeDataset).
# Holds the model (chained on it, since mmdet's upstream ByteTrack config
# carries its own data keys) and the stage-1 pipeline; stage-2 leaves switch
# to `full_frame_train_pipeline`.
_base_ = '../models/bytetrack_yolox_ringmoe_pafpn.py'

classes = ('aircraft', )
data_root = 'data/AIR-HSAO/'
backend_args = None

model = dict(detector=dict(bbox_head=dict(num_classes=len(classes))))

# stage 1: 640x640 crops of the frames (paper), horizontal flip (upstream)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomCrop', crop_size=(640, 640), allow_negative_crop=False),
    dict(type='RandomFlip', prob=0.5),
    # upstream value: drop boxes cut to under 1 px by the crop
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs')
]
# stage 2: the original 1920x1080 frames (Resize is the identity on them and
# brings other frame sizes to the same scale)
full_frame_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1920, 1080), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadImageFromFile', backend_args=backend_args),
            dict(type='Resize', scale=(1920, 1080), keep_ratio=True),
            dict(type='LoadTrackAnnotations'),
        ]),
    dict(type='PackTrackInputs')
]
train_dataloader = dict(
    _delete_=True,
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        ann_file='annotations/train_cocoformat.json',
        data_prefix=dict(img=''),
        metainfo=dict(classes=classes),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    # frame by frame, videos kept in order (upstream)
    sampler=dict(type='TrackImgSampler'),
    dataset=dict(
        type='MOTChallengeDataset',
        data_root=data_root,
        ann_file='annotations/test_cocoformat.json',
        data_prefix=dict(img_path=''),
        metainfo=dict(classes=classes),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
