# Oriented R-CNN (le90) + FPN on RingMoE multi-scale features, with the
# detection schedule of paper B.5.4. Everything the paper does not give comes
# from mmrotate's upstream `oriented-rcnn-le90_r50_fpn_1x_dota.py` (heads,
# anchors, samplers, rotated NMS, runtime, gradient clipping at 35), whose
# DOTA data settings each leaf config replaces.
_base_ = 'mmrotate::oriented_rcnn/oriented-rcnn-le90_r50_fpn_1x_dota.py'

custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)

model = dict(
    # mmdet FasterRCNN + loss_moe_balance when the backbone is sparse (EP)
    type='mmringmoe.RingMoEFasterRCNN',
    # replaced by a variant from configs/_base_/backbones/ in the leaf configs
    backbone=dict(
        _delete_=True,
        type='mmringmoe.RingMoE',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3),
    # RingMoE-1B stage widths
    neck=dict(in_channels=[448, 896, 1792, 3584]))

# Paper B.5.4: 12 epochs (upstream 1x), SGD lr 0.01, weight decay 0.05,
# linear warm-up ratio 1e-3 (upstream length: 500 iterations, then x0.1 at
# epochs 8 and 11).
optim_wrapper = dict(optimizer=dict(lr=0.01, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[8, 11], gamma=0.1)
]
