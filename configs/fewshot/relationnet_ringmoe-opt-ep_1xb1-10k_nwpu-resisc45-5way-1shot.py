# Few-shot classification with frozen RingMoE-Opt EP 4.3B, nwpu-resisc45, 5-way 1-shot (Tab. A4).
_base_ = ['./_base_/relationnet_nwpu-resisc45-5way-1shot.py', '../_base_/backbones/ringmoe-opt-ep.py']
model = dict(backbone={{_base_.backbone}})
