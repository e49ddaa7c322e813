# HRSID ship detection in amplitude SAR (SAR-L2), COCO json, 800x800 images;
# train2017 for training, test2017 for evaluation (paper B.5.4).
# The images are single-band: read as 1 channel, they go through the
# backbone's own `sar_l2` patch embedding (1 input channel), never as a gray
# image copied into 3 channels.
dataset_type = 'mmringmoe.HRSIDDataset'
data_root = 'data/HRSID/'
backend_args = None

# The single SAR-L2 band is standardised with the data set's statistics
# (paper silent; the convention of the pretraining and segmentation configs):
#   python tools/dataset_converters/compute_rs_stats.py data/HRSID/JPEGImages \
#       --modality sar_l2 --collapse-identical-bands --out data/HRSID/rs_stats.json
# so the data preprocessor only pads and batches.
stats_file = data_root + 'rs_stats.json'
sar_l2_data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=None,
    std=None,
    bgr_to_rgb=False,
    pad_size_divisor=32)

# The reader of compute_rs_stats.py: the file's dtype (16-bit amplitude stays
# 16-bit) and its single band (a grey image stored as 3 identical bands, as
# JPEG archives ship it, is read as that one band, losslessly, by both the
# loader and compute_rs_stats.py --collapse-identical-bands; differing bands
# are refused); a file with another band count is refused
# with its name (mmdet's LoadImageFromFile(color_type='grayscale') turned
# 16-bit amplitude into 8-bit 0..26, far from the statistics).
# NormalizeRS gives float32 (H, W, 1), which mmdet's Resize / RandomFlip /
# PackDetInputs carry as one band.
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
    # loaded after Resize so that the boxes stay in original coordinates
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
        ann_file='annotations/train2017.json',
        data_prefix=dict(img='JPEGImages/'),
        # upstream COCO value (paper silent)
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
        ann_file='annotations/test2017.json',
        data_prefix=dict(img='JPEGImages/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# `pascal_voc/mAP` (VOC-style AP at IoU 0.5, all-point interpolation) is the
# paper's mAP50; `coco/bbox_mAP_50` is what the HRSID literature usually
# quotes (COCO 101-point AP at IoU 0.5), reported beside it.
val_evaluator = [
    dict(type='VOCMetric', metric='mAP', eval_mode='area'),
    dict(
        type='CocoMetric',
        ann_file=data_root + 'annotations/test2017.json',
        metric='bbox',
        backend_args=backend_args),
]
test_evaluator = val_evaluator
