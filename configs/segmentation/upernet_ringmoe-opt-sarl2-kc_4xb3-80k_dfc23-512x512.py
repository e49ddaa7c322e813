# Tab. A9: DFC23 optical + SAR-L2 segmentation, mIoU 73.4, OA 95.8, with the
# dual-modality UperNet on RingMoE-Opt-KC and RingMoE-SAR-L2-KC (Appendix B.5.3).
# Batch 12 (4 GPUs x 3) as in the paper. The SAR encoder is the same variant for the
# sar_l2 modality: configs/_base_/backbones/ringmoe-sarl2-kc.py differs from the
# optical one only in modality and checkpoint, so it is written from the
# optical base here (two backbone bases cannot be inherited side by side).
# drop_path_rate 0.3: mmseg's UperNet-Swin default (the paper gives none).
_base_ = [
    './_base_/upernet_dual-ringmoe.py',
    './_base_/dfc23_512x512.py',
    './_base_/seg_runtime_adamw-6e-5_80k.py',
    '../_base_/backbones/ringmoe-opt-kc.py',
]
model = dict(
    backbone=dict(_base_.backbone, drop_path_rate=0.3),
    sar_backbone=dict(
        _base_.backbone,
        modalities=('sar_l2', ),
        drop_path_rate=0.3,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/ringmoe-1b_sarl2-kc.pth')),
    decode_head=dict(num_classes=13),
    auxiliary_head=dict(num_classes=13))
