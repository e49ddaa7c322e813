# 1-shot segmentation with frozen RingMoE-Opt KC 1B, loveda fold 2 (Tab. A16: mean over folds 0-2).
_base_ = ['./_base_/protoseg_loveda-fold2-384x384.py', '../_base_/backbones/ringmoe-opt-kc.py']
model = dict(backbone={{_base_.backbone}})
