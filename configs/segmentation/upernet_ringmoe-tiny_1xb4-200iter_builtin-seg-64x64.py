# Demo (README, third command): a tiny RingMoE-opt + UperNet trained for a
# minute on the built-in generated land-cover tiles, then applied to a real
# scene with tools/infer.py. Generate the data first:
#   python tools/dataset_converters/make_builtin_seg_data.py   # -> data/builtin_seg
# Not a paper experiment: the backbone is the CPU-sized 'tiny' arch, trained
# from scratch.
_base_ = ['mmseg::_base_/default_runtime.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)

data_root = 'data/builtin_seg'
stats_file = data_root + '/rs_stats.json'
crop_size = (64, 64)
classes = ('water_shadow', 'forest', 'meadow_bare', 'snow_rock')
palette = [[30, 60, 200], [20, 110, 40], [200, 180, 90], [235, 235, 235]]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='mmringmoe.RingMoEEncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', pad_val=0,
                           seg_pad_val=255, size=crop_size),
    backbone=dict(
        type='mmringmoe.RingMoE', arch='tiny', modalities=('opt', ),
        moe_mode='dense', pad_small_map=True, out_indices=(0, 1, 2, 3),
        drop_path_rate=0.0, init_cfg=None),
    decode_head=dict(
        type='UPerHead', in_channels=[32, 64, 128, 256],
        in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3), channels=32,
        dropout_ratio=0.0, num_classes=len(classes), norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(48, 48)))

train_pipeline = [
    dict(type='mmringmoe.LoadRSImageFromFile', modality='opt'),
    dict(type='mmringmoe.NormalizeRS', stats_file=stats_file, modality='opt'),
    dict(type='mmringmoe.LoadSegAnnotations', num_classes=len(classes)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='mmringmoe.LoadRSImageFromFile', modality='opt'),
    dict(type='mmringmoe.NormalizeRS', stats_file=stats_file, modality='opt'),
    dict(type='mmringmoe.LoadSegAnnotations', num_classes=len(classes)),
    dict(type='PackSegInputs')
]
dataset = dict(type='BaseSegDataset', data_root=data_root,
               metainfo=dict(classes=classes, palette=palette),
               img_suffix='.tif', seg_map_suffix='.png')
train_dataloader = dict(
    batch_size=4, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(dataset, data_prefix=dict(img_path='img_dir/train',
                                           seg_map_path='ann_dir/train'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, data_prefix=dict(img_path='img_dir/val',
                                           seg_map_path='ann_dir/val'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmringmoe.RSSegMetric')
test_evaluator = val_evaluator

optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01))
max_iters = 200
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=1.0, begin=0,
                        end=max_iters, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=max_iters, save_optimizer=False,
                    save_param_scheduler=False),
    visualization=dict(type='SegVisualizationHook', draw=False))
# checkpoints carry meta['inference'] (modality, band order, the statistics of
# rs_stats.json, classes, palette, test crop): tools/infer.py needs no more
custom_hooks = [dict(type='mmringmoe.InferenceMetaHook')]
work_dir = 'work_dirs/upernet_ringmoe-tiny_1xb4-200iter_builtin-seg-64x64'
