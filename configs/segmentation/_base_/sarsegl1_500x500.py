# SARSegL1 (Appendix B.5.2): GF-3 fully polarimetric complex SAR, 5 classes.
# The four polarisations' two channels are stacked into 8 channels (HH, HV,
# VH, VV, each real then imaginary; mmringmoe.LoadComplexSAR). Tiles of
# 500 x 500 with overlap 200 (540 samples), split 8:2:
#   python tools/dataset_converters/sarsegl1.py --scene ... --out-dir data/SARSegL1
#   python tools/dataset_converters/compute_rs_stats.py data/SARSegL1/img_dir/train \
#       --modality sar_l1 --out data/SARSegL1/rs_stats.json
# Paper: crop 500, batch 4, 20k iterations, RandomFlip, RandomScaling 0.5-2.0,
# RandomCrop. Not in the paper (mmseg defaults): cat_max_ratio 0.75,
# whole-image test; per-channel standardisation with the training set's
# statistics (NormalizeRS) keeps the raw complex values' sign and phase.
dataset_type = 'mmringmoe.SARSegL1Dataset'
data_root = 'data/SARSegL1'
crop_size = (500, 500)
num_classes = 5
stats_file = data_root + '/rs_stats.json'
data_preprocessor = dict(
    type='SegDataPreProcessor', pad_val=0, seg_pad_val=255, size=crop_size)
train_pipeline = [
    dict(type='mmringmoe.LoadComplexSAR', to_float32=True),
    dict(type='mmringmoe.NormalizeRS', stats_file=stats_file,
         modality='sar_l1'),
    dict(type='mmringmoe.LoadSegAnnotations', num_classes=num_classes),
    # nearest: bilinear resampling of complex channels mixes speckle phases
    # and lowers the mean power by up to 4 dB (depending on the random
    # scale), while test images are never resized
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.5, 2.0),
         keep_ratio=True, interpolation='nearest'),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='mmringmoe.LoadComplexSAR', to_float32=True),
    dict(type='mmringmoe.NormalizeRS', stats_file=stats_file,
         modality='sar_l1'),
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
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/test', seg_map_path='ann_dir/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmringmoe.RSSegMetric')
test_evaluator = val_evaluator
