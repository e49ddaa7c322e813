# Tab. A16: SARSegL1 (SAR-L1) semantic segmentation, mIoU 69.55
# with UperNet on RingMoE-KA (1B, dense) (Appendix B.5.2). Batch 4 (4 GPUs x 1) as in the paper.
# drop_path_rate 0.3: mmseg's UperNet-Swin default (the paper gives none).
_base_ = [
    './_base_/upernet_ringmoe.py',
    './_base_/sarsegl1_500x500.py',
    './_base_/seg_runtime_adamw-1e-4_20k.py',
    '../_base_/backbones/ringmoe-sarl1-ka.py',
]
model = dict(
    backbone=dict(_base_.backbone, drop_path_rate=0.3),
    decode_head=dict(num_classes=5),
    auxiliary_head=dict(num_classes=5))
