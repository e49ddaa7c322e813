# DFC23 track 1 (Appendix B.5.3): optical + amplitude SAR (SAR-L2) roof-type
# segmentation, background + 12 roof classes, 512 x 512, split 7:2:1
# (train / val / test) from the released training set:
#   python tools/dataset_converters/dfc23.py /path/to/dfc23 --out-dir data/DFC23
# plus rs_stats.json with 'opt' and 'sar_l2' statistics of the training
# images (tools/dataset_converters/compute_rs_stats.py).
# Paper: crop 512, batch 12, 80k iterations, RandomFlip, RandomScaling
# 0.5-2.0, RandomCrop. Not in the paper (mmseg defaults): cat_max_ratio 0.75,
# whole-image test, per-band standardisation per modality (NormalizeRS);
# val_dataloader is the 20% validation part, test_dataloader the 10% test part.
_base_ = ['./whu-opt-sar_256x256.py']
dataset_type = 'mmringmoe.DFC23Dataset'
data_root = 'data/DFC23'
crop_size = (512, 512)
num_classes = 13
stats_file = data_root + '/rs_stats.json'
data_preprocessor = dict(size=crop_size)
train_pipeline = [
    dict(type='mmringmoe.LoadOptSARPair', stats_file=stats_file),
    dict(type='mmringmoe.LoadSegAnnotations', num_classes=num_classes),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='mmringmoe.LoadOptSARPair', stats_file=stats_file),
    dict(type='mmringmoe.LoadSegAnnotations', num_classes=num_classes),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=3,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='rgb/train', sar_path='sar/train',
            seg_map_path='ann/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='rgb/val', sar_path='sar/val', seg_map_path='ann/val'),
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='rgb/test', sar_path='sar/test', seg_map_path='ann/test'),
        pipeline=test_pipeline))
