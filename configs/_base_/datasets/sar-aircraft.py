# SAR-AIRcraft-1.0: 7 aircraft classes in amplitude SAR (SAR-L2), VOC XML,
# split 7:1:2 train/val/test (tools/dataset_converters/sar_aircraft_split.py
# writes it when the copy has none); train on train, validate on val, test on
# test; 800x800, RandomFlip only (paper B.5.4).
dataset_type = 'mmringmoe.SARAircraftDataset'
data_root = 'data/SAR-AIRcraft-1.0/'
backend_args = None

# Single-band input standardised with the data set's statistics, as in
# hrsid.py:
#   python tools/dataset_converters/compute_rs_stats.py \
#       data/SAR-AIRcraft-1.0/JPEGImages --modality sar_l2 --collapse-identical-bands \
#       --out data/SAR-AIRcraft-1.0/rs_stats.json
stats_file = data_root + 'rs_stats.json'
sar_l2_data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=None,
    std=None,
    bgr_to_rgb=False,
    pad_size_divisor=32)
# same reader as compute_rs_stats.py (dtype and band count kept; see hrsid.py)
load_sar_l2 = dict(
    type='mmringmoe.LoadRSImageFromFile', modality='sar_l2',
    collapse_identical_bands=True, backend_args=backend_args)
normalize_sar_l2 = dict(
    type='mmringmoe.NormalizeRS', stats_file=stats_file, modality='sar_l2')
train_pipeline = [
    load_sar_l2,
    normalize_sar_l2,
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(800, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    load_sar_l2,
    normalize_sar_l2,
    dict(type='Resize', scale=(800, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Main/train.txt',
        # upstream VOC value (paper silent)
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Main/val.txt',
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'],
                 ann_file='ImageSets/Main/test.txt'))

# VOC-style mAP at IoU 0.5 ('11points': mmdet's upstream VOC value), plus
# the AP50 of each aircraft type as in Tab. A10 (`pascal_voc/AP50_A330`, ...)
val_evaluator = dict(
    type='mmringmoe.ClasswiseVOCMetric', metric='mAP', eval_mode='11points')
test_evaluator = val_evaluator
