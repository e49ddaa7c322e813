# BinsFormer with RingMoE-Opt-KC on ISPRS potsdam (paper Tab. A12): 512 crops, batch 8, 38.4k iterations.
_base_ = ['./_base_/binsformer_potsdam-512x512.py', '../_base_/backbones/ringmoe-opt-kc.py']
model = dict(backbone={{_base_.backbone}})
