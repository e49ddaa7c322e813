# Fig. A6a / Tab. 6 (all three expert types) / Tab. A17-A18: HRSID ship
# detection in amplitude SAR, mAP50 94.20. Faster R-CNN + FPN on RingMoE-SARL2-KC
# through its sar_l2 (1-band) patch embedding, paper B.5.4 schedule: 800x800,
# 12 epochs, SGD lr 0.01 wd 0.05, linear warm-up ratio 1e-3, drop path 0.3,
# RandomFlip only. Batch size (paper silent): mmdet's 8 GPUs x 2 images.
_base_ = [
    '../_base_/models/faster-rcnn_ringmoe_fpn.py',
    '../_base_/datasets/hrsid.py',
    '../_base_/schedules/det_sgd-0.01_12e.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/backbones/ringmoe-sarl2-kc.py',
]

model = dict(
    data_preprocessor=_base_.sar_l2_data_preprocessor,
    # modalities=('sar_l2',): a plain tensor input goes to the sar_l2 branch
    backbone=dict(_base_.backbone, drop_path_rate=0.3),
    roi_head=dict(bbox_head=dict(num_classes=1)))
