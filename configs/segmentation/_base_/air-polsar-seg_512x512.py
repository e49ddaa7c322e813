# AIR-PolSAR-Seg (Appendix B.5.2): GF-3 amplitude SAR (SAR-L2), 512 x 512,
# 6 classes, released 7:3 train/test split. The paper treats the images as
# single-channel amplitude SAR (one polarisation per sample, HH here) and
# leaves the two tiny classes (Land-use area, Other area) out of its results:
# they are still learned, RSSegMetric(report_classes=...) drops them from the
# reported numbers.
#   python tools/dataset_converters/compute_rs_stats.py data/AIR-PolSAR-Seg/train/images \
#       --modality sar_l2 --out data/AIR-PolSAR-Seg/rs_stats.json
# Paper: crop 512, batch 8, 80k iterations, RandomFlip, RandomScaling 0.5-2.0,
# RandomCrop. Not in the paper (mmseg defaults): cat_max_ratio 0.75,
# whole-image test, per-band standardisation (NormalizeRS).
dataset_type = 'mmringmoe.AIRPolSARSegDataset'
data_root = 'data/AIR-PolSAR-Seg'
crop_size = (512, 512)
num_classes = 6
stats_file = data_root + '/rs_stats.json'
data_preprocessor = dict(
    type='SegDataPreProcessor', pad_val=0, seg_pad_val=255, size=crop_size)
train_pipeline = [
    dict(type='mmringmoe.LoadRSImageFromFile', modality='sar_l2',
         to_float32=True),
    dict(type='mmringmoe.NormalizeRS', stats_file=stats_file,
         modality='sar_l2'),
    dict(type='mmringmoe.LoadSegAnnotations', num_classes=num_classes),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='mmringmoe.LoadRSImageFromFile', modality='sar_l2',
         to_float32=True),
    dict(type='mmringmoe.NormalizeRS', stats_file=stats_file,
         modality='sar_l2'),
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
        polarization='HH',
        data_prefix=dict(
            img_path='train/images', seg_map_path='train/labels'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        polarization='HH',
        data_prefix=dict(img_path='test/images', seg_map_path='test/labels'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='mmringmoe.RSSegMetric',
    report_classes=('housing_area', 'industrial_area', 'natural_area',
                    'water'))
test_evaluator = val_evaluator
