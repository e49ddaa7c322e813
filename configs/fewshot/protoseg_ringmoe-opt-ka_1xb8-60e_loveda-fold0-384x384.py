# 1-shot segmentation with frozen RingMoE-Opt KA 1B, loveda fold 0 (Tab. A16: mean over folds 0-2).
_base_ = ['./_base_/protoseg_loveda-fold0-384x384.py', '../_base_/backbones/ringmoe-opt-ka.py']
model = dict(backbone={{_base_.backbone}})
