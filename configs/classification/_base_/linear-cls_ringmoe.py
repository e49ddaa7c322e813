# Appendix B.5.1: RingMoE extracts features, a linear layer classifies
# (mmpretrain ImageClassifier: global average pooling of the last stage,
# LinearClsHead). The backbone comes from configs/_base_/backbones/ in the
# leaf config; 3584 is the width of RingMoE-1B's last stage.
model = dict(
    type='mmringmoe.RingMoEImageClassifier',
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=45,
        in_channels=3584,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
