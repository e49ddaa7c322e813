# BIT change detection on RingMoE (paper Appendix B.5.6), LEVIR-CD.
# Everything except the backbone: a leaf config adds one of
# ../_base_/backbones/ringmoe-opt*.py and sets `model.backbone`.
default_scope = 'mmseg'
custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)

crop_size = (256, 256)  # non-overlapping 256 x 256 slices (B.5.6)
# two RGB dates stacked along channels (A then B), loaded in RGB order
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53] * 2,
    std=[58.395, 57.12, 57.375] * 2,
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='mmringmoe.SiameseEncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(frozen_stages=0),  # first RingMoE stage frozen (B.5.6)
    decode_head=dict(
        type='mmringmoe.BITHead',
        in_channels=[448, 896, 1792, 3584],  # RingMoE-1B stage widths
        in_index=[0, 1, 2, 3],
        input_transform='multiple_select',
        channels=32,
        token_len=4,
        enc_depth=1,
        dec_depth=8,
        num_heads=8,
        enc_dim_head=64,
        dec_dim_head=8,
        mlp_ratio=2,
        upsample_factor=4,
        dropout_ratio=0.,
        num_classes=2,
        out_channels=1,  # one logit per pixel: binary cross-entropy (B.5.6)
        threshold=0.5,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# ---------------------------------------------------------------- data
dataset_type = 'mmringmoe.LEVIRCDDataset'
# LEVIR-CD sliced into 256 x 256 tiles with mmseg's levircd.py converter
# (clip 256, stride 256): <split>/{A,B,label}/*.png
data_root = 'data/LEVIR-CD256'
# Label values of the sliced masks: mmseg's levircd.py writes 0/1 (the
# original 1024 x 1024 LEVIR-CD masks are 0/255: use '0/255' for them). A
# mask that does not fit is refused with its name (see LoadChangeLabel).
label_convention = '0/1'
# Each date keeps its file's dtype and must have the 3 bands of 'opt';
# pixels invalid on either date (declared nodata, NaN) become ignore (255).
load_pair = dict(type='mmringmoe.LoadBitemporalImageFromFile', modality='opt')
load_label = dict(type='mmringmoe.LoadChangeLabel',
                  label_convention=label_convention)
train_pipeline = [
    load_pair,
    load_label,
    # re-scaling then cropping back to 256 (BIT: scale in [1, 1.2])
    dict(type='RandomResize', scale=crop_size, ratio_range=(1.0, 1.2),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=[0.25, 0.25],
         direction=['horizontal', 'vertical']),
    # colour jitter with the same random draws on both dates (the brief's
    # "consistent for both dates"; BIT itself re-draws per date:
    # same_for_both_dates=False)
    dict(type='mmringmoe.BitemporalPhotoMetricDistortion',
         same_for_both_dates=True),
    dict(type='mmringmoe.BitemporalGaussianBlur', prob=0.5,
         sigma_range=(0.1, 2.0)),
    dict(type='PackSegInputs')
]
test_pipeline = [
    load_pair,
    load_label,
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='train/A', img_path2='train/B',
            seg_map_path='train/label'),
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
            img_path='val/A', img_path2='val/B', seg_map_path='val/label'),
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
            img_path='test/A', img_path2='test/B', seg_map_path='test/label'),
        pipeline=test_pipeline))
# F1 / IoU of the changed class plus precision and recall (B.5.6 (3))
val_evaluator = dict(type='mmringmoe.ChangeDetectionMetric')
test_evaluator = val_evaluator

# ---------------------------------------------------------------- schedule
# AdamW, lr 5e-5 decaying linearly to 0 over 200 epochs (B.5.6)
max_epochs = 200
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-5, betas=(0.9, 0.999),
                   weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# ---------------------------------------------------------------- runtime
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=5,
                    max_keep_ckpts=2, save_best='F1', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends,
                  name='visualizer')
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
