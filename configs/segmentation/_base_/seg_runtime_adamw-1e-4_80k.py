# Segmentation schedule, Appendix B.5.2 (mmseg): AdamW, lr 1e-4, weight decay
# 0.05; linear warm-up over the first 1,500 iterations from factor 0.1, then
# polynomial decay to 1e-6; 80k iterations. Not given in the paper (mmseg
# UperNet-Swin defaults): betas (0.9, 0.999), no weight decay on norms and
# relative position tables, poly power 1.0, validation and checkpoints every
# 8k iterations (mmseg schedule_80k).
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)

max_iters = 80000
warmup_iters = 1500
interval = 8000

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='PolyLR', eta_min=1e-6, power=1.0, begin=warmup_iters,
         end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=interval,
                    max_keep_ckpts=2, save_best='mIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
