# Few-shot classification with frozen RingMoE-Opt KC 1B, nwpu-resisc45, 5-way 1-shot (Tab. A4).
_base_ = ['./_base_/relationnet_nwpu-resisc45-5way-1shot.py', '../_base_/backbones/ringmoe-opt-kc.py']
model = dict(backbone={{_base_.backbone}})
