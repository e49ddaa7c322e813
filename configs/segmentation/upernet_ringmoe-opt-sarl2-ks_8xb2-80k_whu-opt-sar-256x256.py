# Tab. A16: WHU-OPT-SAR optical + SAR-L2 segmentation, mIoU 54.36, with the
# dual-modality UperNet on RingMoE-Opt-KS and RingMoE-SAR-L2-KS (Appendix B.5.3).
# Batch 16 (8 GPUs x 2) as in the paper. The SAR encoder is the same variant for the
# sar_l2 modality: configs/_base_/backbones/ringmoe-sarl2-ks.py differs from the
# optical one only in modality and checkpoint, so it is written from the
# optical base here (two backbone bases cannot be inherited side by side).
# drop_path_rate 0.3: mmseg's UperNet-Swin default (the paper gives none).
_base_ = [
    './_base_/upernet_dual-ringmoe.py',
    './_base_/whu-opt-sar_256x256.py',
    './_base_/seg_runtime_adamw-6e-5_80k.py',
    '../_base_/backbones/ringmoe-opt-ks.py',
]
model = dict(
    backbone=dict(_base_.backbone, drop_path_rate=0.3),
    sar_backbone=dict(
        _base_.backbone,
        modalities=('sar_l2', ),
        drop_path_rate=0.3,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/ringmoe-1b_sarl2-ks.pth')),
    decode_head=dict(num_classes=7),
    auxiliary_head=dict(num_classes=7))
