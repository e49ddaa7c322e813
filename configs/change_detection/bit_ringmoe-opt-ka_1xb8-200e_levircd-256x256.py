# BIT with RingMoE-Opt-KA on levircd (paper Tab. A16), 256 x 256 slices, 200 epochs.
_base_ = ['./_base_/bit_levircd-256x256.py', '../_base_/backbones/ringmoe-opt-ka.py']
model = dict(backbone={{_base_.backbone}})
