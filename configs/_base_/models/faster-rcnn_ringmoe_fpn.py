# Faster R-CNN + FPN on RingMoE multi-scale features (paper B.5.4).
# mmdet's own Faster R-CNN (anchors, RPN/RoI sampling, NMS) is kept as is:
# the paper gives no detector hyper-parameters, so every value below that is
# not the backbone comes from mmdet's upstream `faster-rcnn_r50_fpn.py`.
_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'

custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)

model = dict(
    # mmdet FasterRCNN + loss_moe_balance when the backbone is sparse (EP)
    type='mmringmoe.RingMoEFasterRCNN',
    # Replaced by a variant from configs/_base_/backbones/ in each leaf config
    # (`backbone=dict(_base_.backbone, ...)`); 4 stages at strides 4-32.
    backbone=dict(
        _delete_=True,
        type='mmringmoe.RingMoE',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3),
    # RingMoE-1B stage widths
    neck=dict(in_channels=[448, 896, 1792, 3584]))
