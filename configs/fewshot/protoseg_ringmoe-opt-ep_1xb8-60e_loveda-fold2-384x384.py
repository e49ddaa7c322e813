# 1-shot segmentation with frozen RingMoE-Opt EP 4.3B, loveda fold 2 (Tab. A5: mean over folds 0-2).
_base_ = ['./_base_/protoseg_loveda-fold2-384x384.py', '../_base_/backbones/ringmoe-opt-ep.py']
model = dict(backbone={{_base_.backbone}})
