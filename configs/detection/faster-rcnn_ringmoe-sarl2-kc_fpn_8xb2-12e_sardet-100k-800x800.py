# Tab. A15: SARDet-100k (6 classes, amplitude SAR), mAP50 89.72. Faster R-CNN + FPN
# on RingMoE-SARL2-KC through its sar_l2 (1-band) patch embedding, paper
# B.5.4 schedule (see the HRSID config).
_base_ = [
    '../_base_/models/faster-rcnn_ringmoe_fpn.py',
    '../_base_/datasets/sardet-100k.py',
    '../_base_/schedules/det_sgd-0.01_12e.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/backbones/ringmoe-sarl2-kc.py',
]

model = dict(
    data_preprocessor=_base_.sar_l2_data_preprocessor,
    backbone=dict(_base_.backbone, drop_path_rate=0.3),
    roi_head=dict(bbox_head=dict(num_classes=6)))
