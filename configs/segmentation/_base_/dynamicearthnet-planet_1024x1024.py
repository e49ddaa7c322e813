# Dyna.-pla: DynamicEarthNet PlanetFusion (Appendix B.5.2): 4-band (B, G, R,
# NIR as stored; kept in file order like the pretraining loader) 1024 x 1024
# images of 75 locations, 7 land-cover classes, official split 55 / 10 / 10
# locations; the monthly label pairs with the month's first-day image. The
# paper evaluates on the official validation and test sets: val_dataloader is
# `val`, test_dataloader is `test`.
# Paper: images at 1024 x 1024, batch 8, 16k iterations, RandomFlip,
# RandomScaling 0.5-2.0, RandomCrop. Band statistics for NormalizeRS:
#   python tools/dataset_converters/compute_rs_stats.py data/dynamicearthnet/planet \
#       --modality ms --out data/dynamicearthnet/rs_stats.json
# Not in the paper (mmseg defaults): cat_max_ratio 0.75, whole-image test.
dataset_type = 'mmringmoe.DynamicEarthNetDataset'
data_root = 'data/dynamicearthnet'
crop_size = (1024, 1024)
num_classes = 7
stats_file = data_root + '/rs_stats.json'
data_preprocessor = dict(
    type='SegDataPreProcessor', pad_val=0, seg_pad_val=255, size=crop_size)
train_pipeline = [
    dict(type='mmringmoe.LoadRSImageFromFile', modality='ms',
         to_float32=True),
    dict(type='mmringmoe.NormalizeRS', stats_file=stats_file, modality='ms'),
    dict(type='mmringmoe.LoadSegAnnotations', num_classes=num_classes),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='mmringmoe.LoadRSImageFromFile', modality='ms',
         to_float32=True),
    dict(type='mmringmoe.NormalizeRS', stats_file=stats_file, modality='ms'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='mmringmoe.LoadSegAnnotations', num_classes=num_classes),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='dynnet_training_splits/train.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='dynnet_training_splits/val.txt',
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='dynnet_training_splits/test.txt',
        pipeline=test_pipeline))
val_evaluator = dict(type='mmringmoe.RSSegMetric')
test_evaluator = val_evaluator
