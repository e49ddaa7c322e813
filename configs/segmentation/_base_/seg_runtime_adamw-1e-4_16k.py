# As seg_runtime_adamw-1e-4_80k.py (Appendix B.5.2) with 16k iterations
# (paper: Dyna.-pla); validation and checkpoints every 1600 iterations
# (mmseg's schedules validate ten times per run; not in the paper).
_base_ = ['./seg_runtime_adamw-1e-4_80k.py']
max_iters = 16000
interval = 1600
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end={{_base_.warmup_iters}}),
    dict(type='PolyLR', eta_min=1e-6, power=1.0,
         begin={{_base_.warmup_iters}}, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=interval)
default_hooks = dict(checkpoint=dict(interval=interval))
