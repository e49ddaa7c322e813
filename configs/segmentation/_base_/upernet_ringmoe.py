# UperNet on RingMoE (Appendix B.5.2): the backbone comes from
# configs/_base_/backbones/ in the leaf config; RingMoE-1B stage widths are
# 448, 896, 1792, 3584. The paper names UperNet only; the rest is mmseg's
# UperNet default (configs/_base_/models/upernet_swin.py): 512 head channels,
# pool scales (1, 2, 3, 6), SyncBN, dropout 0.1, an auxiliary FCN head on the
# third stage with loss weight 0.4, whole-image inference.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='mmringmoe.RingMoEEncoderDecoder',
    pretrained=None,
    decode_head=dict(
        type='UPerHead',
        in_channels=[448, 896, 1792, 3584],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=16,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=1792,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=16,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
