# Tab. 4 / Tab. A14 / Tab. A16 (KC): DIOR horizontal detection, mAP50 82.45.
# Faster R-CNN + FPN on RingMoE-Opt-KC (1B dense), paper B.5.4: 800x800,
# 12 epochs, SGD lr 0.01 wd 0.05, linear warm-up ratio 1e-3, drop path 0.3,
# RandomFlip only, no multi-scale training; trainval for training, test for
# evaluation. Batch size (paper silent): mmdet's 8 GPUs x 2 images.
_base_ = [
    '../_base_/models/faster-rcnn_ringmoe_fpn.py',
    '../_base_/datasets/dior.py',
    '../_base_/schedules/det_sgd-0.01_12e.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/backbones/ringmoe-opt-kc.py',
]

model = dict(
    backbone=dict(_base_.backbone, drop_path_rate=0.3),
    roi_head=dict(bbox_head=dict(num_classes=20)))
