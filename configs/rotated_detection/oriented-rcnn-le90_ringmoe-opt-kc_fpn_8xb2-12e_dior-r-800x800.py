# Tab. 4: DIOR-R oriented detection, mAP50 76.04. Oriented R-CNN (le90) + FPN on
# RingMoE-Opt-KC, paper B.5.4: 800x800, 12 epochs, SGD lr 0.01 wd 0.05,
# linear warm-up ratio 1e-3, drop path 0.3, RandomFlip, no multi-scale
# training; trainval for training, test for evaluation. Data set class, file
# layout, flip directions and metric are mmrotate's upstream DIOR-R settings
# (`_base_/datasets/dior.py`); batch size (paper silent): 8 GPUs x 2.
_base_ = [
    '../_base_/models/oriented-rcnn-le90_ringmoe_fpn.py',
    '../_base_/backbones/ringmoe-opt-kc.py',
]

model = dict(
    backbone=dict(_base_.backbone, drop_path_rate=0.3),
    roi_head=dict(bbox_head=dict(num_classes=20)))

# mmrotate DIORDataset layout:
#   DIOR/JPEGImages-trainval/*.jpg, DIOR/JPEGImages-test/*.jpg,
#   DIOR/Annotations/Oriented Bounding Boxes/*.xml (robndbox quadrilaterals),
#   DIOR/ImageSets/Main/{train,val,test}.txt
dataset_type = 'DIORDataset'
data_root = 'data/DIOR/'
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
    # loaded after Resize so that the boxes stay in original coordinates
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
test_pipeline = val_pipeline
train_split = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img_path='JPEGImages-trainval'),
    filter_cfg=dict(filter_empty_gt=True),
    pipeline=train_pipeline,
    backend_args=backend_args)
train_dataloader = dict(
    _delete_=True,
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type='ConcatDataset',
        ignore_keys=['DATASET_TYPE'],
        datasets=[
            dict(train_split, ann_file='ImageSets/Main/train.txt'),
            dict(train_split, ann_file='ImageSets/Main/val.txt'),
        ]))
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
        ann_file='ImageSets/Main/test.txt',
        data_prefix=dict(img_path='JPEGImages-test'),
        test_mode=True,
        pipeline=val_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# `dota/mAP` = `dota/AP50`: rotated-IoU 0.5, mmrotate's upstream VOC07
# 11-point interpolation. It computes in a 'spawn' process pool: scripts
# that run it must guard their entry point with `if __name__ == '__main__'`
# (tools/train.py and tools/test.py do).
val_evaluator = dict(_delete_=True, type='DOTAMetric', metric='mAP')
test_evaluator = val_evaluator
