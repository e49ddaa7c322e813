# Tab. A16 (KS column): DIOR horizontal detection, mAP50 81.37, on RingMoE-Opt-KS.
# Same detector, data and schedule as the KC config (paper B.5.4); only the
# backbone variant differs.
_base_ = [
    '../_base_/models/faster-rcnn_ringmoe_fpn.py',
    '../_base_/datasets/dior.py',
    '../_base_/schedules/det_sgd-0.01_12e.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/backbones/ringmoe-opt-ks.py',
]

model = dict(
    backbone=dict(_base_.backbone, drop_path_rate=0.3),
    roi_head=dict(bbox_head=dict(num_classes=20)))
