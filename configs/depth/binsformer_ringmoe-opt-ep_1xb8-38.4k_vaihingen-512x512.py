# BinsFormer with RingMoE-Opt-EP on ISPRS vaihingen (paper Tab. A16): 512 crops, batch 8, 38.4k iterations.
_base_ = ['./_base_/binsformer_vaihingen-512x512.py', '../_base_/backbones/ringmoe-opt-ep.py']
model = dict(backbone={{_base_.backbone}})
