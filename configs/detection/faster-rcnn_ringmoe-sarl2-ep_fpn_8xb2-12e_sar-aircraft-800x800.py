# Tab. A16 (EP column): SAR-AIRcraft-1.0, mAP50 98.13, on RingMoE-SARL2-EP through
# its sar_l2 (1-band) patch embedding. Same detector, data and schedule as
# the KC config (paper B.5.4); only the backbone variant differs.
_base_ = [
    '../_base_/models/faster-rcnn_ringmoe_fpn.py',
    '../_base_/datasets/sar-aircraft.py',
    '../_base_/schedules/det_sgd-0.01_12e.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/backbones/ringmoe-sarl2-ep.py',
]

model = dict(
    data_preprocessor=_base_.sar_l2_data_preprocessor,
    # modalities=('sar_l2',): a plain tensor input goes to the sar_l2 branch
    backbone=dict(_base_.backbone, drop_path_rate=0.3),
    roi_head=dict(bbox_head=dict(num_classes=7)))
