# Detection fine-tuning schedule of paper B.5.4: 12 epochs, SGD lr 0.01,
# weight decay 0.05, linear warm-up with ratio 1e-3. The rest is mmdet's
# upstream `schedule_1x.py` (paper silent): momentum 0.9, warm-up length
# 500 iterations, step decay x0.1 at epochs 8 and 11.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

optim_wrapper = dict(optimizer=dict(lr=0.01, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[8, 11], gamma=0.1)
]
