# Tab. A16: Dyna.-pla (MS) semantic segmentation, mIoU 46.77
# with UperNet on RingMoE-KA (1B, dense) (Appendix B.5.2). Batch 8 (8 GPUs x 1) as in the paper.
# drop_path_rate 0.3: mmseg's UperNet-Swin default (the paper gives none).
_base_ = [
    './_base_/upernet_ringmoe.py',
    './_base_/dynamicearthnet-planet_1024x1024.py',
    './_base_/seg_runtime_adamw-1e-4_16k.py',
    '../_base_/backbones/ringmoe-ms-ka.py',
]
model = dict(
    backbone=dict(_base_.backbone, drop_path_rate=0.3),
    decode_head=dict(num_classes=7),
    auxiliary_head=dict(num_classes=7))
