# NWPU-RESISC45 (Appendix B.5.1): 45 classes x 700 RGB images (256 x 256);
# 10% of every class for training, the remaining 90% for testing, split by
#   python tools/dataset_converters/cls_split.py data/NWPU-RESISC45 --train-ratio 0.1
# (seed 0) into data/splits/nwpu-resisc45_tr10/{classes,train,test}.txt.
# Training: RandomCrop 224, RandomFlip, RandomErasing (paper). Not in the paper:
# RandomErasing settings and per-GPU batch 64 from mmpretrain's Swin configs
# (imagenet_bs64_swin_*), ImageNet mean/std, test on the centre 224 crop.
dataset_type = 'CustomDataset'
data_root = 'data/'
split_dir = 'splits/nwpu-resisc45_tr10'
crop_size = 224

classes = (
    'airplane', 'airport', 'baseball_diamond', 'basketball_court', 'beach',
    'bridge', 'chaparral', 'church', 'circular_farmland', 'cloud',
    'commercial_area', 'dense_residential', 'desert', 'forest', 'freeway',
    'golf_course', 'ground_track_field', 'harbor', 'industrial_area',
    'intersection', 'island', 'lake', 'meadow', 'medium_residential',
    'mobile_home_park', 'mountain', 'overpass', 'palace', 'parking_lot',
    'railway', 'railway_station', 'rectangular_farmland', 'river',
    'roundabout', 'runway', 'sea_ice', 'ship', 'snowberg',
    'sparse_residential', 'stadium', 'storage_tank', 'tennis_court',
    'terrace', 'thermal_power_station', 'wetland')

data_preprocessor = dict(
    num_classes=len(classes),
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
bgr_mean = data_preprocessor['mean'][::-1]
bgr_std = data_preprocessor['std'][::-1]

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand',
         min_area_ratio=0.02, max_area_ratio=1 / 3, fill_color=bgr_mean,
         fill_std=bgr_std),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CenterCrop', crop_size=crop_size),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='NWPU-RESISC45',
        ann_file=split_dir + '/train.txt',
        classes=classes,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='NWPU-RESISC45',
        ann_file=split_dir + '/test.txt',
        classes=classes,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='mmringmoe.SceneOA')
test_evaluator = val_evaluator
