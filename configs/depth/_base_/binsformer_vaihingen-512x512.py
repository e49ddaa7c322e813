# BinsFormer height (depth) estimation on RingMoE (paper Appendix B.5.7),
# ISPRS Vaihingen. Everything except the backbone, which a leaf config adds
# from ../_base_/backbones/ringmoe-opt*.py.
default_scope = 'mmseg'
custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)

crop_size = (512, 512)
min_depth = 1e-3
max_depth = 100.  # metres above the tile's lowest point (see LoadDSMFromFile)
# ISPRS tiles are read in their stored band order (IRRG / RGB) and dtype,
# 3 bands checked (LoadRSImageFromFile)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=0,  # padded depth = invalid
    size=crop_size)
feat_channels = 256
model = dict(
    type='mmringmoe.MoEDepthEstimator',
    data_preprocessor=data_preprocessor,
    backbone=dict(),
    decode_head=dict(
        type='mmringmoe.BinsFormerHead',
        in_channels=[448, 896, 1792, 3584],  # RingMoE-1B stage widths
        strides=[4, 8, 16, 32],
        feat_channels=feat_channels,
        num_bins=64,
        min_depth=min_depth,
        max_depth=max_depth,
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder',
            num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'),
            encoder=dict(
                num_layers=6,
                layer_cfg=dict(
                    self_attn_cfg=dict(
                        embed_dims=feat_channels, num_heads=8, num_levels=3,
                        num_points=4, im2col_step=64, dropout=0.0,
                        batch_first=True, norm_cfg=None, init_cfg=None),
                    ffn_cfg=dict(
                        embed_dims=feat_channels, feedforward_channels=1024,
                        num_fcs=2, ffn_drop=0.0,
                        act_cfg=dict(type='ReLU', inplace=True)))),
            positional_encoding=dict(num_feats=feat_channels // 2,
                                     normalize=True)),
        transformer_decoder=dict(
            num_layers=9,  # 3 rounds over the 3 pixel-decoder scales
            return_intermediate=True,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=feat_channels, num_heads=8,
                                   dropout=0.0, batch_first=True),
                cross_attn_cfg=dict(embed_dims=feat_channels, num_heads=8,
                                    dropout=0.0, batch_first=True),
                ffn_cfg=dict(embed_dims=feat_channels,
                             feedforward_channels=2048, num_fcs=2,
                             ffn_drop=0.0,
                             act_cfg=dict(type='ReLU', inplace=True)))),
        with_scene_query=True,
        num_scene_classes=0,  # ISPRS has no scene labels
        loss_decode=dict(type='SiLogLoss', loss_weight=10.),
        aux_loss_layers=(2, 5),
        aux_loss_weights=(0.25, 0.5)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide_flip', crop_size=crop_size, stride=(384, 384)))

# ---------------------------------------------------------------- data
dataset_type = 'mmringmoe.VaihingenDepthDataset'
data_root = 'data/vaihingen'
# Pixels the image or the DSM declares nodata get depth 0 = invalid
# (LoadDSMFromFile), which SiLogLoss and DepthMetric leave out.
load_image = dict(type='mmringmoe.LoadRSImageFromFile', modality='opt')
train_pipeline = [
    load_image,
    dict(type='mmringmoe.LoadDSMFromFile', reference='tile_min'),
    # random rotation on the whole tile so the 512 crop rarely sees the
    # invalid (zero) corners it creates
    dict(type='RandomRotate', prob=0.5, degree=180, pad_val=0, seg_pad_val=0),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    load_image,
    dict(type='mmringmoe.LoadDSMFromFile', reference='tile_min'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
# Rel = abs_rel, delta1-3 = d1-d3, plus rmse (B.5.7 (3)); mmseg 1.2.2
# DepthMetric raises on `depth_metrics=[...]`, so all metrics are computed
val_evaluator = dict(type='DepthMetric', min_depth_eval=min_depth,
                     max_depth_eval=max_depth)
test_evaluator = val_evaluator

# ---------------------------------------------------------------- schedule
# AdamW (0.9, 0.999, wd 0.01), lr 1e-4, 38.4k iterations, batch 8, linear
# warm-up over the first 30% (B.5.7)
max_iters = 38400
warmup_iters = int(0.3 * max_iters)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=warmup_iters),
    # after warm-up BinsFormer anneals (one-cycle); cosine to 0 here
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=False,
         begin=warmup_iters, end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=3840)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# ---------------------------------------------------------------- runtime
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3840,
                    max_keep_ckpts=2, save_best='abs_rel', rule='less'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends,
                  name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
