# BIT with RingMoE-Opt-KC on cdd (paper Tab. A11), 256 x 256 slices, 200 epochs.
_base_ = ['./_base_/bit_cdd-256x256.py', '../_base_/backbones/ringmoe-opt-kc.py']
model = dict(backbone={{_base_.backbone}})
