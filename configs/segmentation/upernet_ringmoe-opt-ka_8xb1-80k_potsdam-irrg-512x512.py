# Tab. A16: Potsdam (IRRG) semantic segmentation, mF1 93.28
# with UperNet on RingMoE-KA (1B, dense) (Appendix B.5.2). Batch 8 (8 GPUs x 1) as in the paper.
# drop_path_rate 0.3: mmseg's UperNet-Swin default (the paper gives none).
_base_ = [
    './_base_/upernet_ringmoe.py',
    './_base_/potsdam-irrg_512x512.py',
    './_base_/seg_runtime_adamw-1e-4_80k.py',
    '../_base_/backbones/ringmoe-opt-ka.py',
]
model = dict(
    backbone=dict(_base_.backbone, drop_path_rate=0.3),
    decode_head=dict(num_classes=6),
    auxiliary_head=dict(num_classes=6))
# Potsdam's reported metric is mF1: keep the best checkpoint by it.
default_hooks = dict(checkpoint=dict(save_best='mF1'))
