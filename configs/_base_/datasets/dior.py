# DIOR horizontal detection (paper B.5.4): trainval for training, test for
# evaluation, 800x800, RandomFlip only (no multi-scale training).
dataset_type = 'mmringmoe.DIORHBBDataset'
data_root = 'data/DIOR/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(800, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(800, 800), keep_ratio=True),
    # loaded after Resize so that the boxes stay in original coordinates
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
# DIOR layout: see mmringmoe.datasets.det_datasets.DIORHBBDataset
train_split = dict(
    type=dataset_type,
    data_root=data_root,
    img_subdir='JPEGImages-trainval',
    # upstream VOC value (paper silent)
    filter_cfg=dict(filter_empty_gt=True, min_size=32),
    pipeline=train_pipeline,
    backend_args=backend_args)
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(train_split, ann_file='ImageSets/Main/train.txt'),
            dict(train_split, ann_file='ImageSets/Main/val.txt'),
        ]))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Main/test.txt',
        img_subdir='JPEGImages-test',
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# VOC-style mAP at IoU 0.5 (`pascal_voc/mAP`, = AP50). '11points' is mmdet's
# upstream VOC value; the paper does not say which interpolation it used.
val_evaluator = dict(type='VOCMetric', metric='mAP', eval_mode='11points')
test_evaluator = val_evaluator
