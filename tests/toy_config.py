# Toy regression run for the tools tests (tests/toy_engine.py registers the parts).
default_scope = 'mmringmoe'
custom_imports = dict(imports=['toy_engine'], allow_failed_imports=False)

model = dict(type='ToyRegressor', in_dim=8, hidden=16, dropout=0.5)
_data = dict(type='ToyDataset', length=32, in_dim=8, seed=0)
train_dataloader = dict(
    batch_size=4, num_workers=0, dataset=dict(_data, jitter=0.01),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'))
val_dataloader = dict(
    batch_size=8, num_workers=0, dataset=_data,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))
test_dataloader = val_dataloader
val_evaluator = dict(type='ToyMSE')
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.01, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
log_level = 'WARNING'
