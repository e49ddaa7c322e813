# WHU-OPT-SAR (Appendix B.5.3): co-registered optical (RGB of the RGB-NIR
# release) and amplitude SAR (SAR-L2), 7 classes, 256 x 256 patches without
# overlap, 8:2 split:
#   python tools/dataset_converters/whu_opt_sar.py /path/to/WHU-OPT-SAR --out-dir data/WHU-OPT-SAR
#   python tools/dataset_converters/compute_rs_stats.py data/WHU-OPT-SAR/optical/train \
#       --modality opt --out data/WHU-OPT-SAR/opt_stats.json   # then merge with the
#   sar_l2 statistics of data/WHU-OPT-SAR/sar/train into data/WHU-OPT-SAR/rs_stats.json
# The pair is loaded as one stacked array (optical first) so flips, scaling and
# crops move both images together.
# Paper: crop 256, batch 16, 80k iterations, RandomFlip, RandomScaling 0.5-2.0,
# RandomCrop. Not in the paper (mmseg defaults): cat_max_ratio 0.75,
# whole-image test, per-band standardisation per modality (NormalizeRS).
dataset_type = 'mmringmoe.WHUOptSARDataset'
data_root = 'data/WHU-OPT-SAR'
crop_size = (256, 256)
num_classes = 7
stats_file = data_root + '/rs_stats.json'
data_preprocessor = dict(
    type='SegDataPreProcessor', pad_val=0, seg_pad_val=255, size=crop_size)
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
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='optical/train', sar_path='sar/train',
            seg_map_path='lbl/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='optical/test', sar_path='sar/test',
            seg_map_path='lbl/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmringmoe.RSSegMetric')
test_evaluator = val_evaluator
