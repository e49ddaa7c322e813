# Few-shot classification with frozen RingMoE-Opt KC 1B, whu-rs19, 5-way 5-shot (B.5.8 (5-shot, no table value)).
_base_ = ['./_base_/relationnet_whu-rs19-5way-5shot.py', '../_base_/backbones/ringmoe-opt-kc.py']
model = dict(backbone={{_base_.backbone}})
