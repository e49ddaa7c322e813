# AID (Appendix B.5.1): 10,000 RGB images (600 x 600) in 30 classes; 20% of
# every class for training, 80% for testing, split by
#   python tools/dataset_converters/cls_split.py data/AID --train-ratio 0.2
# (seed 0) into data/splits/aid_tr20/{classes,train,test}.txt.
# Training: RandomCrop 512, RandomFlip, RandomErasing (paper). Not in the paper:
# RandomErasing settings and per-GPU batch 64 from mmpretrain's Swin configs,
# ImageNet mean/std, test on the centre 512 crop.
_base_ = ['./nwpu-resisc45_tr10_224px.py']

split_dir = 'splits/aid_tr20'
crop_size = 512
classes = (
    'Airport', 'BareLand', 'BaseballField', 'Beach', 'Bridge', 'Center',
    'Church', 'Commercial', 'DenseResidential', 'Desert', 'Farmland',
    'Forest', 'Industrial', 'Meadow', 'MediumResidential', 'Mountain', 'Park',
    'Parking', 'Playground', 'Pond', 'Port', 'RailwayStation', 'Resort',
    'River', 'School', 'SparseResidential', 'Square', 'Stadium',
    'StorageTanks', 'Viaduct')

data_preprocessor = dict(num_classes=len(classes))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand',
         min_area_ratio=0.02, max_area_ratio=1 / 3,
         fill_color={{_base_.bgr_mean}}, fill_std={{_base_.bgr_std}}),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CenterCrop', crop_size=crop_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    dataset=dict(
        data_prefix='AID',
        ann_file=split_dir + '/train.txt',
        classes=classes,
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_prefix='AID',
        ann_file=split_dir + '/test.txt',
        classes=classes,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
