# BinsFormer with RingMoE-Opt-KS on ISPRS vaihingen (paper Tab. A16): 512 crops, batch 8, 38.4k iterations.
_base_ = ['./_base_/binsformer_vaihingen-512x512.py', '../_base_/backbones/ringmoe-opt-ks.py']
model = dict(backbone={{_base_.backbone}})
