# Fig. A6a / Tab. A14: HRSC2016 oriented ship detection, mAP50 92.17. Oriented
# R-CNN (le90) + FPN on RingMoE-Opt-KC, paper B.5.4: 800x800 (here: the long
# side resized to 800, keep ratio; HRSC images are about 1000x600), 12 epochs,
# SGD lr 0.01 wd 0.05, linear warm-up ratio 1e-3, drop path 0.3, RandomFlip,
# no multi-scale training. One class ('ship', mmrotate's classwise=False
# default); trainval (436 + 181 images) for training, test (444) for
# evaluation, as mmrotate's upstream `_base_/datasets/hrsc.py`.
_base_ = [
    '../_base_/models/oriented-rcnn-le90_ringmoe_fpn.py',
    '../_base_/backbones/ringmoe-opt-kc.py',
]

model = dict(
    backbone=dict(_base_.backbone, drop_path_rate=0.3),
    roi_head=dict(bbox_head=dict(num_classes=1)))

# mmrotate HRSCDataset layout:
#   hrsc/FullDataSet/AllImages/*.bmp, hrsc/FullDataSet/Annotations/*.xml,
#   hrsc/ImageSets/{trainval,test}.txt
dataset_type = 'HRSCDataset'
data_root = 'data/hrsc/'
backend_args = None

train_pipeline = [
    dict(type='mmdet.LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
    dict(type='mmdet.Resize', scale=(800, 800), keep_ratio=True),
    dict(
        type='mmdet.RandomFlip',
        prob=0.75,
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='mmdet.PackDetInputs')
]
val_pipeline = [
    dict(type='mmdet.LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.Resize', scale=(800, 800), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
test_pipeline = val_pipeline
train_dataloader = dict(
    _delete_=True,
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/trainval.txt',
        data_prefix=dict(sub_data_root='FullDataSet/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/test.txt',
        data_prefix=dict(sub_data_root='FullDataSet/'),
        test_mode=True,
        pipeline=val_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# `dota/mAP` = `dota/AP50` (rotated IoU 0.5, VOC07 11-point: mmrotate's
# upstream HRSC setting). Spawn process pool: see the DIOR-R config.
val_evaluator = dict(_delete_=True, type='DOTAMetric', metric='mAP')
test_evaluator = val_evaluator
