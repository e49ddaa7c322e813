# Scene classification schedule, Appendix B.5.1 (mmpretrain):
# AdamW, lr 5e-5, weight decay 0.05; LinearLR warm-up over the first 10
# epochs from factor 0.01, then cosine annealing to 5e-6 until epoch 200.
# Not given in the paper (mmpretrain Swin defaults, configs/_base_/schedules/
# imagenet_bs1024_adamw_swin.py): betas (0.9, 0.999), eps 1e-8, no weight
# decay on norms, biases and relative position tables; validation every epoch.
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)

optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=5e-5, weight_decay=0.05, eps=1e-8,
        betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            '.absolute_pos_embed': dict(decay_mult=0.0),
            '.relative_position_bias_table': dict(decay_mult=0.0),
        }))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=5e-6, by_epoch=True, begin=10,
         end=200, T_max=190, convert_to_iter_based=True),
]

train_cfg = dict(by_epoch=True, max_epochs=200, val_interval=1)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2,
                    save_best='OA', rule='greater'))

# mmpretrain's reference batch for its Swin schedules.
auto_scale_lr = dict(base_batch_size=1024)
