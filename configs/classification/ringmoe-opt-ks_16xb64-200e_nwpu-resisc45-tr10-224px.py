# Tab. 2 / Tab. A16: NWPU-RESISC45 (TR=10%) scene classification, OA 94.81 with
# RingMoE-KS (1B, dense) and a linear head (Appendix B.5.1).
# Batch: the paper gives none; mmpretrain's Swin V2 fine-tuning default is
# 16 GPUs x 64 images (swinv2-*_16xb64_in1k-256px.py).
_base_ = [
    './_base_/linear-cls_ringmoe.py',
    './_base_/nwpu-resisc45_tr10_224px.py',
    './_base_/cls_runtime_adamw-5e-5_200e.py',
    '../_base_/backbones/ringmoe-opt-ks.py',
]
model = dict(backbone={{_base_.backbone}}, head=dict(num_classes=45))
