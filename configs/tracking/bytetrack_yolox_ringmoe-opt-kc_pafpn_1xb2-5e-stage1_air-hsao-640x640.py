# Fig. 11a / Fig. A6b / Tab. A16 (KC):
# AIR-HSAO multi-object tracking: MOTA 83.10 (IDF1, HOTA also reported).
# ByteTrack + YOLOX on RingMoE-Opt-KC, paper B.5.5, stage 1 of 2: every
# parameter fine-tuned on 640x640 frame crops, AdamW lr 1e-5, weight decay
# 0.005, batch size 2 (taken as 1 GPU x 2), linear warm-up over 5000
# iterations from factor 0.1, then constant, 5 epochs. Stage 2:
#   bytetrack_yolox_ringmoe-opt-kc_pafpn_1xb2-2e-stage2_air-hsao-1920x1080.py
# Backbone stages 1-3 (strides 8/16/32) feed the PAFPN; drop path: the
# backbone variant's default (paper silent for tracking).
_base_ = [
    '../_base_/datasets/air-hsao_bytetrack.py',
    '../_base_/backbones/ringmoe-opt-kc.py',
]

model = dict(
    detector=dict(backbone=dict(_base_.backbone, out_indices=(1, 2, 3))))
