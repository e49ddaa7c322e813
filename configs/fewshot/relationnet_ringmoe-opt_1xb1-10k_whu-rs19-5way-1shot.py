# Few-shot classification with frozen RingMoE-Opt 6.5B, whu-rs19, 5-way 1-shot (Tab. A4).
_base_ = ['./_base_/relationnet_whu-rs19-5way-1shot.py', '../_base_/backbones/ringmoe-opt.py']
model = dict(backbone={{_base_.backbone}})
